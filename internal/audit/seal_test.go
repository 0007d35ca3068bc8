package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keylessci/keyless/internal/audit/audittest"
	"github.com/keylessci/keyless/internal/testenv"
)

// buildTrail records events over several hours of (fake) time and closes
// the trail: 4 digests (two hourly, one spanning an idle gap, one final),
// 2 delivery files of 30 and 10 events. It returns the directory, the
// head and the eventIDs in record order.
func buildTrail(t testing.TB, dir string) (*Head, []string) {
	t.Helper()
	c := newClock(t0)
	head := &memHead{}
	tr := openTrail(t, dir, c, head, nil)
	b := testBuilder(11, c)
	var ids []string
	record := func(n int) {
		for i := range n {
			ev := callEvent(t, b, fmt.Sprintf("Call%02d", len(ids)))
			var opts []RecordOption
			if i%2 == 0 {
				opts = append(opts, Durable())
			}
			if err := tr.Record(context.Background(), ev, opts...); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.EventID)
			c.Advance(time.Second)
		}
	}
	seal := func() {
		if err := tr.Seal(context.Background()); err != nil {
			t.Fatalf("Seal: %v", err)
		}
	}
	record(30)
	c.Advance(5 * time.Minute)
	seal() // file 1, pending
	record(10)
	c.Advance(60 * time.Minute)
	seal() // digest 1 [t0, t0+1h) with file 1; file 2 pending
	c.Advance(3 * time.Hour)
	seal() // digest 2 [t0+1h, t0+2h) with file 2; digest 3 [t0+2h, t0+4h) empty
	c.Advance(10 * time.Minute)
	if err := tr.Close(context.Background()); err != nil { // final digest up to now
		t.Fatal(err)
	}
	return head.get(), ids
}

