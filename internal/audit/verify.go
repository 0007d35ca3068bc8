package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ProblemKind names what is wrong with a trail.
type ProblemKind string

// Problems Verify reports.
const (
	ProblemLogFileMissing      ProblemKind = "log-file-missing"          // referenced by a digest (or pending) but absent
	ProblemLogFileModified     ProblemKind = "log-file-modified"         // SHA-256 differs from the one recorded
	ProblemLogFileUnreadable   ProblemKind = "log-file-unreadable"       // not gzip, or not {"Records":[...]}
	ProblemLogFileUnreferenced ProblemKind = "log-file-unreferenced"     // in the log folder, not in any digest nor pending: injected
	ProblemLogFileReferenced2  ProblemKind = "log-file-referenced-twice" // listed by two digests
	ProblemEventModified       ProblemKind = "event-modified"            // differs from the sealed record with that eventID
	ProblemEventInserted       ProblemKind = "event-inserted"            // not in the file when it was sealed
	ProblemEventRemoved        ProblemKind = "event-removed"             // sealed in the file, now absent
	ProblemEventReordered      ProblemKind = "event-reordered"           // moved relative to the other records
	ProblemEventDuplicate      ProblemKind = "event-duplicate"           // eventID seen earlier in the trail
	ProblemDigestMissing       ProblemKind = "digest-missing"            // referenced by the head or a newer digest, absent
	ProblemDigestModified      ProblemKind = "digest-modified"           // hash differs from the one its successor (or the head) recorded
	ProblemDigestInvalid       ProblemKind = "digest-invalid"            // not a well-formed digest
	ProblemDigestMoved         ProblemKind = "digest-moved"              // digestS3Object is not where it was found
	ProblemDigestSignature     ProblemKind = "digest-signature-invalid"  // signature does not verify
	ProblemDigestKeyUnknown    ProblemKind = "digest-key-unknown"        // no public key with that fingerprint
	ProblemDigestGap           ProblemKind = "digest-gap"                // time ranges of consecutive digests do not meet
	ProblemDigestUnchained     ProblemKind = "digest-unchained"          // on disk but not reachable from the head
	ProblemDigestUnanchored    ProblemKind = "digest-unanchored"         // newer than the head (forged, or a crash before the head was saved)
	ProblemUnexpectedFile      ProblemKind = "unexpected-file"           // not a delivery or digest file name
	ProblemJournalCorrupt      ProblemKind = "journal-corrupt"           // damaged frame that is not a torn tail
	ProblemJournalGap          ProblemKind = "journal-gap"               // journal sequence numbers missing
	ProblemStateCorrupt        ProblemKind = "seal-state-corrupt"
)

