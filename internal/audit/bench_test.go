package audit

import (
	"context"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"sync"
	"testing"
	"time"
)

// benchEvents pre-builds events so the benchmarks measure the journal.
func benchEvents(b *testing.B, n int) []*Event {
	bl := testBuilder(61, newClock(t0))
	evs := make([]*Event, n)
	for i := range evs {
		evs[i] = callEvent(b, bl, fmt.Sprint("Bench", i%100))
	}
	return evs
}

// BenchmarkJournalDurable64: 64 concurrent writers, every event durable
// (real fsync on the test's temp directory). ns/op is per event.
func BenchmarkJournalDurable64(b *testing.B) {
	b.ReportAllocs()
	tr := openTrail(b, b.TempDir(), newClock(t0), &memHead{}, nil)
	evs := benchEvents(b, 1024)
	jobs := make(chan *Event, 64)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ev := range jobs {
				if err := tr.Record(context.Background(), ev, Durable()); err != nil {
					b.Error(err)
				}
			}
		})
	}
	start := time.Now()
	before := tr.Stats()
	cpu0 := processCPU()
	i := 0
	for b.Loop() {
		jobs <- evs[i%len(evs)]
		i++
	}
	close(jobs)
	wg.Wait()
	st := tr.Stats()
	elapsed := time.Since(start).Seconds()
	// CPU (user + system, this process) per event: on a saturated server
	// this, not the latency, is what the trail costs in throughput.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(max(1, st.Events-before.Events)), "cpu-µs/event")
	b.ReportMetric(float64(st.Events-before.Events)/elapsed, "events/s")
	b.ReportMetric(float64(st.Fsyncs-before.Fsyncs)/elapsed, "fsyncs/s")
	b.ReportMetric(float64(st.Events-before.Events)/float64(max(1, st.Fsyncs-before.Fsyncs)), "events/fsync")
	tr.crash()
}

// BenchmarkJournalBatched: one writer, batched (non-durable) events.
func BenchmarkJournalBatched(b *testing.B) {
	b.ReportAllocs()
	tr := openTrail(b, b.TempDir(), newClock(t0), &memHead{}, func(o *Options) { o.EnqueueTimeout = time.Minute })
	evs := benchEvents(b, 1024)
	start := time.Now()
	i := 0
	for b.Loop() {
		if err := tr.Record(context.Background(), evs[i%len(evs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	tr.crash()
}

// BenchmarkSeal10k: sealing 10,000 journal events into a delivery file (read
// segments, build, hash, gzip, index, fsync, state) per op.
func BenchmarkSeal10k(b *testing.B) {
	b.ReportAllocs()
	evs := benchEvents(b, 10000)
	c := newClock(t0)
	tr := openTrail(b, b.TempDir(), c, &memHead{}, func(o *Options) { o.EnqueueTimeout = time.Minute })
	for b.Loop() {
		b.StopTimer()
		for _, ev := range evs {
			if err := tr.Record(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
		// A durable no-op barrier: everything queued is written.
		if err := tr.Record(context.Background(), evs[0], Durable()); err != nil {
			b.Fatal(err)
		}
		c.Advance(time.Minute)
		b.StartTimer()
		if err := tr.Seal(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	st := tr.Stats()
	b.ReportMetric(float64(st.SealedEvents)/float64(b.N), "events/op")
	tr.crash()
}

// githubExchange is an exchange as GitHub Actions' token produces it (the
// claim set of a push workflow), allowed, with credentials.
func githubExchange() Exchange {
	claims := map[string]any{
		"jti": "8a2f1c4e-5d6b-4e7f-9a0b-1c2d3e4f5a6b", "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
		"aud": "sts.amazonaws.com", "ref": "refs/heads/main", "sha": "d6f0c1e9a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3",
		"repository": "octo-org/octo-repo", "repository_owner": "octo-org", "repository_owner_id": "65432",
		"run_id": "9876543210", "run_number": "42", "run_attempt": "1", "repository_visibility": "private",
		"repository_id": "123456", "actor_id": "7890", "actor": "octocat", "workflow": "deploy",
		"head_ref": "", "base_ref": "", "event_name": "push", "ref_protected": "true", "ref_type": "branch",
		"workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
		"workflow_sha": "d6f0c1e9a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3", "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
		"runner_environment": "github-hosted", "iss": "https://token.actions.githubusercontent.com",
		"nbf": int64(1795834269), "exp": int64(1795837869), "iat": int64(1795834269),
	}
	return Exchange{
		RoleARN: "arn:aws:iam::123456789012:role/deploy", RoleSessionName: "GitHubActions-9876543210",
		ProviderARN: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
		Issuer:      "https://token.actions.githubusercontent.com", Audience: "sts.amazonaws.com",
		Subject: "repo:octo-org/octo-repo:ref:refs/heads/main", IDToken: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		Claims: claims, Decision: "Allow",
		Credentials:   &IssuedCredentials{AccessKeyID: "ASIABZPUZDIKO6K5VPH6", SessionToken: "IQoJb3JpZ2luX2VjEXAMPLE", Expiration: t0.Add(time.Hour)},
		AssumedRoleID: "AROABZPUZDIKL27DTIQHL:GitHubActions-9876543210", AssumedRoleARN: "arn:aws:sts::123456789012:assumed-role/deploy/GitHubActions-9876543210",
	}
}

// BenchmarkExchangeEvent is the audit work on an exchange's request path
// before the journal: building the event and encoding it.
func BenchmarkExchangeEvent(b *testing.B) {
	bl := testBuilder(62, newClock(t0))
	x := githubExchange()
	c := Call{SourceIP: "203.0.113.7", UserAgent: "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.26", RequestID: "544df9f2-cbbc-4d20-80c5-43eea4149416"}
	ev, err := bl.WebIdentityExchange(c, x)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bl.WebIdentityExchange(c, x); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshalEvent(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-jsonv2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonv2.Marshal(ev, eventJSONOptions); err != nil {
				b.Fatal(err)
			}
		}
	})
}
