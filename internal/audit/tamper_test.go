package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/testenv"
)

// tamperFixture is a closed trail with 4 digests and 2 signed delivery
// files, then an unsealed window (1 pending file, 3 journal events) left by
// a crash.
type tamperFixture struct {
	dir     string
	head    *Head
	signed  []string // signed delivery files, chain order
	pending string   // delivery file awaiting a digest
	digests []string // oldest first
	ids     map[string][]string
}

func buildTamperFixture(t *testing.T) *tamperFixture {
	t.Helper()
	dir := t.TempDir()
	h, _ := buildTrail(t, dir)
	c := newClock(t0.Add(5 * time.Hour))
	hs := &memHead{h: h}
	tr := openTrail(t, dir, c, hs, nil)
	b := testBuilder(21, c)
	for i := range 8 {
		if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("Window", i)), Durable()); err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			c.Advance(time.Minute)
			if err := tr.Seal(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr.crash()

	st, err := loadState(testRoot(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	f := &tamperFixture{dir: dir, head: hs.get(), ids: map[string][]string{}}
	if len(st.Pending) != 1 {
		t.Fatalf("fixture has %d pending files", len(st.Pending))
	}
	f.pending = st.Pending[0].Path
	for cur := f.head.DigestS3Object; cur != ""; {
		d, err := ParseDigest(gunzipFile(t, filepath.Join(dir, cur)))
		if err != nil {
			t.Fatal(err)
		}
		f.digests = append([]string{cur}, f.digests...)
		var files []string
		for _, lf := range d.LogFiles {
			files = append(files, lf.S3Object)
		}
		f.signed = append(files, f.signed...)
		cur = ""
		if d.PreviousDigestS3Object != nil {
			cur = *d.PreviousDigestS3Object
		}
	}
	for _, p := range append(slices.Clone(f.signed), f.pending) {
		for _, r := range readRecords(t, filepath.Join(dir, p)) {
			var m eventMeta
			json.Unmarshal(r, &m)
			f.ids[p] = append(f.ids[p], m.EventID)
		}
	}
	rep := verifyTrail(t, dir, f.head)
	if !rep.Intact || rep.PendingFiles != 1 || rep.PendingEvents != 5 || rep.JournalEvents != 3 || rep.SignedFiles != 2 {
		t.Fatalf("fixture does not verify as expected:\n%s", rep)
	}
	return f
}

func readRecords(t testing.TB, p string) []json.RawMessage {
	t.Helper()
	recs, err := rawRecords(gunzipFile(t, p))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func writeRecords(t testing.TB, p string, recs []json.RawMessage) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, r := range recs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(r)
	}
	b.WriteString(`]}`)
	writeGzip(t, p, b.Bytes())
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

type wantProblem struct {
	kind  ProblemKind
	path  string
	index int // -1: not checked
	id    string
}

// forgeDigest rewrites a digest through edit and signs nothing: the
// signature the verifier uses comes from the successor or the head.
func forgeDigest(t *testing.T, dir, rel, fingerprint string, edit func(d *Digest)) {
	t.Helper()
	p := filepath.Join(dir, rel)
	d, err := ParseDigest(gunzipFile(t, p))
	if err != nil {
		t.Fatal(err)
	}
	d.DigestPublicKeyFingerprint = fingerprint
	if edit != nil {
		edit(d)
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	writeGzip(t, p, raw)
}

func TestTamperDetected(t *testing.T) {
	fx := buildTamperFixture(t)
	other, err := NewSigningKey(loadKey(t, "other-digest-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ours := testSigningKey(t).Fingerprint
	log0, log1 := fx.signed[0], fx.signed[1]
	ids0 := fx.ids[log0]
	newest := fx.digests[len(fx.digests)-1]

	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string) *Head // returns the head to verify with
		want   []wantProblem
	}{
		{"flipped byte in a log file", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, log0)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x01
			os.WriteFile(p, b, 0o644)
			return fx.head
		}, []wantProblem{{ProblemLogFileModified, log0, -1, ""}}},

		{"deleted log file", func(t *testing.T, dir string) *Head {
			os.Remove(filepath.Join(dir, log1))
			return fx.head
		}, []wantProblem{{ProblemLogFileMissing, log1, -1, ""}}},

		{"reordered events", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, log0)
			recs := readRecords(t, p)
			recs[3], recs[7] = recs[7], recs[3]
			writeRecords(t, p, recs)
			return fx.head
		}, []wantProblem{
			{ProblemLogFileModified, log0, -1, ""},
			{ProblemEventReordered, log0, 3, ids0[7]},
			{ProblemEventReordered, log0, 7, ids0[3]},
		}},

		{"event moved far", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, log0)
			recs := readRecords(t, p)
			moved := recs[0]
			recs = append(slices.Delete(recs, 0, 1), moved)
			writeRecords(t, p, recs)
			return fx.head
		}, []wantProblem{{ProblemEventReordered, log0, len(ids0) - 1, ids0[0]}}},

		{"edited event", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, log0)
			recs := readRecords(t, p)
			recs[5] = bytes.Replace(recs[5], []byte(`"eventName":"Call05"`), []byte(`"eventName":"Harmless"`), 1)
			writeRecords(t, p, recs)
			return fx.head
		}, []wantProblem{{ProblemLogFileModified, log0, -1, ""}, {ProblemEventModified, log0, 5, ids0[5]}}},

		{"inserted event", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, log0)
			recs := readRecords(t, p)
			fake := bytes.Replace(recs[0], []byte(ids0[0]), []byte("00000000-0000-4000-8000-000000000bad"), 1)
			recs = slices.Insert(recs, 2, json.RawMessage(fake))
			writeRecords(t, p, recs)
			return fx.head
		}, []wantProblem{{ProblemEventInserted, log0, 2, "00000000-0000-4000-8000-000000000bad"}}},

		{"removed event", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, log0)
			recs := readRecords(t, p)
			writeRecords(t, p, slices.Delete(recs, 4, 5))
			return fx.head
		}, []wantProblem{{ProblemEventRemoved, log0, 4, ids0[4]}}},

		{"event copied into another file", func(t *testing.T, dir string) *Head {
			recs := readRecords(t, filepath.Join(dir, log0))
			p := filepath.Join(dir, log1)
			writeRecords(t, p, append(readRecords(t, p), recs[0]))
			return fx.head
		}, []wantProblem{{ProblemEventInserted, log1, len(fx.ids[log1]), ids0[0]}, {ProblemEventDuplicate, log1, len(fx.ids[log1]), ids0[0]}}},

		{"injected log file", func(t *testing.T, dir string) *Head {
			rel := LogFilePath(testAccount, testRegion, t0.Add(30*time.Minute), "InjectedFile0001")
			recs := readRecords(t, filepath.Join(dir, log0))
			fake := bytes.Replace(recs[0], []byte(ids0[0]), []byte("00000000-0000-4000-8000-00000000f00d"), 1)
			writeRecords(t, filepath.Join(dir, rel), []json.RawMessage{fake})
			return fx.head
		}, []wantProblem{{ProblemLogFileUnreferenced, LogFilePath(testAccount, testRegion, t0.Add(30*time.Minute), "InjectedFile0001"), -1, ""}}},

		{"injected junk file", func(t *testing.T, dir string) *Head {
			os.WriteFile(filepath.Join(dir, filepath.Dir(log0), "notes.txt"), []byte("hi"), 0o644)
			return fx.head
		}, []wantProblem{{ProblemUnexpectedFile, filepath.ToSlash(filepath.Join(filepath.Dir(log0), "notes.txt")), -1, ""}}},

		{"digest replaced, signed with another key", func(t *testing.T, dir string) *Head {
			forgeDigest(t, dir, fx.digests[1], other.Fingerprint, func(d *Digest) { d.LogFiles = d.LogFiles[:0] })
			return fx.head
		}, []wantProblem{
			{ProblemDigestModified, fx.digests[1], -1, ""},
			{ProblemDigestKeyUnknown, fx.digests[1], -1, ""},
			{ProblemLogFileUnreferenced, log1, -1, ""},
		}},

		{"digest forged under our fingerprint", func(t *testing.T, dir string) *Head {
			forgeDigest(t, dir, fx.digests[0], ours, func(d *Digest) { d.LogFiles[0].HashValue = strings.Repeat("0", 64) })
			return fx.head
		}, []wantProblem{
			{ProblemDigestModified, fx.digests[0], -1, ""},
			{ProblemDigestSignature, fx.digests[0], -1, ""},
			{ProblemLogFileModified, log0, -1, ""},
		}},

		{"newest digest forged", func(t *testing.T, dir string) *Head {
			forgeDigest(t, dir, newest, ours, func(d *Digest) { d.DigestEndTime = "2025-04-16T07:59:59Z" })
			return fx.head
		}, []wantProblem{{ProblemDigestModified, newest, -1, ""}, {ProblemDigestSignature, newest, -1, ""}}},

		{"newest digest deleted", func(t *testing.T, dir string) *Head {
			os.Remove(filepath.Join(dir, newest))
			return fx.head
		}, []wantProblem{{ProblemDigestMissing, newest, -1, ""}}},

		{"newest digest deleted and seal state rolled back", func(t *testing.T, dir string) *Head {
			os.Remove(filepath.Join(dir, newest))
			st, _ := loadState(testRoot(t, dir))
			st.LastDigest = &Head{DigestS3Object: fx.digests[len(fx.digests)-2]}
			writeTestState(t, dir, st, false)
			return fx.head // the head kept outside still names the deleted digest
		}, []wantProblem{{ProblemDigestMissing, newest, -1, ""}}},

		{"middle digest deleted", func(t *testing.T, dir string) *Head {
			os.Remove(filepath.Join(dir, fx.digests[1]))
			return fx.head
		}, []wantProblem{{ProblemDigestMissing, fx.digests[1], -1, ""}, {ProblemLogFileUnreferenced, log1, -1, ""}}},

		{"digest moved", func(t *testing.T, dir string) *Head {
			to := DigestFilePath(testAccount, testRegion, "keyless", t0.Add(90*time.Minute))
			os.Rename(filepath.Join(dir, fx.digests[1]), filepath.Join(dir, to))
			return fx.head
		}, []wantProblem{{ProblemDigestMissing, fx.digests[1], -1, ""}}},

		{"wrong head signature", func(t *testing.T, dir string) *Head {
			h := *fx.head
			h.Signature = strings.Repeat("ab", 256)
			return &h
		}, []wantProblem{{ProblemDigestSignature, newest, -1, ""}}},

		{"pending file modified", func(t *testing.T, dir string) *Head {
			p := filepath.Join(dir, fx.pending)
			recs := readRecords(t, p)
			writeRecords(t, p, recs[1:])
			return fx.head
		}, []wantProblem{{ProblemLogFileModified, fx.pending, -1, ""}, {ProblemEventRemoved, fx.pending, 0, fx.ids[fx.pending][0]}}},

		{"pending file deleted", func(t *testing.T, dir string) *Head {
			os.Remove(filepath.Join(dir, fx.pending))
			return fx.head
		}, []wantProblem{{ProblemLogFileMissing, fx.pending, -1, ""}}},

		{"journal frame damaged", func(t *testing.T, dir string) *Head {
			seg := segments(t, dir)[0]
			b, _ := os.ReadFile(seg)
			b[len(segMagic)+frameHeaderSize+3] ^= 0x20
			os.WriteFile(seg, b, 0o644)
			return fx.head
		}, []wantProblem{{ProblemJournalCorrupt, "journal/" + filepath.Base(segments(t, fx.dir)[0]), -1, ""}}},

		{"seal state destroyed", func(t *testing.T, dir string) *Head {
			os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o644)
			return fx.head
		}, []wantProblem{{ProblemStateCorrupt, stateFile, -1, ""}, {ProblemLogFileUnreferenced, fx.pending, -1, ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, fx.dir, dir)
			head := tc.tamper(t, dir)
			rep := verifyTrail(t, dir, head)
			if rep.Intact {
				t.Fatalf("tampering not detected:\n%s", rep)
			}
			for _, w := range tc.want {
				if !reportHas(rep, w) {
					t.Errorf("missing problem %+v in:\n%s", w, rep)
				}
			}
			text := rep.String()
			if !strings.Contains(text, "NOT INTACT") || !strings.Contains(text, string(tc.want[0].kind)+" "+tc.want[0].path) {
				t.Errorf("text report does not say what and where:\n%s", text)
			}
			js, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(js, &back); err != nil || back.Intact || len(back.Problems) != len(rep.Problems) {
				t.Errorf("JSON report does not round-trip: %s", js)
			}
		})
	}
}

