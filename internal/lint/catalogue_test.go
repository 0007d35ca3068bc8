package lint

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/policy"
)

// TestConditionKeysMatchSTS: the probes expose exactly the condition keys
// the STS fills for each provider (oidc.ConditionKeyNames, oidc.KindOf),
// under the same prefix (oidc.ConditionKeyPrefix): the URL lint rebuilds
// from a prefix classifies as the STS classifies the provider.
func TestConditionKeysMatchSTS(t *testing.T) {
	prefixes := []string{
		"gitlab.com/group", "oidc.circleci.com/org/2a3b4c5d-1111-2222-3333-444455556666",
		"accounts.google.com", "issuer.example.com", "token.actions.githubusercontent.com/acme-ent",
		"127.0.0.1:8443/issuer",
	}
	for _, iss := range Issuers() {
		prefixes = append(prefixes, iss.Host)
	}
	for _, prefix := range prefixes {
		url := "https://" + prefix
		if got := oidc.ConditionKeyPrefix(url); got != prefix {
			t.Errorf("oidc.ConditionKeyPrefix(%q) = %q", url, got)
		}
		want := oidc.ConditionKeyNames(oidc.KindOf(url))
		if diff := cmp.Diff(want, ConditionKeyNames(prefix)); diff != "" {
			t.Errorf("%s: keys differ from the STS's (-sts +lint):\n%s", prefix, diff)
		}
	}
}

// TestIssuerFor recognises providers of any account, enterprise paths, and
// nothing else.
func TestIssuerFor(t *testing.T) {
	for fed, want := range map[string]string{
		"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com":          "github",
		"arn:aws:iam::999999999999:oidc-provider/token.actions.githubusercontent.com/acme-ent": "github",
		"arn:aws:iam::111122223333:oidc-provider/gitlab.com":                                   "gitlab.com",
		"arn:aws:iam::111122223333:oidc-provider/api.pulumi.com/oidc":                          "api.pulumi.com/oidc",
		"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com.evil.com": "",
		"arn:aws:iam::111122223333:oidc-provider/":                                             "",
		// Per-tenant issuers and Google (catalogue_tenants.go): not shared.
		"arn:aws:iam::111122223333:oidc-provider/oidc.circleci.com/org/o1":                                             "circleci",
		"arn:aws:iam::111122223333:oidc-provider/api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc": "bitbucket",
		"arn:aws:iam::111122223333:oidc-provider/gitlab.example.com":                                                   "gitlab",
		"arn:aws:iam::111122223333:oidc-provider/issuer.example.com":                                                   "",
		"accounts.google.com": "google",
	} {
		iss, _, ok := IssuerFor(fed)
		if got := iss.Name; got != want || ok != (want != "") {
			t.Errorf("IssuerFor(%q) = %q, %v; want %q", fed, got, ok, want)
		}
	}
	// A copy: changing it does not change the catalogue.
	iss, _, _ := IssuerFor("arn:aws:iam::1:oidc-provider/gitlab.com")
	iss.ControlClaims[0] = "tampered"
	if again, _, _ := IssuerFor("arn:aws:iam::1:oidc-provider/gitlab.com"); again.ControlClaims[0] != "sub" {
		t.Fatal("IssuerFor returned the catalogue itself")
	}
}

// stsToken is the validated token the STS would hold for a probe.
func stsToken(prefix string, pb *Probe) *oidc.Token {
	claims := make(map[string]any, len(pb.Claims))
	for k, v := range pb.Claims {
		claims[k] = v
	}
	tok := &oidc.Token{Claims: claims, Subject: pb.Claims["sub"], Provider: &oidc.Provider{URL: "https://" + prefix}}
	if aud, ok := pb.Claims["aud"]; ok {
		tok.Audience, tok.OriginalAudience = aud, []string{aud}
	}
	return tok
}

// TestProbeContextMatchesSTS builds every probe of every table policy and
// checks that the condition keys the guardrail evaluated are exactly those
// oidc.ConditionValues gives the STS for the same token: the guardrail
// asks the evaluator the question the STS would ask.
func TestProbeContextMatchesSTS(t *testing.T) {
	n := 0
	for _, tc := range guardCases() {
		p := policy.MustParse(tc.doc, policy.KindTrust)
		pr := newProber(p, testOptions(1))
		for si := range p.Statements {
			st := &p.Statements[si]
			if st.Principal == nil {
				continue
			}
			for _, fed := range st.Principal.Federated {
				iss, prefix, ok := issuerFor(fed)
				if !ok {
					continue
				}
				sp := pr.prepare(si, st, iss, prefix, fed)
				for pb := range pr.probes(sp) {
					pr.admitted(sp, pb)
					pb.Context = pr.contextOf(sp, pb)
					got := map[string][]string{}
					for k, v := range pb.Context {
						if strings.HasPrefix(k, prefix+":") {
							got[k] = v
						}
					}
					if diff := cmp.Diff(oidc.ConditionValues(stsToken(prefix, pb)), got); diff != "" {
						t.Fatalf("%s: probe %+v: context differs from the STS's (-sts +lint):\n%s", tc.name, pb, diff)
					}
					for _, k := range []string{"aws:FederatedProvider", "aws:PrincipalType", "sts:RoleSessionName", "aws:RequestedRegion", "aws:CurrentTime"} {
						if _, ok := pb.Context[k]; !ok {
							t.Fatalf("%s: probe context lacks %s", tc.name, k)
						}
					}
					n++
				}
			}
		}
	}
	if n < 500 {
		t.Fatalf("only %d probes checked", n)
	}
	t.Logf("%d probes checked", n)
}

// TestModelsCompile: every model's templates name its own slots, each
// model has a tenant slot, and every shape renders the claims its issuer
// exposes as keys (a claim the probes never carry would make a condition
// on it look like a scope).
func TestModelsCompile(t *testing.T) {
	for _, iss := range Issuers() {
		m := iss.model
		if len(m.tenant) == 0 {
			t.Errorf("%s: no tenant slot", iss.Name)
		}
		keys := ConditionKeyNames(iss.Host)
		for _, sh := range m.shapes {
			var names []string
			for _, c := range sh.claims {
				names = append(names, c.name)
				if !slices.Contains(keys, c.name) {
					t.Errorf("%s shape %s: claim %s is not a condition key of the issuer", iss.Name, sh.name, c.name)
				}
			}
			for _, tc := range iss.TenantClaims {
				if !slices.Contains(names, tc) {
					t.Errorf("%s shape %s: no tenant claim %s", iss.Name, sh.name, tc)
				}
			}
		}
	}
}
