package server

import (
	"container/heap"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
)

// Per-source limiting of refusals before authentication.
//
// AssumeRoleWithWebIdentity is unsigned: anyone who can reach the server can
// make it validate a token and record the refusal. Every refusal of a request
// without an authenticated caller (a token that did not validate, a trust
// policy that refused the token, a signature that did not verify, a request
// that did not parse) is charged to its source; a source that has used its
// budget gets AWS's Throttling error before any validation work, until it
// has earned a refusal back. Successful exchanges cost nothing, so a CI fleet
// behind one NAT is never throttled by its own successes — only a source
// that keeps being refused is.
//
// The budget is a token bucket per source kept as a GCRA "theoretical
// arrival time" (one int64 per source): each refusal moves it one period
// ahead, and a source is throttled while it is more than burst−1 periods
// ahead of now. Sources are IPv4 addresses and IPv6 /64 networks (one host
// usually owns a whole /64). The table has a fixed size: when it is full the
// fullest bucket is evicted (a min-heap on the arrival time), which loses
// nothing while the fullest bucket is full, and costs an attacker a whole
// burst per source it uses to push others out.
//
// Throttled requests are not recorded one by one: each source's count is
// reported in one audit event per report interval (see reportRefusals), as
// are the refusals the trail stopped recording individually when its disk
// use passed audit.disk_shed_ratio.

// RefusalLimitConfig tunes the per-source limit of refusals before
// authentication (config key refusal_limit).
type RefusalLimitConfig struct {
	// Disable turns the limiter off (refusals are still size-capped and
	// not individually fsynced).
	Disable bool `json:"disable"`
	// Rate is how many refusals per second a source earns back
	// (default 1).
	Rate float64 `json:"rate"`
	// Burst is how many refusals a source may have in a row before it is
	// throttled (default 50).
	Burst int `json:"burst"`
	// MaxSources bounds the sources tracked at once (default 16384; about
	// 100 bytes each).
	MaxSources int `json:"max_sources"`
	// IPv6Prefix is the prefix length by which IPv6 sources are grouped
	// (default 64).
	IPv6Prefix int `json:"ipv6_prefix"`
	// Exempt lists networks (CIDR) never throttled; default the loopback
	// networks (the host itself, or a local proxy that hides its clients'
	// addresses and would otherwise make every client one source).
	Exempt []string `json:"exempt"`
	// ReportInterval is how often the counts of throttled and unrecorded
	// refusals are written to the audit trail (default 1m).
	ReportInterval Duration `json:"report_interval"`
	// ReportMaxSources bounds the sources reported one by one per interval
	// (default 100); the others are reported together in one event.
	ReportMaxSources int `json:"report_max_sources"`
}

func defaultRefusalLimit() RefusalLimitConfig {
	return RefusalLimitConfig{
		Rate: 1, Burst: 50, MaxSources: 16384, IPv6Prefix: 64,
		Exempt:         []string{"127.0.0.0/8", "::1/128"},
		ReportInterval: Duration(time.Minute), ReportMaxSources: 100,
	}
}

func (c RefusalLimitConfig) validate() error {
	var errs []error
	if c.Rate <= 0 || c.Rate > 1e6 {
		errs = append(errs, fmt.Errorf("refusal_limit.rate %g: want refusals per second, above 0 and at most 1000000", c.Rate))
	}
	if c.Burst < 1 || c.Burst > 1e6 {
		errs = append(errs, fmt.Errorf("refusal_limit.burst %d: want between 1 and 1000000", c.Burst))
	}
	if c.MaxSources < limiterShards || c.MaxSources > 1<<24 {
		errs = append(errs, fmt.Errorf("refusal_limit.max_sources %d: want between %d and %d", c.MaxSources, limiterShards, 1<<24))
	}
	if c.IPv6Prefix < 32 || c.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("refusal_limit.ipv6_prefix %d: want between 32 and 128", c.IPv6Prefix))
	}
	if _, err := parsePrefixes(c.Exempt); err != nil {
		errs = append(errs, fmt.Errorf("refusal_limit.exempt: %w", err))
	}
	if d := c.ReportInterval.D(); d < time.Second || d > time.Hour {
		errs = append(errs, fmt.Errorf("refusal_limit.report_interval %s: want between 1s and 1h", d))
	}
	if c.ReportMaxSources < 1 || c.ReportMaxSources > 10000 {
		errs = append(errs, fmt.Errorf("refusal_limit.report_max_sources %d: want between 1 and 10000", c.ReportMaxSources))
	}
	return errors.Join(errs...)
}

func parsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q: want a network such as 10.0.0.0/8 or 2001:db8::/32", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// errThrottled marks the Throttling answer of the limiter.
var errThrottled = errors.New("source over its refusal budget")

// throttlingError is AWS's answer to a caller over its rate (STS and IAM
// both send it with HTTP 400; SDKs retry it with backoff).
func throttlingError() *awsquery.Error {
	return &awsquery.Error{Code: awsquery.CodeThrottling, Message: "Rate exceeded", Status: http.StatusBadRequest, Err: errThrottled}
}

const limiterShards = 16

// refusalLimiter is the table of sources and their buckets.
type refusalLimiter struct {
	period    int64 // nanoseconds per refusal earned back
	tolerance int64 // (burst-1) periods
	v6bits    int
	exempt    []netip.Prefix
	seed      maphash.Seed
	shards    [limiterShards]limiterShard
}

type limiterShard struct {
	mu   sync.Mutex
	m    map[netip.Addr]*sourceEntry
	heap entryHeap // by tat: the root is the fullest bucket
	max  int
	// Counts of sources evicted before their counts were reported.
	evicted        refusalCounts
	evictedSources int
}

