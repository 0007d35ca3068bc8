package audit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a [Trail]. Dir, AccountID, Region, SigningKey, Head and
// MACKey are required.
type Options struct {
	Dir       string // trail directory (DATA/audit)
	AccountID string // 12 digits: delivery paths and awsAccountId
	Region    string // the trail's home region: delivery and digest paths
	TrailName string // in digest file names; default "keyless"
	Bucket    string // s3Bucket / digestS3Bucket values; default "keyless-audit"

	SigningKey SigningKey // signs digests (SHA256withRSA)
	Head       HeadStore  // keeps the newest digest signature outside Dir
	// MACKey (MACKeySize bytes, derived from the master key) authenticates
	// the head and the seal state (see auth.go). Keep it out of Dir.
	MACKey []byte
	// CheckpointInterval is how often the head records the journal's
	// synced position while events arrive (default 1s; negative: only at
	// seals, digests and Close). Events written after the last checkpoint
	// are the ones a data-dir writer could remove after a crash unnoticed.
	CheckpointInterval time.Duration

	Now        func() time.Time      // default time.Now
	Rand       io.Reader             // file-name suffixes; default crypto/rand.Reader
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // optional; metrics are unregistered on Close

	// QueueSize bounds the events waiting for the journal writer (default
	// 8192). With MaxEventBytes it bounds the memory the trail can hold.
	QueueSize int
	// EnqueueTimeout is how long Record waits for queue space when the disk
	// is slower than the callers before failing with ErrBackpressure
	// (default 2s; the caller's context can end the wait sooner).
	EnqueueTimeout time.Duration
	// FlushDelay bounds how long a batched (non-durable) event stays
	// written but not fsynced (default 200ms).
	FlushDelay time.Duration
	// GroupCommitWindow is how long the writer keeps collecting durable
	// events before an fsync when durable events arrive fast (at least
	// windowMinRate per second; default 1ms; negative disables). An fsync
	// costs the kernel hundreds of microseconds of CPU whatever its size,
	// so under load waiting for more events to share it raises throughput;
	// under light load the window is skipped and latency is unchanged.
	GroupCommitWindow time.Duration
	// SealInterval is how often the journal is sealed into delivery files
	// and due digests are written (default 5m; negative disables the
	// background sealer: call Seal yourself).
	SealInterval time.Duration
	// MaxSegmentBytes rolls the journal to a new segment (default 64 MiB).
	MaxSegmentBytes int64
	// MaxEventBytes rejects larger events with ErrEventTooLarge (default
	// 256 KiB; CloudTrail caps requestParameters at 100 KB).
	MaxEventBytes int
	// MaxEventsPerFile splits a seal into several delivery files (default
	// 10000).
	MaxEventsPerFile int
	// Sync makes a file or directory durable; default (*os.File).Sync.
	// Tests inject slow or counting versions.
	Sync func(*os.File) error
	// Disk bounds the trail's disk use (see DiskLimits; default: none).
	Disk DiskLimits

	// sealHook, when set (tests only), is called at each crash-relevant step
	// of sealing.
	sealHook func(step string)
}

// Errors returned by a Trail.
var (
	ErrClosed        = errors.New("audit: trail closed")
	ErrBackpressure  = errors.New("audit: journal queue full (disk too slow)")
	ErrEventTooLarge = errors.New("audit: event too large")
	ErrJournalFailed = errors.New("audit: journal failed")
	ErrCorrupt       = errors.New("audit: corrupt journal")
	ErrHeadAhead     = errors.New("audit: digest head store is ahead of the trail's seal state")
)

