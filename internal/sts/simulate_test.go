package sts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/oidc/oidctest"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// stsExplanation runs a real exchange through the fixture's STS and
// returns the decoded explanation of its refusal.
func stsExplanation(t *testing.T, f *fixture, tok, session string) Explanation {
	t.Helper()
	_, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {session}, "WebIdentityToken": {tok}})
	e, ok := errors.AsType[*awsquery.Error](err)
	if !ok {
		t.Fatalf("exchange: want a refusal, got %v", err)
	}
	_, enc, ok := strings.Cut(e.Message, "Encoded authorization failure message: ")
	if !ok {
		t.Fatalf("refusal without an encoded message: %s", e.Message)
	}
	res, err := f.svc.decodeAuthorizationMessage(context.Background(), &awsquery.Request{Params: awsquery.ParamsFromValues(url.Values{"EncodedMessage": {enc}})})
	if err != nil {
		t.Fatal(err)
	}
	var ex Explanation
	if err := json.Unmarshal([]byte(res.(decodeResult).DecodedMessage), &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

// simulateToken runs the simulator on the fixture's role and a JWT.
func simulateToken(t *testing.T, f *fixture, tok, session string) *SimulateResult {
	t.Helper()
	role, err := f.st.Roles().Get(context.Background(), "deploy")
	if err != nil {
		t.Fatal(err)
	}
	claims, fromJWT, err := ReadSimulationClaims([]byte(tok))
	if err != nil || !fromJWT {
		t.Fatalf("ReadSimulationClaims = %v, fromJWT %v", err, fromJWT)
	}
	res, err := Simulate(SimulateInput{TrustPolicy: role.TrustPolicy, Claims: claims, RoleARN: f.roleARN, RoleSessionName: session, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestSimulateSameAsSTS: for refused exchanges the simulator's explanation
// is the STS's decoded message, field for field, but tokenSha256 (only the
// server sees the token as sent). Round trip through JSON, as a client
// reads both.
func TestSimulateSameAsSTS(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mutate func(*oidctest.Token)
	}{
		{"subject of another repository", func(tk *oidctest.Token) { tk.Claims["sub"] = "repo:evil/app:ref:refs/heads/main" }},
		{"session tags need sts:TagSession, allowed; source identity needs sts:SetSourceIdentity, not allowed", func(tk *oidctest.Token) {
			tk.Claims["https://aws.amazon.com/tags"] = map[string]any{"principal_tags": map[string]any{"team": []any{"ci"}}}
			tk.Claims["https://aws.amazon.com/source_identity"] = "octocat"
		}},
		{"role not in the roles claim", func(tk *oidctest.Token) {
			tk.Claims["https://aws.amazon.com/roles"] = []any{"arn:aws:iam::123456789012:role/other"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com", tc.mutate)
			want := stsExplanation(t, f, tok, "s1")
			res := simulateToken(t, f, tok, "s1")
			if res.Allowed {
				t.Fatal("simulate allowed what the STS refused")
			}
			b, err := json.Marshal(res.Explanation)
			if err != nil {
				t.Fatal(err)
			}
			var got Explanation
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if want.Keyless.TokenSHA256 == "" {
				t.Error("the STS's explanation has no tokenSha256: the exception below would hide nothing")
			}
			want.Keyless.TokenSHA256 = ""
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("simulate's explanation differs from the STS's (-sts +simulate):\n%s", d)
			}
		})
	}
}

// TestSimulateAllowSameAsSTS: a token the STS accepts, simulate allows,
// naming the statement that matched.
func TestSimulateAllowSameAsSTS(t *testing.T) {
	f := newFixture(t)
	tok := f.iss.Mint(t, "repo:org/app:ref:refs/heads/main", "sts.amazonaws.com", func(tk *oidctest.Token) {
		tk.Claims["https://aws.amazon.com/tags"] = map[string]any{"principal_tags": map[string]any{"team": []any{"ci"}}}
	})
	if _, _, err := f.call(t, url.Values{"RoleArn": {f.roleARN}, "RoleSessionName": {"s1"}, "WebIdentityToken": {tok}}); err != nil {
		t.Fatalf("STS refused: %v", err)
	}
	res := simulateToken(t, f, tok, "s1")
	if !res.Allowed || !res.Explanation.Allowed || res.Explanation.Keyless.ErrorCode != "" {
		t.Fatalf("simulate = %+v", res)
	}
	if want := "The trust policy allows this token: statement 0 (CI) matched."; res.Explanation.Keyless.Reason != want {
		t.Errorf("reason = %q, want %q", res.Explanation.Keyless.Reason, want)
	}
}

const ghTrust = `{"Version":"2012-10-17","Statement":[{"Sid":"Deploy","Effect":"Allow",
"Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
"Action":"sts:AssumeRoleWithWebIdentity",
"Condition":{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com",
"token.actions.githubusercontent.com:sub":"repo:acme/app:ref:refs/heads/main"}}}]}`

func ghClaims(sub string) map[string]any {
	return map[string]any{"iss": "https://token.actions.githubusercontent.com", "aud": "sts.amazonaws.com", "sub": sub,
		"iat": json.Number("1791484275"), "exp": json.Number("1791484575")}
}

func TestSimulate(t *testing.T) {
	t.Parallel()
	at := time.Unix(1791484300, 0)
	const ghProvider = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
	tests := []struct {
		name                 string
		in                   SimulateInput
		wantAllowed          bool
		wantProvider         string
		wantSource           string
		wantRole             string
		wantCode, wantRule   string
		wantReason, wantNote string
	}{
		{
			name:        "allowed; provider from the Federated principal",
			in:          SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("repo:acme/app:ref:refs/heads/main"), Now: at},
			wantAllowed: true, wantProvider: ghProvider, wantSource: ProviderFromPrincipal,
			wantRole:   "arn:aws:iam::111122223333:role/keyless-simulate",
			wantReason: "The trust policy allows this token: statement 0 (Deploy) matched.",
		},
		{
			name:         "denied with expected and actual values",
			in:           SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("repo:acme/app:pull_request"), Now: at},
			wantProvider: ghProvider, wantSource: ProviderFromPrincipal, wantRole: "arn:aws:iam::111122223333:role/keyless-simulate",
			wantCode:   "AccessDenied",
			wantReason: `The trust policy does not allow this token: statement 0 (Deploy): condition StringEquals on token.actions.githubusercontent.com:sub expects "repo:acme/app:ref:refs/heads/main", but the token has "repo:acme/app:pull_request".`,
		},
		{
			name: "provider derived in the role's account: the policy's principal is another account's",
			in: SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("repo:acme/app:ref:refs/heads/main"), Now: at,
				RoleARN: "arn:aws:iam::444455556666:role/deploy"},
			wantProvider: "arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com", wantSource: ProviderFromRole,
			wantRole: "arn:aws:iam::444455556666:role/deploy", wantCode: "AccessDenied",
			wantReason: "The trust policy does not allow this token: statement 0 (Deploy): principal Federated \"arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com\" is not named by Principal.",
		},
		{
			name: "no Federated account: default account",
			in: SimulateInput{TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
				Claims: ghClaims("x"), Now: at},
			wantProvider: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com", wantSource: ProviderFromDefault,
			wantRole: "arn:aws:iam::123456789012:role/keyless-simulate", wantCode: "AccessDenied",
		},
		{
			name: "given provider of another account than the role's: the STS would not find it",
			in: SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("repo:acme/app:ref:refs/heads/main"), Now: at,
				ProviderARN: ghProvider, RoleARN: "arn:aws:iam::444455556666:role/deploy"},
			wantProvider: ghProvider, wantSource: ProviderFromFlag, wantRole: "arn:aws:iam::444455556666:role/deploy",
			wantCode: "InvalidIdentityToken", wantRule: "V12",
			wantReason: `issuer "https://token.actions.githubusercontent.com" is not a registered provider in the role's account 444455556666`,
			wantNote:   "the STS would not use the given provider",
		},
		{
			name:        "expired token: a note, the trust policy still decides",
			in:          SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("repo:acme/app:ref:refs/heads/main"), Now: at.Add(time.Hour)},
			wantAllowed: true, wantProvider: ghProvider, wantSource: ProviderFromPrincipal, wantRole: "arn:aws:iam::111122223333:role/keyless-simulate",
			wantReason: "The trust policy allows this token: statement 0 (Deploy) matched.",
			wantNote:   "the token expired at 2026-10-08T",
		},
		{
			name: "bad session tag claim: refused as the STS refuses the token",
			in: SimulateInput{TrustPolicy: ghTrust, Now: at, Claims: func() map[string]any {
				c := ghClaims("repo:acme/app:ref:refs/heads/main")
				c["https://aws.amazon.com/tags"] = "not an object"
				return c
			}()},
			wantProvider: ghProvider, wantSource: ProviderFromPrincipal, wantRole: "arn:aws:iam::111122223333:role/keyless-simulate",
			wantCode:   "InvalidIdentityToken",
			wantReason: "The web identity token that was passed is invalid: the https://aws.amazon.com/tags claim must be an object",
		},
		{
			name: "role tags are aws:ResourceTag keys",
			in: SimulateInput{TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}}]}`,
				Claims: ghClaims("x"), Now: at, RoleTags: []store.Tag{{Key: "env", Value: "prod"}}},
			wantAllowed: true, wantProvider: ghProvider, wantSource: ProviderFromPrincipal, wantRole: "arn:aws:iam::111122223333:role/keyless-simulate",
			wantReason: "The trust policy allows this token: statement 0 matched.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Simulate(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			k := res.Explanation.Keyless
			got := []string{res.ProviderARN, res.ProviderSource, res.RoleARN, k.ErrorCode, k.Rule}
			want := []string{tc.wantProvider, tc.wantSource, tc.wantRole, tc.wantCode, tc.wantRule}
			if d := cmp.Diff(want, got); d != "" || res.Allowed != tc.wantAllowed || res.Explanation.Allowed != tc.wantAllowed {
				t.Errorf("allowed %v (explanation %v), want %v; provider, source, role, code, rule (-want +got):\n%s", res.Allowed, res.Explanation.Allowed, tc.wantAllowed, d)
			}
			if tc.wantReason != "" && k.Reason != tc.wantReason {
				t.Errorf("reason = %q\nwant     %q", k.Reason, tc.wantReason)
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(res.Notes, "\n"), tc.wantNote) {
				t.Errorf("notes = %q, want one with %q", res.Notes, tc.wantNote)
			}
			if tc.wantNote == "" && len(res.Notes) > 0 {
				t.Errorf("unexpected notes %q", res.Notes)
			}
		})
	}
}

func TestSimulateBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   SimulateInput
	}{
		{"no iss", SimulateInput{TrustPolicy: ghTrust, Claims: map[string]any{"aud": "a", "sub": "s"}}},
		{"iss not a string", SimulateInput{TrustPolicy: ghTrust, Claims: map[string]any{"iss": json.Number("1"), "aud": "a", "sub": "s"}}},
		{"no aud", SimulateInput{TrustPolicy: ghTrust, Claims: map[string]any{"iss": "https://x", "sub": "s"}}},
		{"aud of numbers", SimulateInput{TrustPolicy: ghTrust, Claims: map[string]any{"iss": "https://x", "aud": []any{json.Number("1")}, "sub": "s"}}},
		{"no sub", SimulateInput{TrustPolicy: ghTrust, Claims: map[string]any{"iss": "https://x", "aud": "a"}}},
		{"bad role ARN", SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("s"), RoleARN: "deploy"}},
		{"bad provider ARN", SimulateInput{TrustPolicy: ghTrust, Claims: ghClaims("s"), ProviderARN: "arn:aws:iam::111122223333:role/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Simulate(tc.in); !errors.Is(err, ErrSimulateInput) {
				t.Errorf("err = %v, want ErrSimulateInput", err)
			}
		})
	}
	_, err := Simulate(SimulateInput{TrustPolicy: "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [}\n", Claims: ghClaims("s")})
	pe, ok := errors.AsType[*policy.Error](err)
	if !errors.Is(err, ErrSimulateInput) || !ok || pe.Line != 3 {
		t.Errorf("malformed policy: err = %v, want ErrSimulateInput and a *policy.Error at line 3", err)
	}
}

func TestReadSimulationClaims(t *testing.T) {
	t.Parallel()
	payload := `{"iss":"https://x","aud":"a","sub":"s","n":5001}`
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jwt := seg(`{"alg":"RS256"}`) + "." + seg(payload) + ".c2ln"
	want := map[string]any{"iss": "https://x", "aud": "a", "sub": "s", "n": json.Number("5001")}
	for _, tc := range []struct {
		name, in string
		jwt      bool
	}{
		{"object", payload, false},
		{"object with whitespace", "\n " + payload + "\n", false},
		{"JWT", jwt, true},
		{"JWT with a trailing newline", jwt + "\n", true},
	} {
		got, fromJWT, err := ReadSimulationClaims([]byte(tc.in))
		if err != nil || fromJWT != tc.jwt {
			t.Errorf("%s: err %v, fromJWT %v", tc.name, err, fromJWT)
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	for _, bad := range []string{"", "[1,2]", `"s"`, "a.b", "a.!!.c", `{"sub":"a","sub":"b"}`, `{"a":1} {"b":2}`, `{"a":`, seg(`{}`) + "." + seg(`[1]`) + ".x"} {
		if _, _, err := ReadSimulationClaims([]byte(bad)); !errors.Is(err, ErrSimulateInput) {
			t.Errorf("ReadSimulationClaims(%q) = %v, want ErrSimulateInput", bad, err)
		}
	}
}

func TestReadSimulationTrustPolicy(t *testing.T) {
	t.Parallel()
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"k":"a+b c"}}}]}`
	obj := `{"Role":{"Arn":"arn:aws:iam::111122223333:role/r","Tags":[{"Key":"env","Value":"prod"}],"AssumeRolePolicyDocument":` + doc + `}}`
	enc, _ := json.Marshal(doc)
	str := `{"Role":{"AssumeRolePolicyDocument":` + string(enc) + `}}`
	qenc, _ := json.Marshal(strings.ReplaceAll(url.QueryEscape(doc), "+", "%20"))
	query := `{"Role":{"AssumeRolePolicyDocument":` + string(qenc) + `}}`
	tests := []struct {
		name, in string
		want     SimulationRole
	}{
		{"document", doc, SimulationRole{Document: doc}},
		{"not JSON: as it is, for the parser", "{oops", SimulationRole{Document: "{oops"}},
		{"get-role, document an object", obj, SimulationRole{Document: doc, FromRole: true, ARN: "arn:aws:iam::111122223333:role/r", Tags: []store.Tag{{Key: "env", Value: "prod"}}}},
		{"get-role, document a string", str, SimulationRole{Document: doc, FromRole: true}},
		{"get-role, document URL-encoded", query, SimulationRole{Document: doc, FromRole: true}},
	}
	for _, tc := range tests {
		got, err := ReadSimulationTrustPolicy([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	for _, bad := range []string{`{"Role":{}}`, `{"Role":{"AssumeRolePolicyDocument":"%ZZ"}}`} {
		if _, err := ReadSimulationTrustPolicy([]byte(bad)); !errors.Is(err, ErrSimulateInput) {
			t.Errorf("ReadSimulationTrustPolicy(%q) = %v, want ErrSimulateInput", bad, err)
		}
	}
}

func FuzzReadSimulationClaims(f *testing.F) {
	for _, s := range []string{`{"iss":"x"}`, "a.b.c", "eyJ9.eyJ9.x", `{"a":[1,{"b":null}]}`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, _, err := ReadSimulationClaims([]byte(s))
		if err == nil && c == nil {
			t.Errorf("ReadSimulationClaims(%q): no error and no claims", s)
		}
		if err != nil && !errors.Is(err, ErrSimulateInput) {
			t.Errorf("ReadSimulationClaims(%q): error %v is not ErrSimulateInput", s, err)
		}
	})
}
