package audit

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var markerRE = regexp.MustCompile(`…\[(\d+) bytes, sha256:([0-9a-f]{64})\]$`)

// checkTruncated verifies TruncateText's contract for one input.
func checkTruncated(t *testing.T, s string, bound int) string {
	t.Helper()
	got := TruncateText(s, bound)
	limit := max(bound, MinTruncateBytes)
	if enc := appendString(nil, got); len(enc)-2 > limit {
		t.Fatalf("TruncateText(%d bytes, %d): encodes to %d bytes", len(s), bound, len(enc)-2)
	}
	if !utf8.ValidString(got) {
		t.Fatalf("TruncateText(%q, %d) = %q: invalid UTF-8", s, bound, got)
	}
	valid := validUTF8(s)
	m := markerRE.FindStringSubmatch(got)
	if m == nil || got == valid {
		// Not cut: the text the encoder would have written anyway.
		if got != valid {
			t.Fatalf("TruncateText(%q, %d) = %q without a marker", s, bound, got)
		}
		var a, b string
		if json.Unmarshal(appendString(nil, got), &a) != nil || json.Unmarshal(appendString(nil, s), &b) != nil || a != b {
			t.Fatalf("uncut value reads back differently: %q → %q", s, got)
		}
		return got
	}
	sum := sha256.Sum256([]byte(s))
	if m[2] != hex.EncodeToString(sum[:]) || m[1] != strconv.Itoa(len(s)) {
		t.Fatalf("marker %q does not describe the %d-byte input (sha256 %x)", m[0], len(s), sum)
	}
	if prefix := strings.TrimSuffix(got, m[0]); !strings.HasPrefix(valid, prefix) {
		t.Fatalf("kept %q is not a prefix of the input", prefix)
	}
	return got
}

func TestTruncateText(t *testing.T) {
	long := strings.Repeat("r", 2000)
	tests := []struct {
		name string
		in   string
		max  int
		want string // "" means: only the contract is checked
	}{
		{name: "short", in: "arn:aws:iam::123456789012:role/ci", max: 256, want: "arn:aws:iam::123456789012:role/ci"},
		{name: "exact fit", in: strings.Repeat("a", 256), max: 256, want: strings.Repeat("a", 256)},
		{name: "long ascii", in: long, max: 256},
		{name: "max below minimum", in: long, max: 3},
		{name: "escapes count", in: strings.Repeat("\x01", 100), max: 256},
		{name: "quotes count", in: strings.Repeat(`"`, 200), max: 256},
		{name: "multibyte not split", in: strings.Repeat("é", 300), max: 200},
		{name: "invalid utf-8 short", in: "a\xffb", max: 256, want: "a\uFFFDb"},
		{name: "invalid utf-8 long", in: strings.Repeat("\xff", 500), max: 256},
		{name: "line separators", in: strings.Repeat("\u2028", 100), max: 256},
		{name: "empty", in: "", max: 256, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkTruncated(t, tt.in, tt.max)
			if tt.want != "" || tt.in == "" {
				if got != tt.want {
					t.Errorf("got %q, want %q", got, tt.want)
				}
				return
			}
			if !markerRE.MatchString(got) {
				t.Errorf("%q: no marker", got)
			}
		})
	}
	// The prefix kept is as long as the bound allows.
	got := TruncateText(long, 256)
	if n := len(got); n < 250 || n > 256 {
		t.Errorf("kept %d bytes of 256", n)
	}
}

func FuzzTruncateText(f *testing.F) {
	f.Add("arn:aws:iam::123456789012:role/ci", 256)
	f.Add(strings.Repeat("x", 5000), 256)
	f.Add(strings.Repeat("\x00\"\\\u2029é\xff", 300), 300)
	f.Add("\xe2\x80", 128)
	f.Fuzz(func(t *testing.T, s string, bound int) {
		checkTruncated(t, s, bound%(1<<16))
	})
}

// untrustedExchange is an AssumeRoleWithWebIdentity refused before its token
// validated, with every caller-controlled field at its largest.
func untrustedExchange(fill string) (Call, Exchange) {
	arns := make([]string, 10)
	for i := range arns {
		arns[i] = "arn:aws:iam::123456789012:policy/" + strings.Repeat(fill, 2000)
	}
	c := Call{
		SourceIP: "203.0.113.9", UserAgent: strings.Repeat(fill, 3000), RequestID: "req-1",
		ErrorCode: "InvalidIdentityToken", ErrorMessage: "The web identity token that was passed could not be validated by AWS. " + strings.Repeat(fill, 3000),
		AdditionalEventData: map[string]any{"refusalReason": `issuer "` + strings.Repeat(fill, 5000) + `" is not a registered provider`},
	}
	x := Exchange{
		RoleARN: "arn:aws:iam::123456789012:role/" + strings.Repeat(fill, 2000), RoleSessionName: strings.Repeat(fill, 64),
		Policy: `{"` + strings.Repeat(fill, 2040) + `"}`, PolicyARNs: arns, DurationSeconds: 3600,
		IDToken: strings.Repeat(fill, 20000), Unverified: true,
		PrincipalTags: map[string]string{strings.Repeat(fill, 300): strings.Repeat(fill, 300)},
	}
	return c, x
}

