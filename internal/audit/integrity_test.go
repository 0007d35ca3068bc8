package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// The trail against someone who can write its directory and the head store
// but does not hold the MAC key (issue 11, items 6 to 8): paths read from
// the trail are confined to it, the head and the seal state are
// authenticated, and the journal is chained up to an authenticated
// checkpoint.

// crashFixture is a trail killed after `before` durable events, a
// checkpoint, and `after` more durable events.
type crashFixture struct {
	dir   string
	head  *memHead
	clock *clock
	ids   []string
}

func crashedTrail(t *testing.T, dir string, before, after int, mod func(*Options)) *crashFixture {
	t.Helper()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, mod)
	b := testBuilder(51, c)
	var ids []string
	record := func(n int) {
		for range n {
			ev := callEvent(t, b, fmt.Sprint("Call", len(ids)))
			if err := tr.Record(context.Background(), ev, Durable()); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.EventID)
		}
	}
	record(before)
	if err := tr.checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	record(after)
	tr.crash()
	return &crashFixture{dir: dir, head: hs, clock: c, ids: ids}
}

// open opens the fixture's trail again and, when that works, crashes it.
func (f *crashFixture) open(t *testing.T) error {
	t.Helper()
	tr, err := Open(context.Background(), testOptions(t, f.dir, f.clock, f.head))
	if err == nil {
		tr.crash()
	}
	return err
}

