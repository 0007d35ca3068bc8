package issuer

import (
	"bytes"
	"context"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keylessci/keyless/internal/awsquery"
)

func FuzzDecodeMintRequest(f *testing.F) {
	for _, s := range []string{
		`{"audience":"sts.amazonaws.com","subject":"job","profile":"github","claims":{"repository":"acme/app","ref":"refs/heads/main"},"lifetime_seconds":900}`,
		`{"subject":"org/o/project/p/user/u","profile":"circleci","claims":{"oidc.circleci.com/context-ids":["a"],"oidc.circleci.com/ssh-rerun":true}}`,
		`{"audience":"a","subject":"s","claims":{"n":1.5e3,"o":{"p":[1,"x",null,true]}}}`,
		`{"claims":null}`, `{}`, `[]`, `{"a":1}`, `{"subject":"s","subject":"s"}`, `{"claims":{"x":1,"x":2}}`,
		`{"lifetime_seconds":-1}`, `{"lifetime_seconds":1e400}`, "{\"subject\":\"\xff\"}", `{"subject":"s"} x`,
	} {
		f.Add([]byte(s))
	}
	fx := newFixture(f, []Config{{ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: ES256, Profile: ProfileGitHub}})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeMintRequest(body)
		// Differential: the token-walking reference decoder agrees.
		ref, refErr := refDecodeMintRequest(body)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("decoders disagree on %q: %v vs reference %v", body, err, refErr)
		}
		if err == nil {
			if diff := cmp.Diff(ref, req, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("decoders disagree on %q (-reference +new):\n%s", body, diff)
			}
		}
		if err != nil {
			e, ok := errors.AsType[*awsquery.Error](err)
			if !ok || e.HTTPStatus() < 400 || e.HTTPStatus() >= 500 {
				t.Fatalf("decode error %v is not a 4xx *awsquery.Error", err)
			}
			return
		}
		// What decodes re-encodes to the same request.
		enc, err := EncodeMintRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeMintRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", enc, err)
		}
		if diff := cmp.Diff(req, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		// Minting answers a client error or a token, never a server error.
		tok, err := fx.svc.Mint(context.Background(), "ci", req)
		if err != nil {
			if e, ok := errors.AsType[*awsquery.Error](err); !ok || e.HTTPStatus() >= 500 {
				t.Fatalf("mint error %v is a server error", err)
			}
			return
		}
		_, payload := decodeJWT(t, tok.Raw)
		if payload["iss"] != "https://keyless.example.com/ci" || payload["sub"] != tok.Subject || payload["aud"] != tok.Audience {
			t.Fatalf("registered claims overridden: %v", payload)
		}
		if len(tok.Raw) > MaxTokenChars {
			t.Fatalf("token of %d characters", len(tok.Raw))
		}
	})
}

func FuzzParseClaimFlag(f *testing.F) {
	for _, s := range []string{
		"repository=acme/app", "oidc.circleci.com/ssh-rerun=true", `oidc.circleci.com/context-ids=["a","b"]`,
		`groups:=["a","b"]`, `https://aws.amazon.com/tags:={"principal_tags":{"P":["x"]}}`, "a=b=c", "=x", ":=1",
		"k:=null", "k:=1 2", "k:=", "novalue", "k=", "k:v=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		key, v, err := ParseClaimFlag(arg)
		if err != nil {
			if !errors.Is(err, ErrClaimValue) {
				t.Fatalf("error %v is not ErrClaimValue", err)
			}
			return
		}
		if key == "" || strings.Contains(key, "=") {
			t.Fatalf("key %q", key)
		}
		if v == nil {
			t.Fatal("nil value")
		}
		if s, ok := v.(string); ok && !strings.HasSuffix(key, ":") && key+"="+s == arg {
			return // the string form
		}
		if !strings.HasPrefix(arg, key+":=") {
			t.Fatalf("%q parsed as key %q value %#v", arg, key, v)
		}
		if err := checkValue(v, 0); err != nil && !strings.Contains(err.Error(), "nested") {
			t.Fatalf("raw JSON value %#v fails checkValue: %v", v, err)
		}
	})
}

func FuzzParseCircleCISubject(f *testing.F) {
	for _, s := range []string{
		"org/o/project/p/user/u",
		"org/o/project/p/user/u/vcs-origin/github.com/acme/app/vcs-ref/refs/heads/main",
		"org//project/p/user/u", "org/o/project/p/user/u/", "org/o/project/p/user/u/vcs-origin/x",
		"org/o/project/p/user/u/vcs-origin//vcs-ref/r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sub string) {
		s, err := ParseCircleCISubject(sub)
		if err != nil {
			if !errors.Is(err, ErrClaimValue) {
				t.Fatalf("error %v is not ErrClaimValue", err)
			}
			return
		}
		for _, part := range []string{s.Org, s.Project, s.User} {
			if part == "" || strings.Contains(part, "/") {
				t.Fatalf("%q: component %q", sub, part)
			}
		}
		back := "org/" + s.Org + "/project/" + s.Project + "/user/" + s.User
		if s.VCSOrigin != "" || s.VCSRef != "" {
			if s.VCSOrigin == "" || s.VCSRef == "" {
				t.Fatalf("%q: half a V2 subject %+v", sub, s)
			}
			back += "/vcs-origin/" + s.VCSOrigin + "/vcs-ref/" + s.VCSRef
		}
		if back != sub {
			t.Fatalf("%q parsed as %+v, which rebuilds %q", sub, s, back)
		}
	})
}

func FuzzASN1ToRS(f *testing.F) {
	f.Add([]byte{1}, []byte{2}, []byte(nil))
	f.Add(bytes.Repeat([]byte{0xff}, 32), bytes.Repeat([]byte{0x80}, 32), []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, r, s, junk []byte) {
		// Arbitrary input never panics.
		_, _ = asn1ToRS(junk, 32)
		if len(r) > 32 || len(s) > 32 {
			return
		}
		R, S := new(big.Int).SetBytes(r), new(big.Int).SetBytes(s)
		if R.Sign() == 0 || S.Sign() == 0 {
			return
		}
		der, err := asn1.Marshal(struct{ R, S *big.Int }{R, S})
		if err != nil {
			t.Fatal(err)
		}
		got, err := asn1ToRS(der, 32)
		if err != nil {
			t.Fatalf("asn1ToRS(%x): %v", der, err)
		}
		want := append(R.FillBytes(make([]byte, 32)), S.FillBytes(make([]byte, 32))...)
		if !bytes.Equal(got, want) {
			t.Fatalf("asn1ToRS(%x) = %x, want %x", der, got, want)
		}
	})
}
