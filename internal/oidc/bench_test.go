package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

// benchFixture returns a fixture whose cache is warm for tok.
func benchFixture(b *testing.B, k *oidctest.Key) (*fixture, string) {
	f := newFixture(b, fixtureOpts{})
	raw := f.baseToken().WithKey(k).MustSerialize(b)
	if _, err := f.validate(raw); err != nil {
		b.Fatal(err)
	}
	return f, raw
}

func benchmarkValidate(b *testing.B, k *oidctest.Key) {
	f, raw := benchFixture(b, k)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Validate(ctx, raw, f.lookup); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateRS256 is a full validation with a warm key cache; compare
// with BenchmarkVerifyRS256Only, the RSA-2048 verification alone.
func BenchmarkValidateRS256(b *testing.B) { benchmarkValidate(b, keys(b).rsa) }

func BenchmarkValidateES256(b *testing.B) { benchmarkValidate(b, keys(b).p256) }

func BenchmarkVerifyRS256Only(b *testing.B) {
	_, raw := benchFixture(b, keys(b).rsa)
	i := strings.LastIndexByte(raw, '.')
	sig, err := decodeSegment(raw[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := keys(b).rsa.Public().(*rsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256([]byte(raw[:i]))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256Only(b *testing.B) {
	_, raw := benchFixture(b, keys(b).p256)
	i := strings.LastIndexByte(raw, '.')
	sig, err := decodeSegment(raw[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := keys(b).p256.Public().(*ecdsa.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		d := sha256.Sum256([]byte(raw[:i]))
		if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			b.Fatal("bad signature")
		}
	}
}

func BenchmarkParseCompact(b *testing.B) {
	_, raw := benchFixture(b, keys(b).rsa)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseCompact(raw); err != nil {
			b.Fatal(err)
		}
	}
}
