package server

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/awsquery"
)

func testLimitConfig(burst int, rate float64) RefusalLimitConfig {
	c := defaultRefusalLimit()
	c.Burst, c.Rate = burst, rate
	return c
}

func testGate(t testing.TB, c RefusalLimitConfig) *refusalGate {
	t.Helper()
	l, err := newRefusalLimiter(c)
	if err != nil {
		t.Fatal(err)
	}
	return &refusalGate{l: l, throttle: true, metrics: newMetrics()}
}

// refuse runs one refused request from ip through the gate as the query
// API does: check, then (when not throttled) charge the refusal.
func refuse(g *refusalGate, ip string) (throttled bool) {
	req := &awsquery.Request{SourceIP: ip, Time: time.Now()}
	if g.checkThrottle(req, "AssumeRoleWithWebIdentity") {
		return true
	}
	g.charge(req, awsquery.NewError(awsquery.CodeInvalidIdentityToken, "bad token"))
	return false
}

// succeed runs one successful request from ip (check only: successes are
// not charged).
func succeed(g *refusalGate, ip string) (throttled bool) {
	req := &awsquery.Request{SourceIP: ip, Time: time.Now()}
	if g.checkThrottle(req, "AssumeRoleWithWebIdentity") {
		return true
	}
	g.charge(req, nil)
	return false
}

func TestRefusalLimiterBurstAndRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate(t, testLimitConfig(5, 2)) // 5 in a row, then 2 per second
		const src = "198.51.100.7"
		for i := range 5 {
			if refuse(g, src) {
				t.Fatalf("refusal %d throttled within the burst", i+1)
			}
		}
		for range 3 {
			if !refuse(g, src) {
				t.Fatal("refusal past the burst not throttled")
			}
		}
		// Another source is not affected.
		if refuse(g, "198.51.100.8") {
			t.Fatal("another source throttled")
		}
		// Half a second earns one refusal back, and only one.
		time.Sleep(500 * time.Millisecond)
		if refuse(g, src) {
			t.Fatal("throttled after earning a refusal back")
		}
		if !refuse(g, src) {
			t.Fatal("a second refusal allowed after earning one")
		}
		// An idle source is whole again after burst/rate.
		time.Sleep(2500 * time.Millisecond)
		for i := range 5 {
			if refuse(g, src) {
				t.Fatalf("refusal %d throttled after a full refill", i+1)
			}
		}
		reports, _, _ := g.l.drain(time.Now().UnixNano())
		want := []sourceReport{{key: netip.MustParseAddr(src), refusalCounts: refusalCounts{throttled: 4}}}
		if d := cmp.Diff(want, reports, cmp.AllowUnexported(sourceReport{}, refusalCounts{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
			t.Errorf("reports (-want +got):\n%s", d)
		}
	})
}

// TestRefusalLimiterSuccessesAreFree: a CI fleet behind one NAT makes any
// number of successful exchanges; only refusals are charged, and a few
// refusals among them do not throttle the fleet.
func TestRefusalLimiterSuccessesAreFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate(t, testLimitConfig(5, 1))
		const nat = "203.0.113.50"
		for i := range 10000 {
			if succeed(g, nat) {
				t.Fatalf("success %d throttled", i)
			}
			if i%1000 == 0 && refuse(g, nat) {
				t.Fatalf("occasional refusal %d throttled", i)
			}
			if i%100 == 0 {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if n := g.l.sources(); n != 1 {
			t.Errorf("%d sources tracked, want 1 (successes create no entry)", n)
		}
	})
}

func TestRefusalLimiterSources(t *testing.T) {
	g := testGate(t, testLimitConfig(1, 0.001))
	tests := []struct {
		a, b string
		same bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true}, // one /64
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"::ffff:192.0.2.1", "192.0.2.1", true}, // IPv4-mapped
		{"192.0.2.1", "192.0.2.2", false},
		{"fe80::1%eth0", "fe80::2", true}, // zone dropped, same /64
		{"not an address", "also not one", true},
	}
	for _, tt := range tests {
		a, b := g.l.sourceOf(tt.a), g.l.sourceOf(tt.b)
		if (a == b) != tt.same {
			t.Errorf("sourceOf(%q) = %v, sourceOf(%q) = %v: same = %v, want %v", tt.a, a, tt.b, b, a == b, tt.same)
		}
	}
	// A throttled /64 throttles every address in it.
	if refuse(g, "2001:db8:9:9::1") || !refuse(g, "2001:db8:9:9::abcd") {
		t.Error("IPv6 addresses of one /64 do not share a bucket")
	}
	if got := g.l.prefix(g.l.sourceOf("2001:db8:9:9::abcd").key); got != "2001:db8:9:9::/64" {
		t.Errorf("prefix = %q", got)
	}
}

