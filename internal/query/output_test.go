package query

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func runOn(t *testing.T, src string, events ...string) (*Query, *Result) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(f, []byte(strings.Join(events, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	r, err := q.Run(context.Background(), []string{f}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

var outputEvents = []string{
	`{"eventTime":"2026-03-04T05:06:07Z","eventName":"GetRole","n":1,"msg":"a\tb"}`,
	`{"eventTime":"2026-03-04T05:26:07Z","eventName":"AssumeRoleWithWebIdentity","n":2.5,"msg":"say \"hi\", ok"}`,
	`{"eventTime":"2026-03-04T05:36:07Z","eventName":"GetRole"}`,
}

func TestWriteTable(t *testing.T) {
	_, r := runOn(t, `fields @timestamp, eventName, n, msg | sort @timestamp`, outputEvents...)
	var b strings.Builder
	if err := WriteTable(&b, r, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"@timestamp               eventName                  n    msg\n" +
		"-----------------------  -------------------------  ---  ------------\n" +
		"2026-03-04 05:06:07.000  GetRole                    1    a\\tb\n" +
		"2026-03-04 05:26:07.000  AssumeRoleWithWebIdentity  2.5  say \"hi\", ok\n" +
		"2026-03-04 05:36:07.000  GetRole                         \n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	b.Reset()
	if err := WriteTable(&b, r, TableOptions{MaxCell: 8}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "AssumeR…") || strings.Contains(b.String(), "AssumeRoleWith") {
		t.Errorf("MaxCell 8 does not cut cells:\n%s", b.String())
	}
}

func TestWriteJSONAndCSV(t *testing.T) {
	_, r := runOn(t, `fields @timestamp, eventName, n, msg | sort @timestamp`, outputEvents...)
	var b strings.Builder
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `{"@timestamp":"2026-03-04T05:06:07.000Z","eventName":"GetRole","n":1,"msg":"a\tb"}
{"@timestamp":"2026-03-04T05:26:07.000Z","eventName":"AssumeRoleWithWebIdentity","n":2.5,"msg":"say \"hi\", ok"}
{"@timestamp":"2026-03-04T05:36:07.000Z","eventName":"GetRole","n":null,"msg":null}
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("json (-want +got):\n%s", diff)
	}
	b.Reset()
	if err := WriteCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	want = "@timestamp,eventName,n,msg\n" +
		"2026-03-04 05:06:07.000,GetRole,1,a\tb\n" +
		"2026-03-04 05:26:07.000,AssumeRoleWithWebIdentity,2.5,\"say \"\"hi\"\", ok\"\n" +
		"2026-03-04 05:36:07.000,GetRole,,\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("csv (-want +got):\n%s", diff)
	}
}

func TestWriteChart(t *testing.T) {
	q, r := runOn(t, `stats count(*) as n by bin(10m)`, outputEvents...)
	var b strings.Builder
	ok, err := WriteChart(&b, q, r, 10)
	if err != nil || !ok {
		t.Fatalf("WriteChart = %v, %v", ok, err)
	}
	// 05:00 has 1, 05:10 none (drawn empty), 05:20 1, 05:30 1.
	want := "" +
		"2026-03-04 05:00:00.000  ██████████ 1\n" +
		"2026-03-04 05:10:00.000             0\n" +
		"2026-03-04 05:20:00.000  ██████████ 1\n" +
		"2026-03-04 05:30:00.000  ██████████ 1\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("chart (-want +got):\n%s", diff)
	}
	q2, r2 := runOn(t, `stats count(*) by eventName`, outputEvents...)
	if ok, _ := WriteChart(&b, q2, r2, 10); ok {
		t.Error("WriteChart drew a query that is not `stats AGG by bin(P)`")
	}
}

// marshalNoHTML is encoding/json with HTML escaping off: --output json,
// like the trail, writes <, > and & as they are.
func marshalNoHTML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// TestAppendJSONMatchesEncodingJSON: the hand-written encoder of
// --output json writes what encoding/json writes for Value.JSON().
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	vals := []Value{
		{}, strVal(""), strVal("plain"), strVal(`q"b\s/`), strVal("ctl\x00\x01\x1f\n\r\t"),
		strVal("<a href=x>&amp;</a>"), strVal("bad \xff\xfe utf8"), strVal("sep \u2028 \u2029 é 日本"),
		numVal(0), numVal(-1), numVal(42), numVal(1 << 52), numVal(1 << 60), numVal(2.5), numVal(-0.001),
		numVal(1e-7), numVal(1.5e-12), numVal(1e21), numVal(123456789.125), numVal(math.Inf(1)), numVal(math.NaN()),
		boolVal(true), boolVal(false), timeVal(1_700_000_000_123_000_000), timeVal(0),
	}
	for _, v := range vals {
		want, err := marshalNoHTML(v.JSON())
		if err != nil {
			t.Fatal(err)
		}
		if got := v.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON(%#v) = %s, encoding/json = %s", v.JSON(), got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00", "\xff", "\u2028", "<>&", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := marshalNoHTML(s)
		if got := strVal(s).AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON(%q) = %s, encoding/json = %s", s, got, want)
		}
	})
}
