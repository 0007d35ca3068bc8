package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
)

// RawRecord is one event of a scan, as the JSON object it was read as.
type RawRecord struct {
	// Data is the event's JSON object. It is only valid during the
	// callback that receives it: copy what you keep.
	Data []byte
	// File is the ordinal of the input file in scan order (paths in the
	// order given, the files of a directory in delivery-name order), and
	// Index the record's ordinal within it: together they give a
	// deterministic input order whatever the parallelism.
	File  int
	Index int64
}

// ScanOptions tune Scan.
type ScanOptions struct {
	// Start and End bound eventTime (inclusive start, exclusive end); zero
	// means open. Files whose S3-layout path or delivery-file name shows
	// they hold nothing in range are not opened.
	Start, End time.Time
	// SkipBad counts an unreadable or malformed file or record in
	// ScanStats and goes on instead of stopping the scan.
	SkipBad bool
	// Workers is how many goroutines call fn (default GOMAXPROCS).
	Workers int
	// Stdin is read for the path "-".
	Stdin io.Reader
	// Progress, when set, is called about every 250 ms from one goroutine
	// with the running totals.
	Progress func(ScanStats)

	// blockSize replaces scanBlockSize in tests (tiny blocks put every
	// record near a block boundary).
	blockSize int
}

// ScanStats are a scan's totals, in Logs Insights' terms.
type ScanStats struct {
	Records      int64 // events handed to fn
	Bytes        int64 // bytes of JSON scanned (uncompressed)
	Files        int   // files opened
	FilesSkipped int   // files not opened (outside Start/End)
	BadFiles     int   // files skipped as unreadable or malformed (SkipBad)
	BadRecords   int64 // records skipped as malformed (SkipBad)
	Duplicates   int64 // events of a keyless trail met twice (same eventID), yielded once
}

// ScanError names the input and the byte offset (in the uncompressed
// stream) where a scan met input it cannot read.
type ScanError struct {
	File   string
	Offset int64
	Err    error
}

func (e *ScanError) Error() string {
	var pe *fs.PathError
	if e.Offset == 0 && errors.As(e.Err, &pe) {
		// Not opened or not listed: no byte to point at, and the
		// PathError names the file already.
		return fmt.Sprintf("audit: %v", e.Err)
	}
	return fmt.Sprintf("audit: %s: byte %d: %v", e.File, e.Offset, e.Err)
}
func (e *ScanError) Unwrap() error { return e.Err }

