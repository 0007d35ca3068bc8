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
	var errs []error
	for _, r := range f {
		if err := r.Record(ctx, ev, opts...); err != nil {
			errs = append(errs, err)
		}
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
	if err := b.r.Record(ctx, ev, opts...); err != nil && b.onError != nil {
		b.onError(err)
	}
	return nil
}

// marshalEvent validates and encodes an event compactly, normalising
// eventTime to UTC seconds (CloudTrail's resolution) without touching ev.
// eventJSONOptions write exactly the bytes encoding/json writes (sorted map
// keys, v1 omitempty, encoding/json.Number verbatim) with the faster
// encoding/json/v2 engine (go-json-experiment; the standard library's from
// Go 1.27): event encoding is on every exchange's path. CloudTrail does not
// HTML-escape (<, >, & appear in user agents).
// TestMarshalEventMatchesEncodingJSON holds the equivalence.
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
	if ev == nil {
		return nil, fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if ev.EventID == "" || ev.EventTime.IsZero() {
		return nil, fmt.Errorf("%w: eventID and eventTime are required", ErrInvalidEvent)
	}
	e := *ev
	e.EventTime = e.EventTime.UTC().Truncate(time.Second)
	if e.EventVersion == "" {
		e.EventVersion = EventVersion
	}
	b, err := jsonv2.Marshal(&e, eventJSONOptions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return b, nil
}