// Trail is keyless's audit trail on disk: a [Recorder] whose events go
// through a write-ahead journal with group commit, and are sealed
// periodically into CloudTrail delivery files covered by signed hourly
// digests.
type Trail struct {
	opts Options
	dir  string
	root *trailRoot // every file operation goes through it (confine.go)
	sync syncFunc
	log  *slog.Logger
	lock *os.File

	reqs       chan *writeReq
	rotateReqs chan chan rotation
	writerDone chan struct{}

	mu      sync.Mutex // guards closed; taken briefly by Record
	closed  bool
	senders sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	failed atomic.Pointer[error] // sticky journal failure

	sealMu    sync.Mutex // one seal at a time; guards state, head, headDirty, adopting
	state     *sealState
	head      Head // the newest head saved (zero before the first)
	headDirty bool
	adopting  bool // opening a trail written before authentication

	posMu  sync.Mutex
	synced chainPos // journal durable through here (set by the writer)

	stopCheckpointer chan struct{}
	checkpointerDone chan struct{}

	stopSealer chan struct{}
	sealerDone chan struct{}

	stats   counters
	metrics *metrics
	disk    *diskUse // disk accounting and limits (diskuse.go)

	// Write requests, with the buffer their event is encoded into, are
	// recycled: they are per-event garbage on the exchange path otherwise.
	// A batched request goes back once the writer has written it; a
	// durable one once its caller has read the result.
	requests sync.Pool // *writeReq

	// Owned by the writer goroutine (and by Open before it starts).
	seg       *os.File
	segFirst  uint64
	segSize   int64
	segFrames int
	nextSeq   uint64
	chain     chainHash // chain hash after frame nextSeq-1
}

type writeReq struct {
	t       *Trail
	payload []byte   // the encoded event, in buf's storage
	sum     [32]byte // SHA-256 of payload, for the journal chain
	buf     []byte   // owned; reused with the request
	durable bool
	done    chan error // buffered, capacity 1
}

// maxPooledPayload keeps unusually large events' buffers out of the pool.
const maxPooledPayload = 64 << 10

func (t *Trail) newRequest(durable bool) *writeReq {
	r, _ := t.requests.Get().(*writeReq)
	if r == nil {
		r = &writeReq{t: t, buf: make([]byte, 0, 4096), done: make(chan error, 1)}
	}
	r.durable = durable
	return r
}

// releaseRequest recycles r once nothing will send on or read from r.done.
func (t *Trail) releaseRequest(r *writeReq) {
	if cap(r.payload) > maxPooledPayload {
		r.buf = nil
	} else if r.payload != nil {
		r.buf = r.payload[:0] // keep a buffer that grew
	}
	r.payload = nil
	t.requests.Put(r)
}

type rotation struct {
	active uint64 // first seq of the segment now being written
	err    error
}

const maxBatch = 4096

// windowMinRate is the durable event rate (per second) from which the
// writer waits GroupCommitWindow for more events before an fsync. Below it
// the fsyncs' CPU is small beside the exchanges' own, and waiting would only
// add latency; above it, sharing each fsync wider leaves more CPU for
// exchanges.
const windowMinRate = 4000

// Open opens (creating if needed) the trail in opts.Dir, recovers from any
// crash (torn journal tail, half-done seal), and starts the journal writer
// and the background sealer.
func Open(ctx context.Context, opts Options) (*Trail, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("audit: trail dir: %w", err)
	}
	t := &Trail{
		opts:       opts,
		dir:        dir,
		sync:       opts.Sync,
		log:        opts.Logger,
		reqs:       make(chan *writeReq, opts.QueueSize),
		rotateReqs: make(chan chan rotation),
		writerDone: make(chan struct{}),
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audit: create trail dir: %w", err)
	}
	if t.root, err = openTrailRoot(dir); err != nil {
		return nil, err
	}
	if err := t.makeDirs(); err != nil {
		t.root.Close()
		return nil, err
	}
	if t.lock, err = lockDir(t.root, lockFile); err != nil {
		t.root.Close()
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			if t.seg != nil {
				t.seg.Close()
			}
			t.lock.Close()
			t.root.Close()
		}
	}()
	if err := t.recover(ctx); err != nil {
		return nil, err
	}
	if err := t.openSegment(); err != nil {
		return nil, err
	}
	if t.disk, err = newDiskUse(dir, opts.Disk, opts.Now, opts.Logger); err != nil {
		return nil, err
	}
	if opts.Registerer != nil {
		if t.metrics, err = newMetrics(t, opts.Registerer); err != nil {
			return nil, err
		}
	}
	ok = true
	go t.runWriter()
	if opts.CheckpointInterval > 0 {
		t.stopCheckpointer = make(chan struct{})
		t.checkpointerDone = make(chan struct{})
		go t.runCheckpointer()
	}
	if opts.SealInterval > 0 {
		t.stopSealer = make(chan struct{})
		t.sealerDone = make(chan struct{})
		go t.runSealer()
	}
	return t, nil
}