// refusalCounts are what a report says about a source.
type refusalCounts struct {
	throttled  uint64 // requests answered Throttling
	unrecorded uint64 // refusals not recorded individually (disk shedding)
}

func (c refusalCounts) zero() bool { return c == refusalCounts{} }

func (c *refusalCounts) add(o refusalCounts) {
	c.throttled += o.throttled
	c.unrecorded += o.unrecorded
}

type sourceEntry struct {
	key    netip.Addr
	tat    int64 // theoretical arrival time, Unix ns
	idx    int   // position in the shard's heap
	counts refusalCounts
}

func newRefusalLimiter(c RefusalLimitConfig) (*refusalLimiter, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	exempt, _ := parsePrefixes(c.Exempt)
	period := int64(float64(time.Second) / c.Rate)
	l := &refusalLimiter{
		period: period, tolerance: int64(c.Burst-1) * period, v6bits: c.IPv6Prefix,
		exempt: exempt, seed: maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i] = limiterShard{m: map[netip.Addr]*sourceEntry{}, max: c.MaxSources / limiterShards}
	}
	return l, nil
}

// source is a request's key in the table.
type source struct {
	key    netip.Addr // IPv4 address or IPv6 network; invalid when unparsable
	exempt bool
}

// sourceOf groups an address (as queryAPI.sourceIP computes it): IPv4 (and
// IPv4-mapped IPv6) by address, IPv6 by network. Unparsable addresses share
// one bucket.
func (l *refusalLimiter) sourceOf(ip string) source {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return source{}
	}
	a = a.Unmap().WithZone("")
	s := source{key: a}
	for _, p := range l.exempt {
		if p.Contains(a) {
			s.exempt = true
			break
		}
	}
	if a.Is6() {
		s.key = netip.PrefixFrom(a, l.v6bits).Masked().Addr()
	}
	return s
}

func (l *refusalLimiter) shard(k netip.Addr) *limiterShard {
	return &l.shards[maphash.Comparable(l.seed, k)%limiterShards]
}

// throttled reports whether s is over its budget at now (Unix ns), counting
// the throttled request for the source's report.
func (l *refusalLimiter) throttled(s source, now int64) bool {
	if s.exempt {
		return false
	}
	sh := l.shard(s.key)
	sh.mu.Lock()
	e := sh.m[s.key]
	if e == nil || e.tat-now <= l.tolerance {
		sh.mu.Unlock()
		return false
	}
	e.counts.throttled++
	sh.mu.Unlock()
	return true
}

// refused charges one refusal to s at now (Unix ns); exempt sources are
// not charged.
func (l *refusalLimiter) refused(s source, now int64) {
	if s.exempt {
		return
	}
	sh := l.shard(s.key)
	sh.mu.Lock()
	e := sh.entry(s.key, now)
	e.tat = max(e.tat, now) + l.period
	heap.Fix(&sh.heap, e.idx)
	sh.mu.Unlock()
}

// unrecorded counts, for s's report, a refusal the trail did not record
// individually.
func (l *refusalLimiter) unrecorded(s source, now int64) {
	sh := l.shard(s.key)
	sh.mu.Lock()
	sh.entry(s.key, now).counts.unrecorded++
	sh.mu.Unlock()
}

// entry returns k's entry, creating it (full) when missing.
func (sh *limiterShard) entry(k netip.Addr, now int64) *sourceEntry {
	if e := sh.m[k]; e != nil {
		return e
	}
	if len(sh.m) >= sh.max {
		sh.evict()
	}
	e := &sourceEntry{key: k, tat: now}
	sh.m[k] = e
	heap.Push(&sh.heap, e)
	return e
}

// evict drops the fullest bucket, keeping its counts for the next report.
func (sh *limiterShard) evict() {
	e := heap.Pop(&sh.heap).(*sourceEntry)
	delete(sh.m, e.key)
	if !e.counts.zero() {
		sh.evicted.add(e.counts)
		sh.evictedSources++
	}
}

// sourceReport is one source's counts since the previous report.
type sourceReport struct {
	key netip.Addr
	refusalCounts
}

// drain returns and resets every source's counts, the counts of sources
// evicted meanwhile (with how many they were), and forgets the sources
// whose bucket is full again.
func (l *refusalLimiter) drain(now int64) (reports []sourceReport, evicted refusalCounts, evictedSources int) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		keep := sh.heap[:0]
		for _, e := range sh.heap {
			if !e.counts.zero() {
				reports = append(reports, sourceReport{e.key, e.counts})
				e.counts = refusalCounts{}
			}
			if e.tat <= now {
				delete(sh.m, e.key)
				continue
			}
			keep = append(keep, e)
		}
		clear(sh.heap[len(keep):])
		sh.heap = keep
		for j, e := range sh.heap {
			e.idx = j
		}
		heap.Init(&sh.heap)
		evicted.add(sh.evicted)
		evictedSources += sh.evictedSources
		sh.evicted, sh.evictedSources = refusalCounts{}, 0
		sh.mu.Unlock()
	}
	return reports, evicted, evictedSources
}

// sources is the number of sources tracked.
func (l *refusalLimiter) sources() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// prefix is the network a key stands for, for reports.
func (l *refusalLimiter) prefix(k netip.Addr) string {
	switch {
	case !k.IsValid():
		return "unknown"
	case k.Is4():
		return netip.PrefixFrom(k, 32).String()
	default:
		return netip.PrefixFrom(k, l.v6bits).String()
	}
}

// entryHeap is a min-heap of entries by tat.
type entryHeap []*sourceEntry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].tat < h[j].tat }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*sourceEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
