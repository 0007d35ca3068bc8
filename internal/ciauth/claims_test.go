package ciauth

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseClaims(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name    string
		token   string
		want    Claims
		wantErr bool
	}{
		{
			name:  "GitHub-like",
			token: makeJWT(t, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/web:ref:refs/heads/main", "aud": "sts.amazonaws.com", "exp": 1700000300, "iat": 1700000000, "nbf": 1699999400}),
			want: Claims{Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/web:ref:refs/heads/main",
				Audience: []string{"sts.amazonaws.com"}, Expiry: time.Unix(1700000300, 0).UTC(), IssuedAt: time.Unix(1700000000, 0).UTC(), NotBefore: time.Unix(1699999400, 0).UTC()},
		},
		{
			name:  "audience array, fractional exp",
			token: "h." + b64([]byte(`{"aud":["a","b"],"exp":1700000000.5}`)) + ".s",
			want:  Claims{Audience: []string{"a", "b"}, Expiry: time.Unix(1700000000, 5e8).UTC()},
		},
		{name: "padded payload", token: "h." + b64([]byte(`{"sub":"x"}`)) + "==.s", want: Claims{Subject: "x"}},
		{name: "two parts", token: "a.b", wantErr: true},
		{name: "payload not base64", token: "a.!!!.c", wantErr: true},
		{name: "payload not JSON", token: "a." + b64([]byte("nope")) + ".c", wantErr: true},
		{name: "aud is a number", token: "a." + b64([]byte(`{"aud":5}`)) + ".c", wantErr: true},
		{name: "exp is a string", token: "a." + b64([]byte(`{"exp":"soon"}`)) + ".c", wantErr: true},
		{name: "exp absurd", token: "a." + b64([]byte(`{"exp":1e300}`)) + ".c", wantErr: true},
		{name: "exp negative", token: "a." + b64([]byte(`{"exp":-5}`)) + ".c", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClaims(tt.token)
			if tt.wantErr {
				if !errors.Is(err, ErrNotJWT) {
					t.Fatalf("err = %v, want ErrNotJWT", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseClaims(f *testing.F) {
	f.Add(makeJWT(f, map[string]any{"iss": "i", "sub": "s", "aud": []string{"a"}, "exp": 1}))
	f.Add("a.eyJhdWQiOiJ4In0.c")
	f.Add("..")
	f.Add("a.e30.b")
	f.Add("a.eyJleHAiOjEuNWUxMH0.b")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ParseClaims(tok)
		if err != nil {
			if !errors.Is(err, ErrNotJWT) {
				t.Fatalf("error %v does not wrap ErrNotJWT", err)
			}
			return
		}
		// Whatever parses renders, and times are within the plausibility bound.
		_ = c.String()
		for _, tm := range []time.Time{c.Expiry, c.IssuedAt, c.NotBefore} {
			if !tm.IsZero() && (tm.Before(time.Unix(0, 0)) || tm.After(time.Unix(1e11+1, 0))) {
				t.Fatalf("implausible time %v accepted", tm)
			}
		}
	})
}

func BenchmarkParseClaims(b *testing.B) {
	tok := makeJWT(b, map[string]any{"iss": "https://token.actions.githubusercontent.com", "sub": "repo:acme/web:ref:refs/heads/main", "aud": "sts.amazonaws.com", "exp": 1700000300})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseClaims(tok); err != nil {
			b.Fatal(err)
		}
	}
}
