package oidc

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKindOf(t *testing.T) {
	for url, want := range map[string]IssuerKind{
		"https://token.actions.githubusercontent.com":      KindGitHub,
		"https://token.actions.githubusercontent.com/acme": KindGitHub,
		"https://token.actions.githubusercontent.com.evil": KindGeneric,
		"https://gitlab.com":                               KindGitLab,
		"https://gitlab.example.com":                       KindGeneric,
		"https://oidc.circleci.com/org/0f1e2d3c":           KindCircleCI,
		"https://accounts.google.com":                      KindGoogle,
		"https://app.terraform.io":                         KindGeneric,
		"http://127.0.0.1:8400/oidc":                       KindGeneric,
	} {
		if got := KindOf(url); got != want {
			t.Errorf("KindOf(%q) = %s, want %s", url, got, want)
		}
	}
}

func TestConditionKeyNamesIsACopy(t *testing.T) {
	a := ConditionKeyNames(KindGitHub)
	a[0] = "tampered"
	if b := ConditionKeyNames(KindGitHub); b[0] != "aud" || slices.Contains(b, "tampered") {
		t.Errorf("the key list is shared mutable state: %q", b)
	}
	for _, k := range []IssuerKind{KindGitHub, KindGitLab, KindCircleCI, KindGoogle, KindGeneric} {
		names := ConditionKeyNames(k)
		if !slices.Contains(names, "sub") || !slices.Contains(names, "aud") {
			t.Errorf("%s lacks sub or aud: %q", k, names)
		}
		sorted := slices.Clone(names)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(names) {
			t.Errorf("%s has duplicate keys: %q", k, names)
		}
	}
	for _, notKey := range []string{"event_name", "repository_owner", "runner_environment", "workflow_ref"} {
		if slices.Contains(ConditionKeyNames(KindGitHub), notKey) {
			t.Errorf("GitHub key list includes %q, which AWS does not expose", notKey)
		}
	}
}