func TestSealLayoutAndVerify(t *testing.T) {
	dir := t.TempDir()
	head, ids := buildTrail(t, dir)

	var logs, digests []string
	filepath.Walk(filepath.Join(dir, awsLogsDir), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if strings.Contains(rel, "CloudTrail-Digest") {
				digests = append(digests, filepath.ToSlash(rel))
			} else {
				logs = append(logs, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	logRe := regexp.MustCompile(`^AWSLogs/123456789012/CloudTrail/us-east-1/2025/04/16/123456789012_CloudTrail_us-east-1_20250416T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$`)
	for _, l := range logs {
		if !logRe.MatchString(l) {
			t.Errorf("delivery file path %q does not follow the CloudTrail layout", l)
		}
		if _, err := os.Stat(filepath.Join(dir, indexPathFor(l))); err != nil {
			t.Errorf("no event index for %s: %v", l, err)
		}
	}
	wantDigests := []string{
		"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/04/16/123456789012_CloudTrail-Digest_us-east-1_keyless_us-east-1_20250416T034656Z.json.gz",
		"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/04/16/123456789012_CloudTrail-Digest_us-east-1_keyless_us-east-1_20250416T044656Z.json.gz",
		"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/04/16/123456789012_CloudTrail-Digest_us-east-1_keyless_us-east-1_20250416T064656Z.json.gz",
		"AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/04/16/123456789012_CloudTrail-Digest_us-east-1_keyless_us-east-1_20250416T070236Z.json.gz",
	}
	slices.Sort(digests)
	if d := cmp.Diff(wantDigests, digests); d != "" {
		t.Errorf("digest files (-want +got):\n%s", d)
	}
	if len(logs) != 2 {
		t.Fatalf("%d delivery files, want 2", len(logs))
	}
	if head == nil || head.DigestS3Object != wantDigests[3] {
		t.Fatalf("head = %+v, want the final digest", head)
	}

	rep := verifyTrail(t, dir, head)
	if !rep.Intact {
		t.Fatalf("fresh trail does not verify:\n%s", rep)
	}
	if rep.Digests != 4 || rep.SignedFiles != 2 || rep.SignedEvents != 40 || rep.PendingFiles != 0 || rep.JournalEvents != 0 {
		t.Errorf("report counts: %+v", rep)
	}

	var got []string
	for _, e := range readAll(t, dir) {
		got = append(got, e.Event.EventID)
	}
	if d := cmp.Diff(ids, got); d != "" {
		t.Errorf("events read back in a different order (-recorded +read):\n%s", d)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, journalDir)); len(entries) != 2 { // seal-state.json, LOCK (tmp is a dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"LOCK", "seal-state.json", "tmp"}) {
			t.Errorf("journal dir after Close: %v (segments should be retired)", names)
		}
	}
}

// TestDigestChainByAWSAlgorithm re-checks the chain with the algorithm AWS
// documents, written out here independently of Verify: hash of the
// uncompressed digest, the string to sign, SHA256withRSA, previous* links,
// log file hashes.
func TestDigestChainByAWSAlgorithm(t *testing.T) {
	dir := t.TempDir()
	head, _ := buildTrail(t, dir)
	key := &loadKey(t, "test-digest-key.pem").PublicKey
	obj, sig := head.DigestS3Object, head.Signature
	n := 0
	for obj != "" {
		raw := gunzipFile(t, filepath.Join(dir, obj))
		var d map[string]any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"awsAccountId", "digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object",
			"digestPublicKeyFingerprint", "digestSignatureAlgorithm", "newestEventTime", "oldestEventTime",
			"previousDigestS3Bucket", "previousDigestS3Object", "previousDigestHashValue", "previousDigestHashAlgorithm",
			"previousDigestSignature", "logFiles"} {
			if _, ok := d[k]; !ok {
				t.Errorf("%s: field %s missing", obj, k)
			}
		}
		if len(d) != 15 {
			t.Errorf("%s: %d fields, want CloudTrail's 15", obj, len(d))
		}
		sum := sha256.Sum256(raw)
		prev := "null"
		if p, ok := d["previousDigestSignature"].(string); ok {
			prev = p
		}
		toSign := fmt.Sprintf("%s\n%s/%s\n%s\n%s", d["digestEndTime"], d["digestS3Bucket"], d["digestS3Object"], hex.EncodeToString(sum[:]), prev)
		h := sha256.Sum256([]byte(toSign))
		sb, _ := hex.DecodeString(sig)
		if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, h[:], sb); err != nil {
			t.Errorf("%s: signature: %v", obj, err)
		}
		if d["digestS3Object"] != obj || d["digestSignatureAlgorithm"] != "SHA256withRSA" || d["digestPublicKeyFingerprint"] != Fingerprint(key) {
			t.Errorf("%s: header fields %v", obj, d)
		}
		if fp, _ := d["digestPublicKeyFingerprint"].(string); len(fp) != 32 {
			t.Errorf("fingerprint %q is not 32 hex characters", fp)
		}
		for _, lf := range d["logFiles"].([]any) {
			f := lf.(map[string]any)
			ls := sha256.Sum256(gunzipFile(t, filepath.Join(dir, f["s3Object"].(string))))
			if f["hashValue"] != hex.EncodeToString(ls[:]) || f["hashAlgorithm"] != "SHA-256" {
				t.Errorf("log file %s: hash entry %v", f["s3Object"], f)
			}
		}
		n++
		if p, ok := d["previousDigestS3Object"].(string); ok {
			if d["previousDigestHashAlgorithm"] != "SHA-256" {
				t.Errorf("previousDigestHashAlgorithm = %v", d["previousDigestHashAlgorithm"])
			}
			prevRaw := gunzipFile(t, filepath.Join(dir, p))
			ps := sha256.Sum256(prevRaw)
			if d["previousDigestHashValue"] != hex.EncodeToString(ps[:]) {
				t.Errorf("%s: previousDigestHashValue does not match %s", obj, p)
			}
			obj, sig = p, prev
		} else {
			for _, k := range []string{"previousDigestS3Bucket", "previousDigestHashValue", "previousDigestHashAlgorithm", "previousDigestSignature"} {
				if d[k] != nil {
					t.Errorf("starting digest has %s = %v, want null", k, d[k])
				}
			}
			obj = ""
		}
	}
	if n != 4 {
		t.Errorf("walked %d digests, want 4", n)
	}
}