// Scan reads every event of the given inputs and hands them, in batches of
// one file's consecutive records, to fn from up to opts.Workers goroutines
// at once (worker is 0..Workers-1, so callers keep per-worker state without
// locks). It returns the totals, and the first error of fn or of the input
// (a *ScanError) unless opts.SkipBad.
//
// An input is a file, a directory, or "-" (opts.Stdin). A file is gzipped
// or not (told by its first bytes, not its name) and holds either one
// CloudTrail document — a delivery file {"Records":[...]}, a JSON array of
// events, or `aws cloudtrail lookup-events` output {"Events":[{...,
// "CloudTrailEvent":"<json>"}]} (the event is the string's content); other
// top-level keys are skipped — or NDJSON, one event object per line (blank
// lines are skipped). A file whose first value is an object whose first key
// is "Records" or "Events" is a document; any other object starts NDJSON
// (so a pretty-printed single event is not read: put it in a Records
// document). Documents may follow one another in a file (as `cat` or `zcat`
// of delivery files makes; gzip members likewise). A directory is walked for .json, .json.gz, .ndjson, .jsonl and
// .gz files in delivery-name order, skipping digest files; a keyless trail
// directory (or a data directory holding one in audit/) is read as one
// input, sealed files and journal together, each event once however the
// trail is sealed meanwhile (duplicates met are counted in Duplicates). The
// trail is only read: no lock is taken.
//
// Every record handed to fn is a syntactically valid JSON object (as
// encoding/json.Valid judges). Records are NOT filtered by time: the caller
// filters on eventTime; Start and End only prune files: a delivery file
// named ..._YYYYMMDDTHHMMZ_... holds events up to the end of that minute, so
// it is skipped when that minute ends at or before Start, and when it was
// delivered more than an hour after End (CloudTrail delivers within minutes
// of the event: one hour is the slack allowed); an S3 day folder
// (YYYY/MM/DD) is skipped when before Start's day or more than one day after
// End's. Skipped files count in FilesSkipped.
//
// Nothing is dropped silently: every event reaches fn or is counted bad.
// With SkipBad, a malformed NDJSON line counts in BadRecords (and keeps its
// Index); a file that cannot be opened or read, or a document that is not
// valid, counts in BadFiles and the rest of it is not read, while records of
// it already handed to fn stay handed and counted.
func Scan(ctx context.Context, paths []string, opts ScanOptions, fn func(worker int, batch []RawRecord) error) (ScanStats, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.blockSize <= 0 {
		opts.blockSize = scanBlockSize
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := opts.Workers
	// r goroutines read (and gunzip) inputs, one each at a time. Buffers in
	// use are bounded: one or two per reader, and what the workers hold or
	// wait for; more buffers than readers, so a reader always gets one.
	r := min(w, 8)
	nbuf := min(2*w, 32) + r + 1
	s := &scanner{
		ctx: ctx, cancel: cancel, opts: opts, fn: fn,
		blocks: make(chan *scanBlock, w),
		tokens: make(chan struct{}, nbuf),
		bufs:   make(chan []byte, nbuf),
	}
	srcs := s.listSources(paths)

	var progressDone chan struct{}
	if opts.Progress != nil {
		progressDone = make(chan struct{})
		stop := make(chan struct{})
		defer func() { close(stop); <-progressDone }()
		go func() {
			defer close(progressDone)
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					opts.Progress(s.stats())
				}
			}
		}()
	}

	// Readers take inputs in order; workers take blocks.
	var next atomic.Int64
	var readers, workers sync.WaitGroup
	for range r {
		readers.Go(func() {
			rd := &sourceReader{s: s}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(srcs) || ctx.Err() != nil {
					return
				}
				rd.read(srcs[i])
			}
		})
	}
	for i := range w {
		workers.Go(func() { s.work(i) })
	}
	readers.Wait()
	close(s.blocks)
	workers.Wait()

	st := s.stats()
	if err := s.firstErr(); err != nil {
		return st, err
	}
	return st, context.Cause(ctx) // the caller's cancellation, if any
}

// Block and record limits.
const (
	scanBlockSize = 4 << 20  // read size and target batch size
	maxScanRecord = 64 << 20 // a longer record is an error
	// deliverySlack is how long after an event CloudTrail may deliver it:
	// a file delivered later than End plus this is skipped.
	deliverySlack = time.Hour
)

// errStopFeed stops reading an input quietly (the scan or the file ended).
var errStopFeed = errors.New("audit: scan input stopped")

type scanSource struct {
	name  string // as given or found, for errors
	file  int
	stdin bool
	trail string // the directory of a keyless trail
	err   error  // found while listing
}

type blockKind uint8

const (
	blockNDJSON blockKind = iota // lines
	blockElems                   // array elements and their commas
	blockLookup                  // lookup-events elements
)

type scanBlock struct {
	buf   []byte // the pool buffer holding data
	data  []byte
	kind  blockKind
	src   *scanSource
	fst   *fileState
	base  int64 // stream offset of data[0]
	index int64 // Index of the first record
	// spans, when set, are the records of a blockElems block, validated
	// by the reader as it cut them (offsets in data): the workers only
	// slice them.
	spans [][2]int32
}

// fileState is shared by the reader and the workers of one input.
type fileState struct{ bad atomic.Bool }

type scanner struct {
	ctx    context.Context
	cancel context.CancelFunc
	opts   ScanOptions
	fn     func(int, []RawRecord) error
	blocks chan *scanBlock
	tokens chan struct{} // one per buffer in use: bounds memory
	bufs   chan []byte   // free buffers

	records, bytes, badRecords, dups atomic.Int64
	files, badFiles                  atomic.Int64
	skipped                          int

	mu  sync.Mutex
	err error
}

func (s *scanner) stats() ScanStats {
	return ScanStats{
		Records: s.records.Load(), Bytes: s.bytes.Load(),
		Files: int(s.files.Load()), FilesSkipped: s.skipped, BadFiles: int(s.badFiles.Load()),
		BadRecords: s.badRecords.Load(), Duplicates: s.dups.Load(),
	}
}

