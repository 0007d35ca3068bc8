package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keylessci/keyless/internal/awsquery"
)

func TestBadMintRequestsRefused(t *testing.T) {
	f := newFixture(t, goldenIssuers())
	h := f.svc.Handler()
	circleSub := `"org/` + orgID + `/project/p/user/u"`
	tests := []struct {
		name      string
		issuer    string
		body      string
		status    int
		code      string
		sentinel  error  // for Mint-level errors, checked through Service.Mint too
		wantInMsg string // the message names what is wrong
	}{
		{"invalid JSON", "ci", `{"subject":`, 400, "ValidationError", ErrBadRequest, "not valid JSON"},
		{"not an object", "ci", `["a"]`, 400, "ValidationError", ErrBadRequest, "JSON object"},
		{"unknown member", "ci", `{"subject":"s","audience":"a","lifetime":5}`, 400, "ValidationError", ErrBadRequest, `"lifetime"`},
		{"wrong-case member", "ci", `{"Subject":"s","audience":"a"}`, 400, "ValidationError", ErrBadRequest, `"Subject"`},
		{"duplicate member", "ci", `{"subject":"s","subject":"t","audience":"a"}`, 400, "ValidationError", ErrBadRequest, "twice"},
		{"duplicate claim", "ci", `{"subject":"s","audience":"a","claims":{"x":"1","x":"2"}}`, 400, "ValidationError", ErrBadRequest, "twice"},
		{"trailing data", "ci", `{"subject":"s","audience":"a"} {}`, 400, "ValidationError", ErrBadRequest, "nothing after it"},
		{"subject not a string", "ci", `{"subject":5,"audience":"a"}`, 400, "ValidationError", ErrBadRequest, "subject"},
		{"fractional lifetime", "ci", `{"subject":"s","audience":"a","lifetime_seconds":1.5}`, 400, "ValidationError", ErrBadRequest, "lifetime_seconds"},
		{"unknown profile", "ci", `{"subject":"s","audience":"a","profile":"jenkins"}`, 400, "InvalidParameterValue", ErrUnknownProfile, "jenkins"},
		{"lifetime over the cap", "ci", `{"subject":"s","audience":"a","lifetime_seconds":21601}`, 400, "InvalidParameterValue", ErrLifetime, "21600"},
		{"lifetime under the minimum", "ci", `{"subject":"s","audience":"a","lifetime_seconds":30}`, 400, "InvalidParameterValue", ErrLifetime, "60"},
		{"negative lifetime", "ci", `{"subject":"s","audience":"a","lifetime_seconds":-5}`, 400, "ValidationError", ErrBadRequest, "out of range"},
		{"quoted lifetime", "ci", `{"subject":"s","audience":"a","lifetime_seconds":"900"}`, 400, "ValidationError", ErrBadRequest, "lifetime_seconds"},
		{"null subject", "ci", `{"subject":null,"audience":"a"}`, 400, "ValidationError", ErrBadRequest, "subject"},
		{"escaped duplicate member", "ci", `{"subject":"s","subj\u0065ct":"t","audience":"a"}`, 400, "ValidationError", ErrBadRequest, "twice"},
		{"iss overridden", "ci", `{"subject":"s","audience":"a","claims":{"iss":"https://evil"}}`, 400, "InvalidParameterValue", ErrReservedClaim, "iss"},
		{"exp overridden", "ci", `{"subject":"s","audience":"a","claims":{"exp":9999999999}}`, 400, "InvalidParameterValue", ErrReservedClaim, "exp"},
		{"iat overridden", "ci", `{"subject":"s","audience":"a","claims":{"iat":1}}`, 400, "InvalidParameterValue", ErrReservedClaim, "iat"},
		{"nbf overridden", "ci", `{"subject":"s","audience":"a","claims":{"nbf":1}}`, 400, "InvalidParameterValue", ErrReservedClaim, "nbf"},
		{"jti overridden", "ci", `{"subject":"s","audience":"a","claims":{"jti":"x"}}`, 400, "InvalidParameterValue", ErrReservedClaim, "jti"},
		{"sub as a claim", "ci", `{"audience":"a","claims":{"sub":"x"}}`, 400, "InvalidParameterValue", ErrReservedClaim, "subject field"},
		{"aud as a claim", "ci", `{"subject":"s","claims":{"aud":"x"}}`, 400, "InvalidParameterValue", ErrReservedClaim, "audience field"},
		{"azp as a claim", "ci", `{"subject":"s","audience":"a","claims":{"azp":"x"}}`, 400, "InvalidParameterValue", ErrReservedClaim, "azp"},
		{"null claim", "ci", `{"subject":"s","audience":"a","claims":{"x":null}}`, 400, "InvalidParameterValue", ErrClaimValue, "null"},
		{"generic without subject", "ci", `{"audience":"a"}`, 400, "MissingParameter", ErrMissing, "subject"},
		{"generic without audience", "ci", `{"subject":"s"}`, 400, "MissingParameter", ErrMissing, "audience"},
		{"profile other than the issuer's", "ci", `{"profile":"circleci","subject":"org/o/project/p/user/u"}`, 400, "InvalidParameterValue", ErrProfileSwitch, "mints generic tokens only"},
		{"circleci org-id overridden", "circle", `{"subject":` + circleSub + `,"claims":{"oidc.circleci.com/org-id":"other"}}`, 400, "InvalidParameterValue", ErrDerivedClaim, "org-id"},
		{"circleci project-id disagrees with sub", "circle", `{"subject":` + circleSub + `,"claims":{"oidc.circleci.com/project-id":"q"}}`, 400, "InvalidParameterValue", ErrDerivedClaim, "project-id"},
		{"circleci sub of another org", "circle", `{"subject":"org/other/project/p/user/u"}`, 400, "InvalidParameterValue", ErrClaimValue, "other"},
		{"circleci malformed sub", "circle", `{"subject":"project/p"}`, 400, "InvalidParameterValue", ErrClaimValue, "org/<org>"},
		{"circleci ssh-rerun not boolean", "circle", `{"subject":` + circleSub + `,"claims":{"oidc.circleci.com/ssh-rerun":"maybe"}}`, 400, "InvalidParameterValue", ErrClaimValue, "boolean"},
		{"circleci context-ids not strings", "circle", `{"subject":` + circleSub + `,"claims":{"oidc.circleci.com/context-ids":[1,2]}}`, 400, "InvalidParameterValue", ErrClaimValue, "array of strings"},
		{"github owner overridden", "gh", `{"claims":{"repository":"acme/app","repository_owner":"evil","ref":"refs/heads/main"}}`, 400, "InvalidParameterValue", ErrDerivedClaim, "repository_owner"},
		{"github ref_type disagrees", "gh", `{"claims":{"repository":"acme/app","ref":"refs/heads/main","ref_type":"tag"}}`, 400, "InvalidParameterValue", ErrDerivedClaim, "ref_type"},
		{"github typo claim", "gh", `{"claims":{"repositry":"acme/app"}}`, 400, "InvalidParameterValue", ErrUnknownClaim, "repositry"},
		{"github non-string id", "gh", `{"claims":{"repository":"acme/app","ref":"refs/heads/main","run_id":5}}`, 400, "InvalidParameterValue", ErrClaimValue, "run_id"},
		{"github cannot derive sub", "gh", `{"claims":{"repository":"acme/app"}}`, 400, "MissingParameter", ErrMissing, "ref"},
		{"github bad repository", "gh", `{"claims":{"repository":"acme","ref":"refs/heads/main"}}`, 400, "InvalidParameterValue", ErrClaimValue, "OWNER/REPO"},
		{"gitlab without audience", "gl", `{"claims":{"project_path":"a/b","ref":"main","ref_type":"branch"}}`, 400, "MissingParameter", ErrMissing, "audience"},
		{"gitlab bad ref_type", "gl", `{"audience":"a","claims":{"project_path":"a/b","ref":"main","ref_type":"commit"}}`, 400, "InvalidParameterValue", ErrClaimValue, "ref_type"},
		{"gitlab runner_id not integer", "gl", `{"audience":"a","claims":{"project_path":"a/b","ref":"main","ref_type":"branch","runner_id":"x1"}}`, 400, "InvalidParameterValue", ErrClaimValue, "integer"},
		{"subject too long", "ci", `{"subject":"` + strings.Repeat("s", 256) + `","audience":"a"}`, 400, "InvalidParameterValue", ErrClaimValue, "subject"},
		{"too many claims", "ci", `{"subject":"s","audience":"a","claims":{` + manyClaims(101) + `}}`, 413, "RequestEntityTooLarge", ErrTooLarge, "100"},
		{"token over AWS's limit", "ci", `{"subject":"s","audience":"a","claims":{"big":"` + strings.Repeat("x", 16000) + `"}}`, 400, "InvalidParameterValue", ErrTooLarge, "20000"},
		{"body over the limit", "ci", `{"subject":"s","audience":"a","claims":{"big":"` + strings.Repeat("x", MaxRequestBytes) + `"}}`, 413, "RequestEntityTooLarge", nil, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, out := postToken(t, h, TokenPath(tt.issuer), tt.body)
			if status != tt.status || out["__type"] != tt.code {
				t.Fatalf("answer %d %v, want %d %s", status, out, tt.status, tt.code)
			}
			if hdr.Get("X-Amzn-ErrorType") != tt.code || hdr.Get(awsquery.HeaderRequestID) == "" {
				t.Errorf("headers %v lack the error type or request id", hdr)
			}
			if msg, _ := out["message"].(string); !strings.Contains(msg, tt.wantInMsg) {
				t.Errorf("message %q does not mention %q", msg, tt.wantInMsg)
			}
			if tt.sentinel == nil {
				return
			}
			// The same failure through the Go API carries the sentinel.
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

func manyClaims(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"c%d":"v"`, i)
	}
	return strings.Join(parts, ",")
}

func TestTokenEndpointScope(t *testing.T) {
	f := newFixture(t, []Config{
		{ID: "team-a", URL: "https://keyless.example.com/a", Algorithm: ES256},
		{ID: "team-b", URL: "https://keyless.example.com/b", Algorithm: ES256},
	})
	h := f.svc.Handler()
	body := `{"subject":"job","audience":"sts.amazonaws.com"}`
	clientA := &Caller{AccessKeyID: "AKIACLIENTA", IssuerScope: "team-a"}
	admin := &Caller{AccessKeyID: "AKIAADMIN", Admin: true}
	tests := []struct {
		name    string
		caller  *Caller
		path    string
		status  int
		code    string
		wantIss string
	}{
		{"client for its own issuer", clientA, TokenPath("team-a"), 200, "", "https://keyless.example.com/a"},
		{"client for another issuer", clientA, TokenPath("team-b"), 403, "AccessDenied", ""},
		// Scope is checked before existence: no probing of issuer names.
		{"client for an unknown issuer", clientA, TokenPath("team-z"), 403, "AccessDenied", ""},
		{"client on the default path gets its own issuer", clientA, DefaultTokenPath, 200, "", "https://keyless.example.com/a"},
		{"key with no scope", &Caller{AccessKeyID: "AKIAPLAIN"}, TokenPath("team-a"), 403, "AccessDenied", ""},
		{"admin for any issuer", admin, TokenPath("team-b"), 200, "", "https://keyless.example.com/b"},
		{"admin on the default path gets the first issuer", admin, DefaultTokenPath, 200, "", "https://keyless.example.com/a"},
		{"admin for an unknown issuer", admin, TokenPath("team-z"), 404, "NoSuchEntity", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.caller = tt.caller
			status, hdr, out := postToken(t, h, tt.path, body)
			if status != tt.status {
				t.Fatalf("status %d %v, want %d", status, out, tt.status)
			}
			if tt.status != 200 {
				if out["__type"] != tt.code {
					t.Errorf("code %v, want %s", out["__type"], tt.code)
				}
				if _, leaked := out["token"]; leaked {
					t.Error("a refused request got a token")
				}
				return
			}
			if hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("token answer is cacheable: %q", hdr.Get("Cache-Control"))
			}
			_, payload := decodeJWT(t, out["token"].(string))
			if payload["iss"] != tt.wantIss || out["issuer"] != tt.wantIss {
				t.Errorf("minted for %v, want %s", payload["iss"], tt.wantIss)
			}
		})
	}
}

func TestTokenEndpointAuthentication(t *testing.T) {
	f := newFixture(t, []Config{{ID: "ci", URL: "https://keyless.example.com/ci", Algorithm: ES256}})
	body := `{"subject":"job","audience":"sts.amazonaws.com"}`

	// The authenticator sees the exact body it must verify the signature of.
	var seen string
	f.svc.auth = func(r *http.Request, b []byte) (*Caller, error) {
		seen = string(b)
		return nil, &awsquery.Error{Code: awsquery.CodeSignatureDoesNotMatch, Message: "The request signature we calculated does not match."}
	}
	status, _, out := postToken(t, f.svc.Handler(), TokenPath("ci"), body)
	if status != 403 || out["__type"] != "SignatureDoesNotMatch" || seen != body {
		t.Errorf("bad signature: %d %v (authenticator saw %q)", status, out, seen)
	}

	// An authenticator failure that is not an AWS error is a 500 whose
	// message reveals nothing.
	f.svc.auth = func(*http.Request, []byte) (*Caller, error) { return nil, errors.New("store is down: secret detail") }
	status, _, out = postToken(t, f.svc.Handler(), TokenPath("ci"), body)
	if status != 500 || strings.Contains(fmt.Sprint(out["message"]), "secret detail") {
		t.Errorf("internal failure answered %d %v", status, out)
	}

	// No authenticator: the endpoint is closed.
	f.svc.auth = nil
	status, _, out = postToken(t, f.svc.Handler(), TokenPath("ci"), body)
	if status != 403 || out["__type"] != "AccessDenied" {
		t.Errorf("without authenticator: %d %v", status, out)
	}

	// Only POST mints.
	r := httptest.NewRequest(http.MethodGet, TokenPath("ci"), nil)
	w := httptest.NewRecorder()
	f.svc.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET token endpoint = %d", w.Code)
	}
}
