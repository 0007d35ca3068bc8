package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"time"
)

// recover brings the directory back to a consistent state after any crash:
// temp files and half-done seals are discarded, the seal state and the head
// are authenticated against each other, a torn journal tail is truncated,
// and the journal is checked against its chain and the head's checkpoint.
// Any path the state names is checked before anything is deleted.
func (t *Trail) recover(ctx context.Context) error {
	if err := t.cleanTemp(); err != nil {
		return err
	}
	st, err := loadState(t.root)
	if err != nil {
		return err
	}
	fresh := st == nil
	if fresh {
		st = &sealState{Version: stateVersion, ChainStart: t.opts.Now().UTC().Truncate(time.Second), Pending: []pendingFile{}}
	}
	t.state = st
	if err := t.openAuth(ctx, fresh); err != nil {
		return err
	}
	if err := st.paths(); err != nil {
		return fmt.Errorf("audit: %s: %w (nothing was deleted)", stateFile, err)
	}
	if fresh {
		if err := t.writeState(st.clone()); err != nil {
			return err
		}
	}
	if err := t.clearIntent(); err != nil {
		return err
	}
	last, err := t.scanJournal(fresh)
	if err != nil {
		return err
	}
	t.nextSeq = max(last, t.state.LastSealedSeq) + 1
	if t.adopting {
		if err := t.writeState(t.adopt(last)); err != nil {
			return err
		}
		t.adopting = false
	}
	return t.saveHead(ctx)
}

// cleanTemp empties journal/tmp of the temporary files of writes a crash
// interrupted. Anything there keyless does not write stops the open.
func (t *Trail) cleanTemp() error {
	entries, err := t.root.readDir(tmpDir)
	if err != nil {
		return fmt.Errorf("audit: list %s: %w", tmpDir, err)
	}
	for _, e := range entries {
		if err := t.root.check(tmpDir+"/"+e.Name(), shapeTemp); err != nil {
			return fmt.Errorf("%w (nothing was deleted)", err)
		}
	}
	for _, e := range entries {
		if err := t.root.remove(tmpDir+"/"+e.Name(), shapeTemp); err != nil {
			return err
		}
	}
	return nil
}