func TestClaimStrings(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want []string
	}{
		{"x", []string{"x"}},
		{"", []string{""}},
		{true, []string{"true"}},
		{false, []string{"false"}},
		{json.Number("5001"), []string{"5001"}},
		{json.Number("-0"), []string{"0"}},
		{json.Number("5001.0"), []string{"5001"}},
		{json.Number("5.001e3"), []string{"5001"}},
		{json.Number("1.5"), []string{"1.5"}},
		{json.Number("123456789012345678901234567890"), []string{"123456789012345678901234567890"}},
		{json.Number("1e400"), []string{"1e400"}},
		{[]any{"a", json.Number("2"), true, nil, []any{"nested"}, map[string]any{}}, []string{"a", "2", "true"}},
		{[]any{}, nil},
		{map[string]any{"a": "b"}, nil},
		{nil, nil},
	} {
		got, _ := ClaimStrings(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("ClaimStrings(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestConditionValuesGolden maps one token per issuer kind to its
// condition keys; the golden file is the reviewable contract with the
// policy evaluator.
func TestConditionValuesGolden(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	tokens := []*Token{
		{
			Provider: &Provider{URL: "https://token.actions.githubusercontent.com"},
			Subject:  "repo:acme/payments-api:environment:production", Audience: "sts.amazonaws.com",
			OriginalAudience: []string{"sts.amazonaws.com"},
			Claims: map[string]any{
				"actor": "octocat", "actor_id": n("583231"), "job_workflow_ref": "acme/wf/.github/workflows/deploy.yml@refs/heads/main",
				"repository": "acme/payments-api", "repository_id": n("5001"), "repository_owner_id": "1001",
				"workflow": "deploy", "ref": "refs/heads/main", "environment": "production", "enterprise_id": n("7"),
				"event_name": "push", "repository_owner": "acme", "runner_environment": "self-hosted",
				"amr": []any{"mfa", "pwd"}, "email": "octocat@example.com",
			},
		},
		{
			Provider: &Provider{URL: "https://token.actions.githubusercontent.com/acme-enterprise"},
			Subject:  "repo:acme/x:ref:refs/heads/main", Audience: "sts.amazonaws.com", OriginalAudience: []string{"sts.amazonaws.com"},
			Claims: map[string]any{"repository": "acme/x"},
		},
		{
			Provider: &Provider{URL: "https://gitlab.com"},
			Subject:  "project_path:acme/app:ref_type:branch:ref:main", Audience: "https://gitlab.com", OriginalAudience: []string{"https://gitlab.com"},
			Claims: map[string]any{"project_id": "20", "namespace_id": "10", "ref_protected": "true", "pipeline_source": "push",
				"project_path": "acme/app", "namespace_path": "acme", "ref": "main", "ref_type": "branch", "environment": "prod",
				"user_email": "dev@example.com"},
		},
		{
			Provider: &Provider{URL: "https://gitlab.example.com"},
			Subject:  "project_path:acme/app:ref_type:branch:ref:main", Audience: "aud", OriginalAudience: []string{"aud"},
			Claims: map[string]any{"project_id": "20", "namespace_path": "acme"},
		},
		{
			Provider: &Provider{URL: "https://oidc.circleci.com/org/0f1e2d3c"},
			Subject:  "org/0f1e2d3c/project/aa11/user/bb22", Audience: "0f1e2d3c", OriginalAudience: []string{"0f1e2d3c"},
			Claims: map[string]any{"oidc.circleci.com/project-id": "aa11", "oidc.circleci.com/ssh-rerun": true,
				"oidc.circleci.com/context-ids": []any{"c1"}, "oidc.circleci.com/vcs-ref": "refs/heads/main"},
		},
		{
			Provider: &Provider{URL: "https://accounts.google.com"},
			Subject:  "110169484474386276334", Audience: "1234.apps.googleusercontent.com", AuthorizedParty: "1234.apps.googleusercontent.com",
			OriginalAudience: []string{"sts.amazonaws.com"},
			Claims:           map[string]any{"email": "sa@project.iam.gserviceaccount.com", "amr": []any{"pwd"}},
		},
		{
			Provider: &Provider{URL: "https://auth-dev.mozilla.auth0.com/"},
			Subject:  "ad|Mozilla-LDAP|jdoe", Audience: "client", OriginalAudience: []string{"client", "https://api"},
			Claims: map[string]any{"amr": "mfa"},
		},
		{
			Provider: &Provider{URL: "http://127.0.0.1:8400/oidc"},
			Subject:  "ci:job", Audience: "keyless", OriginalAudience: []string{"keyless"},
			Claims: map[string]any{"email": map[string]any{"not": "a string"}},
		},
	}
	out := map[string]map[string][]string{}
	for _, tok := range tokens {
		out[tok.Provider.URL] = ConditionValues(tok)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "condition-keys.golden.json", append(b, '\n'))

	// Spot checks that -update cannot silently change.
	gh := out["https://token.actions.githubusercontent.com"]
	if d := cmp.Diff([]string{"5001"}, gh["token.actions.githubusercontent.com:repository_id"]); d != "" {
		t.Errorf("repository_id: %s", d)
	}
	if _, ok := gh["token.actions.githubusercontent.com:event_name"]; ok {
		t.Error("event_name exposed as a key")
	}
	if got := out["https://accounts.google.com"]["accounts.google.com:aud"]; !slices.Equal(got, []string{"1234.apps.googleusercontent.com"}) {
		t.Errorf("google aud = %q, want the azp", got)
	}
	if got := out["https://auth-dev.mozilla.auth0.com/"]["auth-dev.mozilla.auth0.com/:oaud"]; len(got) != 2 {
		t.Errorf("oaud = %q", got)
	}
	if _, ok := out["https://oidc.circleci.com/org/0f1e2d3c"]["oidc.circleci.com/org/0f1e2d3c:oidc.circleci.com/project-id"]; !ok {
		t.Error("CircleCI project-id key missing")
	}
	if _, ok := out["http://127.0.0.1:8400/oidc"]["127.0.0.1:8400/oidc:sub"]; !ok {
		t.Error("loopback prefix wrong")
	}
}