// readFrames reads every frame of a trail's journal, in order.
func readFrames(t *testing.T, dir string) []frame {
	t.Helper()
	var out []frame
	for _, p := range segments(t, dir) {
		rel := journalDir + "/" + filepath.Base(p)
		if _, err := readSegment(testRoot(t, dir), rel, func(f frame) error { out = append(out, f); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// rewriteJournal replaces the journal by one segment holding frames, with
// valid CRCs, as someone without the key can. rechain recomputes every
// frame's prev from the first one's, so the chain is consistent in itself.
func rewriteJournal(t *testing.T, dir string, frames []frame, rechain bool) {
	t.Helper()
	for _, p := range segments(t, dir) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(frames) == 0 {
		return
	}
	b := []byte(segMagic)
	prev := frames[0].Prev
	for _, f := range frames {
		if !rechain {
			prev = f.Prev
		}
		b = appendFrame(b, f.Seq, &prev, f.Payload)
		sum := sha256.Sum256(f.Payload)
		prev = chainNext(&prev, f.Seq, &sum)
	}
	if err := os.WriteFile(filepath.Join(dir, journalDir, segmentName(frames[0].Seq)), b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// makeLegacy turns a trail into what keyless wrote before authentication:
// a version-1 seal state without MAC, chain or counters, version-1 journal
// segments, and a head of the four digest fields. It returns that head.
func makeLegacy(t *testing.T, dir string, hs *memHead) *Head {
	t.Helper()
	st := loadTestState(t, dir)
	legacy := map[string]any{
		"version": 1, "lastSealedSeq": st.LastSealedSeq, "chainStart": st.ChainStart, "pending": st.Pending,
	}
	if st.LastDigest != nil {
		d := st.LastDigest
		legacy["lastDigest"] = Head{DigestS3Object: d.DigestS3Object, DigestEndTime: d.DigestEndTime, HashValue: d.HashValue, Signature: d.Signature}
	}
	if st.Intent != nil {
		legacy["intent"] = st.Intent
	}
	writeJSON(t, filepath.Join(dir, stateFile), legacy)
	for _, p := range segments(t, dir) {
		var frames []frame
		if _, err := readSegment(testRoot(t, dir), journalDir+"/"+filepath.Base(p), func(f frame) error { frames = append(frames, f); return nil }); err != nil {
			t.Fatal(err)
		}
		b := []byte(segMagicV1)
		for _, f := range frames {
			b = appendFrameV1(b, f.Seq, f.Payload)
		}
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var h *Head
	if cur := hs.get(); cur != nil && cur.DigestS3Object != "" {
		h = &Head{DigestS3Object: cur.DigestS3Object, DigestEndTime: cur.DigestEndTime, HashValue: cur.HashValue, Signature: cur.Signature}
	}
	hs.h = h
	return h
}

func writeJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// editStateJSON edits the seal state file as JSON, leaving its MAC alone.
func editStateJSON(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	writeJSON(t, p, m)
}

// snapshotFiles maps every file under root to its content.
func snapshotFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeSymlink != 0 {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ---- item 6: the data dir is not a way to delete files

// TestOpenRefusesUnsafeStatePaths: a seal state naming files outside the
// trail (the master key next to it, an absolute path, a climb out of a log
// folder) stops Open with an error naming the state file and the path, and
// deletes nothing. The state is in the pre-authentication format, as on a
// data dir written before this change (an authenticated state could not be
// edited at all: see the last case). Before confinement, Open deleted the
// master key.
func TestOpenRefusesUnsafeStatePaths(t *testing.T) {
	for _, tc := range []struct {
		name   string
		legacy bool
		edit   func(m map[string]any, victim string)
		want   error
		named  string
	}{
		{"intent names the master key next to the trail", true, func(m map[string]any, _ string) {
			m["intent"] = map[string]any{"files": []string{"../master.key"}}
		}, ErrUnsafePath, "../master.key"},
		{"intent names an absolute path", true, func(m map[string]any, victim string) {
			m["intent"] = map[string]any{"files": []string{victim}}
		}, ErrUnsafePath, "is not a clean relative path"},
		{"intent climbs out of a log folder", true, func(m map[string]any, _ string) {
			m["intent"] = map[string]any{"files": []string{"AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/../../../../../../../master.key"}}
		}, ErrUnsafePath, "../master.key"},
		{"intent names a trail file of another shape", true, func(m map[string]any, _ string) {
			m["intent"] = map[string]any{"files": []string{"journal/seal-state.json"}}
		}, ErrUnsafePath, "journal/seal-state.json"},
		{"pending file outside", true, func(m map[string]any, _ string) {
			m["pending"] = []map[string]any{{"path": "../master.key", "hashValue": strings.Repeat("0", 64)}}
		}, ErrUnsafePath, "pending file"},
		{"newest digest outside", true, func(m map[string]any, _ string) {
			m["lastDigest"] = map[string]any{"digestS3Object": "../master.key"}
		}, ErrUnsafePath, "last digest"},
		{"authenticated state: intent edited", false, func(m map[string]any, _ string) {
			m["intent"] = map[string]any{"files": []string{"../master.key"}}
		}, ErrUnauthenticated, stateFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "audit")
			victim := filepath.Join(base, "master.key")
			if err := os.WriteFile(victim, []byte("the master key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			f := crashedTrail(t, dir, 3, 1, nil)
			if tc.legacy {
				makeLegacy(t, dir, f.head)
			}
			editStateJSON(t, dir, func(m map[string]any) { tc.edit(m, victim) })
			before := snapshotFiles(t, base)

			err := f.open(t)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), stateFile) || !strings.Contains(err.Error(), tc.named) {
				t.Fatalf("Open: %v\nwant %v naming %s and %q", err, tc.want, stateFile, tc.named)
			}
			if d := diffSnapshots(before, snapshotFiles(t, base)); d != "" {
				t.Errorf("files changed although Open was refused: %s", d)
			}
		})
	}
}

func diffSnapshots(a, b map[string]string) string {
	var out []string
	for p, c := range a {
		if got, ok := b[p]; !ok {
			out = append(out, "deleted "+p)
		} else if got != c {
			out = append(out, "changed "+p)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// TestOpenRefusesSymlinks: a symbolic link in place of one of the trail's
// own folders or files stops Open (naming it) without touching what it
// points to. Before confinement a journal/tmp link made Open empty its
// target.
func TestOpenRefusesSymlinks(t *testing.T) {
	for _, rel := range []string{tmpDir, journalDir, indexDir, awsLogsDir, lockFile, "segment"} {
		t.Run(rel, func(t *testing.T) {
			dir := t.TempDir()
			f := crashedTrail(t, dir, 3, 0, nil)
			outside := t.TempDir()
			for _, name := range []string{"w-1.tmp", "w-123.tmp", "precious.txt"} {
				if err := os.WriteFile(filepath.Join(outside, name), []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			target := outside
			if rel == "segment" {
				rel = journalDir + "/" + segmentName(100)
				target = filepath.Join(outside, "precious.txt")
			}
			if rel == lockFile {
				target = filepath.Join(outside, "precious.txt")
			}
			p := filepath.Join(dir, filepath.FromSlash(rel))
			if rel == journalDir {
				// Keep the journal's contents, behind a link.
				if err := os.Rename(p, filepath.Join(outside, "journal")); err != nil {
					t.Fatal(err)
				}
				target = filepath.Join(outside, "journal")
			} else if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			before := snapshotFiles(t, outside)
			err := f.open(t)
			if !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), rel) {
				t.Fatalf("Open with %s a symbolic link: %v, want ErrUnsafePath naming it", rel, err)
			}
			if d := diffSnapshots(before, snapshotFiles(t, outside)); d != "" {
				t.Errorf("files behind the link changed: %s", d)
			}
		})
	}
}

// TestSealRefusesSymlinkedLogFolder: a link deeper in AWSLogs (where the
// next delivery file goes) makes the seal fail without writing through it,
// and verify reports it.
func TestSealRefusesSymlinkedLogFolder(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, nil)
	if err := tr.Record(context.Background(), callEvent(t, testBuilder(52, c), "E"), Durable()); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	acct := filepath.Join(dir, awsLogsDir, testAccount)
	if err := os.MkdirAll(acct, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(acct, "CloudTrail")); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := tr.Seal(context.Background()); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("Seal through a linked folder: %v, want ErrUnsafePath", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the seal wrote through the link: %v", entries)
	}
	if st := loadTestState(t, dir); st.LastSealedSeq != 0 || len(st.Pending) != 0 {
		t.Errorf("state after the refused seal: %+v", st)
	}
	rep := verifyTrail(t, dir, nil)
	if !hasProblem(rep, ProblemUnexpectedFile, awsLogsDir+"/"+testAccount+"/CloudTrail") {
		t.Errorf("verify does not report the link:\n%s", rep)
	}
}

// TestVerifyAndReadRefuseUnsafePaths: verify reports a path the state or a
// digest names outside the trail without following it; Read refuses it.
func TestVerifyAndReadRefuseUnsafePaths(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "audit")
	f := crashedTrail(t, dir, 2, 0, nil)
	head := makeLegacy(t, dir, f.head)
	// A genuine-looking delivery file outside the trail.
	writeGzip(t, filepath.Join(base, "outside.json.gz"), []byte(`{"Records":[]}`))
	editStateJSON(t, dir, func(m map[string]any) {
		m["pending"] = []map[string]any{{"path": "../outside.json.gz", "hashValue": strings.Repeat("0", 64)}}
	})
	rep := verifyTrail(t, dir, head)
	if rep.Intact || !hasProblem(rep, ProblemUnsafePath, "../outside.json.gz") {
		t.Fatalf("verify does not report the unsafe pending path:\n%s", rep)
	}
	if hasProblem(rep, ProblemLogFileModified, "../outside.json.gz") || hasProblem(rep, ProblemLogFileMissing, "../outside.json.gz") {
		t.Errorf("verify followed the path:\n%s", rep)
	}
	var readErr error
	for _, err := range Read(context.Background(), dir, ReadOptions{}) {
		if err != nil {
			readErr = err
			break
		}
	}
	if !errors.Is(readErr, ErrUnsafePath) {
		t.Errorf("Read: %v, want ErrUnsafePath", readErr)
	}
}

// FuzzCheckShape: whatever a state file says, an accepted path is clean,
// relative, and inside one of the trail's own folders.
func FuzzCheckShape(f *testing.F) {
	for _, s := range []string{
		LogFilePath(testAccount, testRegion, t0, "ABCDEFGHIJKLMNOP"), DigestFilePath(testAccount, testRegion, "keyless", t0),
		indexPathFor(LogFilePath(testAccount, testRegion, t0, "ABCDEFGHIJKLMNOP")), "journal/" + segmentName(7), "journal/tmp/w-12.tmp",
		stateFile, lockFile, "../master.key", "/etc/passwd", "AWSLogs/../../x", "index/../journal/seal-state.json.idx", "journal/tmp/../../x",
		"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/04/16/123456789012_CloudTrail-Digest_us-east-1_a/../../b_us-east-1_20250416T024656Z.json.gz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		const all = shapeLog | shapeDigest | shapeIndex | shapeSegment | shapeTemp | shapeState | shapeLock
		if checkShape(rel, all) != nil {
			return
		}
		if !filepath.IsLocal(rel) || strings.Contains(rel, "..") || strings.ContainsAny(rel, "\\\x00") || filepath.Clean(rel) != rel {
			t.Fatalf("accepted %q", rel)
		}
		top, _, _ := strings.Cut(rel, "/")
		if top != awsLogsDir && top != indexDir && top != journalDir {
			t.Fatalf("accepted %q outside the trail's folders", rel)
		}
	})
}

// ---- item 7: the trail cannot be rolled back by editing the head store

// rollbackFixture is a closed trail with several digests, the heads saved
// along the way, and the seal state as it was after each digest.
type rollbackFixture struct {
	dir    string
	heads  []Head
	states map[uint64][]byte // seal state file by head Seq current when copied
	final  *Head
}

func buildRollbackFixture(t *testing.T) *rollbackFixture {
	t.Helper()
	dir := t.TempDir()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, nil)
	b := testBuilder(53, c)
	fx := &rollbackFixture{dir: dir, states: map[uint64][]byte{}}
	for round := range 3 {
		for i := range 4 {
			if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprintf("R%dE%d", round, i)), Durable()); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(61 * time.Minute)
		if err := tr.Seal(context.Background()); err != nil { // a digest for the previous hour
			t.Fatal(err)
		}
		c.Advance(time.Minute)
		if err := tr.Seal(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, err := os.ReadFile(filepath.Join(dir, stateFile))
		if err != nil {
			t.Fatal(err)
		}
		fx.states[hs.get().Seq] = st
	}
	c.Advance(time.Minute)
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	fx.heads = slices.Clone(hs.all)
	fx.final = hs.get()
	if rep := verifyTrail(t, dir, fx.final); !rep.Intact || rep.Digests < 3 {
		t.Fatalf("fixture:\n%s", rep)
	}
	return fx
}

// deleteNewestDigest removes the newest digest and the delivery files it
// lists and returns the head an attacker would write: the previous digest
// (its hash and signature read from the deleted one), the rest of the head
// left as it was.
func deleteNewestDigest(t *testing.T, dir string, h Head) Head {
	t.Helper()
	d, err := ParseDigest(gunzipFile(t, filepath.Join(dir, h.DigestS3Object)))
	if err != nil {
		t.Fatal(err)
	}
	for _, lf := range d.LogFiles {
		os.Remove(filepath.Join(dir, lf.S3Object))
		os.Remove(filepath.Join(dir, indexPathFor(lf.S3Object)))
	}
	if err := os.Remove(filepath.Join(dir, h.DigestS3Object)); err != nil {
		t.Fatal(err)
	}
	end, err := parseDigestTime(d.DigestStartTime)
	if err != nil {
		t.Fatal(err)
	}
	h.DigestS3Object, h.DigestEndTime = *d.PreviousDigestS3Object, end
	h.HashValue, h.Signature = *d.PreviousDigestHashValue, *d.PreviousDigestSignature
	return h
}

// TestHeadRollbackDetected: deleting the newest digest with its files and
// rewriting the head made verify say intact before heads were
// authenticated. Now every way of rewriting the head is reported by verify
// and stops Open.
func TestHeadRollbackDetected(t *testing.T) {
	fx := buildRollbackFixture(t)
	for _, tc := range []struct {
		name     string
		tamper   func(t *testing.T, dir string) *Head
		want     ProblemKind
		wantOpen error
	}{
		{"head rewritten to the previous digest", func(t *testing.T, dir string) *Head {
			h := deleteNewestDigest(t, dir, *fx.final)
			return &h
		}, ProblemHeadMAC, ErrUnauthenticated},
		{"head rewritten in the old unauthenticated form", func(t *testing.T, dir string) *Head {
			h := deleteNewestDigest(t, dir, *fx.final)
			return &Head{DigestS3Object: h.DigestS3Object, DigestEndTime: h.DigestEndTime, HashValue: h.HashValue, Signature: h.Signature}
		}, ProblemHeadMAC, ErrUnauthenticated},
		{"the genuine head from before the newest digest put back", func(t *testing.T, dir string) *Head {
			// The seal state was last saved with this head current, so
			// only the state's own record of the newest digest shows it.
			prev := deleteNewestDigest(t, dir, *fx.final)
			for _, h := range slices.Backward(fx.heads) {
				if h.DigestS3Object == prev.DigestS3Object {
					return &h
				}
			}
			t.Fatal("no older head")
			return nil
		}, ProblemDigestMissing, ErrRolledBack},
		{"an older genuine head put back", func(t *testing.T, dir string) *Head {
			h := fx.heads[len(fx.heads)/2]
			return &h
		}, ProblemRolledBack, ErrRolledBack},
		{"an older genuine seal state put back", func(t *testing.T, dir string) *Head {
			for seq, st := range fx.states {
				if seq < fx.final.Seq-2 {
					if err := os.WriteFile(filepath.Join(dir, stateFile), st, 0o640); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
			return fx.final
		}, ProblemRolledBack, ErrRolledBack},
		{"head deleted", func(t *testing.T, dir string) *Head {
			return nil
		}, ProblemRolledBack, ErrRolledBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, fx.dir, dir)
			head := tc.tamper(t, dir)
			opts := VerifyOptions{PublicKeys: testPublicKeys(t), MACKey: testMACKey, Now: func() time.Time { return t0.Add(5 * time.Hour) },
				LoadHead: func(context.Context) (*Head, error) { return head, nil }}
			rep, err := Verify(context.Background(), dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Intact || !hasProblem(rep, tc.want, "") {
				t.Fatalf("want %s:\n%s", tc.want, rep)
			}
			hs := &memHead{h: head}
			_, err = Open(context.Background(), testOptions(t, dir, newClock(t0.Add(5*time.Hour)), hs))
			if !errors.Is(err, tc.wantOpen) || !strings.Contains(err.Error(), "reset-head") {
				t.Fatalf("Open: %v, want %v with what to do", err, tc.wantOpen)
			}
		})
	}
}

// TestVerifyWithoutTheKey: without the MAC key, or with another one, verify
// never says intact.
func TestVerifyWithoutTheKey(t *testing.T) {
	fx := buildRollbackFixture(t)
	for _, tc := range []struct {
		name string
		key  []byte
		want []ProblemKind
	}{
		{"no key", nil, nil},
		{"another key", bytes.Repeat([]byte{7}, MACKeySize), []ProblemKind{ProblemHeadMAC, ProblemStateMAC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Verify(context.Background(), fx.dir, VerifyOptions{PublicKeys: testPublicKeys(t), Head: fx.final, MACKey: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Intact || rep.Authenticated || rep.Unauthenticated == "" || strings.Contains(rep.String(), ": intact") {
				t.Fatalf("verify vouched for the trail:\n%s", rep)
			}
			for _, k := range tc.want {
				if !hasProblem(rep, k, "") {
					t.Errorf("missing %s:\n%s", k, rep)
				}
			}
			if tc.want == nil && len(rep.Problems) != 0 {
				t.Errorf("problems without a key:\n%s", rep)
			}
		})
	}
}

// TestHeadVouchesForDigestKeys: a digest signed with a key the
// authenticated head does not list is reported.
func TestHeadVouchesForDigestKeys(t *testing.T) {
	fx := buildRollbackFixture(t)
	h := *fx.final
	h.Keys = nil
	var err error
	if h.MAC, err = headMAC(testMACKey, h); err != nil {
		t.Fatal(err)
	}
	rep := verifyTrail(t, fx.dir, &h)
	if rep.Intact || !hasProblem(rep, ProblemDigestKeyUntrusted, h.DigestS3Object) {
		t.Fatalf("an unlisted key is not reported:\n%s", rep)
	}
	if rep := verifyTrail(t, fx.dir, fx.final); !rep.Intact || rep.Head == nil || len(rep.Head.Keys) != 1 {
		t.Fatalf("%s", rep)
	}
}

// TestRollbackOfEverything documents what stays possible without the key:
// putting back an older head, an older seal state and deleting everything
// newer gives a consistent older trail. Verify cannot tell, but says how old
// the head is.
func TestRollbackOfEverything(t *testing.T) {
	fx := buildRollbackFixture(t)
	dir := t.TempDir()
	copyDir(t, fx.dir, dir)
	var old Head
	var state []byte
	for _, h := range fx.heads {
		if st, ok := fx.states[h.Seq]; ok {
			old, state = h, st
			break
		}
	}
	cur := *fx.final
	for cur.DigestS3Object != old.DigestS3Object {
		cur = deleteNewestDigest(t, dir, cur)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), state, 0o640); err != nil {
		t.Fatal(err)
	}
	// The files the old state awaited a digest for are kept.
	for _, p := range loadTestState(t, dir).Pending {
		for _, rel := range []string{p.Path, indexPathFor(p.Path)} {
			b, err := os.ReadFile(filepath.Join(fx.dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, rel), b, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Files sealed after the old state, not listed by a remaining digest.
	for _, p := range segments(t, dir) {
		os.Remove(p)
	}
	rep, err := Verify(context.Background(), dir, VerifyOptions{PublicKeys: testPublicKeys(t), MACKey: testMACKey, Head: &old,
		Now: func() time.Time { return old.SavedAt.Add(30 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact {
		t.Fatalf("an older consistent copy (this test documents the limit; if it now fails, update the docs):\n%s", rep)
	}
	if !slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "the head was saved 30h0m0s ago") }) {
		t.Errorf("no note on the head's age: %q", rep.Notes)
	}
}

// TestLegacyTrailAdopted: a trail written before authentication (version-1
// state, journal and head) keeps working: verify says it cannot be
// authenticated yet, Open adopts it once (and logs it), and from then on it
// verifies as authenticated, says when it was adopted, and seals its old
// journal.
func TestLegacyTrailAdopted(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, nil)
	b := testBuilder(54, c)
	var ids []string
	for i := range 6 {
		ev := callEvent(t, b, fmt.Sprint("Old", i))
		if err := tr.Record(context.Background(), ev, Durable()); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.EventID)
		if i == 2 {
			c.Advance(61 * time.Minute)
			if err := tr.Seal(context.Background()); err != nil { // a pending file
				t.Fatal(err)
			}
			c.Advance(61 * time.Minute)
			if err := tr.Seal(context.Background()); err != nil { // a digest
				t.Fatal(err)
			}
		}
	}
	tr.crash()
	legacyHead := makeLegacy(t, dir, hs)

	rep := verifyTrail(t, dir, legacyHead)
	if rep.Intact || len(rep.Problems) != 0 || !strings.Contains(rep.Unauthenticated, "written before") {
		t.Fatalf("legacy trail before adoption:\n%s", rep)
	}

	var logs bytes.Buffer
	tr = openTrail(t, dir, c, hs, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	if !strings.Contains(logs.String(), "adopting a trail written before") {
		t.Errorf("adoption not logged:\n%s", logs.String())
	}
	ev := callEvent(t, b, "New")
	if err := tr.Record(context.Background(), ev, Durable()); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, ev.EventID)
	tr.crash()
	rep = verifyTrail(t, dir, hs.get())
	if !rep.Intact || rep.Head == nil || rep.Head.AdoptedAt == nil ||
		!slices.ContainsFunc(rep.Notes, func(n string) bool { return strings.Contains(n, "adopted as found") }) {
		t.Fatalf("adopted trail:\n%s", rep)
	}

	// A second open does not adopt again; Close seals the old and the new
	// frames and signs them.
	logs.Reset()
	tr = openTrail(t, dir, c, hs, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	c.Advance(time.Minute)
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "adopting") {
		t.Errorf("adopted twice:\n%s", logs.String())
	}
	rep = verifyTrail(t, dir, hs.get())
	if !rep.Intact || rep.PendingFiles != 0 || rep.JournalEvents != 0 {
		t.Fatalf("after close:\n%s", rep)
	}
	slices.Sort(ids)
	if got := journalIDs(t, dir); !slices.Equal(got, ids) {
		t.Errorf("events = %v, want %v", got, ids)
	}

	// After adoption an unchained frame is refused: the old format is only
	// accepted for what was there.
	f := readFrames(t, dir)
	if len(f) != 0 {
		t.Fatalf("journal not empty after close: %d frames", len(f))
	}
	next := loadTestState(t, dir).LastSealedSeq + 1
	seg := filepath.Join(dir, journalDir, segmentName(next))
	if err := os.WriteFile(seg, appendFrameV1([]byte(segMagicV1), next, []byte(`{"eventID":"forged","eventTime":"2025-04-16T09:00:00Z"}`)), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), testOptions(t, dir, c, hs)); !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Open with an unchained frame after adoption: %v, want ErrChainBroken", err)
	}
}

// TestDowngradeRefused: once authenticated, a state or head put back in the
// old unauthenticated form is not adopted again.
func TestDowngradeRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, f *crashFixture)
	}{
		{"state in the old format", func(t *testing.T, f *crashFixture) {
			editStateJSON(t, f.dir, func(m map[string]any) { m["version"] = 1; delete(m, "mac") })
		}},
		{"head in the old format", func(t *testing.T, f *crashFixture) {
			f.head.h = &Head{}
		}},
		{"state and head in the old format, journal chained", func(t *testing.T, f *crashFixture) {
			editStateJSON(t, f.dir, func(m map[string]any) { m["version"] = 1; delete(m, "mac") })
			f.head.h = &Head{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := crashedTrail(t, t.TempDir(), 3, 1, nil)
			tc.edit(t, f)
			if err := f.open(t); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Open: %v, want ErrUnauthenticated", err)
			}
			rep := verifyTrail(t, f.dir, f.head.get())
			if rep.Intact || len(rep.Problems) == 0 {
				t.Fatalf("verify:\n%s", rep)
			}
		})
	}
}

// ---- item 8: a crash cannot launder unsealed events

// TestJournalLossDetected: after a crash, removing or rewriting synced
// frames up to the checkpoint stops Open and is reported by verify. Before
// the chain and the checkpoint, Open truncated nothing it could notice and
// verify said intact.
func TestJournalLossDetected(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(frames []frame) ([]frame, bool)
		wantOpen error
		want     ProblemKind
	}{
		{"frames before the checkpoint cut off", func(fs []frame) ([]frame, bool) { return fs[:4], false }, ErrJournalLost, ProblemJournalLost},
		{"whole journal deleted", func(fs []frame) ([]frame, bool) { return nil, false }, ErrJournalLost, ProblemJournalLost},
		{"event rewritten, CRC fixed", func(fs []frame) ([]frame, bool) {
			fs[2].Payload = bytes.Replace(fs[2].Payload, []byte("Call2"), []byte("Calm2"), 1)
			return fs, false
		}, ErrCorrupt, ProblemJournalChain},
		{"event rewritten, chain recomputed", func(fs []frame) ([]frame, bool) {
			fs[2].Payload = bytes.Replace(fs[2].Payload, []byte("Call2"), []byte("Calm2"), 1)
			return fs, true
		}, ErrJournalLost, ProblemJournalChain},
		{"event removed, later ones renumbered and rechained", func(fs []frame) ([]frame, bool) {
			fs = slices.Delete(fs, 1, 2)
			for i := range fs {
				fs[i].Seq = uint64(i + 1)
			}
			return fs, true
		}, ErrJournalLost, ProblemJournalChain},
		{"first events removed", func(fs []frame) ([]frame, bool) { return fs[3:], false }, ErrJournalLost, ProblemJournalGap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := crashedTrail(t, t.TempDir(), 8, 2, nil)
			if got := f.head.get().JournalSeq; got != 8 {
				t.Fatalf("checkpoint at seq %d, want 8", got)
			}
			frames, rechain := tc.edit(readFrames(t, f.dir))
			rewriteJournal(t, f.dir, frames, rechain)
			rep := verifyTrail(t, f.dir, f.head.get())
			if rep.Intact || !hasProblem(rep, tc.want, "") {
				t.Errorf("verify, want %s:\n%s", tc.want, rep)
			}
			if err := f.open(t); !errors.Is(err, tc.wantOpen) {
				t.Fatalf("Open: %v, want %v", err, tc.wantOpen)
			}
		})
	}
}

// TestJournalLossAfterCheckpoint documents the window: frames synced after
// the last checkpoint can be cut after a crash unnoticed (at most
// CheckpointInterval of events).
func TestJournalLossAfterCheckpoint(t *testing.T) {
	f := crashedTrail(t, t.TempDir(), 8, 2, nil)
	rewriteJournal(t, f.dir, readFrames(t, f.dir)[:8], false)
	if err := f.open(t); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if rep := verifyTrail(t, f.dir, f.head.get()); !rep.Intact {
		t.Fatalf("%s", rep)
	}
}

// TestJournalEditsDetected is a property test: any single edit (drop,
// duplicate, swap, rewrite, renumber; with or without recomputing the
// chain) of the frames up to the checkpoint stops Open.
func TestJournalEditsDetected(t *testing.T) {
	f := crashedTrail(t, t.TempDir(), 12, 3, nil)
	pristine := t.TempDir()
	copyDir(t, f.dir, pristine)
	orig := readFrames(t, f.dir)
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 60 {
		fs := slices.Clone(orig)
		for j := range fs {
			fs[j].Payload = bytes.Clone(fs[j].Payload)
		}
		k := rng.IntN(12) // a checkpointed frame
		var what string
		switch rng.IntN(5) {
		case 0:
			what, fs = "drop", slices.Delete(fs, k, k+1)
		case 1:
			what, fs = "duplicate", slices.Insert(fs, k, fs[k])
		case 2:
			l := (k + 1 + rng.IntN(len(fs)-1)) % len(fs)
			what = "swap"
			fs[k].Payload, fs[l].Payload = fs[l].Payload, fs[k].Payload
		case 3:
			what = "rewrite"
			fs[k].Payload[len(fs[k].Payload)/2] ^= 0x01
		case 4:
			what = "renumber"
			fs = slices.Delete(fs, k, k+1)
			for j := range fs {
				fs[j].Seq = uint64(j + 1)
			}
		}
		rechain := rng.IntN(2) == 0
		dir := t.TempDir()
		copyDir(t, pristine, dir)
		rewriteJournal(t, dir, fs, rechain)
		g := &crashFixture{dir: dir, head: &memHead{h: f.head.get()}, clock: f.clock}
		if err := g.open(t); err == nil {
			t.Errorf("edit %d (%s frame %d, rechain %v) not detected", i, what, k+1, rechain)
		}
	}
}

// TestPendingRewriteDetected: after a crash, rewriting a delivery file that
// awaits its digest and its hash in the seal state is reported, and the
// trail refuses to open (so it never signs the laundered file).
func TestPendingRewriteDetected(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, nil)
	b := testBuilder(55, c)
	for i := range 5 {
		if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i)), Durable()); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute)
	if err := tr.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.crash()
	st := loadTestState(t, dir)
	if len(st.Pending) != 1 {
		t.Fatalf("%d pending files", len(st.Pending))
	}
	p := filepath.Join(dir, st.Pending[0].Path)
	recs := readRecords(t, p)
	writeRecords(t, p, recs[1:]) // the first event laundered away
	sum := sha256.Sum256(gunzipFile(t, p))
	st.Pending[0].HashValue = fmt.Sprintf("%x", sum)
	st.Pending[0].Events--
	writeTestState(t, dir, st, false)

	rep := verifyTrail(t, dir, hs.get())
	if rep.Intact || !hasProblem(rep, ProblemStateMAC, stateFile) {
		t.Fatalf("verify:\n%s", rep)
	}
	_, err := Open(context.Background(), testOptions(t, dir, c, hs))
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Open: %v, want ErrUnauthenticated", err)
	}
	if n := len(findDigests(t, dir)); n != 0 {
		t.Errorf("%d digests written over the laundered file", n)
	}
}

