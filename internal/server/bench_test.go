package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/store"
)

const (
	benchKeyID  = "AKIAKEYLESSBENCH0001"
	benchSecret = "keyless-bench-secret-0123456789abcdefgh"
	benchAcct   = "123456789012"
)

// benchServer is a full keyless server (store, audit trail with real
// fsync, STS, IAM) behind a real HTTP listener on loopback.
func benchServer(b testing.TB) (*Server, *httptest.Server) {
	b.Helper()
	cfg := Defaults()
	cfg.Data = b.TempDir()
	cfg.AccountID = benchAcct
	cfg.AllowLoopbackHTTPIssuers = true
	return serverWith(b, cfg)
}

// serverWith runs a server with cfg behind httptest, with the bench
// administrator.
func serverWith(b testing.TB, cfg Config) (*Server, *httptest.Server) {
	b.Helper()
	env := map[string]string{"KEYLESS_ADMIN_ACCESS_KEY_ID": benchKeyID, "KEYLESS_ADMIN_SECRET_ACCESS_KEY": benchSecret}
	s, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler), Getenv: func(k string) string { return env[k] }})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

func presign(b testing.TB, base, service, query string) string {
	req, _ := http.NewRequest(http.MethodGet, base+"/?"+query, nil)
	const emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchKeyID, SecretAccessKey: benchSecret}, req, emptySHA, service, "us-east-1", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func drain(b *testing.B, resp *http.Response, err error) {
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkGetRoleHTTP is a signed IAM Get call through the full HTTP
// stack: TCP, SigV4 verification, store read, XML, batched audit record.
func BenchmarkGetRoleHTTP(b *testing.B) {
	s, ts := benchServer(b)
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/x.example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
	if err := s.store.Roles().Create(context.Background(), &store.Role{RoleID: "AROAEXAMPLEROLEID0001", Name: "bench", Path: "/", ARN: iam.RoleARN(benchAcct, "/", "bench"), TrustPolicy: trust, MaxSessionDuration: 3600, CreateDate: time.Now()}, 0); err != nil {
		b.Fatal(err)
	}
	u := presign(b, ts.URL, "iam", "Action=GetRole&Version=2010-05-08&RoleName=bench")
	client := ts.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(u)
			drain(b, resp, err)
		}
	})
}

// BenchmarkExchangeHTTP is AssumeRoleWithWebIdentity through the full
// stack with distinct RS256 tokens, with the durable audit trail on and,
// for comparison, off: the difference is what the trail costs.
func BenchmarkExchangeHTTP(b *testing.B) {
	for _, mode := range []string{"audit-on", "audit-off"} {
		b.Run(mode, func(b *testing.B) {
			s, ts := benchServer(b)
			if mode == "audit-off" {
				s.api.recorder = nil
			}
			iss := oidctest.NewServer(b, "/bench", oidctest.Options{})
			ctx := context.Background()
			if err := s.store.Providers().Create(ctx, &store.Provider{ARN: iam.ProviderARN(benchAcct, iss.URL()), URL: iss.URL(), ClientIDs: []string{"sts.amazonaws.com"}, CreateDate: time.Now()}, 0); err != nil {
				b.Fatal(err)
			}
			prefix := strings.TrimPrefix(iss.URL(), "http://")
			trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + iam.ProviderARN(benchAcct, iss.URL()) + `"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:aud":"sts.amazonaws.com"},"StringLike":{"` + prefix + `:sub":"repo:bench/app:*"}}}]}`
			roleARN := iam.RoleARN(benchAcct, "/", "bench")
			if err := s.store.Roles().Create(ctx, &store.Role{RoleID: "AROAEXAMPLEROLEID0001", Name: "bench", Path: "/", ARN: roleARN, TrustPolicy: trust, MaxSessionDuration: 3600, CreateDate: time.Now()}, 0); err != nil {
				b.Fatal(err)
			}
			const n = 2000
			bodies := make([][]byte, n)
			for i := range bodies {
				tok := iss.Mint(b, "repo:bench/app:ref:refs/heads/main", "sts.amazonaws.com")
				bodies[i] = []byte(url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {roleARN},
					"RoleSessionName": {"bench"}, "WebIdentityToken": {tok}}.Encode())
			}
			client := ts.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(64)
			b.ResetTimer()
			start := time.Now()
			cpu0, sys0 := cpuTime(), sysTime()
			b.Cleanup(func() {
				b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
				b.ReportMetric(float64((sysTime()-sys0).Microseconds())/float64(b.N), "sys-µs/op")
				if s.trail != nil && mode == "audit-on" {
					st := s.trail.Stats()
					el := time.Since(start).Seconds()
					b.ReportMetric(float64(st.Fsyncs)/el, "fsyncs/s")
					if st.Fsyncs > 0 {
						b.ReportMetric(float64(st.DurableEvents)/float64(st.Fsyncs), "events/fsync")
					}
				}
			})
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := bodies[next.Add(1)%n]
					resp, err := client.Post(ts.URL+"/", "application/x-www-form-urlencoded", bytes.NewReader(body))
					drain(b, resp, err)
				}
			})
		})
	}
}

// cpuTime is the process's user+system CPU time: client and server share
// the process, so cpu-µs/op includes the HTTP client's share.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sysTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Stime.Nano())
}
