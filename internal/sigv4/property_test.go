package sigv4_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keylessci/keyless/internal/sigv4"
)

const (
	pathChars   = "abcXYZ019-._~ !$&'()*+,;=:@%ü"
	queryChars  = "abcXYZ019-._~ !$&'()*+,;=:@%/?#[]\"<>\\^`{|}ü☃"
	headerChars = "abcXYZ019-._~ !$&'()*+,;=:@%/?#[]\"<>\\^`{|}\tü"
	nameChars   = "abcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~"
)

func randString(rng *rand.Rand, chars string, min, max int) string {
	rs := []rune(chars)
	n := min + rng.IntN(max-min+1)
	var b strings.Builder
	for range n {
		b.WriteRune(rs[rng.IntN(len(rs))])
	}
	return b.String()
}

// randomSigned builds a random request, signs it with the SDK (header or
// presigned) and returns its wire form and the secret.
func randomSigned(t testing.TB, rng *rand.Rand) (wire, string) {
	t.Helper()
	u := url.URL{Scheme: "http", Host: []string{"127.0.0.1:8400", "sts.eu-west-1.amazonaws.com:8443", "Keyless.Example:9"}[rng.IntN(3)]}
	for range rng.IntN(5) {
		seg := []string{"", ".", "..", randString(rng, pathChars, 1, 6)}[min(rng.IntN(6), 3)]
		u.Path += "/" + seg
	}
	if u.Path == "" || rng.IntN(4) == 0 {
		u.Path += "/"
	}
	q := url.Values{}
	for range rng.IntN(6) {
		name := randString(rng, queryChars, 1, 8)
		q.Add(name, randString(rng, queryChars, 0, 10))
		if rng.IntN(4) == 0 {
			q.Add(name, randString(rng, queryChars, 0, 4))
		}
	}
	u.RawQuery = q.Encode()
	method := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}[rng.IntN(5)]
	var body string
	if method != "GET" {
		body = randString(rng, queryChars+"\n\x00\xff", 0, 120)
	}
	r, err := http.NewRequest(method, u.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	for range rng.IntN(5) {
		name := "x-" + randString(rng, nameChars, 1, 10)
		r.Header.Add(name, randString(rng, headerChars, 0, 16))
		if rng.IntN(4) == 0 {
			r.Header.Add(name, randString(rng, headerChars, 0, 8))
		}
	}
	if rng.IntN(2) == 0 {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	creds := aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}
	if rng.IntN(2) == 0 {
		creds.SessionToken = testToken
	}
	service := []string{"sts", "iam"}[rng.IntN(2)]
	region := []string{"us-east-1", "eu-west-1", "ap-southeast-2", "local"}[rng.IntN(4)]
	signer := v4.NewSigner()
	ph := payloadHash(body)
	if rng.IntN(3) > 0 {
		if err := signer.SignHTTP(context.Background(), creds, r, ph, service, region, signTime); err != nil {
			t.Fatal(err)
		}
		return toWire(t, r), testSecret
	}
	if rng.IntN(2) == 0 {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", "900")
		r.URL.RawQuery = q.Encode()
	}
	signedURL, signed, err := signer.PresignHTTP(context.Background(), creds, r, ph, service, region, signTime)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.NewRequest(method, signedURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		pr.Body, pr.ContentLength = http.NoBody, 0
	}
	for k, vs := range signed {
		if k != "Host" {
			pr.Header[k] = vs
		}
	}
	return toWire(t, pr), testSecret
}

// FuzzSDKSigned is the round-trip property: any request the SDK signer
// signs verifies here, and a change to any signed part of it does not. The
// seeds run as a plain test; `go test -fuzz FuzzSDKSigned` explores further.
func FuzzSDKSigned(f *testing.F) {
	for i := range 64 {
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i)*0x9E3779B97F4A7C15)
		binary.LittleEndian.PutUint64(b[8:], uint64(i))
		f.Add(b[:])
	}
	v := &sigv4.Verifier{Now: fixedClock(signTime)}
	f.Fuzz(func(t *testing.T, seed []byte) {
		var s [16]byte
		copy(s[:], seed)
		rng := rand.New(rand.NewPCG(binary.LittleEndian.Uint64(s[:8]), binary.LittleEndian.Uint64(s[8:])))
		w, secret := randomSigned(t, rng)
		if _, err := check(v, w, secret); err != nil {
			t.Fatalf("SDK-signed request refused: %v\n%q", err, w)
		}
		ms := mutations(t, w)
		for range min(len(ms), 24) {
			m := ms[rng.IntN(len(ms))]
			if _, err := check(v, m.w, secret); err == nil {
				t.Fatalf("mutation %q verified:\n%q\noriginal:\n%q", m.name, m.w, w)
			}
		}
	})
}
