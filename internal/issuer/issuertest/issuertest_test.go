package issuertest

import (
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keylessci/keyless/internal/issuer"
)

func TestServerIsAStandardIssuer(t *testing.T) {
	s := New(t, issuer.Config{URL: "/org/acme", Profile: issuer.ProfileCircleCI, Algorithm: issuer.ES256})
	tok := s.Mint(t, issuer.MintRequest{Subject: "org/acme/project/p/user/u"})
	ctx := oidc.ClientContext(t.Context(), s.HTTP.Client())
	p, err := oidc.NewProvider(ctx, s.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "acme"}).Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "org/acme/project/p/user/u" || idt.Issuer != s.URL {
		t.Errorf("verified %q from %q", idt.Subject, idt.Issuer)
	}
	if r := s.Rotate(t); !r.Created {
		t.Errorf("rotation %+v", r)
	}
}
