package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Entry is one event read from a trail, with where it was read.
type Entry struct {
	Event *Event
	// Path is the delivery file or journal segment, relative to the trail
	// directory, with forward slashes.
	Path string
	// Index is the record's position in the delivery file; for journal
	// events it is -1 and Seq is set.
	Index int
	Seq   uint64 // journal sequence number; 0 for sealed events

	// raw is the event's JSON as stored, set in raw mode (Scan), where
	// Event only has its EventID.
	raw []byte
}

// ReadOptions tune Read.
type ReadOptions struct {
	// Follow keeps reading as the trail grows (tail -f), until ctx ends.
	Follow bool
	// PollInterval is how often Follow looks for new events (default 1s).
	PollInterval time.Duration
}

// Read streams every event of a trail directory in order: sealed delivery
// files in delivery order (the digest chain's order, then the files awaiting
// a digest), then the journal in sequence order. Each event is yielded once
// even when the trail is sealed while it is being read (events first read
// from the journal are skipped when their delivery file shows up).
//
// A directory without keyless's seal state (a copy of a real CloudTrail
// bucket, an export folder) is read file by file in name order; .json and
// .json.gz files are accepted, digest files skipped.
//
// Errors (an unreadable file) are yielded; iteration continues after them
// if the consumer continues.
func Read(ctx context.Context, dir string, opts ReadOptions) iter.Seq2[Entry, error] {
	return readTrail(ctx, dir, opts, nil)
}

// rawTrail makes readTrail yield each event's stored JSON (Entry.raw) with
// only its EventID decoded, and counts the events met twice.
type rawTrail struct {
	Duplicates int64
}