// Problem is one finding: what is wrong and where.
type Problem struct {
	Kind       ProblemKind `json:"kind"`
	Path       string      `json:"path,omitempty"`       // relative to the trail directory
	EventIndex *int        `json:"eventIndex,omitempty"` // position of the record in the file (0-based)
	EventID    string      `json:"eventId,omitempty"`
	Detail     string      `json:"detail"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(string(p.Kind))
	if p.Path != "" {
		b.WriteString(" " + p.Path)
	}
	if p.EventIndex != nil {
		fmt.Fprintf(&b, " record %d", *p.EventIndex)
	}
	if p.EventID != "" {
		b.WriteString(" eventID " + p.EventID)
	}
	b.WriteString(": " + p.Detail)
	return b.String()
}

// Report is the outcome of Verify, printable as text (String) or JSON.
type Report struct {
	Dir      string    `json:"dir"`
	Intact   bool      `json:"intact"`
	Problems []Problem `json:"problems"`
	Notes    []string  `json:"notes,omitempty"`

	Digests      int        `json:"digests"`      // digests verified in the chain
	ChainStart   *time.Time `json:"chainStart"`   // digestStartTime of the oldest digest
	ChainEnd     *time.Time `json:"chainEnd"`     // digestEndTime of the newest digest
	SignedFiles  int        `json:"signedFiles"`  // delivery files covered by digests
	SignedEvents int        `json:"signedEvents"` // events in those files
	// The unsealed window: delivery files awaiting a digest and journal
	// events not yet sealed (integrity-checked, not signed).
	PendingFiles  int `json:"pendingFiles"`
	PendingEvents int `json:"pendingEvents"`
	JournalEvents int `json:"journalEvents"`
}

// String renders the report for people.
func (r *Report) String() string {
	var b strings.Builder
	if r.Intact {
		fmt.Fprintf(&b, "audit trail %s: intact\n", r.Dir)
	} else {
		fmt.Fprintf(&b, "audit trail %s: NOT INTACT, %d problem(s)\n", r.Dir, len(r.Problems))
		for _, p := range r.Problems {
			b.WriteString("  " + p.String() + "\n")
		}
	}
	fmt.Fprintf(&b, "signed: %d digest(s)", r.Digests)
	if r.ChainStart != nil && r.ChainEnd != nil {
		fmt.Fprintf(&b, " from %s to %s", r.ChainStart.Format(time.RFC3339), r.ChainEnd.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, ", %d delivery file(s), %d event(s)\n", r.SignedFiles, r.SignedEvents)
	fmt.Fprintf(&b, "unsealed window: %d delivery file(s) with %d event(s) awaiting a digest, %d journal event(s)\n",
		r.PendingFiles, r.PendingEvents, r.JournalEvents)
	for _, n := range r.Notes {
		b.WriteString("note: " + n + "\n")
	}
	return b.String()
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// PublicKeys are the digest public keys by fingerprint (see
	// Fingerprint). Include retired keys: old digests stay signed by them.
	PublicKeys map[string]*rsa.PublicKey
	// Head is the newest digest and its signature, loaded from outside the
	// trail (the HeadStore). Without it Verify anchors on the trail's own
	// seal state and cannot detect deletion of the newest digests.
	Head *Head
	// Now is the time of verification; pending files older than
	// two hours are then noted as overdue. Default time.Now.
	Now func() time.Time
}

// Verify checks a trail directory: the digest chain from the head back to
// its start (hashes, signatures, locations, contiguity), every delivery
// file against the digest (or the seal state, for the unsealed window),
// every file in the log folder accounted for, eventIDs unique, and the
// journal's frames and sequence numbers. Tampering is reported in the
// Report; the error is for failures to read the directory at all.
func Verify(ctx context.Context, dir string, opts VerifyOptions) (*Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	v := &verifier{
		dir:        dir,
		opts:       opts,
		rep:        &Report{Dir: dir, Problems: []Problem{}},
		logs:       map[string]bool{},
		digests:    map[string]parsedName{},
		referenced: map[string]string{},
		eventIDs:   map[string]string{},
	}
	if err := v.walk(ctx); err != nil {
		return nil, err
	}
	st, err := loadState(dir)
	if err != nil {
		if !errors.Is(err, ErrBadState) {
			return nil, err
		}
		v.problem(Problem{Kind: ProblemStateCorrupt, Path: stateFile, Detail: err.Error()})
	}
	v.chain(st)
	if err := v.logFiles(ctx, st); err != nil {
		return nil, err
	}
	if err := v.journal(st); err != nil {
		return nil, err
	}
	v.rep.Intact = len(v.rep.Problems) == 0
	return v.rep, nil
}

type verifier struct {
	dir  string
	opts VerifyOptions
	rep  *Report

	logs       map[string]bool       // delivery files on disk
	digests    map[string]parsedName // digest files on disk
	referenced map[string]string     // delivery file -> digest listing it
	signed     []DigestLogFile       // in chain order, oldest digest first
	eventIDs   map[string]string     // eventID -> where first seen
}

func (v *verifier) problem(p Problem) { v.rep.Problems = append(v.rep.Problems, p) }
func (v *verifier) note(format string, args ...any) {
	v.rep.Notes = append(v.rep.Notes, fmt.Sprintf(format, args...))
}

// walk lists the log folder, classifying every file.
func (v *verifier) walk(ctx context.Context) error {
	root := filepath.Join(v.dir, awsLogsDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(v.dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		pn := parseTrailPath(rel)
		switch {
		case !d.Type().IsRegular():
			v.problem(Problem{Kind: ProblemUnexpectedFile, Path: rel, Detail: "not a regular file"})
		case pn.Kind == kindLog:
			v.logs[rel] = true
		case pn.Kind == kindDigest:
			v.digests[rel] = pn
		default:
			v.problem(Problem{Kind: ProblemUnexpectedFile, Path: rel, Detail: "not a CloudTrail delivery or digest file name"})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: verify: list trail: %w", err)
	}
	return nil
}

// chain verifies the digest chain from the anchor back to its start.
func (v *verifier) chain(st *sealState) {
	anchor := v.opts.Head
	if anchor == nil && st != nil && st.LastDigest != nil {
		anchor = st.LastDigest
		v.note("no head supplied: anchored on the trail's own seal state, so deleting the newest digests and the state together would go unnoticed")
	}
	if anchor == nil && st != nil && st.LastDigest == nil && len(v.digests) > 0 {
		// The trail's state knows of no digest: every digest on disk is
		// unanchored (reported below).
		anchor = &Head{DigestEndTime: st.ChainStart}
	} else if anchor == nil && len(v.digests) > 0 {
		newest := ""
		for p, pn := range v.digests {
			if newest == "" || pn.Time.After(v.digests[newest].Time) || pn.Time.Equal(v.digests[newest].Time) && p > newest {
				newest = p
			}
		}
		anchor = &Head{DigestS3Object: newest, DigestEndTime: v.digests[newest].Time}
		v.note("no head supplied and no seal state: the newest digest's signature cannot be checked")
	}
	visited := map[string]bool{}
	var newer *Digest // the successor of the digest being checked
	var chain []*Digest
	if anchor != nil && anchor.DigestS3Object != "" {
		cur, wantHash, sig, by := anchor.DigestS3Object, anchor.HashValue, anchor.Signature, "the head"
		for cur != "" {
			if visited[cur] {
				v.problem(Problem{Kind: ProblemDigestInvalid, Path: cur, Detail: "digest chain loops"})
				break
			}
			visited[cur] = true
			raw, err := readGzipFile(filepath.Join(v.dir, filepath.FromSlash(cur)))
			if err != nil {
				kind := ProblemDigestInvalid
				if errors.Is(err, fs.ErrNotExist) {
					kind = ProblemDigestMissing
				}
				v.problem(Problem{Kind: kind, Path: cur, Detail: fmt.Sprintf("referenced by %s: %v", by, err)})
				// Resume from the next older digest on disk, as the AWS CLI
				// does across a gap; its signature was in the lost file.
				cur = v.olderDigest(cur, visited)
				wantHash, sig, newer, by = "", "", nil, "nothing (resumed after a missing digest)"
				if cur != "" {
					v.note("signature of %s cannot be checked: the digest that carried it is missing", cur)
				}
				continue
			}
			sum := sha256.Sum256(raw)
			sumHex := hex.EncodeToString(sum[:])
			if wantHash != "" && sumHex != wantHash {
				v.problem(Problem{Kind: ProblemDigestModified, Path: cur, Detail: fmt.Sprintf("SHA-256 %s, %s recorded %s", sumHex, by, wantHash)})
			}
			d, err := ParseDigest(raw)
			if err != nil {
				v.problem(Problem{Kind: ProblemDigestInvalid, Path: cur, Detail: err.Error()})
				break
			}
			if d.DigestS3Object != cur {
				v.problem(Problem{Kind: ProblemDigestMoved, Path: cur, Detail: "has been moved from its original location " + d.DigestS3Object})
			}
			switch key := v.opts.PublicKeys[d.DigestPublicKeyFingerprint]; {
			case key == nil:
				v.problem(Problem{Kind: ProblemDigestKeyUnknown, Path: cur, Detail: "public key not found for fingerprint " + d.DigestPublicKeyFingerprint})
			case sig == "":
			default:
				if err := VerifyDigestSignature(key, StringToSign(d, sumHex), sig); err != nil {
					v.problem(Problem{Kind: ProblemDigestSignature, Path: cur, Detail: fmt.Sprintf("signature from %s: %v", by, err)})
				}
			}
			if newer != nil && newer.DigestStartTime != d.DigestEndTime {
				v.problem(Problem{Kind: ProblemDigestGap, Path: newer.DigestS3Object,
					Detail: fmt.Sprintf("starts at %s but the previous digest ends at %s", newer.DigestStartTime, d.DigestEndTime)})
			}
			chain = append(chain, d)
			if d.PreviousDigestS3Object == nil {
				break
			}
			cur, wantHash, sig, newer, by = *d.PreviousDigestS3Object, *d.PreviousDigestHashValue, *d.PreviousDigestSignature, d, cur
		}
	}
	if len(chain) > 0 {
		oldest := chain[len(chain)-1]
		if st != nil && oldest.PreviousDigestS3Object == nil && oldest.DigestStartTime != formatDigestTime(st.ChainStart) {
			v.problem(Problem{Kind: ProblemDigestGap, Path: oldest.DigestS3Object,
				Detail: fmt.Sprintf("the chain starts at %s, the trail at %s", oldest.DigestStartTime, formatDigestTime(st.ChainStart))})
		}
		s, _ := parseDigestTime(oldest.DigestStartTime)
		e, _ := parseDigestTime(chain[0].DigestEndTime)
		v.rep.ChainStart, v.rep.ChainEnd = &s, &e
	}
	v.rep.Digests = len(chain)
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		for _, f := range d.LogFiles {
			if prev, dup := v.referenced[f.S3Object]; dup {
				v.problem(Problem{Kind: ProblemLogFileReferenced2, Path: f.S3Object, Detail: "listed by " + prev + " and " + d.DigestS3Object})
				continue
			}
			v.referenced[f.S3Object] = d.DigestS3Object
			v.signed = append(v.signed, f)
		}
	}
	var anchorTime time.Time
	if anchor != nil {
		anchorTime = anchor.DigestEndTime
	}
	var rest []string
	for p := range v.digests {
		if !visited[p] {
			rest = append(rest, p)
		}
	}
	slices.Sort(rest)
	for _, p := range rest {
		if v.digests[p].Time.After(anchorTime) {
			detail := "the trail's seal state records no digest"
			if anchor.DigestS3Object != "" {
				detail = "newer than the head " + anchor.DigestS3Object
			}
			v.problem(Problem{Kind: ProblemDigestUnanchored, Path: p, Detail: detail})
		} else {
			v.problem(Problem{Kind: ProblemDigestUnchained, Path: p, Detail: "not reachable from the head through previousDigestS3Object"})
		}
	}
}

// olderDigest returns the newest unvisited digest on disk older than the
// (missing) digest at path, or "".
func (v *verifier) olderDigest(missing string, visited map[string]bool) string {
	pn := parseTrailPath(missing)
	best := ""
	for p, d := range v.digests {
		if visited[p] || pn.Kind == kindDigest && !d.Time.Before(pn.Time) {
			continue
		}
		if best == "" || d.Time.After(v.digests[best].Time) {
			best = p
		}
	}
	return best
}

// logFiles checks every delivery file: signed ones against their digest,
// pending ones against the seal state, and flags the rest.
func (v *verifier) logFiles(ctx context.Context, st *sealState) error {
	for _, f := range v.signed {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, ok := v.checkLogFile(f.S3Object, f.HashValue, "digest "+v.referenced[f.S3Object])
		if ok {
			v.rep.SignedFiles++
			v.rep.SignedEvents += n
		}
	}
	pending := map[string]bool{}
	if st != nil {
		for _, p := range st.Pending {
			if err := ctx.Err(); err != nil {
				return err
			}
			if d, dup := v.referenced[p.Path]; dup {
				v.note("%s is pending in the seal state and already listed by %s (crash before the state was saved)", p.Path, d)
				continue
			}
			pending[p.Path] = true
			n, ok := v.checkLogFile(p.Path, p.HashValue, "the seal state (pending digest)")
			if ok {
				v.rep.PendingFiles++
				v.rep.PendingEvents += n
			}
			if age := v.opts.Now().Sub(p.Delivered); age > 2*time.Hour {
				v.note("%s was delivered %s ago and is still not covered by a digest", p.Path, age.Truncate(time.Minute))
			}
		}
	}
	var rest []string
	for p := range v.logs {
		if v.referenced[p] == "" && !pending[p] {
			rest = append(rest, p)
		}
	}
	slices.Sort(rest)
	for _, p := range rest {
		v.problem(Problem{Kind: ProblemLogFileUnreferenced, Path: p, Detail: "not listed by any digest nor pending in the seal state"})
		data, err := readGzipFile(filepath.Join(v.dir, filepath.FromSlash(p)))
		if err == nil {
			if recs, err := rawRecords(data); err == nil {
				v.noteEventIDs(p, indexRecords(recs))
			}
		}
	}
	return nil
}

// checkLogFile verifies one delivery file against the hash recorded by
// "by", explains a mismatch with the file's event index, and records its
// eventIDs. It returns the number of records and whether the file is intact.
func (v *verifier) checkLogFile(rel, wantHash, by string) (int, bool) {
	data, err := readGzipFile(filepath.Join(v.dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		detail := "listed by " + by
		if idx, err := v.readIndex(rel); err == nil && len(idx) > 0 {
			detail += fmt.Sprintf("; %d event(s) lost, first eventID %s", len(idx), idx[0].ID)
		}
		v.problem(Problem{Kind: ProblemLogFileMissing, Path: rel, Detail: detail})
		return 0, false
	}
	if err != nil {
		// keyless wrote a well-formed file: it was altered on disk.
		v.problem(Problem{Kind: ProblemLogFileModified, Path: rel, Detail: fmt.Sprintf("cannot be decompressed any more (%v); listed by %s", err, by)})
		return 0, false
	}
	sum := sha256.Sum256(data)
	sumHex := hex.EncodeToString(sum[:])
	recs, recErr := rawRecords(data)
	var got []indexEntry
	if recErr == nil {
		got = indexRecords(recs)
	}
	if sumHex == wantHash {
		if recErr != nil {
			v.problem(Problem{Kind: ProblemLogFileUnreadable, Path: rel, Detail: recErr.Error()})
			return 0, false
		}
		v.noteEventIDs(rel, got)
		return len(recs), true
	}
	v.problem(Problem{Kind: ProblemLogFileModified, Path: rel, Detail: fmt.Sprintf("SHA-256 %s does not match %s recorded by %s", sumHex, wantHash, by)})
	if recErr != nil {
		v.problem(Problem{Kind: ProblemLogFileUnreadable, Path: rel, Detail: recErr.Error()})
		return 0, false
	}
	want, err := v.readIndex(rel)
	if err != nil {
		v.note("%s: no usable event index (%v); cannot tell which records changed", rel, err)
	} else {
		for _, c := range diffIndex(want, got) {
			i := c.Index
			detail := map[ProblemKind]string{
				ProblemEventModified:  "record differs from the one sealed with this eventID",
				ProblemEventInserted:  "record was not in the file when it was sealed",
				ProblemEventRemoved:   "record sealed at this position is gone",
				ProblemEventReordered: "record moved relative to the others",
			}[c.Kind]
			v.problem(Problem{Kind: c.Kind, Path: rel, EventIndex: &i, EventID: c.ID, Detail: detail})
		}
	}
	v.noteEventIDs(rel, got)
	return len(recs), false
}

func (v *verifier) readIndex(rel string) ([]indexEntry, error) {
	b, err := os.ReadFile(filepath.Join(v.dir, filepath.FromSlash(indexPathFor(rel))))
	if err != nil {
		return nil, err
	}
	return parseIndex(b)
}

func (v *verifier) noteEventIDs(rel string, entries []indexEntry) {
	for i, e := range entries {
		if e.ID == "" {
			continue
		}
		where := fmt.Sprintf("%s record %d", rel, i)
		if first, dup := v.eventIDs[e.ID]; dup {
			i := i
			v.problem(Problem{Kind: ProblemEventDuplicate, Path: rel, EventIndex: &i, EventID: e.ID, Detail: "eventID already at " + first})
			continue
		}
		v.eventIDs[e.ID] = where
	}
}

// journal checks the unsealed journal: frames intact (a torn tail on the
// newest segment is a crash artefact, noted), sequence numbers continuous
// from the last sealed one, eventIDs unique against the sealed files.
func (v *verifier) journal(st *sealState) error {
	jdir := filepath.Join(v.dir, journalDir)
	segs, err := listSegments(jdir)
	if err != nil {
		return err
	}
	var sealed uint64
	if st != nil {
		sealed = st.LastSealedSeq
	}
	next := uint64(0) // expected next seq; 0 = unknown yet
	for i, s := range segs {
		rel := journalDir + "/" + s.Name
		expect := s.First
		if next != 0 && s.First != next {
			v.problem(Problem{Kind: ProblemJournalGap, Path: rel, Detail: fmt.Sprintf("starts at seq %d, expected %d", s.First, next)})
		} else if next == 0 && s.First > sealed+1 {
			v.problem(Problem{Kind: ProblemJournalGap, Path: rel, Detail: fmt.Sprintf("events %d to %d are neither sealed nor in the journal", sealed+1, s.First-1)})
		}
		gapReported := false
		sc, err := readSegment(filepath.Join(jdir, s.Name), func(f frame) error {
			if f.Seq != expect && !gapReported {
				v.problem(Problem{Kind: ProblemJournalGap, Path: rel, Detail: fmt.Sprintf("frame seq %d at offset %d, expected %d", f.Seq, f.Offset, expect)})
				gapReported = true
			}
			expect = f.Seq + 1
			if f.Seq <= sealed {
				return nil // already sealed; the segment awaits deletion
			}
			v.rep.JournalEvents++
			var m eventMeta
			if err := json.Unmarshal(f.Payload, &m); err != nil {
				v.problem(Problem{Kind: ProblemJournalCorrupt, Path: rel, Detail: fmt.Sprintf("frame seq %d is not an event: %v", f.Seq, err)})
				return nil
			}
			v.noteJournalID(rel, f.Seq, m.EventID)
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			v.note("%s disappeared during verification (sealed meanwhile)", rel)
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: verify journal: %w", err)
		}
		if sc.TailErr != nil {
			tail := i == len(segs)-1
			if tail {
				after := s.First - 1
				if sc.Frames > 0 {
					after = sc.LastSeq
				}
				if found, err := validFrameAfter(filepath.Join(jdir, s.Name), sc.GoodLen, after); err == nil && found {
					tail = false
				}
			}
			if tail {
				v.note("%s ends with a torn frame at offset %d (a write interrupted by a crash; never acknowledged; truncated when the trail is opened)", rel, sc.GoodLen)
			} else {
				v.problem(Problem{Kind: ProblemJournalCorrupt, Path: rel, Detail: fmt.Sprintf("damaged frame at offset %d: %v", sc.GoodLen, sc.TailErr)})
			}
		}
		if sc.Frames > 0 {
			next = sc.LastSeq + 1
		}
	}
	return nil
}

func (v *verifier) noteJournalID(rel string, seq uint64, id string) {
	if id == "" {
		return
	}
	if first, dup := v.eventIDs[id]; dup {
		v.problem(Problem{Kind: ProblemEventDuplicate, Path: rel, EventID: id, Detail: fmt.Sprintf("journal seq %d repeats the eventID at %s", seq, first)})
		return
	}
	v.eventIDs[id] = fmt.Sprintf("%s seq %d", rel, seq)
}

// keylessGzipHeader is the exact gzip member header keyless writes (no
// name, no mtime, XFL 4 for BestSpeed, OS unknown). Checking it means a
// flipped byte anywhere in a delivery or digest file is detected, not only
// in the compressed data and trailer that the gzip CRC covers.
const keylessGzipHeader = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"

// readGzipFile returns the uncompressed content of a gzip file written by
// keyless: exact header, a single member, nothing after it.
func readGzipFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	if h, err := br.Peek(len(keylessGzipHeader)); err != nil || string(h) != keylessGzipHeader {
		return nil, errors.New("gzip header is not the one keyless writes")
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("not gzip: %w", err)
	}
	zr.Multistream(false)
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, zr); err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	if _, err := br.Peek(1); err == nil {
		return nil, errors.New("data after the gzip member")
	}
	return buf.Bytes(), nil
}
