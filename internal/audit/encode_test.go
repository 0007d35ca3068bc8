package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

// stdEncode is the reference: encoding/json with HTML escaping off, no
// trailing newline.
func stdEncode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// checkSameAsStd encodes ev with appendEvent and with encoding/json and
// requires the same bytes, or both to fail.
func checkSameAsStd(t *testing.T, name string, ev *Event) {
	t.Helper()
	want, werr := stdEncode(ev)
	got, gerr := appendEvent(nil, ev)
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("%s: encoding/json error %v, appendEvent error %v", name, werr, gerr)
	}
	if werr == nil && !bytes.Equal(got, want) {
		t.Fatalf("%s: appendEvent differs from encoding/json:\n got %s\nwant %s", name, got, want)
	}
}

// TestAppendEventMatchesEncodingJSON covers every real CloudTrail record
// (decoded with the reader's code), every golden event and a table of values
// where JSON encoders usually differ.
func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	n := 0
	for _, f := range realRecordFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for ev, err := range Records(bytes.NewReader(raw)) {
			if err != nil {
				t.Fatal(err)
			}
			checkSameAsStd(t, f+" "+ev.EventID, ev)
			n++
		}
	}
	golden, _ := os.ReadDir("testdata/golden")
	for _, g := range golden {
		if !strings.HasSuffix(g.Name(), ".json") {
			continue
		}
		raw, err := os.ReadFile("testdata/golden/" + g.Name())
		if err != nil {
			t.Fatal(err)
		}
		var ev Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		checkSameAsStd(t, g.Name(), &ev)
		n++
	}
	if n < 45 {
		t.Fatalf("only %d recorded events compared", n)
	}

	base := func() *Event {
		return &Event{EventVersion: EventVersion, EventTime: t0, EventID: "id"}
	}
	type custom struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	values := map[string]any{
		"strings": []any{"", "plain", `quote " backslash \ slash /`, "\x00\x01\b\f\n\r\t\x1f\x7f", "<&>", "é日本",
			"\u2028\u2029", "bad \xff\xfe utf8", "cut \xe6\x97", "\U0001F600"},
		"floats": []any{0.0, math.Copysign(0, -1), 0.1, 1.5, -2.25, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 123456789012345678.0,
			math.MaxFloat64, math.SmallestNonzeroFloat64, float32(0.1), float32(1e-7), float32(3.4e38), float32(1e21)},
		"ints":     []any{0, -1, int64(math.MaxInt64), int64(math.MinInt64), int32(-5), uint64(math.MaxUint64), int8(3), uint16(7)},
		"numbers":  []any{json.Number("0"), json.Number("-0"), json.Number("1e3"), json.Number("1.50"), json.Number("-12.5E-7"), json.Number("12345678901234567890"), json.Number("")},
		"bools":    []any{true, false, nil},
		"maps":     map[string]any{"z": 1, "a": map[string]any{}, "B": map[string]string{"y": "1", "x": "\n"}, "é": nil, "a\xff": 1, "": "empty key", "nilmap": map[string]any(nil), "nilsmap": map[string]string(nil)},
		"slices":   []any{[]any{}, []any(nil), []string{"a", "b"}, []string(nil), []map[string]any{{"k": 1}}, []map[string]any(nil), []int{1, 2}, []byte("bytes")},
		"raw":      json.RawMessage(` { "z" : [ 1 , 2.50 ] , "a" : "<\u00e9>" } `),
		"rawnil":   json.RawMessage(nil),
		"struct":   custom{A: 1},
		"ptr":      &custom{B: "x"},
		"time":     t0.Add(123456789 * time.Nanosecond),
		"keysmany": manyKeys(40),
	}
	for k, v := range values {
		ev := base()
		ev.RequestParameters = map[string]any{k: v}
		checkSameAsStd(t, "value "+k, ev)
	}

	full := base()
	full.UserIdentity = AssumedRole(Session{AccountID: "123456789012", RoleName: "r", RoleARN: "arn:aws:iam::123456789012:role/p/r", RoleID: "AROA", SessionName: "s",
		AccessKeyID: "ASIA", ProviderARN: "arn:aws:iam::123456789012:oidc-provider/x", ProviderAttribute: map[string]string{"b": "2", "a": "1"}, CreationDate: t0, SourceIdentity: "si"})
	full.UserIdentity.OnBehalfOf = &OnBehalfOf{UserID: "u"}
	full.UserIdentity.InScopeOf = map[string]any{"x": 1}
	full.UserIdentity.SessionContext.EC2RoleDelivery = "2.0"
	full.Resources = []Resource{{ARN: "a"}, {}, {Type: "t", AccountID: "1"}}
	full.ServiceEventDetails = map[string]any{}
	full.EdgeDeviceDetails = map[string]any{"e": []any{}}
	full.EventContext = map[string]any{}
	full.InsightDetails = map[string]any{"i": true}
	full.Addendum = &Addendum{}
	full.TLSDetails = &TLSDetails{TLSVersion: "TLSv1.3", ClientProvidedHostHeader: "h"}
	full.AdditionalEventData = map[string]any{}
	full.ResponseElements = map[string]any{"r": "\u2028"}
	for _, s := range []string{"EventSource", "x"} {
		full.EventSource, full.EventName, full.AWSRegion, full.SourceIPAddress, full.UserAgent = s, s, s, s, s
		full.ErrorCode, full.ErrorMessage, full.RequestID, full.EventType, full.APIVersion = s, s, s, s, s
		full.RecipientAccountID, full.SharedEventID, full.VPCEndpointID, full.VPCEndpointAccountID = s, s, s, s
		full.EventCategory, full.SessionCredentialFromConsole = s, s
		checkSameAsStd(t, "every field", full)
	}
	empty := base()
	empty.UserIdentity = &UserIdentity{SessionContext: &SessionContext{SessionIssuer: &SessionIssuer{}, WebIDFederationData: &WebIDFederationData{}, Attributes: &SessionAttributes{}}}
	empty.Resources = []Resource{}
	checkSameAsStd(t, "empty objects", empty)

	// Both refuse the same values.
	for name, v := range map[string]any{
		"NaN": math.NaN(), "Inf": math.Inf(1), "bad number": json.Number("01"), "bad number 2": json.Number("1e"),
		"bad raw": json.RawMessage(`{"a":`), "channel": make(chan int),
	} {
		ev := base()
		ev.AdditionalEventData = map[string]any{"v": v}
		checkSameAsStd(t, name, ev)
	}
	// Events straight from the builders, with the values they put in the
	// free-form maps (a *CIRun, int64 claims, hashes).
	bl := testBuilder(9, newClock(t0))
	for _, c := range []Call{{}, {ErrorCode: "AccessDenied", ErrorMessage: "no"}} {
		ev, err := bl.WebIdentityExchange(c, githubExchange())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ev.AdditionalEventData[KeyCIRun].(*CIRun); !ok {
			t.Fatalf("exchange event has no CI run: %v", ev.AdditionalEventData)
		}
		checkSameAsStd(t, "exchange "+c.ErrorCode, ev)
	}
	late := base()
	late.EventTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	checkSameAsStd(t, "year 10000", late)
}

func manyKeys(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune('0'+i/26))] = i
	}
	return m
}

// FuzzAppendEvent decodes arbitrary JSON into an Event (as the reader does,
// with and without json.Number) and requires appendEvent to write what
// encoding/json writes.
func FuzzAppendEvent(f *testing.F) {
	golden, _ := os.ReadDir("testdata/golden")
	for _, g := range golden {
		if raw, err := os.ReadFile("testdata/golden/" + g.Name()); err == nil && strings.HasSuffix(g.Name(), ".json") {
			f.Add(raw, false)
		}
	}
	f.Add([]byte(`{"eventID":"x","requestParameters":{"a":[1.5e-7,"\u2028",null,{"b":true}],"\u00e9":1e21}}`), true)
	f.Add([]byte(`{"userIdentity":{"sessionContext":{"webIdFederationData":{"attributes":{}}}},"resources":[]}`), false)
	f.Fuzz(func(t *testing.T, raw []byte, useNumber bool) {
		var ev Event
		dec := json.NewDecoder(bytes.NewReader(raw))
		if useNumber {
			dec.UseNumber()
		}
		if err := dec.Decode(&ev); err != nil {
			return
		}
		checkSameAsStd(t, "fuzz", &ev)
	})
}
