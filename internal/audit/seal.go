package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"
)

// recover brings the directory back to a consistent state after any crash:
// temp files and half-done seals are discarded, the head store is brought
// level with the seal state, and a torn journal tail is truncated.
func (t *Trail) recover(ctx context.Context) error {
	if entries, err := os.ReadDir(t.path(tmpDir)); err == nil {
		for _, e := range entries {
			os.Remove(filepath.Join(t.path(tmpDir), e.Name()))
		}
	}
	st, err := loadState(t.dir)
	if err != nil {
		return err
	}
	if st == nil {
		st = &sealState{Version: stateVersion, ChainStart: t.opts.Now().UTC().Truncate(time.Second), Pending: []pendingFile{}}
		if err := saveState(t.sync, t.dir, st); err != nil {
			return err
		}
	}
	t.state = st
	if err := t.clearIntent(); err != nil {
		return err
	}
	if err := t.reconcileHead(ctx); err != nil {
		return err
	}
	last, err := t.scanJournal()
	if err != nil {
		return err
	}
	t.nextSeq = max(last, t.state.LastSealedSeq) + 1
	return nil
}

// clearIntent deletes the files of an unfinished seal or digest: no state
// references them, and the journal still holds their events.
func (t *Trail) clearIntent() error {
	if t.state.Intent == nil {
		return nil
	}
	dirs := map[string]bool{}
	for _, f := range t.state.Intent.Files {
		p := t.path(f)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: discard unfinished seal: %w", err)
		}
		dirs[filepath.Dir(p)] = true
	}
	for d := range dirs {
		if err := syncDir(t.sync, d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	st := t.state.clone()
	st.Intent = nil
	if err := saveState(t.sync, t.dir, st); err != nil {
		return err
	}
	t.state = st
	return nil
}

func (t *Trail) reconcileHead(ctx context.Context) error {
	h, err := t.opts.Head.Load(ctx)
	last := t.state.LastDigest
	switch {
	case errors.Is(err, ErrNoHead):
		if last == nil {
			return nil
		}
	case err != nil:
		return fmt.Errorf("audit: load digest head: %w", err)
	case last == nil || h.DigestEndTime.After(last.DigestEndTime):
		// The trail lost digests the head store knows about (restored from
		// an old backup, or state deleted): continuing would fork the chain.
		return fmt.Errorf("%w: head %s", ErrHeadAhead, h.DigestS3Object)
	case sameHead(h, *last):
		return nil
	}
	// A crash between writing the digest and saving the head.
	if err := t.opts.Head.Save(ctx, *last); err != nil {
		return fmt.Errorf("audit: save digest head: %w", err)
	}
	return nil
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

func listSegments(dir string) ([]segInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("audit: list journal: %w", err)
	}
	var out []segInfo
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
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

// readSegment calls fn for each good frame, in order, until the end or the
// first damaged frame (reported in TailErr, not as an error). The error is
// for I/O failures and errors returned by fn.
func readSegment(p string, fn func(frame) error) (segScan, error) {
	f, err := os.Open(p)
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

// scanJournal checks every segment on open. Only the tail of the newest
// segment may be damaged (the write a crash interrupted); it is truncated
// unless a valid frame follows the damage, which means corruption of
// acknowledged events rather than a torn write, and opening is refused.
func (t *Trail) scanJournal() (uint64, error) {
	jdir := t.path(journalDir)
	segs, err := listSegments(jdir)
	if err != nil {
		return 0, err
	}
	var last uint64
	for i, s := range segs {
		p := filepath.Join(jdir, s.Name)
		expect := s.First
		sc, err := readSegment(p, func(f frame) error {
			if f.Seq != expect {
				return fmt.Errorf("%w: %s: frame seq %d, want %d", ErrCorrupt, s.Name, f.Seq, expect)
			}
			expect++
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
			if found, err := validFrameAfter(p, sc.GoodLen, after); err != nil {
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
				if err := t.truncateSegment(p, sc.GoodLen); err != nil {
					return 0, err
				}
				t.stats.tornTails.Add(1)
				t.log.Warn("audit journal: truncated torn tail", "segment", s.Name, "offset", sc.GoodLen, "cause", sc.TailErr)
			}
		}
		if sc.Frames == 0 {
			// Created but never written (a crash right after a rotation).
			if err := os.Remove(p); err != nil {
				return 0, fmt.Errorf("audit: remove empty segment: %w", err)
			}
			if err := syncDir(t.sync, jdir); err != nil {
				return 0, err
			}
			continue
		}
		last = sc.LastSeq
	}
	return last, nil
}

func (t *Trail) truncateSegment(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
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

// validFrameAfter looks past damage at offset from for any well-formed frame
// with a later sequence number.
func validFrameAfter(p string, from int64, afterSeq uint64) (bool, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return false, fmt.Errorf("audit: read segment: %w", err)
	}
	for off := from + 1; off+frameHeaderSize <= int64(len(data)); off++ {
		h := data[off : off+frameHeaderSize]
		seq := binary.LittleEndian.Uint64(h[8:16])
		size := int64(binary.LittleEndian.Uint32(h[0:4]))
		if seq <= afterSeq || seq-afterSeq > 1<<32 || off+frameHeaderSize+size > int64(len(data)) {
			continue
		}
		payload := data[off+frameHeaderSize : off+frameHeaderSize+size]
		if frameCRC(seq, payload) == binary.LittleEndian.Uint32(h[4:8]) {
			return true, nil
		}
	}
	return false, nil
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
}

// sealSegments seals every journal segment older than active into delivery
// files. Steps, each crash-safe (see sealState): save intent, write files,
// save result, delete segments.
func (t *Trail) sealSegments(active uint64, now time.Time) error {
	if err := t.clearIntent(); err != nil {
		return err
	}
	jdir := t.path(journalDir)
	all, err := listSegments(jdir)
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
	var evs []sealEvent
	for _, s := range segs {
		sc, err := readSegment(filepath.Join(jdir, s.Name), func(f frame) error {
			if f.Seq <= sealed {
				return nil // sealed before a crash; the segment was not yet deleted
			}
			m, err := parseEventMeta(f.Payload)
			if err != nil {
				return fmt.Errorf("%w: %s seq %d: %w", ErrCorrupt, s.Name, f.Seq, err)
			}
			evs = append(evs, sealEvent{seq: f.Seq, payload: f.Payload, meta: m})
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
	if evs[0].seq != sealed+1 {
		t.log.Warn("audit journal: sequence gap before sealing", "lastSealed", sealed, "next", evs[0].seq)
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
			if _, err := os.Lstat(t.path(rels[i])); errors.Is(err, fs.ErrNotExist) && !slices.Contains(rels[:i], rels[i]) {
				break
			}
		}
		intent.Files = append(intent.Files, rels[i], indexPathFor(rels[i]))
	}
	st := t.state.clone()
	st.Intent = intent
	if err := saveState(t.sync, t.dir, st); err != nil {
		return err
	}
	t.state = st
	t.hook("seal-intent-saved")

	pending := make([]pendingFile, 0, len(chunks))
	for i, chunk := range chunks {
		content, entries := buildLogFile(chunk)
		sum := sha256.Sum256(content)
		gz, err := gzipBytes(content)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(t.sync, t.dir, t.path(tmpDir), t.path(indexPathFor(rels[i])), encodeIndex(entries)); err != nil {
			return err
		}
		if err := writeFileAtomic(t.sync, t.dir, t.path(tmpDir), t.path(rels[i]), gz); err != nil {
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
	st.Pending = append(st.Pending, pending...)
	if err := saveState(t.sync, t.dir, st); err != nil {
		return err
	}
	t.state = st
	t.stats.sealedEvents.Add(uint64(len(evs)))
	t.hook("seal-state-saved")

	if err := t.retireSegments(segs); err != nil {
		return err
	}
	t.hook("seal-segments-retired")
	return nil
}

func (t *Trail) retireSegments(segs []segInfo) error {
	jdir := t.path(journalDir)
	for _, s := range segs {
		if err := os.Remove(filepath.Join(jdir, s.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: retire journal segment: %w", err)
		}
	}
	return syncDir(t.sync, jdir)
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
		entries[i] = indexEntry{ID: e.meta.EventID, Hash: recordHash(e.payload)}
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
		if err := t.opts.Head.Save(ctx, *t.state.LastDigest); err != nil {
			return fmt.Errorf("audit: save digest head: %w", err)
		}
		t.headDirty = false
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
	if err := saveState(t.sync, t.dir, st); err != nil {
		return err
	}
	t.state = st
	t.hook("digest-intent-saved")
	if err := writeFileAtomic(t.sync, t.dir, t.path(tmpDir), t.path(d.DigestS3Object), gz); err != nil {
		return err
	}
	t.hook("digest-written")

	head := Head{DigestS3Object: d.DigestS3Object, DigestEndTime: end, HashValue: sumHex, Signature: sig}
	st = t.state.clone()
	st.Intent = nil
	st.LastDigest = &head
	st.Pending = append([]pendingFile{}, rest...)
	if err := saveState(t.sync, t.dir, st); err != nil {
		return err
	}
	t.state = st
	t.stats.digests.Add(1)
	t.hook("digest-state-saved")
	if err := t.opts.Head.Save(ctx, head); err != nil {
		t.headDirty = true
		return fmt.Errorf("audit: save digest head: %w", err)
	}
	t.hook("head-saved")
	return nil
}