// fail records the scan's first error and stops it.
func (s *scanner) fail(err error) {
	s.mu.Lock()
	if s.err == nil && s.ctx.Err() == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *scanner) firstErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// badInput reports input that cannot be read: it stops the scan, or with
// SkipBad counts the file bad (once).
func (s *scanner) badInput(src *scanSource, fst *fileState, off int64, err error) {
	if se, ok := errors.AsType[*jsonSyntaxError](err); ok {
		err = se.Err
	}
	if s.opts.SkipBad {
		if fst == nil || fst.bad.CompareAndSwap(false, true) {
			s.badFiles.Add(1)
		}
		return
	}
	s.fail(&ScanError{File: src.name, Offset: off, Err: err})
}

func (s *scanner) getBuf() ([]byte, error) {
	select {
	case s.tokens <- struct{}{}:
	case <-s.ctx.Done():
		return nil, errStopFeed
	}
	select {
	case b := <-s.bufs:
		return b, nil
	default:
		return make([]byte, s.opts.blockSize), nil
	}
}

func (s *scanner) putBuf(b []byte) {
	if cap(b) == s.opts.blockSize {
		select {
		case s.bufs <- b[:s.opts.blockSize]:
		default:
		}
	}
	<-s.tokens
}

func (s *scanner) send(b *scanBlock) error {
	select {
	case s.blocks <- b:
		return nil
	case <-s.ctx.Done():
		s.putBuf(b.buf)
		return errStopFeed
	}
}

// listSources expands the inputs into files, pruned by time.
func (s *scanner) listSources(paths []string) []*scanSource {
	var out []*scanSource
	add := func(src *scanSource) {
		src.file = len(out)
		out = append(out, src)
	}
	for _, p := range paths {
		if p == "-" {
			add(&scanSource{name: p, stdin: true})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() {
			if err == nil && s.pruneName(filepath.Base(p)) {
				s.skipped++
				continue
			}
			add(&scanSource{name: p})
			continue
		}
		if dir, ok := keylessTrailDir(p); ok {
			add(&scanSource{name: p, trail: dir})
			continue
		}
		files, trails, bad := s.walk(p)
		for _, f := range files {
			add(&scanSource{name: f})
		}
		for _, t := range trails {
			add(t)
		}
		for _, b := range bad {
			add(b)
		}
	}
	return out
}

// keylessTrailDir finds the keyless trail of dir: dir itself or its audit/
// folder (a data directory), told by the seal state or journal segments.
func keylessTrailDir(dir string) (string, bool) {
	for _, d := range []string{dir, filepath.Join(dir, "audit")} {
		if fi, err := os.Stat(filepath.Join(d, filepath.FromSlash(stateFile))); err == nil && fi.Mode().IsRegular() {
			return d, true
		}
		if m, _ := filepath.Glob(filepath.Join(d, journalDir, "*"+segmentExt)); len(m) > 0 {
			return d, true
		}
	}
	return "", false
}

// scanFileName reports the names a directory walk reads.
func scanFileName(name string) bool {
	if strings.Contains(name, "_CloudTrail-Digest_") {
		return false
	}
	for _, ext := range []string{".json", ".ndjson", ".jsonl", ".gz"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

// walk lists the log files under root in delivery-name order (base name,
// then path), pruning by time. A keyless trail or data dir met below root
// (a folder of data dirs, a backup) is returned as one trail source, read
// as such: its journal and seal state are not log files. Folders it cannot
// read are returned as bad inputs.
func (s *scanner) walk(root string) (files []string, trails, bad []*scanSource) {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			bad = append(bad, &scanSource{name: p, err: fmt.Errorf("list files: %w", err)})
			return nil // the rest of the walk goes on
		}
		if d.IsDir() {
			if d.Name() == "CloudTrail-Digest" {
				return fs.SkipDir
			}
			if p != root {
				if dir, ok := keylessTrailDir(p); ok {
					trails = append(trails, &scanSource{name: p, trail: dir})
					return fs.SkipDir
				}
			}
			if p != root && s.pruneDay(p) {
				s.skipped += countScanFiles(p)
				return fs.SkipDir
			}
			return nil
		}
		if !scanFileName(d.Name()) {
			return nil
		}
		if s.pruneName(d.Name()) {
			s.skipped++
			return nil
		}
		out = append(out, p)
		return nil
	})
	slices.SortStableFunc(out, func(a, b string) int {
		if c := strings.Compare(filepath.Base(a), filepath.Base(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return out, trails, bad
}

func countScanFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && scanFileName(d.Name()) {
			n++
		}
		return nil
	})
	return n
}

// pruneDay reports an S3 day folder (…/YYYY/MM/DD) wholly outside the
// scan's time range.
func (s *scanner) pruneDay(p string) bool {
	if s.opts.Start.IsZero() && s.opts.End.IsZero() {
		return false
	}
	dd := filepath.Base(p)
	mm := filepath.Base(filepath.Dir(p))
	yyyy := filepath.Base(filepath.Dir(filepath.Dir(p)))
	if len(yyyy) != 4 || len(mm) != 2 || len(dd) != 2 {
		return false
	}
	day, err := time.Parse("2006/01/02", yyyy+"/"+mm+"/"+dd)
	if err != nil {
		return false
	}
	if !s.opts.Start.IsZero() && day.Before(s.opts.Start.UTC().Truncate(24*time.Hour)) {
		return true
	}
	return !s.opts.End.IsZero() && day.After(s.opts.End.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1))
}