func TestUntrustedExchangeIsCapped(t *testing.T) {
	c, x := untrustedExchange("r")
	b := testBuilder(1, newClock(t0))

	full := x
	full.Unverified = false
	ev, err := b.WebIdentityExchange(c, full)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := marshalEvent(ev)

	ev, err = b.WebIdentityExchange(c, x)
	if err != nil {
		t.Fatal(err)
	}
	after, err := marshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("refused exchange event: %d bytes in full, %d capped", len(before), len(after))
	if len(before) < 20000 {
		t.Fatalf("the uncapped event is only %d bytes: the test input is not large", len(before))
	}
	if len(after) > UntrustedEventBytes {
		t.Fatalf("capped event is %d bytes, cap %d", len(after), UntrustedEventBytes)
	}
	var got map[string]any
	if err := json.Unmarshal(after, &got); err != nil {
		t.Fatal(err)
	}
	add := got["additionalEventData"].(map[string]any)
	if add[KeyInputCapped] != true || add[KeyTokenSHA256] != SHA256Hex(x.IDToken) {
		t.Errorf("additionalEventData = %v", add)
	}
	// The role ARN is cut but identifies the full value by its hash.
	roleARN := got["requestParameters"].(map[string]any)["roleArn"].(string)
	m := markerRE.FindStringSubmatch(roleARN)
	if m == nil || m[2] != SHA256Hex(x.RoleARN) || !strings.HasPrefix(roleARN, "arn:aws:iam::123456789012:role/rrr") {
		t.Errorf("roleArn = %q", roleARN)
	}
	// The caller's maps are left alone.
	if len(c.AdditionalEventData["refusalReason"].(string)) < 5000 {
		t.Error("the caller's additionalEventData was modified")
	}
}

func TestUntrustedCallIsCapped(t *testing.T) {
	b := testBuilder(2, newClock(t0))
	params := map[string]any{}
	for i := range 200 {
		params["junk"+strconv.Itoa(i)] = strings.Repeat("j", 1000)
	}
	params["nested"] = map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": map[string]any{"e": strings.Repeat("n", 900)}}}}}
	ev, err := b.APICall(Call{Source: SourceSTS, Name: "AssumeRoleWithWebIdentity", ErrorCode: "MissingParameter",
		ErrorMessage: "The request must contain the parameter Version.", RequestParameters: params, Untrusted: true})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := marshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > UntrustedEventBytes {
		t.Fatalf("%d bytes", len(enc))
	}
	if _, ok := ev.RequestParameters[KeyOmitted]; !ok {
		t.Errorf("requestParameters = %v: no mark of what was left out", ev.RequestParameters)
	}
	// A trusted call is recorded as given.
	ev, err = b.APICall(Call{Source: SourceIAM, Name: "CreateRole", RequestParameters: map[string]any{"roleName": strings.Repeat("x", 5000)}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"roleName": strings.Repeat("x", 5000)}, ev.RequestParameters); diff != "" {
		t.Errorf("trusted call capped:\n%s", diff)
	}
}

// FuzzUntrustedEvent: whatever an anonymous caller sends, its refused
// exchange's event encodes to at most UntrustedEventBytes and keeps the
// token hash.
func FuzzUntrustedEvent(f *testing.F) {
	f.Add("r", 1, uint8(10))
	f.Add("\x01", 7, uint8(3))
	f.Add("é\xff\"", 2, uint8(200))
	f.Fuzz(func(t *testing.T, fill string, repeat int, entries uint8) {
		if fill == "" {
			fill = "x"
		}
		repeat = 1 + abs(repeat)%4
		c, x := untrustedExchange(strings.Repeat(fill, repeat))
		extra := map[string]any{}
		for i := range int(entries) {
			extra[strconv.Itoa(i)+fill] = []any{fill, map[string]any{fill: []string{fill, fill}}}
		}
		c.AdditionalEventData["extra"] = extra
		x.Claims = map[string]any{"iss": fill, "sub": strings.Repeat(fill, 1000), "groups": []any{fill, fill}}
		ev, err := testBuilder(3, newClock(t0)).WebIdentityExchange(c, x)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := marshalEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc) > UntrustedEventBytes {
			t.Fatalf("%d bytes > %d", len(enc), UntrustedEventBytes)
		}
		if !json.Valid(enc) || !utf8.Valid(enc) {
			t.Fatal("invalid JSON")
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestAuthenticatedParamsBounded: an authenticated call whose parameters
// exceed CloudTrail's 100 KB is recorded with their size and hash, not
// dropped; an ordinary one is untouched.
func TestAuthenticatedParamsBounded(t *testing.T) {
	b := &Builder{AccountID: "123456789012", Region: "us-east-1", Now: time.Now, Rand: rand.Reader}
	big := map[string]any{"policyInputList": []any{strings.Repeat("x", 300<<10)}, "actionNames": []any{"s3:GetObject"}}
	ev, err := b.APICall(Call{Source: "iam.amazonaws.com", Name: "SimulateCustomPolicy", RequestParameters: big, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encodeEvent(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > MaxParamsBytes+8<<10 {
		t.Fatalf("event is %d bytes", len(enc))
	}
	om, ok := ev.RequestParameters[KeyOmitted].(map[string]any)
	if !ok || om["bytes"].(int) < 300<<10 || len(om["sha256"].(string)) != 64 {
		t.Fatalf("requestParameters = %v", ev.RequestParameters)
	}
	if got := ev.AdditionalEventData[KeyParamsOmitted]; !reflect.DeepEqual(got, []string{"requestParameters"}) {
		t.Errorf("additionalEventData[%s] = %v", KeyParamsOmitted, got)
	}
	if _, ok := big["policyInputList"]; !ok {
		t.Error("the caller's map was modified")
	}
	small := map[string]any{"roleName": "ci"}
	ev, err = b.APICall(Call{Source: "iam.amazonaws.com", Name: "GetRole", RequestParameters: small})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ev.RequestParameters, small) || ev.AdditionalEventData != nil {
		t.Errorf("a small event was changed: %v %v", ev.RequestParameters, ev.AdditionalEventData)
	}
}
