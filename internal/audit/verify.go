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
	"math"
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
	ProblemJournalChain        ProblemKind = "journal-chain-broken"       // frames do not continue the hash chain: removed, inserted or rewritten
	ProblemJournalLost         ProblemKind = "journal-truncated"          // the journal no longer reaches the head's checkpoint
	ProblemHeadMAC             ProblemKind = "head-unauthenticated"       // the head's MAC does not verify (edited, replaced, or another master key)
	ProblemStateMAC            ProblemKind = "seal-state-unauthenticated" // the seal state's MAC does not verify, or it was replaced by an unauthenticated one
	ProblemRolledBack          ProblemKind = "rolled-back"                // the head or the seal state is older than the other records
	ProblemUnsafePath          ProblemKind = "unsafe-path"                // a path keyless would not write, or a symbolic link: not followed
	ProblemDigestKeyUntrusted  ProblemKind = "digest-key-unauthenticated" // signed with a key the authenticated head does not list
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
	Dir string `json:"dir"`
	// Intact: no problem found AND the trail authenticated. A trail whose
	// head cannot be authenticated is never intact: deleting its newest
	// digests and rewriting the head would look the same.
	Intact   bool      `json:"intact"`
	Problems []Problem `json:"problems"`
	Notes    []string  `json:"notes,omitempty"`
	// Authenticated: the head and the seal state carry valid MACs under
	// VerifyOptions.MACKey and agree with each other. When false,
	// Unauthenticated says why (and, with no problem, the trail is
	// consistent but cannot be vouched for).
	Authenticated   bool      `json:"authenticated"`
	Unauthenticated string    `json:"unauthenticated,omitempty"`
	Head            *HeadInfo `json:"head,omitempty"`

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

// HeadInfo describes the authenticated head a report was anchored on.
type HeadInfo struct {
	Seq        uint64     `json:"seq"`
	SavedAt    time.Time  `json:"savedAt"`
	JournalSeq uint64     `json:"journalSeq"`
	AdoptedAt  *time.Time `json:"adoptedAt,omitempty"`
	Keys       []string   `json:"keys"`
}