// pruneName reports a delivery file whose name shows it holds no event in
// the scan's time range (see Scan).
func (s *scanner) pruneName(name string) bool {
	if s.opts.Start.IsZero() && s.opts.End.IsZero() {
		return false
	}
	t, ok := deliveryTime(name)
	if !ok {
		return false
	}
	if !s.opts.Start.IsZero() && !t.Add(time.Minute).After(s.opts.Start) {
		return true
	}
	return !s.opts.End.IsZero() && t.After(s.opts.End.Add(deliverySlack))
}

// deliveryTime finds the _YYYYMMDDTHHMMZ_ delivery minute in a file name.
func deliveryTime(name string) (time.Time, bool) {
	const n = len(logTimeFmt)
	for i := strings.IndexByte(name, '_'); i >= 0 && i+n+1 < len(name); {
		if name[i+n+1] == '_' && name[i+n] == 'Z' {
			if t, err := time.Parse(logTimeFmt, name[i+1:i+n+1]); err == nil {
				return t, true
			}
		}
		j := strings.IndexByte(name[i+1:], '_')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return time.Time{}, false
}

// sourceReader reads inputs one after the other, reusing its readers.
type sourceReader struct {
	s  *scanner
	br *bufio.Reader
	zr *gzip.Reader
}

func (rd *sourceReader) read(src *scanSource) {
	s := rd.s
	switch {
	case src.err != nil:
		s.badInput(src, nil, 0, src.err)
		return
	case src.trail != "":
		s.readTrail(src)
		return
	}
	var r io.Reader
	if src.stdin {
		if s.opts.Stdin == nil {
			s.badInput(src, nil, 0, errors.New("no standard input"))
			return
		}
		r = s.opts.Stdin
	} else {
		f, err := os.Open(src.name)
		if err != nil {
			s.badInput(src, nil, 0, err)
			return
		}
		defer f.Close()
		r = f
	}
	s.files.Add(1)
	if rd.br == nil {
		rd.br = bufio.NewReaderSize(r, 64<<10)
	} else {
		rd.br.Reset(r)
	}
	fd := &feeder{s: s, src: src, fst: &fileState{}, r: rd.br}
	if m, err := rd.br.Peek(2); err == nil && m[0] == 0x1f && m[1] == 0x8b {
		if rd.zr == nil {
			rd.zr = new(gzip.Reader)
		}
		if err := rd.zr.Reset(rd.br); err != nil {
			s.badInput(src, nil, 0, fmt.Errorf("gunzip: %w", err))
			return
		}
		fd.r, fd.gz = rd.zr, true
	}
	err := fd.run()
	if err != nil && !errors.Is(err, errStopFeed) {
		if se, ok := errors.AsType[*ScanError](err); ok {
			if s.opts.SkipBad {
				fd.flush(nil) // its complete records were read: hand them
			}
			s.badInput(src, fd.fst, se.Offset, se.Err)
		} else {
			s.fail(err)
		}
	}
	fd.release()
}

// feeder cuts one input stream into blocks at record boundaries.
type feeder struct {
	s   *scanner
	src *scanSource
	fst *fileState
	r   io.Reader
	gz  bool

	buf  []byte
	n    int   // bytes of buf read
	base int64 // stream offset of buf[0]
	pos  int   // parse position
	eof  bool

	// The pending block: buf[pend:pendEnd] holds count records from index.
	pend, pendEnd int
	count, index  int64
	kind          blockKind
	spans         [][2]int32 // of the pending blockElems records, from pend
	v             validator
}

func (f *feeder) errAt(off int, err error) error {
	return &ScanError{File: f.src.name, Offset: f.base + int64(off), Err: err}
}

func (f *feeder) release() {
	if f.buf != nil {
		f.s.putBuf(f.buf)
		f.buf = nil
	}
}

// flush hands the pending records to the workers; the data from keep on
// moves to nb (nil: none, at the end).
func (f *feeder) flush(nb []byte) error {
	if f.count == 0 {
		return nil
	}
	b := &scanBlock{buf: f.buf, data: f.buf[f.pend:f.pendEnd], kind: f.kind, src: f.src, fst: f.fst,
		base: f.base + int64(f.pend), index: f.index}
	if f.kind == blockElems {
		b.spans, f.spans = f.spans, nil
	}
	f.index += f.count
	f.count, f.pend, f.pendEnd = 0, 0, 0
	f.buf = nb
	return f.s.send(b)
}

// fill reads more input, making room first when the buffer is full: by
// handing the pending records to the workers, or dropping what is before
// keep, or growing the buffer. Positions move by what is dropped. It
// returns io.EOF at the end of the input.
func (f *feeder) fill(keep int) error {
	if f.s.ctx.Err() != nil || f.fst.bad.Load() {
		return errStopFeed
	}
	if f.buf == nil {
		b, err := f.s.getBuf()
		if err != nil {
			return err
		}
		f.buf = b
	}
	if f.eof {
		return io.EOF
	}
	if f.n == len(f.buf) {
		rest := f.n - keep
		switch {
		case f.count > 0:
			nb, err := f.s.getBuf()
			if err != nil {
				return err
			}
			if rest > len(nb)/2 {
				nb = make([]byte, max(len(nb), 2*rest))
			}
			copy(nb, f.buf[keep:f.n])
			if err := f.flush(nb); err != nil {
				return err
			}
		case keep > 0:
			copy(f.buf, f.buf[keep:f.n])
		default:
			if len(f.buf) >= maxScanRecord {
				return f.errAt(0, fmt.Errorf("a record longer than %d MB", maxScanRecord>>20))
			}
			nb := make([]byte, 2*len(f.buf))
			copy(nb, f.buf[:f.n])
			f.buf = nb
		}
		f.n, f.pos = rest, f.pos-keep
		f.base += int64(keep)
	}
	for {
		m, err := f.r.Read(f.buf[f.n:])
		f.n += m
		f.s.bytes.Add(int64(m))
		if err == io.EOF {
			f.eof = true
			if m == 0 {
				return io.EOF
			}
			return nil
		}
		if err != nil {
			if f.gz {
				hint := ""
				if errors.Is(err, io.ErrUnexpectedEOF) {
					hint = " (truncated file?)"
				}
				return f.errAt(f.n, fmt.Errorf("gunzip: %w%s", err, hint))
			}
			return f.errAt(f.n, err)
		}
		if m > 0 {
			return nil
		}
	}
}

// more is fill keeping everything from pos, with io.EOF returned as false.
func (f *feeder) more() (bool, error) {
	err := f.fill(f.pos)
	if err == io.EOF {
		return false, nil
	}
	return err == nil, err
}

// peek skips space and returns the next byte; ok is false at the end.
func (f *feeder) peek() (c byte, ok bool, err error) {
	for {
		f.pos = skipSpace(f.buf[:f.n], f.pos)
		if f.pos < f.n {
			return f.buf[f.pos], true, nil
		}
		if ok, err := f.more(); !ok {
			return 0, false, err
		}
	}
}

// mustPeek is peek where the input cannot end.
func (f *feeder) mustPeek() (byte, error) {
	c, ok, err := f.peek()
	if err == nil && !ok {
		err = f.errAt(f.n, errJSONEnd)
	}
	return c, err
}

// valueEnd returns the end of the value at pos (by its structure).
func (f *feeder) valueEnd() (int, error) {
	for {
		if e := structEnd(f.buf[:f.n], f.pos); e >= 0 {
			return e, nil
		}
		if f.eof {
			return 0, f.errAt(f.n, errJSONEnd)
		}
		if ok, err := f.more(); !ok && err != nil {
			return 0, err
		}
	}
}

// validEnd validates the record at pos and returns its end: for a
// Records array the reader both cuts and validates, in one walk over the
// bytes (a structural cut here and a validation in the workers walked
// them twice).
func (f *feeder) validEnd() (int, error) {
	if f.buf[f.pos] != '{' {
		return 0, f.errAt(f.pos, errNotObject)
	}
	for {
		e, err := f.v.value(f.buf[:f.n], f.pos)
		if err == nil {
			return e, nil
		}
		se, ok := errors.AsType[*jsonSyntaxError](err)
		if !ok {
			return 0, f.errAt(f.pos, err)
		}
		if !errors.Is(se.Err, errJSONEnd) || f.eof {
			return 0, f.errAt(se.Pos, se.Err)
		}
		// Cut short by the end of what is read so far: read more.
		if ok, err := f.more(); !ok && err != nil {
			return 0, err
		}
	}
}

// run reads the input: a document or NDJSON.
func (f *feeder) run() error {
	c, ok, err := f.peek()
	if err != nil || !ok {
		return err // an empty input has no records
	}
	switch c {
	case '[':
		f.pos++
		if err := f.array(blockElems); err != nil {
			return err
		}
		return f.end()
	case '{':
		doc, err := f.isDocument()
		if err != nil || !doc {
			if err != nil {
				return err
			}
			return f.ndjson()
		}
		// Documents may follow each other (cat or zcat of delivery files).
		for {
			if err := f.document(); err != nil {
				return err
			}
			c, ok, err := f.peek()
			if err != nil || !ok {
				if err != nil {
					return err
				}
				return f.flush(nil)
			}
			if c == '{' {
				if doc, err = f.isDocument(); err != nil {
					return err
				}
			}
			if c != '{' || !doc {
				return f.syntaxAt("after top-level value (data after the document)")
			}
		}
	}
	return f.errAt(f.pos, fmt.Errorf("invalid character %q looking for beginning of value (not JSON)", c))
}

// isDocument tells, at the first '{', a document (first key Records or
// Events) from NDJSON.
func (f *feeder) isDocument() (bool, error) {
	for {
		b := f.buf[:f.n]
		if j := skipSpace(b, f.pos+1); j < len(b) {
			if b[j] != '"' {
				return false, nil
			}
			if e := structEnd(b, j); e >= 0 {
				k := string(b[j:e])
				return k == `"Records"` || k == `"Events"`, nil
			}
		}
		if f.eof {
			return false, nil
		}
		if ok, err := f.more(); !ok && err != nil {
			return false, err
		}
	}
}

func (f *feeder) syntaxAt(ctx string) error {
	return f.errAt(f.pos, fmt.Errorf("invalid character %q %s", f.buf[f.pos], ctx))
}

// document reads {"Records":[...], ...} or {"Events":[...], ...}.
func (f *feeder) document() error {
	f.pos++ // '{'
	var v validator
	found := false
	for first := true; ; first = false {
		c, err := f.mustPeek()
		if err != nil {
			return err
		}
		if c == '}' && first {
			f.pos++
			break
		}
		if !first {
			if c == '}' {
				f.pos++
				break
			}
			if c != ',' {
				return f.syntaxAt("after object key:value pair")
			}
			f.pos++
			if c, err = f.mustPeek(); err != nil {
				return err
			}
		}
		if c != '"' {
			return f.syntaxAt("looking for beginning of object key string")
		}
		e, err := f.valueEnd()
		if err != nil {
			return err
		}
		if _, err := validString(f.buf[:e], f.pos+1); err != nil {
			return f.errAt(f.pos, err)
		}
		key := string(f.buf[f.pos:e])
		f.pos = e
		if c, err = f.mustPeek(); err != nil {
			return err
		}
		if c != ':' {
			return f.syntaxAt("after object key")
		}
		f.pos++
		if c, err = f.mustPeek(); err != nil {
			return err
		}
		if c == '[' && (key == `"Records"` || key == `"Events"`) {
			f.pos++
			kind := blockElems
			if key == `"Events"` {
				kind = blockLookup
			}
			if err := f.array(kind); err != nil {
				return err
			}
			found = true
			continue
		}
		// Another key: its value is checked and skipped.
		e, err = f.valueEnd()
		if err != nil {
			return err
		}
		if _, err := v.value(f.buf[:e], f.pos); err != nil {
			return f.errAt(f.pos, err)
		}
		f.pos = e
	}
	if !found {
		return f.errAt(f.pos, fmt.Errorf("%w: no Records or Events array", ErrBadLogFile))
	}
	return nil
}

// end checks that nothing follows the document and hands its last records.
func (f *feeder) end() error {
	_, ok, err := f.peek()
	if err != nil {
		return err
	}
	if ok {
		return f.syntaxAt("after top-level value (data after the document)")
	}
	return f.flush(nil)
}

// array reads elements up to the closing ']'. Elements are cut by their
// structure here; the workers validate them.
func (f *feeder) array(kind blockKind) error {
	if f.count > 0 { // a block holds the elements of one array
		nb, err := f.s.getBuf()
		if err != nil {
			return err
		}
		copy(nb, f.buf[f.pos:f.n])
		if err := f.flush(nb); err != nil {
			return err
		}
		f.n -= f.pos
		f.base += int64(f.pos)
		f.pos = 0
	}
	f.kind = kind
	c, err := f.mustPeek()
	if err != nil {
		return err
	}
	if c == ']' {
		f.pos++
		return nil
	}
	for {
		end := f.valueEnd
		if kind == blockElems {
			end = f.validEnd
		}
		e, err := end()
		if err != nil {
			return err
		}
		if f.count == 0 {
			f.pend = f.pos
		}
		if kind == blockElems {
			f.spans = append(f.spans, [2]int32{int32(f.pos - f.pend), int32(e - f.pend)})
		}
		f.pendEnd = e
		f.count++
		f.pos = e
		if c, err = f.mustPeek(); err != nil {
			return err
		}
		if c == ']' {
			f.pos++
			return nil
		}
		if c != ',' {
			return f.syntaxAt("after array element")
		}
		f.pos++
		if _, err = f.mustPeek(); err != nil {
			return err
		}
	}
}

// ndjson cuts the input at line ends; the workers split and validate the
// lines. The records (non-blank lines) are counted here so that each block
// knows its first Index.
func (f *feeder) ndjson() error {
	f.kind = blockNDJSON
	for {
		data := f.buf[f.pos:f.n]
		end := len(data)
		if !f.eof {
			end = bytes.LastIndexByte(data, '\n') + 1
		}
		if end > 0 {
			if f.count == 0 {
				f.pend = f.pos
			}
			f.count += countLines(data[:end])
			f.pendEnd = f.pos + end
			f.pos += end
		}
		if f.eof {
			return f.flush(nil)
		}
		if err := f.fill(f.pos); err != nil && err != io.EOF {
			return err
		}
	}
}

// countLines counts the lines of b holding more than space.
func countLines(b []byte) int64 {
	var n int64
	for len(b) > 0 {
		i := skipSpace(b, 0)
		if i == len(b) {
			break
		}
		if b[i] != '\n' {
			n++
		}
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			break
		}
		b = b[i+j+1:]
	}
	return n
}

