package issuer

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestConfusingClaimsRefused (issue 11 item 12): the token endpoint refuses
// claims a verifier could read as something else: reserved and
// profile-owned names in another case, two names that differ only in case,
// control characters, NUL and bidirectional controls anywhere in the
// subject, the audience, a claim name or a claim value (nested too); and a
// request cannot switch the issuer's profile.
func TestConfusingClaimsRefused(t *testing.T) {
	f := newFixture(t, goldenIssuers())
	h := f.svc.Handler()
	circleSub := `"org/` + orgID + `/project/p/user/u"`
	tests := []struct {
		name      string
		issuer    string
		body      string
		sentinel  error
		wantInMsg string
	}{
		// Reserved claims, any case.
		{"ISS", "ci", `{"subject":"s","audience":"a","claims":{"ISS":"https://evil"}}`, ErrReservedClaim, `"ISS"`},
		{"Sub", "ci", `{"subject":"s","audience":"a","claims":{"Sub":"repo:other"}}`, ErrReservedClaim, `"Sub"`},
		{"EXP", "ci", `{"subject":"s","audience":"a","claims":{"EXP":9999999999}}`, ErrReservedClaim, `"EXP"`},
		{"Aud", "ci", `{"subject":"s","audience":"a","claims":{"Aud":"sts.amazonaws.com"}}`, ErrReservedClaim, `"Aud"`},
		{"NBF", "ci", `{"subject":"s","audience":"a","claims":{"NBF":1}}`, ErrReservedClaim, `"NBF"`},
		{"IAT", "ci", `{"subject":"s","audience":"a","claims":{"IAT":1}}`, ErrReservedClaim, `"IAT"`},
		{"JTI", "ci", `{"subject":"s","audience":"a","claims":{"JTI":"x"}}`, ErrReservedClaim, `"JTI"`},
		{"aZp", "ci", `{"subject":"s","audience":"a","claims":{"aZp":"x"}}`, ErrReservedClaim, `"aZp"`},
		{"ISS on a typed profile", "gh", `{"claims":{"repository":"acme/app","ref":"refs/heads/main","Iss":"x"}}`, ErrReservedClaim, `"Iss"`},
		// Claims the profile sets or types, in another case.
		{"circleci org-id in another case", "circle", `{"subject":` + circleSub + `,"claims":{"OIDC.circleci.com/org-id":"other"}}`, ErrReservedClaim, "oidc.circleci.com/org-id"},
		{"circleci project-id in another case", "circle", `{"subject":` + circleSub + `,"claims":{"oidc.circleci.com/Project-ID":"q"}}`, ErrReservedClaim, "oidc.circleci.com/project-id"},
		{"github owner in another case", "gh", `{"claims":{"repository":"acme/app","ref":"refs/heads/main","Repository_Owner":"evil"}}`, ErrReservedClaim, "repository_owner"},
		{"gitlab namespace in another case", "gl", `{"audience":"a","claims":{"project_path":"a/b","ref":"main","ref_type":"branch","NAMESPACE_PATH":"evil"}}`, ErrReservedClaim, "namespace_path"},
		// Two free claims that differ only in case.
		{"generic claims differing in case", "ci", `{"subject":"s","audience":"a","claims":{"branch":"main","Branch":"evil"}}`, ErrClaimValue, "differ only in case"},
		{"namespaced claims differing in case", "gh", `{"claims":{"repository":"acme/app","ref":"refs/heads/main","https://x.example/t":"a","https://X.example/t":"b"}}`, ErrClaimValue, "differ only in case"},
		// Control characters, NUL, bidirectional controls.
		{"NUL in the subject", "ci", `{"subject":"repo:acme/app\u0000:ref:main","audience":"a"}`, ErrClaimValue, "U+0000"},
		{"newline in the subject", "ci", `{"subject":"repo:acme/app\n","audience":"a"}`, ErrClaimValue, "U+000A"},
		{"DEL in the subject", "ci", `{"subject":"repo\u007f","audience":"a"}`, ErrClaimValue, "U+007F"},
		{"C1 control in the subject", "ci", `{"subject":"repo\u0085","audience":"a"}`, ErrClaimValue, "U+0085"},
		{"bidi override in the subject", "ci", `{"subject":"repo:acme/\u202eppa","audience":"a"}`, ErrClaimValue, "U+202E"},
		{"bidi isolate in the subject", "ci", `{"subject":"repo:acme/\u2066app","audience":"a"}`, ErrClaimValue, "U+2066"},
		{"line separator in the subject", "ci", `{"subject":"repo\u2028x","audience":"a"}`, ErrClaimValue, "U+2028"},
		{"NUL in the audience", "ci", `{"subject":"s","audience":"sts.amazonaws.com\u0000"}`, ErrClaimValue, "audience"},
		{"NUL in a claim value", "ci", `{"subject":"s","audience":"a","claims":{"branch":"main\u0000evil"}}`, ErrClaimValue, "branch"},
		{"tab in a claim name", "ci", `{"subject":"s","audience":"a","claims":{"bra\tnch":"main"}}`, ErrClaimValue, "claim name"},
		{"NUL in a nested value", "ci", `{"subject":"s","audience":"a","claims":{"https://aws.amazon.com/tags":{"principal_tags":{"Project":["acme\u0000"]}}}}`, ErrClaimValue, "U+0000"},
		{"control character in a nested key", "ci", `{"subject":"s","audience":"a","claims":{"https://aws.amazon.com/tags":{"principal_tags":{"Pro\u0001ject":["acme"]}}}}`, ErrClaimValue, "object key"},
		{"NUL in an array element", "ci", `{"subject":"s","audience":"a","claims":{"groups":["a","b\u0000"]}}`, ErrClaimValue, "groups"},
		{"NUL decoded from a string array given as JSON text", "circle", `{"subject":` + circleSub + `,"claims":{"oidc.circleci.com/context-ids":"[\"ctx\\u0000\"]"}}`, ErrClaimValue, "context-ids"},
		{"NUL in a claim the subject is derived from", "gh", `{"claims":{"repository":"acme/app","ref":"refs/heads/main\u0000"}}`, ErrClaimValue, "U+0000"},
		{"NUL in a circleci subject part", "circle", `{"subject":"org/` + orgID + `/project/p\u0000/user/u"}`, ErrClaimValue, "U+0000"},
		// The issuer's profile is not the request's to choose.
		{"generic issuer asked for github", "ci", `{"profile":"github","claims":{"repository":"acme/app","ref":"refs/heads/main"}}`, ErrProfileSwitch, `mints generic tokens only`},
		{"circleci issuer asked for generic", "circle", `{"profile":"generic","subject":"anything","audience":"a"}`, ErrProfileSwitch, `mints circleci tokens only`},
		{"github issuer asked for gitlab", "gh", `{"profile":"gitlab","audience":"a","claims":{"project_path":"a/b","ref":"main","ref_type":"branch"}}`, ErrProfileSwitch, `profile gitlab`},
		{"profile in another case", "gh", `{"profile":"GitHub","claims":{"repository":"acme/app","ref":"refs/heads/main"}}`, ErrUnknownProfile, "GitHub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, out := postToken(t, h, TokenPath(tt.issuer), tt.body)
			if status != 400 || out["__type"] != "InvalidParameterValue" || hdr.Get("X-Amzn-ErrorType") != "InvalidParameterValue" {
				t.Fatalf("answer %d %v, want 400 InvalidParameterValue", status, out)
			}
			if _, minted := out["token"]; minted {
				t.Fatalf("a token was minted: %v", out)
			}
			msg, _ := out["message"].(string)
			if !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("message %q does not mention %q", msg, tt.wantInMsg)
			}
			if strings.ContainsAny(msg, "\x00\n\u202e") {
				t.Errorf("message %q echoes the control character", msg)
			}
			req, err := DecodeMintRequest([]byte(tt.body))
			if err == nil {
				_, err = f.svc.Mint(context.Background(), tt.issuer, req)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %v is not %v", err, tt.sentinel)
			}
		})
	}
}

