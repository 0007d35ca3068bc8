package oidc

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckLengthCountsCharacters(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"4 ASCII", "a.b.", true},
		{"3 ASCII", "a.b", false},
		{"3 characters in 6 bytes", "ééé", false},
		{"4 characters in 8 bytes", "éééé", true},
		{"20000 ASCII", strings.Repeat("a", 20000), true},
		{"20001 ASCII", strings.Repeat("a", 20001), false},
		// 20000 two-byte characters: 40000 bytes but 20000 characters.
		{"20000 two-byte characters", strings.Repeat("é", 20000), true},
		{"20001 two-byte characters", strings.Repeat("é", 20001), false},
		{"far too long", strings.Repeat("a", 1<<20), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLength(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("checkLength(%d chars) = %v, want ok=%v", utf8.RuneCountInString(tc.in), err, tc.ok)
			}
			if err != nil && err.Code != CodeValidationError {
				t.Errorf("code %s", err.Code)
			}
		})
	}
}

// TestParseCompactBoundedAllocations: hostile shapes (many dots, one huge
// segment) are refused with a constant number of allocations, before any
// split (CVE-2025-30204, CVE-2025-27144).
func TestParseCompactBoundedAllocations(t *testing.T) {
	for _, tc := range []struct {
		name         string
		small, large string
	}{
		{"dots", strings.Repeat(".", 2000), strings.Repeat(".", 20000)},
		{"dots between characters", strings.Repeat("a.", 1000), strings.Repeat("a.", 10000)},
		{"huge header segment", strings.Repeat("A", 5500) + ".e30.AA", strings.Repeat("A", 19990) + ".e30.AA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			small := testing.AllocsPerRun(20, func() { parseCompact(tc.small) })
			large := testing.AllocsPerRun(20, func() { parseCompact(tc.large) })
			// The count must not grow with the input (a split would make
			// thousands), and stays small; a couple of allocations of slack
			// absorb the race detector's and the scheduler's noise.
			if large > small+2 || large > 8 {
				t.Errorf("%v allocations for %d bytes, %v for %d bytes", large, len(tc.large), small, len(tc.small))
			}
		})
	}
}

func TestDecodeSegmentCanonical(t *testing.T) {
	payload := []byte("any carnal pleas") // 16 bytes: 2 spare bits in the last character
	canonical := base64.RawURLEncoding.EncodeToString(payload)
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"canonical", canonical, true},
		{"padded", base64.URLEncoding.EncodeToString(payload), false},
		{"standard alphabet", "+/+/", false},
		{"non-zero trailing bits", canonical[:len(canonical)-1] + "x", false},
		{"newline inside", canonical[:4] + "\n" + canonical[4:], false},
		{"carriage return", canonical[:4] + "\r" + canonical[4:], false},
		{"space", canonical[:4] + " " + canonical[4:], false},
		{"impossible length", "AAAAA", false},
		{"empty", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeSegment(tc.in)
			if (err == nil) != tc.ok {
				t.Errorf("decodeSegment(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

// FuzzParseCompact: the splitter and decoder never panic, refuse anything
// that is not three canonical segments, and every accepted token has a
// header alg from the AWS set and non-empty parts.
func FuzzParseCompact(f *testing.F) {
	seg := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		seg([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + seg([]byte(basePayloadJSON(""))) + ".c2ln",
		seg([]byte(`{"alg":"none"}`)) + "." + seg([]byte(`{}`)) + ".",
		seg([]byte(`{"alg":"RS256","alg":"HS256"}`)) + "." + seg([]byte(`{}`)) + ".c2ln",
		seg([]byte(`{"alg":"ES256","crit":["x"]}`)) + ".e30.c2ln",
		"a.b.c.d.e", "....", `{"payload":"e30"}`, "e30.e30.e30", "e30=.e30.e30",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > MaxTokenLength {
			raw = raw[:MaxTokenLength]
		}
		p, err := parseCompact(raw)
		if err != nil {
			if err.Code != CodeInvalidIdentityToken || err.Rule == "" || err.Reason == "" {
				t.Fatalf("bad error %+v", err)
			}
			return
		}
		if strings.Count(raw, ".") != 2 || !isSupportedAlg(p.header.Alg) || len(p.signature) == 0 || p.payload == nil {
			t.Fatalf("accepted %q as %+v", raw, p)
		}
		if !strings.HasPrefix(raw, p.signingInput+".") {
			t.Fatalf("signing input %q is not a prefix of %q", p.signingInput, raw)
		}
	})
}

func FuzzNumericDate(f *testing.F) {
	for _, s := range []string{"0", "1800000000", "-1", "1.5", "1e9", "01", "253402300799", "253402300800", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		obj, err := parseJSONObject([]byte(`{"exp":`+s+`}`), maxJSONDepth)
		if err != nil {
			return
		}
		v, present, derr := numericDate(obj, "exp")
		if !present {
			t.Fatal("exp not present")
		}
		n, isNumber := obj["exp"].(json.Number)
		if derr == nil && (!isNumber || !isDigits(string(n)) || v < 0 || v > maxNumericDate) {
			t.Fatalf("numericDate(%q) = %d accepted", s, v)
		}
	})
}

// FuzzValidate drives whole validations with arbitrary tokens against a
// warm in-process issuer: nothing panics, every failure is an *Error with
// one of the four codes and a rule, and anything accepted really was signed
// by the issuer's key (the fuzzer cannot forge one).
func FuzzValidate(f *testing.F) {
	fx := newFixture(f, fixtureOpts{})
	good := fx.baseToken().MustSerialize(f)
	if _, err := fx.validate(good); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-2])
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("e30.e30.e30")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := fx.validate(raw)
		if err != nil {
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Rule == "" {
				t.Fatalf("bad error %v", err)
			}
			switch e.Code {
			case CodeInvalidIdentityToken, CodeExpiredToken, CodeValidationError, CodeIDPCommunicationError:
			default:
				t.Fatalf("code %q", e.Code)
			}
			return
		}
		if tok.Issuer != githubURL || tok.Audience != clientID {
			t.Fatalf("accepted %q as %+v", raw, tok)
		}
	})
}