// clearIntent deletes the files of an unfinished seal or digest: no state
// references them, and the journal still holds their events. Every path is
// checked before any file is deleted.
func (t *Trail) clearIntent() error {
	if t.state.Intent == nil {
		return nil
	}
	const shapes = shapeLog | shapeIndex | shapeDigest
	for _, f := range t.state.Intent.Files {
		if err := t.root.check(f, shapes); err != nil {
			return fmt.Errorf("audit: %s intent: %w (nothing was deleted)", stateFile, err)
		}
	}
	dirs := map[string]bool{}
	for _, f := range t.state.Intent.Files {
		if err := t.root.remove(f, shapes); err != nil {
			return fmt.Errorf("audit: discard unfinished seal: %w", err)
		}
		dirs[parentDir(f)] = true
	}
	for d := range dirs {
		if err := t.root.syncDir(t.sync, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	st := t.state.clone()
	st.Intent = nil
	return t.writeState(st)
}

func sameHead(a, b Head) bool {
	return a.DigestS3Object == b.DigestS3Object && a.DigestEndTime.Equal(b.DigestEndTime) &&
		a.HashValue == b.HashValue && a.Signature == b.Signature
}

// segInfo is a journal segment file.
type segInfo struct {
	Name  string
	First uint64
}

// listSegments lists the journal's segments in sequence order. A segment
// name that is not a regular file (a symbolic link) is an error.
func listSegments(r *trailRoot) ([]segInfo, error) {
	entries, err := r.readDir(journalDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("audit: list journal: %w", err)
	}
	var out []segInfo
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok {
			if !e.Type().IsRegular() {
				return nil, fmt.Errorf("%w: %s/%s is not a regular file (%s)", ErrUnsafePath, journalDir, e.Name(), e.Type())
			}
			out = append(out, segInfo{Name: e.Name(), First: seq})
		}
	}
	slices.SortFunc(out, func(a, b segInfo) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	return out, nil
}

// segScan summarises a segment read by readSegment.
type segScan struct {
	Frames  int
	LastSeq uint64
	GoodLen int64 // bytes up to the end of the last good frame
	TailErr error // ErrTornFrame/ErrBadFrame/ErrBadSegment that stopped the read; nil at a clean end
}

// readSegment calls fn for each good frame of the segment rel, in order,
// until the end or the first damaged frame (reported in TailErr, not as an
// error). The error is for I/O failures and errors returned by fn.
func readSegment(r *trailRoot, rel string, fn func(frame) error) (segScan, error) {
	f, err := r.open(rel, shapeSegment)
	if err != nil {
		return segScan{}, err
	}
	defer f.Close()
	fr, err := newFrameReader(f)
	if err != nil {
		if errors.Is(err, ErrTornFrame) || errors.Is(err, ErrBadSegment) {
			return segScan{TailErr: err}, nil
		}
		return segScan{}, err
	}
	var s segScan
	s.GoodLen = fr.Offset
	for {
		fm, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if errors.Is(err, ErrTornFrame) || errors.Is(err, ErrBadFrame) {
			s.TailErr = err
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if fn != nil {
			if err := fn(fm); err != nil {
				return s, err
			}
		}
		s.Frames++
		s.LastSeq = fm.Seq
		s.GoodLen = fr.Offset
	}
}

// segmentHasFrameAfter reports whether the segment rel holds a well-formed
// frame past damage at offset from (see validFrameAfter).
func segmentHasFrameAfter(r *trailRoot, rel string, from int64, afterSeq uint64) (bool, error) {
	data, err := r.readFile(rel, shapeSegment)
	if err != nil {
		return false, fmt.Errorf("audit: read segment: %w", err)
	}
	return validFrameAfter(data, from, afterSeq), nil
}

// scanJournal checks every segment on open. Only the tail of the newest
// segment may be damaged (the write a crash interrupted); it is truncated
// unless a valid frame follows the damage, which means corruption of
// acknowledged events rather than a torn write, and opening is refused. The
// frames must continue the chain from the sealed position and reach the
// head's checkpoint. It returns the last sequence number in the journal.
func (t *Trail) scanJournal(fresh bool) (uint64, error) {
	segs, err := listSegments(t.root)
	if err != nil {
		return 0, err
	}
	walk, err := newChainWalk(t.state)
	if err != nil {
		return 0, err
	}
	if t.adopting {
		walk.legacyThrough = math.MaxUint64 // all of it was written before chaining
	}
	sealed := t.state.LastSealedSeq
	check := t.head.JournalSeq
	var checkHash *chainHash
	var last uint64
	seenFrame := false
	lastSeg := ""
	// A torn tail is truncated only once the journal has been found to
	// reach the checkpoint: a refused open leaves the evidence as it was.
	type cut struct {
		rel   string
		size  int64 // -1: remove the (empty) segment
		cause error
	}
	var cuts []cut
	for i, s := range segs {
		rel := journalDir + "/" + s.Name
		expect := s.First
		sc, err := readSegment(t.root, rel, func(f frame) error {
			if f.Seq != expect {
				return fmt.Errorf("%w: %s: frame seq %d, want %d", ErrCorrupt, s.Name, f.Seq, expect)
			}
			expect++
			if !seenFrame {
				seenFrame = true
				if fresh && !f.Chained {
					// A trail written before chaining that lost its seal
					// state: adopted, as the version that wrote it would
					// have carried on.
					t.adopting = true
					walk.legacyThrough = math.MaxUint64
				}
				if f.Seq > sealed+1 && !t.adopting {
					return fmt.Errorf("%w: events are sealed through seq %d but the journal starts at seq %d: segments holding acknowledged events were deleted. %s",
						ErrJournalLost, sealed, f.Seq, operatorHint)
				}
			}
			if f.Chained && (fresh || t.adopting) {
				return fmt.Errorf("%w: %s holds frames written by this version, but %s is missing or in the old unauthenticated format: it was deleted or replaced. %s",
					ErrUnauthenticated, rel, stateFile, operatorHint)
			}
			sum := sha256.Sum256(f.Payload)
			if err := walk.step(f, &sum); err != nil {
				return fmt.Errorf("%w: %s: %w. %s", ErrCorrupt, rel, err, operatorHint)
			}
			if f.Seq == check && walk.Known {
				h := walk.Hash
				checkHash = &h
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		if sc.Frames > 0 && last != 0 && s.First != last+1 {
			return 0, fmt.Errorf("%w: %s: starts at seq %d after %d (segments missing)", ErrCorrupt, s.Name, s.First, last)
		}
		if sc.TailErr != nil && errors.Is(sc.TailErr, ErrBadSegment) {
			return 0, fmt.Errorf("%w: %s: %w", ErrCorrupt, s.Name, sc.TailErr)
		}
		if sc.TailErr != nil {
			after := s.First - 1
			if sc.Frames > 0 {
				after = sc.LastSeq
			}
			if found, err := segmentHasFrameAfter(t.root, rel, sc.GoodLen, after); err != nil {
				return 0, err
			} else if found {
				return 0, fmt.Errorf("%w: %s: damaged frame at offset %d followed by valid frames", ErrCorrupt, s.Name, sc.GoodLen)
			}
			if sc.Frames > 0 && i != len(segs)-1 {
				// Closed segments were fsynced whole before the next one
				// was created: damage there is not a torn write.
				return 0, fmt.Errorf("%w: %s: damaged frame at offset %d in a closed segment: %w", ErrCorrupt, s.Name, sc.GoodLen, sc.TailErr)
			}
			if sc.Frames > 0 {
				cuts = append(cuts, cut{rel, sc.GoodLen, sc.TailErr})
			}
		}
		if sc.Frames == 0 {
			// Created but never written (a crash right after a rotation).
			cuts = append(cuts, cut{rel, -1, nil})
			continue
		}
		last = sc.LastSeq
		lastSeg = rel
	}

	// The checkpoint: the journal held the frames through check, fsynced.
	if err := t.checkCheckpoint(walk, last, checkHash); err != nil {
		return 0, err
	}
	for _, c := range cuts {
		if c.size >= 0 {
			if err := t.truncateSegment(c.rel, c.size); err != nil {
				return 0, err
			}
			t.stats.tornTails.Add(1)
			t.log.Warn("audit journal: truncated torn tail", "segment", c.rel, "offset", c.size, "cause", c.cause)
			continue
		}
		if err := t.root.remove(c.rel, shapeSegment); err != nil {
			return 0, fmt.Errorf("audit: remove empty segment: %w", err)
		}
		if err := t.root.syncDir(t.sync, journalDir); err != nil {
			return 0, err
		}
	}
	pos := chainPos{seq: sealed}
	if pos.hash, err = parseChain(t.state.SealedChain); err != nil {
		return 0, fmt.Errorf("%w: sealedChain: %w", ErrBadState, err)
	}
	if last > sealed {
		pos.seq = last
		if walk.Known {
			pos.hash = walk.Hash
		}
		// What a crash left in the page cache is made durable before the
		// head checkpoints it.
		if err := t.syncSegmentFile(lastSeg); err != nil {
			return 0, err
		}
	}
	t.chain = pos.hash
	t.setSynced(pos)
	return last, nil
}

// checkCheckpoint compares the journal, as scanned, with the head's
// checkpoint.
func (t *Trail) checkCheckpoint(walk *chainWalk, last uint64, at *chainHash) error {
	h := t.head
	if h.JournalSeq == 0 || h.MAC == "" {
		return nil
	}
	sealed := t.state.LastSealedSeq
	want, err := parseChain(h.JournalChain)
	if err != nil {
		return fmt.Errorf("%w: the head's journal checkpoint: %w", ErrUnauthenticated, err)
	}
	switch {
	case h.JournalSeq > sealed && last < h.JournalSeq:
		return fmt.Errorf("%w: head #%d (saved %s) checkpointed the journal through seq %d, but it now ends at seq %d. %s",
			ErrJournalLost, h.Seq, fmtTime(h.SavedAt), h.JournalSeq, max(last, sealed), operatorHint)
	case h.JournalSeq > sealed && (at == nil || *at != want):
		return fmt.Errorf("%w: the journal's frames through seq %d do not hash to the chain head #%d (saved %s) checkpointed: they were rewritten. %s",
			ErrJournalLost, h.JournalSeq, h.Seq, fmtTime(h.SavedAt), operatorHint)
	case h.JournalSeq == sealed && !sameChain(t.state.SealedChain, want):
		return fmt.Errorf("%w: the sealed position (seq %d) does not match the chain head #%d checkpointed. %s",
			ErrJournalLost, sealed, h.Seq, operatorHint)
	}
	return nil
}

func (t *Trail) truncateSegment(rel string, size int64) error {
	if err := t.root.check(rel, shapeSegment); err != nil {
		return err
	}
	f, err := t.root.root.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("audit: open torn segment: %w", err)
	}
	defer f.Close()
	if size < int64(len(segMagic)) {
		// Not even the magic survived: rewrite it so the segment is valid.
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("audit: truncate torn segment: %w", err)
		}
		if _, err := f.WriteAt([]byte(segMagic), 0); err != nil {
			return fmt.Errorf("audit: rewrite segment magic: %w", err)
		}
	} else if err := f.Truncate(size); err != nil {
		return fmt.Errorf("audit: truncate torn segment: %w", err)
	}
	if err := t.sync(f); err != nil {
		return fmt.Errorf("audit: sync truncated segment: %w", err)
	}
	return nil
}

func sameChain(hexHash string, h chainHash) bool {
	got, err := parseChain(hexHash)
	return err == nil && got == h
}

// syncSegmentFile fsyncs a journal segment found on open.
func (t *Trail) syncSegmentFile(rel string) error {
	if err := t.root.check(rel, shapeSegment); err != nil {
		return err
	}
	f, err := t.root.root.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("audit: open journal segment: %w", err)
	}
	defer f.Close()
	if err := t.sync(f); err != nil {
		return fmt.Errorf("audit: sync journal segment: %w", err)
	}
	return nil
}

// eventMeta is the part of an event the sealer needs.
type eventMeta struct {
	EventID   string    `json:"eventID"`
	EventTime time.Time `json:"eventTime"`
}

type sealEvent struct {
	seq     uint64
	payload []byte
	meta    eventMeta
	sum     [32]byte // SHA-256 of payload (the chain's, reused by the index)
}

// sealSegments seals every journal segment older than active into delivery
// files. Steps, each crash-safe (see sealState): save intent, write files,
// save result, delete segments.
func (t *Trail) sealSegments(active uint64, now time.Time) error {
	if err := t.clearIntent(); err != nil {
		return err
	}
	all, err := listSegments(t.root)
	if err != nil {
		return err
	}
	var segs []segInfo
	for _, s := range all {
		if s.First < active {
			segs = append(segs, s)
		}
	}
	if len(segs) == 0 {
		return nil
	}
	sealed := t.state.LastSealedSeq
	// The events are signed from here on: the chain is checked first, so
	// a journal edited on disk (frames removed, rewritten) is never sealed.
	walk, err := newChainWalk(t.state)
	if err != nil {
		return err
	}
	var evs []sealEvent
	next := uint64(0)
	for _, s := range segs {
		rel := journalDir + "/" + s.Name
		sc, err := readSegment(t.root, rel, func(f frame) error {
			if next != 0 && f.Seq != next {
				return fmt.Errorf("%w: %s: frame seq %d, want %d", ErrCorrupt, rel, f.Seq, next)
			}
			next = f.Seq + 1
			sum := sha256.Sum256(f.Payload)
			if err := walk.step(f, &sum); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrCorrupt, rel, err)
			}
			if f.Seq <= sealed {
				return nil // sealed before a crash; the segment was not yet deleted
			}
			if len(evs) == 0 && f.Seq != sealed+1 {
				return fmt.Errorf("%w: events are sealed through seq %d but the journal continues at seq %d", ErrJournalLost, sealed, f.Seq)
			}
			m, err := parseEventMeta(f.Payload)
			if err != nil {
				return fmt.Errorf("%w: %s seq %d: %w", ErrCorrupt, s.Name, f.Seq, err)
			}
			evs = append(evs, sealEvent{seq: f.Seq, payload: f.Payload, meta: m, sum: sum})
			return nil
		})
		if err != nil {
			return err
		}
		if sc.TailErr != nil {
			return fmt.Errorf("%w: %s: %w at offset %d", ErrCorrupt, s.Name, sc.TailErr, sc.GoodLen)
		}
	}
	if len(evs) == 0 {
		return t.retireSegments(segs)
	}

	delivered := now.UTC().Truncate(time.Second)
	var chunks [][]sealEvent
	for rest := evs; len(rest) > 0; {
		n := min(len(rest), t.opts.MaxEventsPerFile)
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
	}
	rels := make([]string, len(chunks))
	intent := &sealIntent{}
	for i := range chunks {
		// A name already taken (a file of an earlier seal in the same
		// minute) is never reused: sealing must not overwrite a signed
		// file, whatever the random source.
		for {
			suffix, err := randomSuffix(t.opts.Rand, 16)
			if err != nil {
				return err
			}
			rels[i] = LogFilePath(t.opts.AccountID, t.opts.Region, delivered, suffix)
			if err := t.root.check(rels[i], shapeLog); err != nil {
				return err
			}
			_, err = t.root.root.Lstat(rels[i])
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("audit: %s: %w", rels[i], err)
			}
			if err != nil && !slices.Contains(rels[:i], rels[i]) {
				break
			}
		}
		intent.Files = append(intent.Files, rels[i], indexPathFor(rels[i]))
	}
	st := t.state.clone()
	st.Intent = intent
	if err := t.writeState(st); err != nil {
		return err
	}
	t.hook("seal-intent-saved")

	pending := make([]pendingFile, 0, len(chunks))
	for i, chunk := range chunks {
		content, entries := buildLogFile(chunk)
		sum := sha256.Sum256(content)
		gz, err := gzipBytes(content)
		if err != nil {
			return err
		}
		if err := t.root.writeFileAtomic(t.sync, indexPathFor(rels[i]), shapeIndex, encodeIndex(entries)); err != nil {
			return err
		}
		if err := t.root.writeFileAtomic(t.sync, rels[i], shapeLog, gz); err != nil {
			return err
		}
		oldest, newest := chunk[0].meta.EventTime, chunk[0].meta.EventTime
		for _, e := range chunk {
			if e.meta.EventTime.Before(oldest) {
				oldest = e.meta.EventTime
			}
			if e.meta.EventTime.After(newest) {
				newest = e.meta.EventTime
			}
		}
		pending = append(pending, pendingFile{
			Path: rels[i], HashValue: hex.EncodeToString(sum[:]), Delivered: delivered,
			OldestEventTime: oldest.UTC(), NewestEventTime: newest.UTC(), Events: len(chunk),
			FirstSeq: chunk[0].seq, LastSeq: chunk[len(chunk)-1].seq,
		})
		t.stats.sealedFiles.Add(1)
	}
	t.hook("seal-files-written")

	st = t.state.clone()
	st.Intent = nil
	st.LastSealedSeq = evs[len(evs)-1].seq
	st.SealedChain = chainHex(walk.Hash)
	st.Pending = append(st.Pending, pending...)
	if err := t.writeState(st); err != nil {
		return err
	}
	t.stats.sealedEvents.Add(uint64(len(evs)))
	t.hook("seal-state-saved")

	if err := t.retireSegments(segs); err != nil {
		return err
	}
	t.hook("seal-segments-retired")
	return nil
}