func findDigests(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, awsLogsDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(p, "CloudTrail-Digest") && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSealRefusesBrokenChain: a closed segment rewritten while the trail
// runs (valid CRCs, chain broken) is not sealed: the seal fails and nothing
// is written.
func TestSealRefusesBrokenChain(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	tr := openTrail(t, dir, c, &memHead{}, func(o *Options) { o.MaxSegmentBytes = 1 })
	b := testBuilder(56, c)
	for i := range 3 {
		if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i)), Durable()); err != nil {
			t.Fatal(err)
		}
	}
	// Every event rolled its own segment: rewrite the second one.
	segs := segments(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	var fr []frame
	readSegment(testRoot(t, dir), journalDir+"/"+filepath.Base(segs[1]), func(f frame) error { fr = append(fr, f); return nil })
	fr[0].Payload = bytes.Replace(fr[0].Payload, []byte(`"E1"`), []byte(`"X1"`), 1)
	if err := os.WriteFile(segs[1], appendFrame([]byte(segMagic), fr[0].Seq, &fr[0].Prev, fr[0].Payload), 0o640); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	err := tr.Seal(context.Background())
	if !errors.Is(err, ErrChainBroken) {
		t.Fatalf("Seal: %v, want ErrChainBroken", err)
	}
	if st := loadTestState(t, dir); st.LastSealedSeq != 0 || len(st.Pending) != 0 {
		t.Errorf("sealed despite the broken chain: %+v", st)
	}
	tr.crash()
}