// TestDigestsValidateWithAWSCLI feeds keyless's digests to the AWS CLI's own
// validator class (awscli.customizations.cloudtrail.validation), offline.
func TestDigestsValidateWithAWSCLI(t *testing.T) {
	// The module is imported by the script itself (importing awscli takes
	// seconds; RequirePython would import it a second time).
	py := testenv.RequirePython(t)
	dir := t.TempDir()
	head, _ := buildTrail(t, dir)
	// A tampered copy must be rejected by the same validator.
	bad := t.TempDir()
	copyDir(t, dir, bad)
	raw := gunzipFile(t, filepath.Join(bad, head.DigestS3Object))
	raw = bytes.Replace(raw, []byte(`"digestStartTime":"2025-04-16T06`), []byte(`"digestStartTime":"2025-04-16T05`), 1)
	writeGzip(t, filepath.Join(bad, head.DigestS3Object), raw)

	pub := base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PublicKey(&loadKey(t, "test-digest-key.pem").PublicKey))
	script := `
import gzip, hashlib, json, sys
try:
    from awscli.customizations.cloudtrail.validation import Sha256RSADigestValidator, DigestError
except ImportError as e:
    print("NO_AWSCLI", e)
    sys.exit(0)
key, obj0, sig0 = sys.argv[1:4]
for root in sys.argv[4:]:
    v = Sha256RSADigestValidator()
    obj, sig, n, files = obj0, sig0, 0, 0
    try:
        while obj:
            raw = gzip.open(root + "/" + obj).read()
            d = json.loads(raw)
            d["_signature"] = sig
            v.validate(d["digestS3Bucket"], obj, key, d, raw)
            for f in d["logFiles"]:
                assert hashlib.sha256(gzip.open(root + "/" + f["s3Object"]).read()).hexdigest() == f["hashValue"], f
                files += 1
            n += 1
            obj, sig = d["previousDigestS3Object"], d["previousDigestSignature"]
        print("valid", n, files)
    except DigestError as e:
        print("invalid")
`
	out, err := exec.Command(py, "-c", script, pub, head.DigestS3Object, head.Signature, dir, bad).CombinedOutput()
	if err != nil {
		t.Fatalf("running the AWS CLI validator: %v\n%s", err, out)
	}
	if strings.HasPrefix(string(out), "NO_AWSCLI") {
		testenv.Missing(t, "python module awscli", string(out))
	}
	if got := strings.TrimSpace(string(out)); got != "valid 4 2\ninvalid" {
		t.Errorf("AWS CLI validator said %q, want the intact trail valid (4 digests, 2 files) and the tampered one invalid", got)
	}
}

