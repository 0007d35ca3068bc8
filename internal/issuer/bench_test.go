package issuer

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

func benchService(b *testing.B, alg string) *Service {
	b.Helper()
	st := openStore(b, filepath.Join(b.TempDir(), "keyless.db"))
	svc, err := New(Options{
		Keys: st.KeyMaterial(), Master: testMaster(b),
		Issuers: []Config{{ID: "ci", URL: "https://keyless.example.com/ci", Profile: ProfileGitHub, Algorithm: alg}},
		// The SigV4 check belongs to the server; the benchmark measures
		// the issuer.
		Authenticate: func(*http.Request, []byte) (*Caller, error) {
			return &Caller{AccessKeyID: "AKIABENCH", Admin: true}, nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	return svc
}

var benchBody = []byte(`{"audience":"sts.amazonaws.com","claims":{"repository":"acme/app","ref":"refs/heads/main","sha":"0123456789abcdef0123456789abcdef01234567","actor":"octocat","run_id":"8123"}}`)

// BenchmarkMintHTTP mints through the token endpoint of a real server
// (httptest, real handler, SQLite store) with parallel keep-alive clients
// and reports tokens per second.
func BenchmarkMintHTTP(b *testing.B) {
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			svc := benchService(b, alg)
			srv := httptest.NewServer(svc.Handler())
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
			url := srv.URL + TokenPath("ci")
			b.SetParallelism(4)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(url, "application/json", bytes.NewReader(benchBody))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkMint is the cost of Mint alone, one goroutine.
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			svc := benchService(b, alg)
			req, err := DecodeMintRequest(benchBody)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Mint(ctx, "ci", req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkJWKS is a verifier fetching the key set.
func BenchmarkJWKS(b *testing.B) {
	svc := benchService(b, ES256)
	h := svc.Handler()
	r := httptest.NewRequest(http.MethodGet, "/ci/.well-known/jwks.json", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkSignature is the bare signature, the floor under every mint.
func BenchmarkSignature(b *testing.B) {
	for _, alg := range []string{RS256, ES256} {
		b.Run(alg, func(b *testing.B) {
			k, err := (&fixedKeys{}).gen(b)(alg, nil)
			if err != nil {
				b.Fatal(err)
			}
			s := newSigner(k, "kid", alg)
			payload := []byte(`{"sub":"x"}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.sign(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenHandler is the endpoint's server-side work without the
// network: decoding, minting, encoding.
func BenchmarkTokenHandler(b *testing.B) {
	svc := benchService(b, ES256)
	h := svc.Handler()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, TokenPath("ci"), bytes.NewReader(benchBody))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkDecodeMintRequest is the strict request decoder alone.
func BenchmarkDecodeMintRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMintRequest(benchBody); err != nil {
			b.Fatal(err)
		}
	}
}
