package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const orgID = "6f1c8f0e-3f5a-4c8e-9d7b-2a1e5c9b0d11"

// goldenIssuers covers every profile and both algorithms.
func goldenIssuers() []Config {
	return []Config{
		{ID: "ci", URL: "https://keyless.example.com/oidc"},
		{ID: "circle", URL: "https://keyless.example.com/oidc/org/" + orgID, Profile: ProfileCircleCI, Algorithm: ES256,
			ServiceDocumentation: "https://keyless.example.com/docs/issuer"},
		{ID: "gh", URL: "https://keyless.example.com/gh", Profile: ProfileGitHub, Algorithm: RS256},
		{ID: "gl", URL: "https://keyless.example.com/gl", Profile: ProfileGitLab, Algorithm: ES256},
	}
}

func TestDiscoveryAndJWKSGolden(t *testing.T) {
	f := newFixture(t, goldenIssuers())
	h := f.svc.Handler()
	for _, c := range f.svc.Issuers() {
		t.Run(c.ID, func(t *testing.T) {
			path, _ := issuerPath(c.URL)
			for _, doc := range []struct{ name, path string }{
				{"discovery", path + "/.well-known/openid-configuration"},
				{"jwks", path + "/.well-known/jwks.json"},
			} {
				r := httptest.NewRequest(http.MethodGet, doc.path, nil)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Fatalf("GET %s = %d %s", doc.path, w.Code, w.Body)
				}
				if got := w.Header().Get("Content-Type"); got != "application/json" {
					t.Errorf("%s Content-Type = %q", doc.name, got)
				}
				if got := w.Header().Get("Cache-Control"); got != "public, max-age=3600" {
					t.Errorf("%s Cache-Control = %q, want the JWKS max-age", doc.name, got)
				}
				goldenJSON(t, doc.name+"/"+c.ID+".json", w.Body.Bytes())

				// A conditional request with the ETag is answered 304.
				r = httptest.NewRequest(http.MethodGet, doc.path, nil)
				r.Header.Set("If-None-Match", w.Header().Get("ETag"))
				w2 := httptest.NewRecorder()
				h.ServeHTTP(w2, r)
				if w2.Code != http.StatusNotModified || w2.Body.Len() != 0 {
					t.Errorf("conditional GET = %d with %d bytes, want 304", w2.Code, w2.Body.Len())
				}
			}
		})
	}
}

func TestClaimsGolden(t *testing.T) {
	f := newFixture(t, goldenIssuers())
	tests := []struct {
		name   string
		issuer string
		req    MintRequest
	}{
		{"generic", "ci", MintRequest{
			Subject: "jenkins:acme/deploy:main", Audience: "sts.amazonaws.com",
			Claims: map[string]any{
				"pipeline":                    "deploy",
				"build_number":                json.Number("42"),
				"https://aws.amazon.com/tags": map[string]any{"principal_tags": map[string]any{"Project": []any{"acme"}}},
			},
		}},
		{"circleci-v1", "circle", MintRequest{
			Subject: "org/" + orgID + "/project/1b2c3d4e-0000-4000-8000-000000000001/user/9f8e7d6c-0000-4000-8000-000000000002",
			Claims: map[string]any{
				ccContextIDs: `["a74579f1-2e7d-451e-b009-5c082ad2729e","cb32986e-2f6f-4f43-b2bd-d3c2fd98e903"]`,
				ccSSHRerun:   "true",
			},
		}},
		{"circleci-v2", "circle", MintRequest{
			Subject:  "org/" + orgID + "/project/1b2c3d4e-0000-4000-8000-000000000001/user/9f8e7d6c-0000-4000-8000-000000000002/vcs-origin/github.com/acme/app/vcs-ref/refs/heads/main",
			Audience: "sts.amazonaws.com",
			Lifetime: 30 * time.Minute,
		}},
		{"github-branch", "gh", MintRequest{Claims: map[string]any{
			"repository": "acme/app", "ref": "refs/heads/main", "sha": "0123456789abcdef0123456789abcdef01234567",
			"event_name": "push", "actor": "octocat", "repository_id": "74", "repository_owner_id": "65",
			"workflow": "deploy", "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
			"ref_protected": "true", "run_id": "8123", "run_attempt": "1",
		}}},
		{"github-environment", "gh", MintRequest{Audience: "sts.amazonaws.com", Claims: map[string]any{
			"repository": "acme/app", "environment": "Production:V1", "ref": "refs/tags/v1.2.0",
		}}},
		{"github-pull-request", "gh", MintRequest{Audience: "sts.amazonaws.com", Claims: map[string]any{
			"repository": "acme/app", "event_name": "pull_request_target", "ref": "refs/pull/7/merge",
		}}},
		{"gitlab", "gl", MintRequest{Audience: "https://keyless.example.com", Claims: map[string]any{
			"project_path": "acme/platform/app", "project_id": "20", "namespace_id": "72",
			"ref": "main", "ref_type": "branch", "ref_protected": "true", "pipeline_source": "push",
			"runner_id": "12", "groups_direct": `["acme"]`,
		}}},
		{"github-profile-named", "gh", MintRequest{Profile: ProfileGitHub, Claims: map[string]any{
			"repository": "acme/app", "ref": "refs/heads/release",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.svc.Mint(context.Background(), tt.issuer, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			header, payload := decodeJWT(t, tok.Raw)
			if header["kid"] != tok.KeyID || header["typ"] != "JWT" {
				t.Errorf("header %v does not name kid %s", header, tok.KeyID)
			}
			if payload["sub"] != tok.Subject || payload["aud"] != tok.Audience || payload["iss"] != tok.Issuer {
				t.Errorf("Token fields %v disagree with payload %v", tok, payload)
			}
			golden(t, "claims/"+tt.name+".json", map[string]any{"header": header, "payload": payload})
		})
	}
}