func (o *Options) fill() error {
	if o.Dir == "" {
		return errors.New("audit: Options.Dir is required")
	}
	if !isAccountID(o.AccountID) {
		return fmt.Errorf("audit: Options.AccountID %q is not 12 digits", o.AccountID)
	}
	if !isRegion(o.Region) {
		return fmt.Errorf("audit: Options.Region %q is not a region name", o.Region)
	}
	if o.SigningKey.Signer == nil || o.SigningKey.Fingerprint == "" {
		return errors.New("audit: Options.SigningKey is required (use NewSigningKey)")
	}
	if o.Head == nil {
		return errors.New("audit: Options.Head is required")
	}
	if len(o.MACKey) != MACKeySize {
		return fmt.Errorf("audit: Options.MACKey is required (%d bytes, derived from the master key), got %d bytes", MACKeySize, len(o.MACKey))
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = time.Second
	}
	if o.TrailName == "" {
		o.TrailName = "keyless"
	}
	if o.Bucket == "" {
		o.Bucket = "keyless-audit"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 8192
	}
	if o.EnqueueTimeout <= 0 {
		o.EnqueueTimeout = 2 * time.Second
	}
	if o.GroupCommitWindow == 0 {
		o.GroupCommitWindow = time.Millisecond
	}
	if o.FlushDelay <= 0 {
		o.FlushDelay = 200 * time.Millisecond
	}
	if o.SealInterval == 0 {
		o.SealInterval = 5 * time.Minute
	}
	if o.MaxSegmentBytes <= 0 {
		o.MaxSegmentBytes = 64 << 20
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = 256 << 10
	}
	if o.MaxEventBytes > maxFramePayload {
		o.MaxEventBytes = maxFramePayload
	}
	if o.MaxEventsPerFile <= 0 {
		o.MaxEventsPerFile = 10000
	}
	if o.Sync == nil {
		o.Sync = defaultSync
	}
	return nil
}

// makeDirs creates the trail's own directories, refusing any that is a
// symbolic link or not a directory.
func (t *Trail) makeDirs() error {
	if err := t.root.checkOwnedDirs(); err != nil {
		return err
	}
	for _, d := range ownedDirs {
		if err := t.root.root.Mkdir(d, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("audit: create %s: %w", d, err)
		}
	}
	return t.root.checkOwnedDirs()
}

func (t *Trail) hook(step string) {
	if t.opts.sealHook != nil {
		t.opts.sealHook(step)
	}
}