func gunzipFile(t testing.TB, p string) []byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeGzip writes data gzipped exactly as keyless does (so only the content
// differs from a genuine file).
func writeGzip(t testing.TB, p string, data []byte) {
	t.Helper()
	gz, err := gzipBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, gz, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDigestGolden pins the exact bytes of a digest (fixed key, clock and
// randomness; PKCS#1 v1.5 signatures are deterministic).
func TestDigestGolden(t *testing.T) {
	dir := t.TempDir()
	head, _ := buildTrail(t, dir)
	st, err := loadState(testRoot(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	// The second digest: it has a predecessor and a log file.
	raw := gunzipFile(t, filepath.Join(dir, "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2025/04/16/123456789012_CloudTrail-Digest_us-east-1_keyless_us-east-1_20250416T044656Z.json.gz"))
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteString("\n")
	fmt.Fprintf(&pretty, "head signature: %s\nchain start: %s\n", head.Signature, st.ChainStart.Format(time.RFC3339))
	path := filepath.Join("testdata", "golden", "digest.txt")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(string(want), pretty.String()); d != "" {
		t.Errorf("digest golden mismatch (-want +got):\n%s", d)
	}
}

func TestStringToSign(t *testing.T) {
	prev := "ab12"
	d := &Digest{DigestEndTime: "2015-08-17T15:01:31Z", DigestS3Bucket: "b", DigestS3Object: "AWSLogs/1/x.json.gz"}
	if got, want := StringToSign(d, "ff"), "2015-08-17T15:01:31Z\nb/AWSLogs/1/x.json.gz\nff\nnull"; got != want {
		t.Errorf("starting digest: %q, want %q", got, want)
	}
	d.PreviousDigestSignature = &prev
	if got, want := StringToSign(d, "ff"), "2015-08-17T15:01:31Z\nb/AWSLogs/1/x.json.gz\nff\nab12"; got != want {
		t.Errorf("chained digest: %q, want %q", got, want)
	}
}

func TestNewSigningKey(t *testing.T) {
	k := loadKey(t, "test-digest-key.pem")
	sk, err := NewSigningKey(k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(&k.PublicKey))
	if sk.Fingerprint != hex.EncodeToString(sum[:16]) || len(sk.Fingerprint) != 32 {
		t.Errorf("fingerprint %q", sk.Fingerprint)
	}
	small, err := rsa.GenerateKey(newRand(1), 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigningKey(small); err == nil {
		t.Error("1024-bit key accepted")
	}
}

// TestEmptyHourDigests: an idle trail still gets a digest every hour, each
// starting where the previous ended, and a long downtime is covered by one
// digest spanning whole hours.
func TestEmptyHourDigests(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	head := &memHead{}
	tr := openTrail(t, dir, c, head, nil)
	var ends []string
	for range 3 {
		c.Advance(time.Hour + time.Minute)
		if err := tr.Seal(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	tr.crash()
	c.Advance(30 * time.Hour) // down for a day
	tr2 := openTrail(t, dir, c, head, nil)
	if err := tr2.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	for cur := head.get().DigestS3Object; cur != ""; {
		d, err := ParseDigest(gunzipFile(t, filepath.Join(dir, cur)))
		if err != nil {
			t.Fatal(err)
		}
		if len(d.LogFiles) != 0 || d.NewestEventTime != nil || d.OldestEventTime != nil {
			t.Errorf("%s: empty hour digest has files or event times", cur)
		}
		ends = append(ends, d.DigestStartTime+"/"+d.DigestEndTime)
		cur = ""
		if d.PreviousDigestS3Object != nil {
			cur = *d.PreviousDigestS3Object
		}
	}
	slices.Reverse(ends)
	want := []string{
		"2025-04-16T02:46:56Z/2025-04-16T03:46:56Z",
		"2025-04-16T03:46:56Z/2025-04-16T04:46:56Z",
		"2025-04-16T04:46:56Z/2025-04-16T05:46:56Z",
		"2025-04-16T05:46:56Z/2025-04-17T11:46:56Z", // the downtime, whole hours
	}
	if d := cmp.Diff(want, ends); d != "" {
		t.Errorf("digest ranges (-want +got):\n%s", d)
	}
	tr2.crash()
	if rep := verifyTrail(t, dir, head.get()); !rep.Intact {
		t.Errorf("idle trail does not verify:\n%s", rep)
	}
}

// TestBackgroundSealer: with a seal interval the trail seals and writes
// hourly digests on its own (fake time via synctest).
func TestBackgroundSealer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		head := &memHead{}
		tr := openTrail(t, dir, newClock(t0), head, func(o *Options) {
			o.Now = time.Now
			o.SealInterval = 5 * time.Minute
		})
		b := &Builder{AccountID: testAccount, Region: testRegion, Now: time.Now, Rand: newRand(12)}
		for i := range 3 {
			if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i)), Durable()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5*time.Minute + time.Second)
		synctest.Wait()
		if st := tr.Stats(); st.SealedEvents != 3 || st.SealedFiles != 1 || st.Digests != 0 {
			t.Fatalf("after one interval: %+v", st)
		}
		time.Sleep(60 * time.Minute)
		synctest.Wait()
		if st := tr.Stats(); st.Digests != 1 || head.get() == nil {
			t.Fatalf("after an hour: %+v, head %v", st, head.get())
		}
		tr.crash()
		rep, err := Verify(context.Background(), dir, VerifyOptions{PublicKeys: testPublicKeys(t), Head: head.get(), MACKey: testMACKey})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Intact || rep.SignedEvents != 3 {
			t.Fatalf("%s", rep)
		}
	})
}

// TestSealSplitsLargeSeals: MaxEventsPerFile bounds delivery file size.
func TestSealSplitsLargeSeals(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	head := &memHead{}
	tr := openTrail(t, dir, c, head, func(o *Options) { o.MaxEventsPerFile = 7 })
	b := testBuilder(13, c)
	for i := range 20 {
		if err := tr.Record(context.Background(), callEvent(t, b, fmt.Sprint("E", i))); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Minute)
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := verifyTrail(t, dir, head.get())
	if !rep.Intact || rep.SignedFiles != 3 || rep.SignedEvents != 20 {
		t.Fatalf("%s", rep)
	}
}

// TestHeadStoreAheadRefusesOpen: a trail whose seal state is older than the
// head store (state restored from an old backup) must not fork the chain.
func TestHeadStoreAheadRefusesOpen(t *testing.T) {
	dir := t.TempDir()
	head, _ := buildTrail(t, dir)
	if err := os.Remove(filepath.Join(dir, stateFile)); err != nil {
		t.Fatal(err)
	}
	hs := &memHead{h: head}
	_, err := Open(context.Background(), testOptions(t, dir, newClock(t0.Add(10*time.Hour)), hs))
	if err == nil || !strings.Contains(err.Error(), "ahead") {
		t.Fatalf("Open with a stale state: %v, want ErrHeadAhead", err)
	}
}

func TestFileHeadStore(t *testing.T) {
	s := FileHeadStore{Path: filepath.Join(t.TempDir(), "sub", "head.json")}
	if _, err := s.Load(context.Background()); err != ErrNoHead {
		t.Fatalf("Load on empty store: %v", err)
	}
	h := Head{DigestS3Object: "AWSLogs/x.json.gz", DigestEndTime: t0, HashValue: "ab", Signature: "cd"}
	if err := s.Save(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(context.Background())
	if err != nil || !sameHead(got, h) {
		t.Fatalf("Load = %+v, %v", got, err)
	}
}

// TestNoSecretsOnDisk records events built from inputs that carry an ID
// token, a session token and a secret key, seals and signs them, and scans
// every file of the trail (inside the gzip files too) for those secrets.
func TestNoSecretsOnDisk(t *testing.T) {
	dir := t.TempDir()
	c := newClock(t0)
	hs := &memHead{}
	tr := openTrail(t, dir, c, hs, nil)
	lines, err := os.Create(filepath.Join(dir, "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer lines.Close()
	rec := Fanout(tr, NewJSONLines(lines))
	for _, g := range goldenEvents(t) {
		if err := rec.Record(context.Background(), g.ev, Durable()); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(2 * time.Hour)
	if err := tr.Seal(context.Background()); err != nil { // sealed and, with the final digest below, signed
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	audittest.AssertNoSecrets(t, dir, testIDToken, testSessionToken, testSecretKey)
	// The scanner does look inside the sealed files: the token hashes are there.
	leaks, err := audittest.ScanSecrets(dir, []string{SHA256Hex(testIDToken)})
	if err != nil {
		t.Fatal(err)
	}
	inGzip := 0
	for _, l := range leaks {
		if l.InGzip {
			inGzip++
		}
	}
	if inGzip == 0 {
		t.Error("control: the ID token hash was not found inside any delivery file")
	}
}

// TestShortRunSignsEverything: a trail opened and closed within one second
// (a demo, a short test) still ends with every delivery file under a
// signed digest.
func TestShortRunSignsEverything(t *testing.T) {
	c := newClock(t0.Add(250 * time.Millisecond))
	head := &memHead{}
	dir := t.TempDir()
	tr := openTrail(t, dir, c, head, nil)
	b := testBuilder(3, c)
	if err := tr.Record(context.Background(), callEvent(t, b, "GetCallerIdentity"), Durable()); err != nil {
		t.Fatal(err)
	}
	c.Advance(300 * time.Millisecond) // still the same second
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep := verifyTrail(t, dir, head.get())
	if !rep.Intact || rep.Digests != 1 || rep.SignedEvents != 1 || rep.PendingFiles != 0 {
		t.Fatalf("report = %+v", rep)
	}
	// Reopening continues the chain.
	tr = openTrail(t, dir, c, head, nil)
	c.Advance(2 * time.Second)
	if err := tr.Record(context.Background(), callEvent(t, b, "GetCallerIdentity"), Durable()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep := verifyTrail(t, dir, head.get()); !rep.Intact || rep.Digests != 2 || rep.SignedEvents != 2 {
		t.Fatalf("after reopen: %+v", rep)
	}
}