func TestRefusalLimiterExempt(t *testing.T) {
	c := testLimitConfig(1, 0.001)
	c.Exempt = []string{"127.0.0.0/8", "::1/128", "10.1.0.0/16"}
	g := testGate(t, c)
	for _, ip := range []string{"127.0.0.1", "::1", "10.1.2.3"} {
		for i := range 10 {
			if refuse(g, ip) {
				t.Fatalf("%s (exempt) throttled at refusal %d", ip, i+1)
			}
		}
	}
	if refuse(g, "10.2.0.1") || !refuse(g, "10.2.0.1") {
		t.Error("a source outside the exempt networks is not limited")
	}
}

// TestRefusalLimiterBoundedTable: however many sources, the table holds at
// most max_sources; evicting the fullest buckets first keeps a throttled
// source throttled while sources that refused once come and go.
func TestRefusalLimiterBoundedTable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := testLimitConfig(3, 0.01)
		c.MaxSources = 4 * limiterShards // 4 per shard
		g := testGate(t, c)
		const attacker = "192.0.2.66"
		for range 3 {
			refuse(g, attacker)
		}
		if !refuse(g, attacker) {
			t.Fatal("not throttled after its burst")
		}
		for i := range 20000 {
			refuse(g, fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255))
			if i%1000 == 0 {
				time.Sleep(time.Second)
			}
		}
		if n := g.l.sources(); n > c.MaxSources {
			t.Fatalf("%d sources tracked, max %d", n, c.MaxSources)
		}
		if !refuse(g, attacker) {
			t.Error("the throttled source was evicted by sources that refused once")
		}
		_, evicted, n := g.l.drain(time.Now().UnixNano())
		if n != 0 || !evicted.zero() {
			// Sources that refused once have no counts to lose.
			t.Errorf("evicted counts %+v from %d sources, want none", evicted, n)
		}
	})
}

// TestRefusalLimiterDrain: reports carry and reset the counts; sources whose
// bucket is full again are forgotten; counts of evicted sources are kept.
func TestRefusalLimiterDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate(t, testLimitConfig(1, 1))
		refuse(g, "192.0.2.1")
		refuse(g, "192.0.2.1") // throttled
		g.unrecorded(&awsquery.Request{SourceIP: "127.0.0.1", Time: time.Now()}, "AssumeRoleWithWebIdentity")
		reports, _, _ := g.l.drain(time.Now().UnixNano())
		got := map[string]refusalCounts{}
		for _, r := range reports {
			got[r.key.String()] = r.refusalCounts
		}
		want := map[string]refusalCounts{"192.0.2.1": {throttled: 1}, "127.0.0.1": {unrecorded: 1}}
		if d := cmp.Diff(want, got, cmp.AllowUnexported(refusalCounts{})); d != "" {
			t.Errorf("reports (-want +got):\n%s", d)
		}
		if r, _, _ := g.l.drain(time.Now().UnixNano()); len(r) != 0 {
			t.Errorf("counts not reset: %v", r)
		}
		time.Sleep(2 * time.Second)
		g.l.drain(time.Now().UnixNano())
		if n := g.l.sources(); n != 0 {
			t.Errorf("%d sources kept after their buckets refilled", n)
		}
		// Sources evicted with counts are summed for the next report.
		c := testLimitConfig(1, 1)
		c.MaxSources = limiterShards // one per shard: every new source in a shard evicts
		g = testGate(t, c)
		for i := range 200 {
			g.unrecorded(&awsquery.Request{SourceIP: fmt.Sprintf("192.0.2.%d", i), Time: time.Now()}, "AssumeRoleWithWebIdentity")
		}
		reports, evicted, n := g.l.drain(time.Now().UnixNano())
		if len(reports)+n != 200 || evicted.unrecorded+uint64(len(reports)) != 200 {
			t.Errorf("%d reports + %d evicted sources (%d unrecorded), want 200 in all", len(reports), n, evicted.unrecorded)
		}
	})
}

