package oidc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Issuer URLs of the token cases (trust-pitfalls §8: T-00 is a GitHub
// token). Served in-process by oidctest.Transport, so the real URLs work.
const (
	githubURL  = "https://token.actions.githubusercontent.com"
	gitlabURL  = "https://gitlab.com"
	clientID   = "sts.amazonaws.com"
	baseSubj   = "repo:acme/payments-api:ref:refs/heads/main"
	testTokenT = 1_800_000_000 // T of the token cases
)

// keyring holds keys generated once per test binary: RSA key generation is
// the slow part of these tests.
type keyring struct {
	rsa, rsaOther, rsa1024, rsa4096 *oidctest.Key
	p256, p384, p521                *oidctest.Key
}

var sharedKeys = sync.OnceValues(func() (*keyring, error) {
	var kr keyring
	var err error
	gen := func(t oidctest.KeyType, kid string) *oidctest.Key {
		if err != nil {
			return nil
		}
		var k *oidctest.Key
		k, err = oidctest.GenerateKey(t, kid)
		return k
	}
	kr.rsa = gen(oidctest.RSA2048, "gh-rsa")
	kr.rsaOther = gen(oidctest.RSA2048, "gh-rsa")
	kr.rsa1024 = gen(oidctest.RSA1024, "weak-1024")
	kr.rsa4096 = gen(oidctest.RSA4096, "big-4096")
	kr.p256 = gen(oidctest.ECP256, "ec-p256")
	kr.p384 = gen(oidctest.ECP384, "ec-p384")
	kr.p521 = gen(oidctest.ECP521, "ec-p521")
	return &kr, err
})

func keys(tb testing.TB) *keyring {
	kr, err := sharedKeys()
	if err != nil {
		if tb == nil {
			panic(err)
		}
		tb.Fatal(err)
	}
	return kr
}

// alias publishes k's key pair under another kid.
func alias(k *oidctest.Key, kid string) *oidctest.Key {
	c := *k
	c.KID = kid
	return &c
}

// fixture is a GitHub-like and a GitLab-like issuer served in-process, a
// validator reaching them through oidctest.Transport, and the providers as
// IAM would hold them.
type fixture struct {
	gh, gl *oidctest.Issuer
	mux    *oidctest.HostMux
	ghProv *Provider
	glProv *Provider
	v      *Validator
	reg    *prometheus.Registry
	now    time.Time
}

type fixtureOpts struct {
	opts   func(*Options)
	issuer func(*oidctest.Issuer)
	now    func() time.Time // overrides the fixed clock (synctest)
	ghProv func(*Provider)
}

func newFixture(tb testing.TB, fo fixtureOpts) *fixture {
	tb.Helper()
	kr := keys(tb)
	f := &fixture{mux: &oidctest.HostMux{}, reg: prometheus.NewRegistry(), now: time.Unix(testTokenT, 0)}
	issuerNow := func() time.Time { return time.Unix(testTokenT, 0) }
	if fo.now != nil {
		issuerNow = fo.now
	}
	var err error
	f.gh, err = oidctest.NewIssuer(githubURL, oidctest.Options{Now: issuerNow, PublishKeys: []*oidctest.Key{
		kr.rsa, kr.p256, kr.p384, kr.p521, kr.rsa1024, kr.rsa4096,
	}})
	if err != nil {
		tb.Fatal(err)
	}
	f.gl, err = oidctest.NewIssuer(gitlabURL, oidctest.Options{Now: issuerNow, PublishKeys: []*oidctest.Key{alias(kr.rsa, "gl-rsa")}})
	if err != nil {
		tb.Fatal(err)
	}
	if fo.issuer != nil {
		fo.issuer(f.gh)
	}
	f.mux.Handle("token.actions.githubusercontent.com", f.gh)
	f.mux.Handle("gitlab.com", f.gl)
	f.ghProv = &Provider{URL: githubURL, ClientIDs: []string{clientID}}
	f.glProv = &Provider{URL: gitlabURL, ClientIDs: []string{clientID}}
	if fo.ghProv != nil {
		fo.ghProv(f.ghProv)
	}
	o := Options{
		Now:        f.clock,
		Registerer: f.reg,
		Transport:  &oidctest.Transport{Handler: f.mux},
	}
	if fo.now != nil {
		o.Now = fo.now
	}
	if fo.opts != nil {
		fo.opts(&o)
	}
	f.v, err = NewValidator(o)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// clock is T+10 s, the "now" of the token cases.
func (f *fixture) clock() time.Time { return f.now.Add(10 * time.Second) }

func (f *fixture) lookup(iss string) (*Provider, bool) {
	switch iss {
	case f.ghProv.URL:
		return f.ghProv, true
	case f.glProv.URL:
		return f.glProv, true
	}
	return nil, false
}

// baseToken is T-00: a GitHub token for repo:acme/payments-api on main.
func (f *fixture) baseToken() *oidctest.Token {
	t := f.gh.NewToken(baseSubj, clientID)
	t.Claims["repository"] = "acme/payments-api"
	t.Claims["repository_id"] = "5001"
	t.Claims["repository_owner_id"] = "1001"
	return t
}

func (f *fixture) validate(raw string) (*Token, error) {
	return f.v.Validate(context.Background(), raw, f.lookup)
}

// asError extracts the *Error every failure must be.
func asError(tb testing.TB, err error) *Error {
	tb.Helper()
	e, ok := errors.AsType[*Error](err)
	if !ok {
		tb.Fatalf("error %v (%T) is not an *oidc.Error", err, err)
	}
	return e
}

// metricValue reads one sample from the registry; labels must match
// exactly. It returns -1 when the series does not exist.
func metricValue(tb testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			if len(got) != len(labels) {
				continue
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return sampleValue(m)
		}
	}
	return -1
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}