func reportHas(rep *Report, w wantProblem) bool {
	for _, p := range rep.Problems {
		if p.Kind != w.kind || p.Path != w.path {
			continue
		}
		if w.index >= 0 && (p.EventIndex == nil || *p.EventIndex != w.index) {
			continue
		}
		if w.id != "" && p.EventID != w.id {
			continue
		}
		return true
	}
	return false
}

// TestEveryFlippedByteDetected flips each byte of a small delivery file and
// of a digest in turn: every single change must make verification fail.
func TestEveryFlippedByteDetected(t *testing.T) {
	if testenv.Short() {
		t.Skip("1000 verifications; skipped with -short")
	}
	dir := t.TempDir()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, nil)
	if err := tr.Record(context.Background(), callEvent(t, testBuilder(31, c), "Only"), Durable()); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	head := hs.get()
	if rep := verifyTrail(t, dir, head); !rep.Intact || rep.SignedEvents != 1 {
		t.Fatalf("%s", rep)
	}
	d, _ := ParseDigest(gunzipFile(t, filepath.Join(dir, head.DigestS3Object)))
	targets := []string{d.LogFiles[0].S3Object, head.DigestS3Object}
	for _, rel := range targets {
		p := filepath.Join(dir, rel)
		orig, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		content := gunzipFile(t, p)
		unnoticed := 0
		for i := range orig {
			b := slices.Clone(orig)
			b[i] ^= 0x04 // the bit that toggles gzip's XFL between 0 and 4
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if rep := verifyTrail(t, dir, head); rep.Intact {
				// Only bits that carry no content may go unnoticed: the
				// padding after deflate's final block. The digest hashes the
				// uncompressed content, as CloudTrail's does.
				if got, err := readGzipFile(testRoot(t, dir), rel, shapeLog|shapeDigest); err != nil || !bytes.Equal(got, content) {
					t.Errorf("%s: flipping a bit of byte %d changed the content unnoticed", rel, i)
				}
				unnoticed++
			}
		}
		os.WriteFile(p, orig, 0o644)
		t.Logf("%s: %d bytes, %d flips without effect on the content", filepath.Base(rel), len(orig), unnoticed)
		if unnoticed > 1 {
			t.Errorf("%d flips went unnoticed; only the final deflate byte's padding may", unnoticed)
		}
	}
}