// Record appends ev to the journal. Batched events return once queued;
// [Durable] events return once fsynced (sharing one fsync with every event
// that arrived meanwhile). When the queue is full Record waits up to
// EnqueueTimeout (or ctx) and then fails with ErrBackpressure, so memory
// stays bounded when the disk is slow. ev is not retained.
func (t *Trail) Record(ctx context.Context, ev *Event, opts ...RecordOption) error {
	p, err := t.Start(ctx, ev, opts...)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Start encodes ev and queues it for the journal like Record, without
// waiting for a durable event's fsync: the returned Pending's Wait does
// that. ev is not retained.
func (t *Trail) Start(ctx context.Context, ev *Event, opts ...RecordOption) (Pending, error) {
	o := applyRecordOptions(opts)
	req := t.newRequest(o.durable)
	payload, err := encodeEvent(req.buf[:0], ev)
	req.payload = payload
	if err != nil {
		t.releaseRequest(req)
		return nil, err
	}
	if len(payload) > t.opts.MaxEventBytes {
		t.releaseRequest(req)
		return nil, fmt.Errorf("%w: %d bytes (limit %d), eventID %s", ErrEventTooLarge, len(payload), t.opts.MaxEventBytes, ev.EventID)
	}
	// Hashed here, by the callers in parallel: the writer only chains.
	req.sum = sha256.Sum256(payload)
	if err := t.failure(); err != nil {
		t.releaseRequest(req)
		return nil, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.releaseRequest(req)
		return nil, ErrClosed
	}
	t.senders.Add(1)
	t.mu.Unlock()

	// The frame's bytes are reserved against the disk limits (diskuse.go).
	frame := len(payload) + frameHeaderSize
	if err := t.disk.admit(frame); err != nil {
		t.senders.Done()
		t.releaseRequest(req)
		return nil, err
	}
	err = t.enqueue(ctx, req)
	t.senders.Done()
	if err != nil {
		t.disk.release(frame)
		t.stats.rejected.Add(1)
		t.releaseRequest(req)
		return nil, err
	}
	// From here the writer owns the request: it recycles a batched one
	// itself and replies on a durable one's done channel.
	if !o.durable {
		return completed{}, nil
	}
	return req, nil
}

// Wait waits for the durable write of a request Start queued.
func (r *writeReq) Wait(ctx context.Context) error {
	select {
	case err := <-r.done:
		r.t.releaseRequest(r)
		return err
	case <-ctx.Done():
		// The event may still be written; the caller must treat the
		// operation as failed (no credentials handed out). r is not
		// recycled: the writer will still reply on it.
		return fmt.Errorf("audit: waiting for durable write: %w", ctx.Err())
	}
}

func (t *Trail) enqueue(ctx context.Context, req *writeReq) error {
	select {
	case t.reqs <- req:
		return nil
	default:
	}
	t.stats.backpressure.Add(1)
	timer := time.NewTimer(t.opts.EnqueueTimeout)
	defer timer.Stop()
	select {
	case t.reqs <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: waiting for journal queue: %w", ctx.Err())
	case <-timer.C:
		return fmt.Errorf("%w: %d events queued", ErrBackpressure, len(t.reqs))
	}
}

func (t *Trail) failure() error {
	if p := t.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the journal fail-stop: after a write or fsync error the state of
// the file is unknown, so no later event may be acknowledged.
func (t *Trail) fail(err error) {
	err = fmt.Errorf("%w: %w", ErrJournalFailed, err)
	if t.failed.CompareAndSwap(nil, &err) {
		t.log.Error("audit journal failed; refusing further events", "err", err)
	}
}

// Ready reports nil when the trail accepts events.
func (t *Trail) Ready() error {
	if err := t.failure(); err != nil {
		return err
	}
	if err := t.disk.ready(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	return nil
}

func (t *Trail) runWriter() {
	defer close(t.writerDone)
	batch := make([]*writeReq, 0, 64)
	buf := make([]byte, 0, 256<<10)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var flushC <-chan time.Time
	dirty := false // bytes written since the last fsync
	window := time.NewTimer(time.Hour)
	window.Stop()
	defer window.Stop()
	// The durable event rate, measured over the interval between the two
	// latest durable groups, decides whether the window is worth waiting.
	var lastGroupAt time.Time
	rate := 0.0
	// A rotation (Seal) waits for the events queued before it was asked:
	// a Record that returned before Seal was called is sealed by it.
	var pendingRotate chan rotation
	rotateAfter := 0
	for {
		if pendingRotate != nil && rotateAfter <= 0 {
			pendingRotate <- t.rotate(&dirty)
			pendingRotate = nil
		}
		var first *writeReq
		select {
		case r, ok := <-t.reqs:
			if !ok {
				t.finishWriter(dirty)
				if pendingRotate != nil {
					pendingRotate <- rotation{active: math.MaxUint64}
				}
				return
			}
			first = r
		case <-flushC:
			flushC = nil
			if dirty {
				dirty = false
				if err := t.syncSegment(); err != nil {
					t.fail(err)
				}
			}
			continue
		case reply := <-t.rotateReqs:
			if n := len(t.reqs); n > 0 {
				pendingRotate, rotateAfter = reply, n
			} else {
				reply <- t.rotate(&dirty)
			}
			continue
		}

		batch = append(batch[:0], first)
		closing := false
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-t.reqs:
				if !ok {
					closing = true
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		// Group commit window: when the previous durable group was already
		// large, callers are many; give them a moment to join this fsync.
		// Under light load (a few events per fsync) waiting would add
		// latency for little: the fsync goes out at once.
		if !closing && t.opts.GroupCommitWindow > 0 && rate >= windowMinRate && hasDurable(batch) {
			window.Reset(t.opts.GroupCommitWindow)
		collect:
			for len(batch) < maxBatch {
				select {
				case r, ok := <-t.reqs:
					if !ok {
						closing = true
						break collect
					}
					batch = append(batch, r)
				case <-window.C:
					break collect
				}
			}
			if !window.Stop() {
				select {
				case <-window.C:
				default:
				}
			}
		}
		if hasDurable(batch) {
			now := time.Now()
			if d := now.Sub(lastGroupAt); !lastGroupAt.IsZero() && d > 0 {
				rate = float64(len(batch)) / d.Seconds()
			}
			lastGroupAt = now
		}
		rotateAfter -= len(batch)

		durable, err := t.writeBatch(batch, &buf)
		if err == nil && len(buf) > 0 {
			dirty = true
		}
		if err == nil && (durable || closing) && dirty {
			dirty = false
			if err = t.syncSegment(); err != nil {
				t.fail(err)
				err = t.failure()
			}
		}
		if err == nil {
			err = t.failure()
		}
		for _, r := range batch {
			if r.durable {
				r.done <- err
			} else {
				t.releaseRequest(r)
			}
		}
		clear(batch)
		if closing {
			t.finishWriter(dirty)
			if pendingRotate != nil {
				// The writer is done: everything journaled is sealable.
				pendingRotate <- rotation{active: math.MaxUint64}
			}
			return
		}
		if dirty && flushC == nil {
			timer.Reset(t.opts.FlushDelay)
			flushC = timer.C
		}
		if err == nil && t.segSize >= t.opts.MaxSegmentBytes {
			if r := t.rotate(&dirty); r.err != nil {
				t.fail(r.err)
			}
		}
	}
}

// writeBatch frames and writes a batch with one write call. It reports
// whether any event asked for durability.
func (t *Trail) writeBatch(batch []*writeReq, buf *[]byte) (durable bool, err error) {
	*buf = (*buf)[:0]
	if err := t.failure(); err != nil {
		return false, err
	}
	for _, r := range batch {
		*buf = appendFrame(*buf, t.nextSeq, &t.chain, r.payload)
		t.chain = chainNext(&t.chain, t.nextSeq, &r.sum)
		t.nextSeq++
		durable = durable || r.durable
	}
	if _, err := t.seg.Write(*buf); err != nil {
		t.fail(fmt.Errorf("write journal: %w", err))
		return durable, t.failure()
	}
	t.segSize += int64(len(*buf))
	t.segFrames += len(batch)
	t.disk.wrote(len(*buf))
	t.stats.events.Add(uint64(len(batch)))
	t.stats.batches.Add(1)
	for _, r := range batch {
		if r.durable {
			t.stats.durableEvents.Add(1)
		}
	}
	return durable, nil
}

func (t *Trail) syncSegment() error {
	start := time.Now()
	err := t.sync(t.seg)
	t.stats.fsyncs.Add(1)
	if t.metrics != nil {
		t.metrics.fsyncSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		return fmt.Errorf("fsync journal: %w", err)
	}
	t.setSynced(chainPos{seq: t.nextSeq - 1, hash: t.chain})
	return nil
}

func (t *Trail) finishWriter(dirty bool) {
	if dirty && t.failure() == nil {
		if err := t.syncSegment(); err != nil {
			t.fail(err)
		}
	}
	if err := t.seg.Close(); err != nil && t.failure() == nil {
		t.fail(fmt.Errorf("close journal: %w", err))
	}
}

// rotate closes the current segment (when it holds frames) and starts a new
// one; segments before the returned active one are immutable from then on.
func (t *Trail) rotate(dirty *bool) rotation {
	if err := t.failure(); err != nil {
		return rotation{err: err}
	}
	if t.segFrames == 0 {
		return rotation{active: t.segFirst}
	}
	if *dirty {
		*dirty = false
		if err := t.syncSegment(); err != nil {
			t.fail(err)
			return rotation{err: t.failure()}
		}
	}
	if err := t.seg.Close(); err != nil {
		t.fail(fmt.Errorf("close journal segment: %w", err))
		return rotation{err: t.failure()}
	}
	if err := t.openSegment(); err != nil {
		t.fail(err)
		return rotation{err: t.failure()}
	}
	return rotation{active: t.segFirst}
}

func (t *Trail) openSegment() error {
	rel := journalDir + "/" + segmentName(t.nextSeq)
	if err := t.root.check(rel, shapeSegment); err != nil {
		return err
	}
	f, err := t.root.root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("audit: create journal segment: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		return fmt.Errorf("audit: write journal segment: %w", err)
	}
	// The entry must survive a crash for the fsyncs of its frames to count.
	if err := t.root.syncDir(t.sync, journalDir); err != nil {
		f.Close()
		return err
	}
	t.seg, t.segFirst, t.segSize, t.segFrames = f, t.nextSeq, int64(len(segMagic)), 0
	return nil
}

// requestRotate asks the writer to roll the segment and returns the first
// sequence number of the segment it now writes; every older segment is
// closed.
func (t *Trail) requestRotate() (uint64, error) {
	reply := make(chan rotation, 1)
	select {
	case t.rotateReqs <- reply:
	case <-t.writerDone:
		return math.MaxUint64, nil
	}
	r := <-reply
	return r.active, r.err
}

func (t *Trail) runSealer() {
	defer close(t.sealerDone)
	tick := time.NewTicker(t.opts.SealInterval)
	defer tick.Stop()
	for {
		select {
		case <-t.stopSealer:
			return
		case <-tick.C:
			if err := t.Seal(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
				t.stats.sealErrors.Add(1)
				t.log.Error("audit seal failed", "err", err)
			}
		}
	}
}

// Seal writes the digests that are due, then seals every journal event
// written so far into delivery files. The background sealer calls it every
// SealInterval; callers may call it too.
func (t *Trail) Seal(ctx context.Context) error {
	t.sealMu.Lock()
	defer t.sealMu.Unlock()
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return ErrClosed
	}
	now := t.opts.Now()
	if err := t.emitDigests(ctx, now, false); err != nil {
		return err
	}
	active, err := t.requestRotate()
	if err != nil {
		return err
	}
	if err := t.sealSegments(active, now); err != nil {
		return err
	}
	t.disk.sealed()
	return t.saveHead(ctx)
}

// Close stops accepting events, writes and fsyncs what is queued, seals the
// whole journal and writes a final digest covering up to now, so a clean
// shutdown leaves nothing unsigned. It is safe to call more than once.
func (t *Trail) Close(ctx context.Context) error {
	t.closeOnce.Do(func() { t.closeErr = t.close(ctx) })
	return t.closeErr
}

func (t *Trail) close(ctx context.Context) error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	if t.stopSealer != nil {
		close(t.stopSealer)
		<-t.sealerDone
	}
	if t.stopCheckpointer != nil {
		close(t.stopCheckpointer)
		<-t.checkpointerDone
	}
	t.senders.Wait()
	close(t.reqs)
	<-t.writerDone

	errs := []error{t.failure()}
	t.sealMu.Lock()
	if t.failure() == nil {
		now := t.opts.Now()
		err := t.sealSegments(math.MaxUint64, now)
		if err == nil {
			err = t.emitDigests(ctx, now, true)
		}
		if err == nil {
			err = t.saveHead(ctx)
		}
		errs = append(errs, err)
	}
	t.sealMu.Unlock()
	if t.metrics != nil {
		t.metrics.unregister()
	}
	errs = append(errs, t.lock.Close(), t.root.Close())
	return errors.Join(errs...)
}

func hasDurable(batch []*writeReq) bool {
	for _, r := range batch {
		if r.durable {
			return true
		}
	}
	return false
}