// TestOwnProfileAndPlainTextAccepted: the checks above leave ordinary
// requests alone: naming the issuer's own profile, non-ASCII text,
// derived claims given with their value in the exact case.
func TestOwnProfileAndPlainTextAccepted(t *testing.T) {
	f := newFixture(t, goldenIssuers())
	for _, tc := range []struct {
		issuer string
		req    MintRequest
	}{
		{"gh", MintRequest{Profile: ProfileGitHub, Claims: map[string]any{"repository": "acme/app", "ref": "refs/heads/main", "repository_owner": "acme"}}},
		{"circle", MintRequest{Profile: ProfileCircleCI, Subject: "org/" + orgID + "/project/p/user/u", Claims: map[string]any{ccOrgID: orgID}}},
		{"ci", MintRequest{Subject: "jenkins:équipe/déploiement:main ✓", Audience: "sts.amazonaws.com", Claims: map[string]any{
			"label": "Zürich – 東京", "https://aws.amazon.com/tags": map[string]any{"principal_tags": map[string]any{"Team": []any{"ops"}}},
		}}},
	} {
		if _, err := f.svc.Mint(context.Background(), tc.issuer, tc.req); err != nil {
			t.Errorf("%s %+v: %v", tc.issuer, tc.req, err)
		}
	}
}