func (t *Trail) retireSegments(segs []segInfo) error {
	for _, s := range segs {
		if err := t.root.remove(journalDir+"/"+s.Name, shapeSegment); err != nil {
			return fmt.Errorf("audit: retire journal segment: %w", err)
		}
	}
	return t.root.syncDir(t.sync, journalDir)
}

func indexPathFor(logRel string) string { return path.Join(indexDir, logRel+indexExt) }

// buildLogFile renders {"Records":[...]} from journal payloads (already
// compact JSON) and the matching event index.
func buildLogFile(chunk []sealEvent) ([]byte, []indexEntry) {
	size := len(`{"Records":[]}`)
	for _, e := range chunk {
		size += len(e.payload) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"Records":[`...)
	entries := make([]indexEntry, len(chunk))
	for i, e := range chunk {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.payload...)
		entries[i] = indexEntry{ID: e.meta.EventID, Hash: hex.EncodeToString(e.sum[:8])} // recordHash(e.payload)
	}
	b = append(b, `]}`...)
	return b, entries
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data) / 6)
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("audit: gzip: %w", err)
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("audit: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("audit: gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// emitDigests writes every digest that is due at now. Digests follow
// CloudTrail's cadence: each covers one hour of delivery time starting where
// the previous one ended (the first starts when the trail was created).
// Hours with no delivery during a downtime are covered by one digest whose
// span is a whole number of hours. With final (on Close), a last digest
// covers up to now, so a clean shutdown leaves no file unsigned.
func (t *Trail) emitDigests(ctx context.Context, now time.Time, final bool) error {
	if err := t.clearIntent(); err != nil {
		return err
	}
	if t.headDirty {
		if err := t.saveHead(ctx); err != nil {
			return err
		}
	}
	now = now.UTC().Truncate(time.Second)
	for {
		start := t.state.ChainStart
		if t.state.LastDigest != nil {
			start = t.state.LastDigest.DigestEndTime
		}
		end := start.Add(time.Hour)
		if end.After(now) {
			switch {
			case !final:
				return nil
			case now.After(start):
				end = now
			case len(t.state.Pending) > 0:
				// Closed within the second the chain's last digest ended
				// (a short run): digest times have second resolution, so
				// the final digest ends one second later rather than
				// leaving the delivered files unsigned.
				end = start.Add(time.Second)
			default:
				return nil
			}
		} else if !slices.ContainsFunc(t.state.Pending, func(p pendingFile) bool { return p.Delivered.Before(end) }) {
			end = start.Add(now.Sub(start).Truncate(time.Hour))
		}
		var files, rest []pendingFile
		for _, p := range t.state.Pending {
			if p.Delivered.Before(end) || final && !p.Delivered.After(end) {
				files = append(files, p)
			} else {
				rest = append(rest, p)
			}
		}
		if err := t.writeDigest(ctx, start, end, files, rest); err != nil {
			return err
		}
	}
}

func (t *Trail) writeDigest(ctx context.Context, start, end time.Time, files, rest []pendingFile) error {
	d := &Digest{
		AWSAccountID:               t.opts.AccountID,
		DigestStartTime:            formatDigestTime(start),
		DigestEndTime:              formatDigestTime(end),
		DigestS3Bucket:             t.opts.Bucket,
		DigestS3Object:             DigestFilePath(t.opts.AccountID, t.opts.Region, t.opts.TrailName, end),
		DigestPublicKeyFingerprint: t.opts.SigningKey.Fingerprint,
		DigestSignatureAlgorithm:   SignatureAlgorithm,
		LogFiles:                   make([]DigestLogFile, 0, len(files)),
	}
	var oldest, newest time.Time
	for _, f := range files {
		d.LogFiles = append(d.LogFiles, DigestLogFile{
			S3Bucket: t.opts.Bucket, S3Object: f.Path, HashValue: f.HashValue, HashAlgorithm: HashAlgorithm,
			NewestEventTime: formatDigestTime(f.NewestEventTime), OldestEventTime: formatDigestTime(f.OldestEventTime),
		})
		if oldest.IsZero() || f.OldestEventTime.Before(oldest) {
			oldest = f.OldestEventTime
		}
		if f.NewestEventTime.After(newest) {
			newest = f.NewestEventTime
		}
	}
	if len(files) > 0 {
		o, n := formatDigestTime(oldest), formatDigestTime(newest)
		d.OldestEventTime, d.NewestEventTime = &o, &n
	}
	if prev := t.state.LastDigest; prev != nil {
		bucket, obj, hv, alg, sig := t.opts.Bucket, prev.DigestS3Object, prev.HashValue, HashAlgorithm, prev.Signature
		d.PreviousDigestS3Bucket, d.PreviousDigestS3Object, d.PreviousDigestHashValue = &bucket, &obj, &hv
		d.PreviousDigestHashAlgorithm, d.PreviousDigestSignature = &alg, &sig
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("audit: encode digest: %w", err)
	}
	sum := sha256.Sum256(raw)
	sumHex := hex.EncodeToString(sum[:])
	sig, err := signDigest(t.opts.SigningKey, t.opts.Rand, StringToSign(d, sumHex))
	if err != nil {
		return err
	}
	gz, err := gzipBytes(raw)
	if err != nil {
		return err
	}

	st := t.state.clone()
	st.Intent = &sealIntent{Files: []string{d.DigestS3Object}}
	if err := t.writeState(st); err != nil {
		return err
	}
	t.hook("digest-intent-saved")
	if err := t.root.writeFileAtomic(t.sync, d.DigestS3Object, shapeDigest, gz); err != nil {
		return err
	}
	t.hook("digest-written")

	head := Head{DigestS3Object: d.DigestS3Object, DigestEndTime: end, HashValue: sumHex, Signature: sig}
	st = t.state.clone()
	st.Intent = nil
	st.LastDigest = &head
	st.Pending = append([]pendingFile{}, rest...)
	if !slices.Contains(st.Keys, t.opts.SigningKey.Fingerprint) {
		st.Keys = append(st.Keys, t.opts.SigningKey.Fingerprint)
		slices.Sort(st.Keys)
	}
	if err := t.writeState(st); err != nil {
		return err
	}
	t.stats.digests.Add(1)
	t.hook("digest-state-saved")
	if err := t.saveHead(ctx); err != nil {
		return err
	}
	t.hook("head-saved")
	return nil
}