// TestVerifyWithoutHead: without the outside head, verify anchors on the
// seal state and says so, but does not call the trail intact: the newest
// digests and the state could have been rolled back together.
func TestVerifyWithoutHead(t *testing.T) {
	dir := t.TempDir()
	buildTrail(t, dir)
	rep := verifyTrail(t, dir, nil)
	if rep.Intact || rep.Authenticated || len(rep.Problems) != 0 || rep.Digests != 4 {
		t.Fatalf("%s", rep)
	}
	if len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "no head supplied") {
		t.Errorf("notes = %q", rep.Notes)
	}
	if !strings.Contains(rep.String(), "NOT AUTHENTICATED") {
		t.Errorf("text report does not say the trail is unauthenticated:\n%s", rep)
	}
}

// TestUnanchoredDigest: a digest on disk that neither the head nor the
// seal state records (a crash between writing it and saving the state, or
// an insertion) is reported until the trail is reopened, which discards it.
// A digest the authenticated seal state records but the head does not yet
// (a crash before the head was saved) anchors the chain, with a note.
func TestUnanchoredDigest(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, nil)
	c.Advance(61 * time.Minute)
	tr.Seal(context.Background())
	old := hs.get()
	oldState := loadTestState(t, dir)
	c.Advance(61 * time.Minute)
	tr.Seal(context.Background())
	tr.crash()

	// The head store missed the save after the newest digest.
	var before *Head
	for _, h := range hs.all {
		if h.Seq == loadTestState(t, dir).HeadSeq {
			before = &h
		}
	}
	if before == nil || before.DigestS3Object != old.DigestS3Object {
		t.Fatalf("no head from before the newest digest: %+v", before)
	}
	rep := verifyTrail(t, dir, before)
	if !rep.Intact || !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "newer than the head") }) {
		t.Fatalf("a digest recorded by the authenticated state:\n%s", rep)
	}

	// The state did not record it either: the digest is unanchored.
	st := loadTestState(t, dir)
	st.LastDigest, st.Pending = oldState.LastDigest, oldState.Pending
	writeTestState(t, dir, st, true)
	rep = verifyTrail(t, dir, before)
	if rep.Intact || !hasProblem(rep, ProblemDigestUnanchored, "") {
		t.Fatalf("digest newer than the head not reported:\n%s", rep)
	}
}