// TestCheckpointsOffTheHotPath: the head is saved once per
// CheckpointInterval while events arrive, not once per fsync, and it
// records the synced position.
func TestCheckpointsOffTheHotPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		hs := &memHead{}
		tr := openTrail(t, dir, newClock(t0), hs, func(o *Options) {
			o.Now = time.Now
			o.CheckpointInterval = time.Second
		})
		b := &Builder{AccountID: testAccount, Region: testRegion, Now: time.Now, Rand: newRand(57)}
		saves0 := hs.count()
		for i := range 50 {
			if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i)), Durable()); err != nil {
				t.Fatal(err)
			}
		}
		if hs.count() != saves0 {
			t.Errorf("%d head saves during 50 fsyncs", hs.count()-saves0)
		}
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		if h := hs.get(); hs.count() != saves0+1 || h.JournalSeq != 50 {
			t.Fatalf("after one interval: %d saves, checkpoint %d", hs.count()-saves0, h.JournalSeq)
		}
		time.Sleep(3 * time.Second) // nothing new: no save
		synctest.Wait()
		if hs.count() != saves0+1 {
			t.Errorf("%d saves while idle", hs.count()-saves0-1)
		}
		if st := tr.Stats(); st.Fsyncs < 50 {
			t.Errorf("%d fsyncs", st.Fsyncs)
		}
		tr.crash()
	})
}
