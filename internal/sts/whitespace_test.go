package sts

import (
	"net/url"
	"testing"

	"github.com/keylessci/keyless/internal/audit"
	"github.com/keylessci/keyless/internal/awsquery"
)

// TestAssumeTokenWithSurroundingWhitespace: AssumeRoleWithWebIdentity takes
// a token with surrounding ASCII whitespace (a token file ending in a
// newline, as `echo` writes it), as AWS does; the trail's token hash is of
// the token as validated (trimmed), so one token has one hash whichever way
// it was sent — for a refused, unverified token too. Whitespace inside the
// token is refused.
func TestAssumeTokenWithSurroundingWhitespace(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com")
	for _, sent := range []string{tok + "\n", tok + "\r\n", " \t" + tok + " \n"} {
		res, r, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"ws"}, "WebIdentityToken": {sent}})
		if err != nil {
			t.Fatalf("token %q…%q refused: %v", sent[:3], sent[len(sent)-3:], err)
		}
		if res.(assumeResult).AssumedRoleUser.Arn == "" {
			t.Fatal("no assumed role")
		}
		if x := r.Note.Exchange.(*audit.Exchange); x.IDTokenSHA256 != audit.SHA256Hex(tok) || x.IDToken != tok {
			t.Errorf("trail hash %s of %d bytes, want the hash %s of the %d-byte trimmed token", x.IDTokenSHA256, len(x.IDToken), audit.SHA256Hex(tok), len(tok))
		}
	}
	// Refused before validation succeeded: the hash is still of the
	// trimmed value.
	_, r, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"ws"}, "WebIdentityToken": {"a.b.c\n"}})
	if code(err) != awsquery.CodeInvalidIdentityToken {
		t.Fatalf("garbage token: %v", err)
	}
	if x := r.Note.Exchange.(*audit.Exchange); x.IDToken != "a.b.c" {
		t.Errorf("unverified token recorded for hashing as %q, want the trimmed a.b.c", x.IDToken)
	}
	// Inside the token, whitespace is an error.
	i := len(tok) / 2
	if _, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"ws"}, "WebIdentityToken": {tok[:i] + "\n" + tok[i:]}}); code(err) != awsquery.CodeInvalidIdentityToken {
		t.Errorf("token with a newline inside: %v, want InvalidIdentityToken", err)
	}
}