// String renders the report for people.
func (r *Report) String() string {
	var b strings.Builder
	switch {
	case r.Intact:
		fmt.Fprintf(&b, "audit trail %s: intact\n", r.Dir)
	case len(r.Problems) == 0:
		fmt.Fprintf(&b, "audit trail %s: NOT AUTHENTICATED (no problem found, but %s)\n", r.Dir, r.Unauthenticated)
	default:
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
	if h := r.Head; h != nil {
		fmt.Fprintf(&b, "head: authenticated, save #%d at %s, journal checkpoint seq %d, digest keys %s\n",
			h.Seq, h.SavedAt.UTC().Format(time.RFC3339), h.JournalSeq, strings.Join(h.Keys, ", "))
	}
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
	// LoadHead, when set, replaces Head: Verify loads the head around its
	// read of the seal state, so a live trail is checked against a
	// consistent pair.
	LoadHead func(context.Context) (*Head, error)
	// MACKey is the trail's key (Options.MACKey, derived from the master
	// key). Without it the head and the seal state cannot be authenticated
	// and the report is not intact.
	MACKey []byte
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
	root, err := openTrailRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer root.Close()
	root.checked = map[string]bool{}
	v := &verifier{
		dir:        dir,
		root:       root,
		opts:       opts,
		rep:        &Report{Dir: dir, Problems: []Problem{}},
		logs:       map[string]bool{},
		digests:    map[string]parsedName{},
		referenced: map[string]string{},
		eventIDs:   map[string]string{},
	}
	for _, d := range ownedDirs {
		if err := root.checkDir(d); err != nil {
			v.problem(Problem{Kind: ProblemUnsafePath, Path: d, Detail: err.Error()})
		}
	}
	if err := v.walk(ctx); err != nil {
		return nil, err
	}
	st, head, err := v.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	v.authenticate(st, head)
	if !v.headAuth {
		// A head that does not authenticate anchors nothing; the chain is
		// still followed from it to report what can be seen.
		v.rep.Head = nil
	}
	v.chain(st, head)
	if err := v.logFiles(ctx, st); err != nil {
		return nil, err
	}
	before := len(v.rep.Problems)
	if err := v.journal(st, head); err != nil {
		return nil, err
	}
	if now, err := loadState(root); err == nil && now != nil && st != nil && (now.Seq != st.Seq || now.LastSealedSeq != st.LastSealedSeq) {
		// A live trail sealed part of its journal while it was read: what
		// looks missing was moved to a delivery file. Judge the journal on
		// a quiet trail instead of reporting it.
		kept := v.rep.Problems[:before]
		for _, p := range v.rep.Problems[before:] {
			switch p.Kind {
			case ProblemJournalGap, ProblemJournalChain, ProblemJournalLost, ProblemJournalCorrupt:
			default:
				kept = append(kept, p)
			}
		}
		v.rep.Problems = kept
		v.note("the trail was sealed while its journal was being read; the journal was not judged: run verify again")
	}
	v.rep.Intact = len(v.rep.Problems) == 0 && v.rep.Authenticated
	return v.rep, nil
}

// snapshot reads the seal state and the head. With LoadHead the head is
// read before and after the state; a pair read while no save happened is
// consistent (each records only the other's saves that came before it).
func (v *verifier) snapshot(ctx context.Context) (*sealState, *Head, error) {
	load := func() (*Head, error) {
		if v.opts.LoadHead != nil {
			return v.opts.LoadHead(ctx)
		}
		return v.opts.Head, nil
	}
	for attempt := 0; ; attempt++ {
		before, err := load()
		if err != nil {
			return nil, nil, fmt.Errorf("audit: verify: load head: %w", err)
		}
		st, err := loadState(v.root)
		if err != nil {
			if !errors.Is(err, ErrBadState) && !errors.Is(err, ErrUnsafePath) {
				return nil, nil, err
			}
			kind := ProblemStateCorrupt
			if errors.Is(err, ErrUnsafePath) {
				kind = ProblemUnsafePath
			}
			v.problem(Problem{Kind: kind, Path: stateFile, Detail: err.Error()})
		}
		if v.opts.LoadHead == nil {
			return st, before, nil
		}
		after, err := load()
		if err != nil {
			return nil, nil, fmt.Errorf("audit: verify: load head: %w", err)
		}
		if before == nil && after == nil || before != nil && after != nil && before.Seq == after.Seq && before.MAC == after.MAC {
			return st, after, nil
		}
		if attempt == 4 {
			v.racing = true
			v.note("the head changed while the seal state was read, 5 times: the trail is busy; the head and the seal state were not compared with each other")
			return st, after, nil
		}
	}
}

// authenticate checks the MACs of the head and the seal state and their
// save counters against each other.
func (v *verifier) authenticate(st *sealState, h *Head) {
	unauth := func(reason string) { v.rep.Unauthenticated = reason }
	key := v.opts.MACKey
	stAuth := false
	switch {
	case st == nil:
	case st.Version == stateVersionLegacy:
	case len(key) == 0:
	default:
		if err := checkStateMAC(key, st); err != nil {
			v.problem(Problem{Kind: ProblemStateMAC, Path: stateFile, Detail: err.Error()})
		} else {
			stAuth = true
		}
	}
	v.stateAuth = stAuth
	if h != nil {
		if err := checkShape(h.DigestS3Object, shapeDigest); h.DigestS3Object != "" && err != nil {
			v.problem(Problem{Kind: ProblemUnsafePath, Path: h.DigestS3Object, Detail: "named by the head: " + err.Error()})
		}
	}
	switch {
	case len(key) == 0:
		unauth("no trail key was given (the master key): the head and the seal state cannot be authenticated")
		return
	case st == nil && h == nil:
		unauth("the trail has no seal state and there is no head")
		return
	case h == nil && v.opts.LoadHead == nil:
		unauth("no head was supplied to anchor the trail on")
		return
	case h == nil:
		if st != nil && st.Version != stateVersionLegacy && st.HeadSeq > 0 {
			v.problem(Problem{Kind: ProblemRolledBack, Detail: fmt.Sprintf("the head store has no head, but the seal state was saved after head #%d: the head was deleted", st.HeadSeq)})
		}
		unauth("the head store has no head to anchor the trail on")
		return
	case h.MAC == "":
		if st != nil && st.Version != stateVersionLegacy {
			v.problem(Problem{Kind: ProblemHeadMAC, Detail: "the head has no MAC but the seal state is authenticated: the head was replaced"})
		}
		unauth("the head was written before heads were authenticated (keyless adopts it when the trail is next opened)")
		return
	}
	if err := checkHeadMAC(key, *h); err != nil {
		v.problem(Problem{Kind: ProblemHeadMAC, Path: h.DigestS3Object, Detail: "the head: " + err.Error()})
		unauth("the head does not authenticate")
		return
	}
	v.headAuth = true
	v.rep.Head = &HeadInfo{Seq: h.Seq, SavedAt: h.SavedAt, JournalSeq: h.JournalSeq, Keys: h.Keys}
	if !h.AdoptedAt.IsZero() {
		a := h.AdoptedAt
		v.rep.Head.AdoptedAt = &a
		v.note("this trail was written before keyless authenticated its head and seal state, and adopted as found at %s: a rollback before then cannot be detected",
			a.UTC().Format(time.RFC3339))
	}
	if age := v.opts.Now().Sub(h.SavedAt); age > 2*time.Hour {
		v.note("the head was saved %s ago (%s); a running keyless saves it at least hourly: if keyless ran since, the head store and the trail may have been rolled back together to an older copy",
			age.Truncate(time.Minute), h.SavedAt.UTC().Format(time.RFC3339))
	}
	switch {
	case st == nil:
		v.problem(Problem{Kind: ProblemRolledBack, Path: stateFile, Detail: fmt.Sprintf("the seal state is missing but head #%d exists", h.Seq)})
		return
	case st.Version == stateVersionLegacy:
		v.problem(Problem{Kind: ProblemStateMAC, Path: stateFile, Detail: "the seal state has no MAC but the head is authenticated: the seal state was replaced"})
		return
	case !stAuth:
		return
	}
	if !v.racing {
		if h.StateSeq > st.Seq {
			v.problem(Problem{Kind: ProblemRolledBack, Path: stateFile,
				Detail: fmt.Sprintf("the seal state is version #%d but head #%d was saved after version #%d: an older seal state was put back", st.Seq, h.Seq, h.StateSeq)})
			return
		}
		if st.HeadSeq > h.Seq {
			v.problem(Problem{Kind: ProblemRolledBack,
				Detail: fmt.Sprintf("the head is #%d but the seal state was saved after head #%d: an older head was put back", h.Seq, st.HeadSeq)})
			return
		}
	}
	v.rep.Authenticated = true
}

type verifier struct {
	dir  string
	root *trailRoot
	opts VerifyOptions
	rep  *Report

	headAuth  bool // the head's MAC verified
	stateAuth bool // the seal state's MAC verified
	racing    bool // the head kept changing: no cross-checks

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
func (v *verifier) chain(st *sealState, head *Head) {
	anchor := head
	if v.headAuth && v.stateAuth && st.LastDigest != nil &&
		(head.DigestS3Object == "" || st.LastDigest.DigestEndTime.After(head.DigestEndTime)) {
		// Both are authenticated; the newer one anchors. A state ahead of
		// its head is a crash between the two saves, or an older head put
		// back: either way the state's digest must be there.
		anchor = st.LastDigest
		v.note("the seal state records a digest (%s) newer than the head's: keyless stopped before saving the head, or an older head was put back; the chain is anchored on the seal state",
			st.LastDigest.DigestS3Object)
	}
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
			if err := checkShape(cur, shapeDigest); err != nil {
				v.problem(Problem{Kind: ProblemUnsafePath, Path: cur, Detail: fmt.Sprintf("referenced by %s, not followed: %v", by, err)})
				break
			}
			raw, err := readGzipFile(v.root, cur, shapeDigest)
			if err != nil {
				kind := ProblemDigestInvalid
				switch {
				case errors.Is(err, fs.ErrNotExist):
					kind = ProblemDigestMissing
				case errors.Is(err, ErrUnsafePath):
					kind = ProblemUnsafePath
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
			if v.headAuth && !slices.Contains(head.Keys, d.DigestPublicKeyFingerprint) {
				v.problem(Problem{Kind: ProblemDigestKeyUntrusted, Path: cur,
					Detail: "signed with key " + d.DigestPublicKeyFingerprint + ", which the authenticated head does not list"})
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
		data, err := readGzipFile(v.root, p, shapeLog)
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
	if err := checkShape(rel, shapeLog); err != nil {
		v.problem(Problem{Kind: ProblemUnsafePath, Path: rel, Detail: fmt.Sprintf("listed by %s, not followed: %v", by, err)})
		return 0, false
	}
	data, err := readGzipFile(v.root, rel, shapeLog)
	if errors.Is(err, ErrUnsafePath) {
		v.problem(Problem{Kind: ProblemUnsafePath, Path: rel, Detail: fmt.Sprintf("listed by %s, not followed: %v", by, err)})
		return 0, false
	}
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
	b, err := v.root.readFile(indexPathFor(rel), shapeIndex)
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
func (v *verifier) journal(st *sealState, head *Head) error {
	segs, err := listSegments(v.root)
	if errors.Is(err, ErrUnsafePath) {
		v.problem(Problem{Kind: ProblemUnsafePath, Path: journalDir, Detail: err.Error() + "; the journal was not read"})
		return nil
	}
	if err != nil {
		return err
	}
	if st == nil {
		st = &sealState{}
	}
	sealed := st.LastSealedSeq
	walk, err := newChainWalk(st)
	if err != nil {
		v.problem(Problem{Kind: ProblemStateCorrupt, Path: stateFile, Detail: err.Error()})
		walk = &chainWalk{sealed: sealed}
	}
	if st.Version == stateVersionLegacy {
		walk.legacyThrough = math.MaxUint64 // not adopted yet: nothing is chained
	}
	var (
		checkHash    *chainHash
		chainBroken  bool
		chainedFrame bool
		last         uint64
	)
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
		sc, err := readSegment(v.root, rel, func(f frame) error {
			if f.Seq != expect && !gapReported {
				v.problem(Problem{Kind: ProblemJournalGap, Path: rel, Detail: fmt.Sprintf("frame seq %d at offset %d, expected %d", f.Seq, f.Offset, expect)})
				gapReported = true
			}
			expect = f.Seq + 1
			chainedFrame = chainedFrame || f.Chained
			sum := sha256.Sum256(f.Payload)
			if err := walk.step(f, &sum); err != nil {
				if !chainBroken {
					v.problem(Problem{Kind: ProblemJournalChain, Path: rel, Detail: fmt.Sprintf("at offset %d: %v", f.Offset, err)})
					chainBroken = true
				}
				walk.resync(f, &sum)
			}
			if head != nil && f.Seq == head.JournalSeq && walk.Known {
				h := walk.Hash
				checkHash = &h
			}
			last = max(last, f.Seq)
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
		if errors.Is(err, ErrUnsafePath) {
			v.problem(Problem{Kind: ProblemUnsafePath, Path: rel, Detail: err.Error()})
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
				if found, err := segmentHasFrameAfter(v.root, rel, sc.GoodLen, after); err == nil && found {
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
	if chainedFrame && st.Version == stateVersionLegacy {
		v.problem(Problem{Kind: ProblemStateMAC, Path: stateFile,
			Detail: "the seal state is in the old unauthenticated format but the journal holds chained frames: it was replaced"})
	}
	v.checkpoint(st, head, last, checkHash)
	return nil
}

// checkpoint compares the journal with the authenticated head's
// checkpoint: the journal must still hold, unchanged, every frame the head
// saw fsynced.
func (v *verifier) checkpoint(st *sealState, h *Head, last uint64, at *chainHash) {
	if !v.headAuth || v.racing || h.JournalSeq == 0 {
		return
	}
	want, err := parseChain(h.JournalChain)
	if err != nil {
		v.problem(Problem{Kind: ProblemHeadMAC, Detail: "the head's journal checkpoint: " + err.Error()})
		return
	}
	sealed := st.LastSealedSeq
	switch {
	case h.JournalSeq > sealed && last < h.JournalSeq:
		v.problem(Problem{Kind: ProblemJournalLost, Path: journalDir, Detail: fmt.Sprintf(
			"head #%d (saved %s) checkpointed the journal through seq %d, but the trail holds events only through seq %d: acknowledged events were removed",
			h.Seq, fmtTime(h.SavedAt), h.JournalSeq, max(last, sealed))})
	case h.JournalSeq > sealed && (at == nil || *at != want):
		v.problem(Problem{Kind: ProblemJournalChain, Path: journalDir, Detail: fmt.Sprintf(
			"the journal's frames through seq %d do not hash to the chain head #%d checkpointed: they were rewritten", h.JournalSeq, h.Seq)})
	case h.JournalSeq == sealed && !sameChain(st.SealedChain, want):
		v.problem(Problem{Kind: ProblemJournalChain, Path: stateFile, Detail: fmt.Sprintf(
			"the sealed position (seq %d) does not match the chain head #%d checkpointed", sealed, h.Seq)})
	}
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
// keyless (rel, of one of shapes, checked): exact header, a single member,
// nothing after it.
func readGzipFile(r *trailRoot, rel string, shapes pathShape) ([]byte, error) {
	f, err := r.open(rel, shapes)
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