// work validates and splits blocks and hands their records to fn.
func (s *scanner) work(w int) {
	var v validator
	var batch []RawRecord
	for b := range s.blocks {
		if s.ctx.Err() == nil {
			batch = s.process(w, b, &v, batch[:0])
			clear(batch)
		}
		s.putBuf(b.buf)
	}
}

var errNotObject = errors.New("record is not a JSON object")

func (s *scanner) process(w int, b *scanBlock, v *validator, batch []RawRecord) []RawRecord {
	d := b.data
	idx := b.index
	bad := func(i int, err error) {
		if se, ok := errors.AsType[*jsonSyntaxError](err); ok {
			i, err = se.Pos, se.Err
		}
		s.badInput(b.src, b.fst, b.base+int64(i), err)
	}
	switch {
	case b.kind == blockNDJSON:
		for off := 0; off < len(d); {
			line := d[off:]
			next := len(d)
			if j := bytes.IndexByte(line, '\n'); j >= 0 {
				line, next = line[:j], off+j+1
			}
			if i := skipSpace(line, 0); i < len(line) {
				err := errNotObject
				pos := i
				if line[i] == '{' {
					var end int
					if end, err = v.value(line, i); err == nil {
						if j := skipSpace(line, end); j < len(line) {
							err, pos = fmt.Errorf("invalid character %q after the record", line[j]), j
						} else {
							batch = append(batch, RawRecord{Data: line[i:end], File: b.src.file, Index: idx})
						}
					}
				}
				if err != nil {
					if se, ok := errors.AsType[*jsonSyntaxError](err); ok {
						pos, err = se.Pos, se.Err
					}
					if !s.opts.SkipBad {
						s.fail(&ScanError{File: b.src.name, Offset: b.base + int64(off+pos), Err: err})
						return batch
					}
					s.badRecords.Add(1)
				}
				idx++
			}
			off = next
		}
	case b.spans != nil:
		// Records array elements, cut and validated by the reader.
		for _, sp := range b.spans {
			batch = append(batch, RawRecord{Data: d[sp[0]:sp[1]], File: b.src.file, Index: idx})
			idx++
		}
	default:
		for i := 0; ; {
			i = skipSpace(d, i)
			if i >= len(d) || d[i] != '{' {
				bad(i, errNotObject)
				return batch
			}
			end, err := v.value(d, i)
			if err != nil {
				bad(i, err)
				return batch
			}
			rec := d[i:end]
			if b.kind == blockLookup {
				if rec, err = lookupEvent(v, rec); err != nil {
					bad(i, err)
					return batch
				}
			}
			batch = append(batch, RawRecord{Data: rec, File: b.src.file, Index: idx})
			idx++
			i = skipSpace(d, end)
			if i >= len(d) {
				break
			}
			if d[i] != ',' {
				bad(i, fmt.Errorf("invalid character %q after array element", d[i]))
				return batch
			}
			i++
		}
	}
	if len(batch) == 0 {
		return batch
	}
	s.records.Add(int64(len(batch)))
	if err := s.fn(w, batch); err != nil {
		s.fail(err)
	}
	return batch
}

