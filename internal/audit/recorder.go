package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"io"
	"sync"
	"time"
)

// Recorder is the single hook every API call goes through. Record must not
// retain ev after it returns. By default an event is batched: Record returns
// once the event is queued, and the event reaches stable storage within the
// recorder's bounded delay. With [Durable], Record returns only after the
// event is on stable storage (fsynced): the STS records an exchange that way
// before credentials leave the server.
type Recorder interface {
	Record(ctx context.Context, ev *Event, opts ...RecordOption) error
}

// Pending is an event a recorder has accepted and may still be making
// durable. Wait must be called exactly once.
type Pending interface {
	Wait(ctx context.Context) error
}

// Starter is implemented by recorders that can accept an event and let the
// caller do other work (render its response) while the event is made
// durable: the work overlaps the journal's fsync instead of following it.
type Starter interface {
	Start(ctx context.Context, ev *Event, opts ...RecordOption) (Pending, error)
}

// Start hands ev to r: through r's Start when r is a [Starter], otherwise by
// recording it synchronously. The Pending is to be used only when the error
// is nil.
func Start(ctx context.Context, r Recorder, ev *Event, opts ...RecordOption) (Pending, error) {
	if s, ok := r.(Starter); ok {
		return s.Start(ctx, ev, opts...)
	}
	if err := r.Record(ctx, ev, opts...); err != nil {
		return nil, err
	}
	return completed{}, nil
}

// completed is the Pending of an event whose record is already final.
type completed struct{}

func (completed) Wait(context.Context) error { return nil }

// RecordOption tunes one Record call.
type RecordOption func(*recordOptions)

type recordOptions struct {
	durable bool
}

// Durable makes Record return only once the event is on stable storage.
func Durable() RecordOption { return func(o *recordOptions) { o.durable = true } }

func applyRecordOptions(opts []RecordOption) recordOptions {
	var o recordOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// IsDurable reports whether opts ask for a durable record; for Recorder
// implementations outside this package.
func IsDurable(opts ...RecordOption) bool { return applyRecordOptions(opts).durable }

// JSONLines records each event as one JSON object per line on an io.Writer
// (stdout for log shippers). A durable record calls Sync on the writer when
// it has one (as *os.File does).
type JSONLines struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// NewJSONLines returns a recorder writing to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Record implements Recorder.
func (j *JSONLines) Record(ctx context.Context, ev *Event, opts ...RecordOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := marshalEvent(ev)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.buf = append(append(j.buf[:0], b...), '\n')
	if _, err := j.w.Write(j.buf); err != nil {
		return fmt.Errorf("audit: write json line: %w", err)
	}
	if applyRecordOptions(opts).durable {
		if s, ok := j.w.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				return fmt.Errorf("audit: sync json lines: %w", err)
			}
		}
	}
	return nil
}

// Fanout records each event to every recorder in order and returns their
// errors joined; all recorders are tried even when one fails. Wrap secondary
// sinks in [BestEffort] when their failure must not fail the call.
func Fanout(rs ...Recorder) Recorder { return fanout(rs) }

type fanout []Recorder

func (f fanout) Record(ctx context.Context, ev *Event, opts ...RecordOption) error {
	p, err := f.Start(ctx, ev, opts...)
	return errors.Join(err, p.Wait(ctx))
}

// Start starts the event on every recorder (each encodes it before Start
// returns, so ev is not retained) and waits for all of them in Wait.
func (f fanout) Start(ctx context.Context, ev *Event, opts ...RecordOption) (Pending, error) {
	var (
		errs    []error
		pending fanoutPending
	)
	for _, r := range f {
		p, err := Start(ctx, r, ev, opts...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pending = append(pending, p)
	}
	return pending, errors.Join(errs...)
}

type fanoutPending []Pending

func (f fanoutPending) Wait(ctx context.Context) error {
	var errs []error
	for _, p := range f {
		errs = append(errs, p.Wait(ctx))
	}
	return errors.Join(errs...)
}

// BestEffort wraps a secondary sink: its errors go to onError (which may be
// nil) instead of the caller.
func BestEffort(r Recorder, onError func(error)) Recorder {
	return bestEffort{r: r, onError: onError}
}

type bestEffort struct {
	r       Recorder
	onError func(error)
}

func (b bestEffort) Record(ctx context.Context, ev *Event, opts ...RecordOption) error {
	b.report(b.r.Record(ctx, ev, opts...))
	return nil
}

func (b bestEffort) Start(ctx context.Context, ev *Event, opts ...RecordOption) (Pending, error) {
	p, err := Start(ctx, b.r, ev, opts...)
	if err != nil {
		b.report(err)
		return completed{}, nil
	}
	return bestEffortPending{p: p, b: b}, nil
}

func (b bestEffort) report(err error) {
	if err != nil && b.onError != nil {
		b.onError(err)
	}
}

type bestEffortPending struct {
	p Pending
	b bestEffort
}

func (p bestEffortPending) Wait(ctx context.Context) error {
	p.b.report(p.p.Wait(ctx))
	return nil
}

// marshalEvent validates and encodes an event compactly, normalising
// eventTime to UTC seconds (CloudTrail's resolution) without touching ev.
// The bytes are exactly those encoding/json writes with HTML escaping off
// (see appendEvent). eventJSONOptions configure the encoding/json/v2 engine
// (go-json-experiment; the standard library's from Go 1.27) to write the
// same bytes, for values of types appendEvent does not know.
var eventJSONOptions = jsonv2.JoinOptions(
	jsonv1.DefaultOptionsV1(),
	jsontext.EscapeForHTML(false),
	jsonv2.WithMarshalers(jsonv2.MarshalToFunc(func(enc *jsontext.Encoder, n json.Number) error {
		if n == "" {
			return enc.WriteToken(jsontext.Int(0))
		}
		return enc.WriteValue(jsontext.Value(n))
	})),
)

func marshalEvent(ev *Event) ([]byte, error) {
	return encodeEvent(make([]byte, 0, 4096), ev)
}

// encodeEvent is marshalEvent appending to dst.
func encodeEvent(dst []byte, ev *Event) ([]byte, error) {
	if ev == nil {
		return dst, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if ev.EventID == "" || ev.EventTime.IsZero() {
		return dst, fmt.Errorf("%w: eventID and eventTime are required", ErrInvalidEvent)
	}
	e := *ev
	e.EventTime = e.EventTime.UTC().Truncate(time.Second)
	if e.EventVersion == "" {
		e.EventVersion = EventVersion
	}
	return appendEvent(dst, &e)
}
