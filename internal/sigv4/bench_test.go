package sigv4_test

import (
	"os"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/sigv4"
)

// benchVerify measures the server's per-request cost: Parse plus Verify of a
// request already read off the wire.
func benchVerify(b *testing.B, fixture string) {
	raw, err := os.ReadFile(fixture)
	if err != nil {
		b.Fatal(err)
	}
	r, body := serverRequest(b, raw)
	v := &sigv4.Verifier{Now: fixedClock(signTime.Add(time.Minute))}
	if _, err := check(v, raw, testSecret); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0, ok := processCPU()
	n := 0
	for b.Loop() {
		sig, err := v.Parse(r)
		if err != nil {
			b.Fatal(err)
		}
		if err := sig.Verify(r, body, testSecret); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if cpu1, ok1 := processCPU(); ok && ok1 && n > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(n), "cpu-ns/op")
	}
}

// A botocore-signed STS GetCallerIdentity POST with a session token: the
// request every CI job's `aws sts get-caller-identity` sends.
func BenchmarkParseVerifyHeader(b *testing.B) {
	benchVerify(b, "testdata/botocore/botocore-sts-getcalleridentity-session.http")
}

// The same call signed by aws-sdk-go-v2 (more signed headers).
func BenchmarkParseVerifyHeaderSDK(b *testing.B) {
	benchVerify(b, "testdata/sdk/sts-getcalleridentity-session.http")
}

// A presigned STS GetCallerIdentity GET, as EKS-style tokens carry.
func BenchmarkParseVerifyPresigned(b *testing.B) {
	benchVerify(b, "testdata/botocore/botocore-sts-presigned-getcalleridentity-get.http")
}

// Verify alone, on a request parsed once: the canonicalisation and HMAC path.
func BenchmarkVerifyOnly(b *testing.B) {
	raw, err := os.ReadFile("testdata/botocore/botocore-sts-getcalleridentity-session.http")
	if err != nil {
		b.Fatal(err)
	}
	r, body := serverRequest(b, raw)
	v := &sigv4.Verifier{Now: fixedClock(signTime.Add(time.Minute))}
	sig, err := v.Parse(r)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := sig.Verify(r, body, testSecret); err != nil {
			b.Fatal(err)
		}
	}
}
