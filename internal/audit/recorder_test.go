package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type syncBuffer struct {
	bytes.Buffer
	syncs int
}

func (s *syncBuffer) Sync() error { s.syncs++; return nil }

func TestJSONLines(t *testing.T) {
	var buf syncBuffer
	r := NewJSONLines(&buf)
	b := testBuilder(51, newClock(t0))
	ev1, ev2 := callEvent(t, b, "A"), callEvent(t, b, "B")
	ev2.UserAgent = "curl/8 <script>&" // not HTML-escaped, as CloudTrail
	if err := r.Record(context.Background(), ev1); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(context.Background(), ev2, Durable()); err != nil {
		t.Fatal(err)
	}
	if buf.syncs != 1 {
		t.Errorf("%d syncs, want 1 (for the durable record only)", buf.syncs)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	for i, want := range []*Event{ev1, ev2} {
		var got Event
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatal(err)
		}
		if got.EventID != want.EventID || got.UserAgent != want.UserAgent {
			t.Errorf("line %d: %+v", i, got)
		}
	}
	if !strings.Contains(lines[1], `"userAgent":"curl/8 <script>&"`) {
		t.Errorf("user agent escaped: %s", lines[1])
	}
	if err := r.Record(context.Background(), &Event{}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("invalid event: %v", err)
	}
}

type failingRecorder struct{ err error }

func (f failingRecorder) Record(context.Context, *Event, ...RecordOption) error { return f.err }

type capture struct {
	events  []string
	durable []bool
}

func (c *capture) Record(_ context.Context, ev *Event, opts ...RecordOption) error {
	c.events = append(c.events, ev.EventID)
	c.durable = append(c.durable, IsDurable(opts...))
	return nil
}

func TestFanout(t *testing.T) {
	ev := callEvent(t, testBuilder(52, newClock(t0)), "A")
	a, c := &capture{}, &capture{}
	boom := errors.New("disk full")
	var reported []error
	f := Fanout(a, failingRecorder{boom}, BestEffort(failingRecorder{errors.New("stdout closed")}, func(err error) { reported = append(reported, err) }), c)
	err := f.Record(context.Background(), ev, Durable())
	if !errors.Is(err, boom) {
		t.Fatalf("Fanout error = %v, want the primary failure", err)
	}
	if strings.Contains(err.Error(), "stdout closed") {
		t.Errorf("best-effort failure leaked into the result: %v", err)
	}
	if len(reported) != 1 {
		t.Errorf("best-effort errors reported: %v", reported)
	}
	for _, r := range []*capture{a, c} {
		if len(r.events) != 1 || r.events[0] != ev.EventID || !r.durable[0] {
			t.Errorf("recorder got %+v; every recorder must see the event, durable", r)
		}
	}
	if err := Fanout(a, c).Record(context.Background(), ev); err != nil {
		t.Errorf("all-good fanout: %v", err)
	}
}

// TestTrailIsRecorder documents that the trail, the sinks and the fan-out
// are interchangeable behind Recorder.
func TestTrailIsRecorder(t *testing.T) {
	var _ Recorder = (*Trail)(nil)
	var _ Recorder = (*JSONLines)(nil)
	var _ Recorder = Fanout()
}

// TestMarshalEventMatchesEncodingJSON: the faster engine must write exactly
// what encoding/json writes, for every event kind and every value type a
// caller may put in the free-form maps.
func TestMarshalEventMatchesEncodingJSON(t *testing.T) {
	c := newClock(t0)
	b := testBuilder(5, c)
	events := []*Event{callEvent(t, b, "GetCallerIdentity")}
	ev, err := b.WebIdentityExchange(Call{SourceIP: "1.2.3.4", UserAgent: "ua <&> \u2028", RequestID: "r",
		AdditionalEventData: map[string]any{"n": json.Number("1e3"), "i": int64(1) << 60, "f": 0.1, "nil": nil, "s": []string{"é", "\x01"}}}, Exchange{
		RoleARN: "arn:aws:iam::123456789012:role/x", RoleSessionName: "s", ProviderARN: "arn:aws:iam::123456789012:oidc-provider/p",
		Audience: "a", Subject: "s", IDToken: "x.y.z", Claims: map[string]any{"b": 1, "a": []any{"x", true, nil, json.Number("12345678901234567890")}, "z": map[string]any{"k": 1.5}},
		Decision: "Deny", Trace: []byte(`{"z":1,"a":[1,2.50,"<"],"m":{"y":null}}`),
		Credentials: &IssuedCredentials{AccessKeyID: "ASIA", SessionToken: "tok", Expiration: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	events = append(events, ev)
	for _, ev := range events {
		got, err := marshalEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		e := *ev
		e.EventTime = e.EventTime.UTC().Truncate(time.Second)
		if e.EventVersion == "" {
			e.EventVersion = EventVersion
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(&e); err != nil {
			t.Fatal(err)
		}
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("marshalEvent differs from encoding/json:\n got %s\nwant %s", got, want.String())
		}
	}
}