func TestRefusalLimitConfigValidate(t *testing.T) {
	ok := defaultRefusalLimit()
	if err := ok.validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := map[string]func(*RefusalLimitConfig){
		"rate":     func(c *RefusalLimitConfig) { c.Rate = 0 },
		"burst":    func(c *RefusalLimitConfig) { c.Burst = 0 },
		"sources":  func(c *RefusalLimitConfig) { c.MaxSources = 3 },
		"ipv6":     func(c *RefusalLimitConfig) { c.IPv6Prefix = 129 },
		"exempt":   func(c *RefusalLimitConfig) { c.Exempt = []string{"10.0.0.1"} },
		"interval": func(c *RefusalLimitConfig) { c.ReportInterval = Duration(time.Millisecond) },
		"report":   func(c *RefusalLimitConfig) { c.ReportMaxSources = 0 },
	}
	for name, mod := range tests {
		c := defaultRefusalLimit()
		mod(&c)
		if err := c.validate(); err == nil || !strings.Contains(err.Error(), "refusal_limit.") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// BenchmarkRefusalLimiterCheck is the limiter's cost on every request: a
// source with no entry (the common case: successes create none) and one
// with an entry.
func BenchmarkRefusalLimiterCheck(b *testing.B) {
	g := testGate(b, defaultRefusalLimit())
	refuse(g, "198.51.100.9")
	for _, ip := range []string{"203.0.113.50", "198.51.100.9", "2001:db8:1:2::1"} {
		b.Run(ip, func(b *testing.B) {
			req := &awsquery.Request{SourceIP: ip, Time: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				g.checkThrottle(req, "AssumeRoleWithWebIdentity")
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := &awsquery.Request{SourceIP: "203.0.113.50", Time: time.Now()}
			for pb.Next() {
				g.checkThrottle(req, "AssumeRoleWithWebIdentity")
			}
		})
	})
}

// BenchmarkRefusalLimiterRefusal is the cost of charging a refusal.
func BenchmarkRefusalLimiterRefusal(b *testing.B) {
	g := testGate(b, testLimitConfig(1000000, 1e6))
	req := &awsquery.Request{SourceIP: "198.51.100.9", Time: time.Now()}
	aerr := awsquery.NewError(awsquery.CodeInvalidIdentityToken, "bad")
	b.ReportAllocs()
	for b.Loop() {
		g.charge(req, aerr)
	}
}

// TestConfigFloodKeys: refusal_limit and the audit disk keys parse from
// strict YAML and are validated by name.
func TestConfigFloodKeys(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		wantErr    string // substring; "" = valid
		check      func(t *testing.T, c Config)
	}{
		{name: "all keys", yaml: `
refusal_limit:
  rate: 0.5
  burst: 10
  max_sources: 1024
  ipv6_prefix: 56
  exempt: []
  report_interval: 30s
  report_max_sources: 20
audit:
  max_disk_bytes: 10737418240
  min_free_bytes: 0
  disk_alarm_ratio: 0.7
  disk_shed_ratio: 0.85
`, check: func(t *testing.T, c Config) {
			r := c.RefusalLimit
			if r.Rate != 0.5 || r.Burst != 10 || r.MaxSources != 1024 || r.IPv6Prefix != 56 || len(r.Exempt) != 0 || r.ReportInterval.D() != 30*time.Second || r.ReportMaxSources != 20 {
				t.Errorf("refusal_limit = %+v", r)
			}
			a := c.Audit
			if a.MaxDiskBytes != 10<<30 || a.MinFreeBytes != 0 || a.DiskAlarmRatio != 0.7 || a.DiskShedRatio != 0.85 {
				t.Errorf("audit = %+v", a)
			}
		}},
		{name: "defaults", yaml: "{}", check: func(t *testing.T, c Config) {
			if c.RefusalLimit.Disable || c.RefusalLimit.Burst != 50 || c.Audit.MinFreeBytes != 128<<20 || c.Audit.MaxDiskBytes != 0 || len(c.RefusalLimit.Exempt) != 2 {
				t.Errorf("defaults = %+v %+v", c.RefusalLimit, c.Audit)
			}
		}},
		{name: "disable", yaml: "refusal_limit:\n  disable: true\n"},
		{name: "alarm above shed", yaml: "audit:\n  disk_alarm_ratio: 0.95\n  disk_shed_ratio: 0.9\n", wantErr: "audit.disk_alarm_ratio"},
		{name: "tiny ceiling", yaml: "audit:\n  max_disk_bytes: 1000\n", wantErr: "audit.max_disk_bytes"},
		{name: "negative reserve", yaml: "audit:\n  min_free_bytes: -1\n", wantErr: "audit.min_free_bytes"},
		{name: "bad network", yaml: "refusal_limit:\n  exempt: [10.0.0.0]\n", wantErr: "refusal_limit.exempt"},
		{name: "zero rate", yaml: "refusal_limit:\n  rate: 0\n", wantErr: "refusal_limit.rate"},
		{name: "typo", yaml: "refusal_limit:\n  brust: 10\n", wantErr: "brust"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "keyless.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c := Defaults()
			err := c.LoadFile(p)
			if err == nil {
				err = c.Validate()
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.check != nil && err == nil {
				tc.check(t, c)
			}
		})
	}
}