// readTrail is Read; with raw set it works as rawTrail says.
func readTrail(ctx context.Context, dir string, opts ReadOptions, raw *rawTrail) iter.Seq2[Entry, error] {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	return func(yield func(Entry, error) bool) {
		root, err := openTrailRoot(dir)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		defer root.Close()
		if !opts.Follow {
			root.checked = map[string]bool{}
		}
		r := &trailReader{dir: dir, root: root, raw: raw, emitted: map[string]bool{}, fromJournal: map[string]struct{}{}, fromExtra: map[string]struct{}{}}
		first := true
		for {
			if ctx.Err() != nil {
				return
			}
			if !r.scan(yield, first) {
				return
			}
			first = false
			if !opts.Follow {
				return
			}
			t := time.NewTimer(opts.PollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

type trailReader struct {
	dir         string
	root        *trailRoot          // paths read from the trail's state and digests are opened through it
	raw         *rawTrail           // raw mode (Scan), nil for Read
	emitted     map[string]bool     // delivery files already read
	fromJournal map[string]struct{} // eventIDs yielded from the journal, not yet met in a delivery file
	// fromExtra holds the eventIDs of delivery files found on disk but not
	// in the seal state read at the start (a seal that finished after the
	// state was read): their events may still be in the journal too.
	fromExtra  map[string]struct{}
	lastSeq    uint64 // highest journal seq yielded or known sealed
	snapSealed uint64 // LastSealedSeq of the state this scan started from
	chainHead  string // newest digest whose files are queued
	segName    string // journal segment being tailed
	segOff     int64  // resume offset within segName
}

// errRescan means the journal changed under the reader (a segment was
// sealed and deleted): take a fresh snapshot.
var errRescan = errors.New("journal changed")

// scan yields what is new since the previous scan; false means stop.
func (r *trailReader) scan(yield func(Entry, error) bool, first bool) bool {
	for attempt := 0; ; attempt++ {
		st, err := loadState(r.root)
		if err != nil {
			return yield(Entry{}, err)
		}
		if st == nil {
			return r.scanForeign(yield)
		}
		files, err := r.newChainFiles(st)
		if err != nil && !yield(Entry{}, err) {
			return false
		}
		for _, p := range st.Pending {
			files = append(files, p.Path)
		}
		known := len(files)
		if first {
			// Files outside the chain (a damaged chain, an injected file, or
			// one sealed since the state was read) are part of what is on
			// disk; verify flags the foreign ones.
			onDisk, err := listLogFiles(filepath.Join(r.dir, awsLogsDir), true)
			if err != nil && !yield(Entry{}, err) {
				return false
			}
			for _, p := range onDisk {
				rel, _ := filepath.Rel(r.dir, p)
				files = append(files, filepath.ToSlash(rel))
			}
		}
		for i, rel := range files {
			if r.emitted[rel] {
				continue
			}
			r.emitted[rel] = true
			if !r.emitFile(rel, true, i >= known, yield) {
				return false
			}
		}
		r.lastSeq = max(r.lastSeq, st.LastSealedSeq)
		r.snapSealed = st.LastSealedSeq
		err = r.scanJournal(yield)
		switch {
		case errors.Is(err, errStop):
			return false
		case errors.Is(err, errRescan) && attempt < 10:
			continue
		case err != nil:
			return yield(Entry{}, err)
		}
		// A seal that finished while the journal was read may have retired
		// frames this scan never saw: read the files it delivered.
		if now, err := loadState(r.root); err == nil && now != nil && now.LastSealedSeq != r.snapSealed && attempt < 10 {
			continue
		}
		return true
	}
}

var errStop = errors.New("consumer stopped")

// emitFile yields the events of a delivery file. Files of a keyless trail
// (named by its state or digests) are checked and opened inside the trail.
func (r *trailReader) emitFile(rel string, keyless, extra bool, yield func(Entry, error) bool) bool {
	name := filepath.Join(r.dir, filepath.FromSlash(rel))
	open := func() (*os.File, error) { return os.Open(name) }
	if keyless {
		name, open = rel, func() (*os.File, error) { return r.root.open(rel, shapeLog) }
	}
	var events iter.Seq2[Entry, error]
	if r.raw != nil {
		events = readRawLogFile(name, open)
	} else {
		events = func(yield func(Entry, error) bool) {
			for ev, err := range readLogFile(name, open) {
				if !yield(Entry{Event: ev}, err) {
					return
				}
			}
		}
	}
	i := 0
	for e, err := range events {
		if err != nil {
			return yield(Entry{}, err)
		}
		ev := e.Event
		idx := i
		i++
		if _, seen := r.fromJournal[ev.EventID]; seen {
			delete(r.fromJournal, ev.EventID)
			r.countDuplicate()
			continue
		}
		if extra {
			r.fromExtra[ev.EventID] = struct{}{}
		}
		if !yield(Entry{Event: ev, Path: rel, Index: idx, raw: e.raw}, nil) {
			return false
		}
	}
	return true
}

// newChainFiles returns the delivery files of digests added to the chain
// since the last call, oldest digest first.
func (r *trailReader) newChainFiles(st *sealState) ([]string, error) {
	if st.LastDigest == nil || st.LastDigest.DigestS3Object == r.chainHead {
		return nil, nil
	}
	var digests []*Digest
	seen := map[string]bool{}
	for cur := st.LastDigest.DigestS3Object; cur != "" && cur != r.chainHead && !seen[cur]; {
		seen[cur] = true
		raw, err := readGzipFile(r.root, cur, shapeDigest)
		if err != nil {
			return digestFiles(digests), fmt.Errorf("audit: read digest %s: %w", cur, err)
		}
		d, err := ParseDigest(raw)
		if err != nil {
			return digestFiles(digests), fmt.Errorf("audit: %s: %w", cur, err)
		}
		digests = append(digests, d)
		cur = ""
		if d.PreviousDigestS3Object != nil {
			cur = *d.PreviousDigestS3Object
		}
	}
	r.chainHead = st.LastDigest.DigestS3Object
	return digestFiles(digests), nil
}

// digestFiles lists the files of digests given newest first, oldest first.
func digestFiles(newestFirst []*Digest) []string {
	var out []string
	for i := len(newestFirst) - 1; i >= 0; i-- {
		for _, f := range newestFirst[i].LogFiles {
			out = append(out, f.S3Object)
		}
	}
	return out
}

func (r *trailReader) scanJournal(yield func(Entry, error) bool) error {
	segs, err := listSegments(r.root)
	if err != nil {
		return err
	}
	for i, s := range segs {
		if i+1 < len(segs) && segs[i+1].First <= r.lastSeq+1 {
			continue // every frame of this segment is at or below lastSeq
		}
		rel := journalDir + "/" + s.Name
		off := int64(0)
		if s.Name == r.segName {
			off = r.segOff
		}
		newOff, err := r.readSegmentFrom(rel, off, yield)
		if errors.Is(err, fs.ErrNotExist) {
			return errRescan
		}
		if err != nil {
			return err
		}
		r.segName, r.segOff = s.Name, newOff
	}
	return nil
}

// readSegmentFrom yields the frames of one segment from off and returns the
// offset after the last complete frame. A torn or damaged frame ends the
// read quietly: it is either being written now or a crash artefact that
// Open will truncate.
func (r *trailReader) readSegmentFrom(rel string, off int64, yield func(Entry, error) bool) (int64, error) {
	f, err := r.root.open(rel, shapeSegment)
	if err != nil {
		return off, err
	}
	defer f.Close()
	var fr *frameReader
	if off == 0 {
		fr, err = newFrameReader(f)
		if err != nil {
			if errors.Is(err, ErrTornFrame) {
				return 0, nil
			}
			return 0, fmt.Errorf("audit: %s: %w", rel, err)
		}
	} else if fr, err = newFrameReaderAt(f, off); err != nil {
		return off, fmt.Errorf("audit: %s: %w", rel, err)
	}
	for {
		fm, err := fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, ErrTornFrame) || errors.Is(err, ErrBadFrame) {
				return fr.Offset, nil
			}
			return fr.Offset, err
		}
		if fm.Seq <= r.lastSeq {
			continue
		}
		if fm.Seq > r.lastSeq+1 {
			// A gap: frames were sealed and their segment retired after this
			// scan read the seal state. Rescan from the new state so their
			// delivery file is read; a gap the state does not explain (a
			// crash artefact) is read through.
			if st, err := loadState(r.root); err == nil && st != nil && st.LastSealedSeq != r.snapSealed {
				return fr.Offset, errRescan
			}
		}
		r.lastSeq = fm.Seq
		ev := new(Event)
		var raw []byte
		if r.raw != nil {
			raw = fm.Payload
		}
		if err := decodeEvent(fm.Payload, ev, r.raw != nil); err != nil {
			if !yield(Entry{}, fmt.Errorf("audit: %s seq %d: %w", rel, fm.Seq, err)) {
				return fr.Offset, errStop
			}
			continue
		}
		if _, seen := r.fromExtra[ev.EventID]; seen {
			delete(r.fromExtra, ev.EventID)
			r.countDuplicate()
			continue
		}
		r.fromJournal[ev.EventID] = struct{}{}
		if !yield(Entry{Event: ev, Path: rel, Index: -1, Seq: fm.Seq, raw: raw}, nil) {
			return fr.Offset, errStop
		}
	}
}

// scanForeign reads a directory that is not a keyless trail.
func (r *trailReader) scanForeign(yield func(Entry, error) bool) bool {
	files, err := listLogFiles(r.dir, false)
	if err != nil && !yield(Entry{}, err) {
		return false
	}
	for _, p := range files {
		rel, _ := filepath.Rel(r.dir, p)
		rel = filepath.ToSlash(rel)
		if r.emitted[rel] {
			continue
		}
		r.emitted[rel] = true
		if !r.emitFile(rel, false, false, yield) {
			return false
		}
	}
	return true
}

// listLogFiles returns CloudTrail log files under root in name order
// (delivery time, as names start with account and timestamp). strict keeps
// only keyless delivery-file paths; otherwise any .json/.json.gz that is not
// a digest.
func listLogFiles(root string, strict bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			if d.Name() == "CloudTrail-Digest" || p != root && (d.Name() == journalDir || d.Name() == indexDir) {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if strict {
			if rel, err := filepath.Rel(filepath.Dir(root), p); err == nil && parseTrailPath(filepath.ToSlash(rel)).Kind == kindLog {
				out = append(out, p)
			}
			return nil
		}
		if (strings.HasSuffix(name, ".json") || strings.HasSuffix(name, ".json.gz")) && !strings.Contains(name, "_CloudTrail-Digest_") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list log files: %w", err)
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	return out, nil
}

func (r *trailReader) countDuplicate() {
	if r.raw != nil {
		r.raw.Duplicates++
	}
}

// decodeEvent decodes a journal payload into ev: wholly, or in raw mode
// only its eventID.
func decodeEvent(payload []byte, ev *Event, raw bool) error {
	if !raw {
		return json.Unmarshal(payload, ev)
	}
	var id struct {
		EventID string `json:"eventID"`
	}
	if err := json.Unmarshal(payload, &id); err != nil {
		return err
	}
	ev.EventID = id.EventID
	return nil
}

// readRawLogFile yields the records of a {"Records":[...]} delivery file as
// stored (Entry.raw), each with an Event holding only its eventID.
func readRawLogFile(name string, open func() (*os.File, error)) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		f, err := open()
		if err != nil {
			yield(Entry{}, fmt.Errorf("audit: open log file: %w", err))
			return
		}
		defer f.Close()
		r, err := maybeGunzip(f)
		if err == nil {
			var data []byte
			if data, err = io.ReadAll(r); err == nil {
				var recs []json.RawMessage
				if recs, err = rawRecords(data); err == nil {
					for _, rec := range recs {
						ev := new(Event)
						if err := decodeEvent(rec, ev, true); err != nil {
							yield(Entry{}, fmt.Errorf("audit: %s: %w: %w", name, ErrBadLogFile, err))
							return
						}
						if !yield(Entry{Event: ev, raw: rec}, nil) {
							return
						}
					}
					return
				}
			}
		}
		yield(Entry{}, fmt.Errorf("audit: %s: %w", name, err))
	}
}