// lookupEvent returns the event of a lookup-events element: the content of
// its CloudTrailEvent string.
func lookupEvent(v *validator, elem []byte) ([]byte, error) {
	var le struct {
		CloudTrailEvent *string
	}
	if err := json.Unmarshal(elem, &le); err != nil {
		return nil, err
	}
	if le.CloudTrailEvent == nil {
		return nil, errors.New("lookup-events element without CloudTrailEvent")
	}
	ev := []byte(*le.CloudTrailEvent)
	i := skipSpace(ev, 0)
	if i >= len(ev) || ev[i] != '{' {
		return nil, fmt.Errorf("CloudTrailEvent: %w", errNotObject)
	}
	if err := v.valid(ev); err != nil {
		return nil, fmt.Errorf("CloudTrailEvent: %w", err)
	}
	return ev, nil
}

// readTrail reads a keyless trail as one input, through the trail reader
// (each event once; see Read).
func (s *scanner) readTrail(src *scanSource) {
	fst := &fileState{}
	f := &feeder{s: s, src: src, fst: fst, kind: blockElems}
	defer f.release()
	rt := &rawTrail{}
	seen := map[string]bool{}
	for e, err := range readTrail(s.ctx, src.trail, ReadOptions{}, rt) {
		if err != nil {
			s.badInput(src, nil, 0, err)
			if !s.opts.SkipBad {
				return
			}
			continue
		}
		if !seen[e.Path] {
			seen[e.Path] = true
			s.files.Add(1)
		}
		if f.buf == nil {
			b, err := s.getBuf()
			if err != nil {
				return
			}
			f.buf = b
		}
		if need := f.n + len(e.raw) + 1; need > len(f.buf) {
			if f.count > 0 {
				nb, err := s.getBuf()
				if err != nil {
					return
				}
				if f.flush(nb) != nil {
					return
				}
				f.base += int64(f.n)
				f.n = 0
			}
			if len(e.raw)+1 > len(f.buf) {
				f.buf = slices.Grow(f.buf[:0], len(e.raw)+1)[:len(e.raw)+1]
			}
		}
		if f.count == 0 {
			f.pend = f.n
		} else {
			f.buf[f.n] = ','
			f.n++
		}
		f.n += copy(f.buf[f.n:], e.raw)
		f.pendEnd = f.n
		f.count++
		s.bytes.Add(int64(len(e.raw)))
	}
	s.dups.Add(rt.Duplicates)
	_ = f.flush(nil)
}
