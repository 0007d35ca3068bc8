package contract

// End-to-end token-attack and trust-policy conformance suite: every case of
// testdata/trust-cases-sample.json (trust-pitfalls §8/§9) against a real
// `keyless serve`, whose OIDC providers are served under their real host
// names (token.actions.githubusercontent.com, gitlab.com, …) by one TLS
// server on loopback that keyless reaches through oidc.connect_to and trusts
// through oidc.ca_files. The expected outcomes come from the case file; this
// file only builds the tokens and the roles the cases describe.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-cmp/cmp"

	"github.com/keylessci/keyless/internal/oidc/oidctest"
)

const trustCasesFile = "testdata/trust-cases-sample.json"

// baselineCase holds the trust policy of the token cases' baseline (T-00's
// notes: "Trust policy = P-GH-13").
const baselineCase = "P-GH-13"

// Kids of the GitHub issuer's extra keys, published from the start so that
// the first JWKS keyless fetches already carries them.
const (
	kidP384     = "gh-p384"      // T-06: an EC P-384 key
	kidUseEnc   = "gh-use-enc"   // T-21: published with use=enc
	kidAlgRS512 = "gh-alg-rs512" // T-21: published with alg=RS512
	kidE1       = "gh-e1"        // T-59: published with e=AQ (1)
	kidAttacker = "attacker"     // T-18: never published
)

// viaCLI names the cases also run through the real AWS CLI, to show it sees
// the same codes as aws-sdk-go-v2.
func viaCLI(id string) bool {
	switch id {
	case "T-00", "T-36", "P-GH-28":
		return true
	}
	return false
}

// trustSuite is the one server, the one issuer farm and the clients every
// case shares.
type trustSuite struct {
	srv         *server
	farm        *issuerFarm
	iam         *iam.Client
	anon, admin *sts.Client
	cases       []trustCase
	byID        map[string]trustCase
	ghURL       string // the baseline's provider
	keys        map[string]*oidctest.Key
	roleErr     map[string]error  // CreateRole failures, reported by the case
	probeRole   map[string]string // provider URL → a role refusing every token, to read the request context
	presented   []string          // every token sent, for the log leak scan
	latencies   []time.Duration
}

func (s *trustSuite) providerARN(u string) string {
	return "arn:aws:iam::" + caseAccount + ":oidc-provider/" + strings.TrimPrefix(u, "https://")
}

// baseRole is the role of the baseline's trust policy.
func (s *trustSuite) baseRole() string { return s.byID[baselineCase].roleName() }

func (s *trustSuite) roleARN(name string) string {
	return "arn:aws:iam::" + caseAccount + ":role/" + name
}

// TestTrustCasesSampleInSync: the testdata copy is the shared case file.
func TestTrustCasesSampleInSync(t *testing.T) {
	t.Parallel()
	shared := filepath.Join("..", "..", "..", "shared", "data", "trust-cases-sample.json")
	want, err := os.ReadFile(shared)
	if err != nil {
		t.Skipf("shared data not beside the checkout: %v", err)
	}
	got, err := os.ReadFile(trustCasesFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		d := cmp.Diff(loadTrustCases(t, shared), loadTrustCases(t, trustCasesFile))
		t.Errorf("%s differs from %s; copy it again (-shared +testdata):\n%s", trustCasesFile, shared, d)
	}
}

// TestTrustCasesSampleShape: the sample is what trust-pitfalls §9 says it
// is, and every token case has a mutation implemented here (and no
// implementation is orphaned), so a new case cannot be skipped silently.
func TestTrustCasesSampleShape(t *testing.T) {
	t.Parallel()
	cs := loadTrustCases(t, trustCasesFile)
	count := map[string]int{}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.ID] {
			t.Errorf("duplicate case id %s", c.ID)
		}
		seen[c.ID] = true
		count[c.Category]++
	}
	if d := cmp.Diff(map[string]int{"trust_policy": 26, "token": 22}, count); d != "" {
		t.Errorf("case counts (-want +got):\n%s", d)
	}
	impls := tokenCaseImpls()
	for _, c := range cs {
		if c.Category == "token" && impls[c.ID] == nil {
			t.Errorf("token case %s has no implementation", c.ID)
		}
	}
	for id := range impls {
		if !seen[id] {
			t.Errorf("implementation for %s, which is not in the sample", id)
		}
	}
	if !seen[baselineCase] || !seen["T-00"] {
		t.Errorf("the baseline needs %s and T-00", baselineCase)
	}
}

// TestTrustCases runs all 48 cases, each a subtest named by its id, against
// one server and one issuer farm. Subtests run in order: T-56 briefly
// poisons the GitHub issuer's discovery document.
func TestTrustCases(t *testing.T) {
	t.Parallel()
	s := newTrustSuite(t)
	ctx := context.Background()
	impls := tokenCaseImpls()
	for _, c := range s.cases {
		t.Run(c.ID, func(t *testing.T) {
			switch c.Category {
			case "trust_policy":
				s.runTrustPolicyCase(ctx, t, c)
			case "token":
				impls[c.ID](ctx, t, s, c)
			default:
				t.Fatalf("unknown category %q", c.Category)
			}
		})
	}
	// P-GH-35 (duplicate keys, GOV.UK) is in the full set, not the sample:
	// its shape runs through the same path as a case with policy_raw.
	t.Run("P-GH-35-shape", func(t *testing.T) {
		ghPrefix := strings.TrimPrefix(s.ghURL, "https://")
		raw := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + s.providerARN(s.ghURL) + `"},` +
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + ghPrefix + `:sub":"repo:acme/payments-api:ref:refs/heads/main"},` +
			`"StringEquals":{"` + ghPrefix + `:aud":"sts.amazonaws.com"}}}]}`
		c := trustCase{ID: "P-GH-35-shape", Category: "trust_policy", IssuerKeyPrefix: ghPrefix, Policy: json.RawMessage("null"), PolicyRaw: raw}
		_, err := s.iam.CreateRole(ctx, iamCreateRole(c.roleName(), c.PolicyRaw))
		s.roleErr[c.ID] = err
		s.runTrustPolicyCase(ctx, t, c)
	})

	// No token, in whole or by its signature, may reach the server's log.
	logs := s.srv.logs.String()
	for _, tok := range s.presented {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(logs, tok) || (len(sig) >= 32 && strings.Contains(logs, sig)) {
			t.Errorf("a presented token appears in the server log (%d characters)", len(tok))
		}
	}
	if u := s.farm.mux.Unrouted(); len(u) > 0 {
		t.Errorf("requests to hosts the farm does not serve: %v", u)
	}
	if len(s.latencies) > 0 {
		l := slices.Clone(s.latencies)
		slices.Sort(l)
		t.Logf("%d AssumeRoleWithWebIdentity calls: median %v, p95 %v, max %v",
			len(l), l[len(l)/2], l[len(l)*95/100], l[len(l)-1])
	}
}

// newTrustSuite starts the issuer farm and keyless, and registers every
// provider and role up front.
func newTrustSuite(t *testing.T) *trustSuite {
	t.Helper()
	s := &trustSuite{cases: loadTrustCases(t, trustCasesFile), byID: map[string]trustCase{}, roleErr: map[string]error{}}
	for _, c := range s.cases {
		s.byID[c.ID] = c
	}
	base := s.byID["T-00"].BaselineToken
	if base == nil {
		t.Fatal("T-00 has no baseline_token")
	}
	s.ghURL = base.Provider.URL

	// Every issuer URL and the client ids its provider needs: the
	// audiences of the cases' tokens and the baseline provider's list.
	clientIDs := map[string][]string{s.ghURL: slices.Clone(base.Provider.ClientIDs)}
	for _, c := range s.cases {
		if c.Category != "trust_policy" {
			continue
		}
		u := c.providerURL()
		if iss, _ := c.TokenClaims["iss"].(string); iss != u {
			t.Fatalf("%s: token iss %q is not the provider of the trust policy %q", c.ID, iss, u)
		}
		clientIDs[u] = append(clientIDs[u], auds(c.TokenClaims["aud"])...)
	}
	// T-47's token is valid for its own provider (GitLab) and only the
	// role's trust refuses it, so that provider also lists the baseline aud.
	var m47 tokenMutation
	mustMutation(t, s.byID["T-47"], &m47)
	otherIss, _ := m47.Claims["iss"].(string)
	if _, ok := clientIDs[otherIss]; !ok {
		t.Fatalf("T-47's issuer %q is not a provider of the sample", otherIss)
	}
	baseAud, _ := base.Claims["aud"].(string)
	clientIDs[otherIss] = append(clientIDs[otherIss], baseAud)

	// Keys: one RSA key per issuer; the GitHub issuer also publishes the
	// keys the token cases abuse.
	urls := make([]string, 0, len(clientIDs))
	for u := range clientIDs {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	specs := map[string]oidctest.KeyType{
		kidP384: oidctest.ECP384, kidUseEnc: oidctest.RSA2048, kidAlgRS512: oidctest.RSA2048,
		kidE1: oidctest.RSA2048, kidAttacker: oidctest.RSA2048,
	}
	mainKID := map[string]string{}
	for i, u := range urls {
		mainKID[u] = fmt.Sprintf("issuer%d-rs256", i)
		specs[mainKID[u]] = oidctest.RSA2048
	}
	s.keys = generateKeys(t, specs)
	published := map[string][]*oidctest.Key{}
	for _, u := range urls {
		published[u] = []*oidctest.Key{s.keys[mainKID[u]]}
	}
	published[s.ghURL] = append(published[s.ghURL], s.keys[kidP384], s.keys[kidUseEnc], s.keys[kidAlgRS512], s.keys[kidE1])
	s.farm = newIssuerFarm(t, published)
	gh := s.farm.issuer(t, s.ghURL)
	var m21, m59 tokenMutation
	mustMutation(t, s.byID["T-21"], &m21)
	mustMutation(t, s.byID["T-59"], &m59)
	gh.OverrideJWK(kidUseEnc, m21.JWKS) // {"use": "enc"}
	gh.OverrideJWK(kidAlgRS512, map[string]any{"alg": "RS512"})
	gh.OverrideJWK(kidE1, m59.JWKS) // {"e": "AQ"}

	s.srv = startServerAccount(t, "", caseAccount, "--config", s.farm.keylessConfig(t))
	s.iam = newIAMClient(s.srv.URL)
	s.anon, s.admin = newSTSClients(s.srv.URL)
	ctx := context.Background()
	for _, u := range urls {
		ids := slices.Compact(slices.Sorted(slices.Values(clientIDs[u])))
		if _, err := s.iam.CreateOpenIDConnectProvider(ctx, iamCreateProvider(u, ids...)); err != nil {
			t.Fatalf("CreateOpenIDConnectProvider %s: %v", u, err)
		}
	}
	for _, c := range s.cases {
		if c.Category != "trust_policy" {
			continue
		}
		doc := string(c.Policy)
		if doc == "null" || doc == "" {
			doc = c.PolicyRaw
		}
		_, err := s.iam.CreateRole(ctx, iamCreateRole(c.roleName(), doc))
		s.roleErr[c.ID] = err
	}
	s.probeRole = map[string]string{}
	for i, u := range urls {
		name := fmt.Sprintf("probe-keys-%d", i)
		prefix := strings.TrimPrefix(u, "https://")
		deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + s.providerARN(u) + `"},` +
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + prefix + `:sub":"no token has this subject"}}}]}`
		if _, err := s.iam.CreateRole(ctx, iamCreateRole(name, deny)); err != nil {
			t.Fatalf("CreateRole %s: %v", name, err)
		}
		s.probeRole[u] = name
	}
	if _, err := s.iam.CreateRole(ctx, iamCreateRole(repoIDRole, s.repoIDPinnedPolicy(t))); err != nil {
		t.Fatalf("CreateRole %s: %v", repoIDRole, err)
	}
	return s
}

// repoIDRole is T-53's role: P-GH-33's pins, repository_id "5001" and
// repository_owner_id "1001" (strings), on top of the baseline's trust.
const repoIDRole = "tk-P-GH-33-pins"

func (s *trustSuite) repoIDPinnedPolicy(t *testing.T) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(s.byID[baselineCase].Policy, &doc); err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimPrefix(s.ghURL, "https://")
	eq := doc["Statement"].([]any)[0].(map[string]any)["Condition"].(map[string]any)["StringEquals"].(map[string]any)
	eq[prefix+":repository_id"] = "5001"
	eq[prefix+":repository_owner_id"] = "1001"
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// present sends a token for a role and records it.
func (s *trustSuite) present(ctx context.Context, role, session, token string) outcome {
	s.presented = append(s.presented, token)
	o := exchange(ctx, s.anon, s.roleARN(role), session, token)
	s.latencies = append(s.latencies, o.elapsed)
	return o
}

// runTrustPolicyCase: a validly signed token with exactly the case's claims
// against the case's role; allow ↔ credentials, deny ↔ AccessDenied.
func (s *trustSuite) runTrustPolicyCase(ctx context.Context, t *testing.T, c trustCase) {
	if string(c.Policy) == "null" && c.PolicyRaw != "" {
		// Only a raw document exists (duplicate keys): IAM must refuse it.
		wantCode(t, s.roleErr[c.ID], "MalformedPolicyDocument")
		_, err := s.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(c.roleName())})
		wantCode(t, err, "NoSuchEntity")
		t.Logf("%s: CreateRole refused the document with MalformedPolicyDocument", c.ID)
		return
	}
	if err := s.roleErr[c.ID]; err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if strings.HasPrefix(c.WriteGuardrail, "reject") {
		t.Logf("AWS's write guardrail refuses this trust policy for new writes (%s); it exists here as a pre-existing role", c.WriteGuardrail)
	}
	claims, err := reanchorTimes(c.TokenClaims, time.Now().Unix()-10)
	if err != nil {
		t.Fatal(err)
	}
	iss := s.farm.issuer(t, c.providerURL())
	k := iss.CurrentKey()
	tok := (&oidctest.Token{Header: map[string]any{"alg": k.Alg, "typ": "JWT", "kid": k.KID}, Claims: claims, Key: k}).MustSerialize(t)
	session := "tc-" + c.ID
	o := s.present(ctx, c.roleName(), session, tok)
	sub, _ := c.TokenClaims["sub"].(string)
	switch c.ExpectedVerdict {
	case "allow":
		s.wantCredentials(ctx, t, o, c.roleName(), session, sub, c.providerURL())
		if a := auds(c.TokenClaims["aud"]); len(a) == 1 && c.TokenClaims["azp"] == nil && aws.ToString(o.out.Audience) != a[0] {
			t.Errorf("Audience = %q, want %q", aws.ToString(o.out.Audience), a[0])
		}
	case "deny":
		s.wantRefusal(ctx, t, o, "AccessDenied", 403, tok, sub)
	default:
		t.Fatalf("unknown expected_verdict %q", c.ExpectedVerdict)
	}
	// The same token against a role of the same provider that refuses
	// everything: its decoded explanation shows the request context.
	t.Run("condition-keys", func(t *testing.T) {
		session := "probe-" + c.ID
		d := s.wantRefusal(ctx, t, s.present(ctx, s.probeRole[c.providerURL()], session, tok), "AccessDenied", 403, tok, sub)
		s.checkConditionKeys(t, c, d)
	})
	if c.ExtendedVerdict != "" {
		t.Logf("an STS exposing every claim would %s; keyless exposes AWS's keys only and must %s", c.ExtendedVerdict, c.ExpectedVerdict)
	}
	if viaCLI(c.ID) {
		wantErr := ""
		if c.ExpectedVerdict == "deny" {
			wantErr = "AccessDenied"
		}
		s.cli(t, c.roleName(), session, tok, wantErr)
	}
}

// checkConditionKeys: the keys keyless put in the request context (the
// decoded explanation's conditionKeys) are AWS's keys for the issuer kind
// (the case's aws_condition_keys_available), and every one of those the
// token carries is there.
func (s *trustSuite) checkConditionKeys(t *testing.T, c trustCase, d decodedExplanation) {
	t.Helper()
	if len(c.ConditionKeysAWS) == 0 {
		return
	}
	available := keyNames(c.IssuerKeyPrefix, c.ConditionKeysAWS)
	var got []string
	for k := range d.Keyless.ConditionKeys {
		if !strings.HasPrefix(k, c.IssuerKeyPrefix+":") {
			t.Errorf("condition key %q outside the provider's prefix %q", k, c.IssuerKeyPrefix)
		}
		got = append(got, k)
	}
	got = keyNames(c.IssuerKeyPrefix, got)
	for _, k := range got {
		if !slices.Contains(available, k) {
			t.Errorf("keyless exposed %q, which AWS does not expose for this issuer (AWS keys: %v)", k, available)
		}
	}
	for _, k := range available {
		_, inToken := c.TokenClaims[k]
		if (inToken || k == "aud" || k == "sub") && !slices.Contains(got, k) {
			t.Errorf("the token carries %q, an AWS key for this issuer, but keyless did not expose it (exposed: %v)", k, got)
		}
	}
}

// wantCredentials: the exchange succeeded, the response describes the
// session, and the credentials work.
func (s *trustSuite) wantCredentials(ctx context.Context, t *testing.T, o outcome, role, session, sub, providerURL string) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("got %v, want credentials", o)
	}
	cr := o.out.Credentials
	if cr == nil || !strings.HasPrefix(aws.ToString(cr.AccessKeyId), "ASIA") || len(aws.ToString(cr.SecretAccessKey)) != 40 || aws.ToString(cr.SessionToken) == "" {
		t.Fatalf("credentials = %+v", cr)
	}
	wantARN := "arn:aws:sts::" + caseAccount + ":assumed-role/" + role + "/" + session
	if got := aws.ToString(o.out.AssumedRoleUser.Arn); got != wantARN {
		t.Errorf("AssumedRoleUser.Arn = %q, want %q", got, wantARN)
	}
	if got := aws.ToString(o.out.SubjectFromWebIdentityToken); got != sub {
		t.Errorf("SubjectFromWebIdentityToken = %q, want %q", got, sub)
	}
	if got := aws.ToString(o.out.Provider); got != s.providerARN(providerURL) {
		t.Errorf("Provider = %q, want %q", got, s.providerARN(providerURL))
	}
	who, err := sessionClient(s.srv.URL, o.out).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the issued credentials: %v", err)
	}
	if aws.ToString(who.Arn) != wantARN || aws.ToString(who.Account) != caseAccount {
		t.Errorf("caller identity = %s in %s, want %s", aws.ToString(who.Arn), aws.ToString(who.Account), wantARN)
	}
}

// wantRefusal: the exchange failed with code and HTTP status, the message
// reveals neither the token nor the subject, and an AccessDenied carries an
// explanation the administrator can decode. Token errors may carry one too;
// when they do, it must decode.
func (s *trustSuite) wantRefusal(ctx context.Context, t *testing.T, o outcome, code string, status int, token, sub string) decodedExplanation {
	t.Helper()
	if o.err == nil {
		t.Fatalf("credentials issued, want %s (HTTP %d)", code, status)
	}
	if o.code != code || o.status != status {
		t.Fatalf("got %v, want %s (HTTP %d)", o, code, status)
	}
	if strings.Contains(o.message, token) || (sub != "" && strings.Contains(o.message, sub)) {
		t.Errorf("the refusal reveals the token or its subject: %q", o.message)
	}
	var d decodedExplanation
	if code == "AccessDenied" {
		if !strings.HasPrefix(o.message, "Not authorized to perform sts:AssumeRoleWithWebIdentity") || !strings.Contains(o.message, encodedMessageMarker) {
			t.Errorf("AccessDenied message = %q", o.message)
		}
		d = decodeRefusal(ctx, t, s.admin, o.message)
		// A trust evaluation ran (a missing role is refused the same way
		// on the wire but has no trace).
		if len(d.Keyless.Trace) == 0 || string(d.Keyless.Trace) == "null" {
			t.Errorf("AccessDenied without a trust-policy trace: %s", d.Keyless.Reason)
		}
	} else if strings.Contains(o.message, encodedMessageMarker) {
		d = decodeRefusal(ctx, t, s.admin, o.message)
	}
	if d.Keyless.Reason != "" {
		t.Logf("%s %s: %s", code, d.Keyless.Rule, d.Keyless.Reason)
	}
	if d.Keyless.ErrorCode != "" && d.Keyless.ErrorCode != code {
		t.Errorf("decoded errorCode %q, want %q", d.Keyless.ErrorCode, code)
	}
	return d
}

// cli runs the same exchange with the real AWS CLI.
func (s *trustSuite) cli(t *testing.T, role, session, token, wantErr string) {
	t.Run("aws-cli", func(t *testing.T) {
		r := awsCLI(t, s.srv.URL, awsEnv(t, "", "", ""), "sts", "assume-role-with-web-identity",
			"--role-arn", s.roleARN(role), "--role-session-name", session, "--web-identity-token", token)
		if wantErr != "" {
			wantAWSError(t, r, wantErr)
			if wantErr == "AccessDenied" && !strings.Contains(r.Stderr, encodedMessageMarker) {
				t.Errorf("CLI error lacks the encoded message: %s", r.Stderr)
			}
			return
		}
		if r.Code != 0 {
			t.Fatalf("aws sts assume-role-with-web-identity: exit %d\n%s", r.Code, r.Stderr)
		}
		creds, _ := r.JSON(t)["Credentials"].(map[string]any)
		if id, _ := creds["AccessKeyId"].(string); !strings.HasPrefix(id, "ASIA") {
			t.Fatalf("CLI credentials = %v", creds)
		}
	})
}

// --- token cases ---

// tokenMutation is a token case's symbolic mutation.
type tokenMutation struct {
	Header    map[string]any `json:"header"`
	Claims    map[string]any `json:"claims"`
	JWKS      map[string]any `json:"jwks"`
	Discovery map[string]any `json:"discovery"`
	Length    int            `json:"length"`
	Replay    int            `json:"replay"`
}

func mustMutation(t *testing.T, c trustCase, m *tokenMutation) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(c.Mutation))
	dec.UseNumber()
	if err := dec.Decode(m); err != nil {
		t.Fatalf("%s: mutation: %v", c.ID, err)
	}
}

// baseline builds T-00's token from its symbolic description: now = T+10.
func (s *trustSuite) baseline(t *testing.T) *oidctest.Token {
	t.Helper()
	b := s.byID["T-00"].BaselineToken
	m := symbolicTime.FindStringSubmatch(b.Now)
	if m == nil {
		t.Fatalf("baseline now %q is not symbolic", b.Now)
	}
	ago, _ := strconv.ParseInt(strings.TrimPrefix(m[1], "+"), 10, 64)
	t0 := time.Now().Unix() - ago
	k := s.farm.issuer(t, b.Provider.URL).CurrentKey()
	tok := &oidctest.Token{Header: map[string]any{}, Claims: map[string]any{}, Key: k}
	for name, v := range b.Header {
		r, err := resolveSymbolic(v, t0, k.KID)
		if err != nil {
			t.Fatal(err)
		}
		tok.Header[name] = r
	}
	for name, v := range b.Claims {
		r, err := resolveSymbolic(v, t0, k.KID)
		if err != nil {
			t.Fatal(err)
		}
		tok.Claims[name] = r
	}
	if tok.Header["alg"] != k.Alg {
		t.Fatalf("baseline alg %v, signing key %s", tok.Header["alg"], k.Alg)
	}
	return tok
}

// issuedAt is the baseline token's iat (T).
func issuedAt(tok *oidctest.Token) int64 { return tok.Claims["iat"].(int64) }

// expect presents a token for role and checks the case's expected_error and
// http_status; the subject is what a success must report.
func (s *trustSuite) expect(ctx context.Context, t *testing.T, c trustCase, role, token, sub string) outcome {
	t.Helper()
	session := "tk-" + c.ID
	o := s.present(ctx, role, session, token)
	if c.wantSuccess() {
		if c.HTTPStatus != 200 {
			t.Fatalf("case data: success with http_status %d", c.HTTPStatus)
		}
		s.wantCredentials(ctx, t, o, role, session, sub, s.ghURL)
	} else {
		s.wantRefusal(ctx, t, o, c.ExpectedError, c.HTTPStatus, token, sub)
	}
	return o
}

// baseSub is the baseline subject.
func (s *trustSuite) baseSub() string { return s.byID["T-00"].BaselineToken.Claims["sub"].(string) }

// tokenCaseImpls builds each token case's mutation with oidctest.Token and
// runs it; the expected outcome always comes from the case.
func tokenCaseImpls() map[string]func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
	return map[string]func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase){
		"T-00": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			tok := s.baseline(t).MustSerialize(t)
			s.expect(ctx, t, c, s.baseRole(), tok, s.baseSub())
			s.cli(t, s.baseRole(), "tk-T-00-cli", tok, "")
		},
		"T-03": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// HMAC keyed with the issuer's public key, as PEM or as the
			// JWK's n: what a library deriving the method from alg accepts.
			secrets := map[string]func(k *oidctest.Key) []byte{
				"pem":   func(k *oidctest.Key) []byte { return k.PublicKeyPEM() },
				"jwk-n": func(k *oidctest.Key) []byte { return []byte(k.JWK()["n"].(string)) },
			}
			for name, secret := range secrets {
				t.Run(name, func(t *testing.T) {
					b := s.baseline(t)
					b.Header["alg"] = "HS256"
					b.Sign = oidctest.HMACSigner(secret(b.Key))
					s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
				})
			}
		},
		"T-06": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// ES256 header and SHA-256, signed by the P-384 key the kid
			// names: valid for a verifier that ignores the curve.
			b := s.baseline(t)
			b.WithKey(s.keys[kidP384])
			var m tokenMutation
			mustMutation(t, c, &m)
			b.Header["alg"] = m.Header["alg"]
			s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
		},
		"T-09": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			t.Run("alg-null", func(t *testing.T) {
				b := s.baseline(t)
				b.SignAlg = b.Key.Alg
				b.Header["alg"] = nil
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
			t.Run("alg-absent", func(t *testing.T) {
				b := s.baseline(t)
				b.SignAlg = b.Key.Alg
				delete(b.Header, "alg")
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
		},
		"T-12": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			gh := s.farm.issuer(t, s.ghURL)
			before := gh.Requests().JWKS
			for range 2 {
				b := s.baseline(t)
				b.Header["kid"] = m.Header["kid"]
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			}
			// One refresh at most for the unknown kid, none for its repeat
			// (rate limit / negative cache): no amplification.
			if n := gh.Requests().JWKS - before; n > 1 {
				t.Errorf("two tokens with an unknown kid made %d JWKS fetches, want at most 1", n)
			}
		},
		"T-15": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			// The case's path and the SQL-ish form of its notes.
			for _, kid := range []any{m.Header["kid"], "' OR 1=1 --"} {
				t.Run(fmt.Sprint(kid), func(t *testing.T) {
					b := s.baseline(t)
					b.Header["kid"] = kid
					s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
				})
			}
		},
		"T-18": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// Signed by the attacker's key, which the header carries.
			att := s.keys[kidAttacker].JWK()
			embedded := map[string]any{"kty": att["kty"], "n": att["n"], "e": att["e"]}
			t.Run("with-issuer-kid", func(t *testing.T) {
				b := s.baseline(t)
				b.Key = s.keys[kidAttacker]
				b.Header["jwk"] = embedded
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
			t.Run("without-kid", func(t *testing.T) {
				b := s.baseline(t)
				b.Key = s.keys[kidAttacker]
				b.Header["jwk"] = embedded
				delete(b.Header, "kid")
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
		},
		"T-21": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// Both keys are in the GitHub JWKS since the first fetch, signing
			// correctly; only their JWK metadata forbids the token.
			t.Run("use-enc", func(t *testing.T) {
				b := s.baseline(t)
				b.Key = s.keys[kidUseEnc]
				b.Header["kid"] = kidUseEnc
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
				if s.srv.waitLogs("oidc: JWK ignored", map[string]string{"issuer": s.ghURL, "kid": kidUseEnc}, 1) == 0 {
					t.Errorf("no log says the use=enc key %s was ignored", kidUseEnc)
				}
			})
			t.Run("jwk-alg-RS512", func(t *testing.T) {
				b := s.baseline(t)
				b.Key = s.keys[kidAlgRS512]
				b.Header["kid"] = kidAlgRS512
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
		},
		"T-24": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			b := s.baseline(t)
			b.Header = m.Header // PBES2-HS512+A256KW, p2c 2^31-1, A256GCM, DEF
			b.Header["p2s"] = base64.RawURLEncoding.EncodeToString(randomBytes(t, 16))
			b.Signature = randomBytes(t, 16) // the tag
			b.Segments = func(h, _, tag string) []string {
				enc := base64.RawURLEncoding.EncodeToString
				return []string{h, enc(randomBytes(t, 40)), enc(randomBytes(t, 12)), enc(randomBytes(t, 512)), tag}
			}
			o := s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			// 2^31 PBKDF2 rounds would take minutes: it was never decrypted.
			if o.elapsed > 10*time.Second {
				t.Errorf("the JWE took %v to refuse", o.elapsed)
			}
		},
		"T-27": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// The duplicate of the title, in both orders (first-wins and
			// last-wins parsers would each see the other subject).
			const evil = `"sub":"repo:evil/x:ref:refs/heads/main"`
			for _, evilFirst := range []bool{false, true} {
				t.Run(fmt.Sprintf("evil-first=%v", evilFirst), func(t *testing.T) {
					b := s.baseline(t)
					raw, err := json.Marshal(b.Claims)
					if err != nil {
						t.Fatal(err)
					}
					if evilFirst {
						raw = append([]byte("{"+evil+","), raw[1:]...)
					} else {
						raw = append(raw[:len(raw)-1], []byte(","+evil+"}")...)
					}
					b.RawPayload = raw
					s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
				})
			}
		},
		"T-30": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			encodings := map[string]func([]byte) string{
				"padding":           oidctest.PaddedBase64,
				"standard-alphabet": oidctest.StdBase64,
				"trailing-bits":     oidctest.NonZeroTrailingBits,
			}
			for name, enc := range encodings {
				t.Run(name, func(t *testing.T) {
					b := s.baseline(t)
					b.Encode = enc
					tok := b.MustSerialize(t)
					if tok == s.canonical(t, b) {
						t.Fatalf("the %s encoding of this token is canonical; the case would prove nothing", name)
					}
					s.expect(ctx, t, c, s.baseRole(), tok, s.baseSub())
				})
			}
		},
		"T-33": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			tok := s.paddedToLength(t, m.Length)
			s.expect(ctx, t, c, s.baseRole(), tok, s.baseSub())
			// The limit is inclusive: one character less is a valid token.
			t.Run("boundary-accepted", func(t *testing.T) {
				ok := s.paddedToLength(t, m.Length-1)
				s.wantCredentials(ctx, t, s.present(ctx, s.baseRole(), "tk-T-33-boundary", ok), s.baseRole(), "tk-T-33-boundary", s.baseSub(), s.ghURL)
			})
		},
		"T-36": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			b := s.baseline(t)
			exp, err := resolveSymbolic(m.Claims["exp"], issuedAt(b), "")
			if err != nil {
				t.Fatal(err)
			}
			b.Claims["exp"] = exp // T-600, now = T+10
			tok := b.MustSerialize(t)
			s.expect(ctx, t, c, s.baseRole(), tok, s.baseSub())
			s.cli(t, s.baseRole(), "tk-T-36-cli", tok, c.ExpectedError)
		},
		"T-39": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// A valid time in the wrong type, so only the type can refuse it.
			forms := map[string]func(exp int64) any{
				"string":   func(exp int64) any { return strconv.FormatInt(exp, 10) },
				"fraction": func(exp int64) any { return json.Number(strconv.FormatInt(exp, 10) + ".5") },
				"1e308":    func(int64) any { return json.Number("1e308") },
			}
			for name, form := range forms {
				t.Run(name, func(t *testing.T) {
					b := s.baseline(t)
					b.Claims["exp"] = form(b.Claims["exp"].(int64))
					s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
				})
			}
		},
		"T-42": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			t.Run("iat-null", func(t *testing.T) {
				b := s.baseline(t)
				b.Claims["iat"] = nil
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
			t.Run("iat-absent", func(t *testing.T) {
				b := s.baseline(t)
				delete(b.Claims, "iat")
				s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			})
		},
		"T-44": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			b := s.baseline(t)
			b.Claims["iss"] = m.Claims["iss"]
			gh := s.farm.issuer(t, s.ghURL)
			before := gh.Requests()
			s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			// An unregistered issuer is never contacted (its discovery URL
			// would be served by the GitHub issuer here).
			if after := gh.Requests(); after != before {
				t.Errorf("an unregistered issuer was fetched: %+v → %+v", before, after)
			}
		},
		"T-47": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			other := s.farm.issuer(t, m.Claims["iss"].(string))
			b := s.baseline(t)
			b.WithKey(other.CurrentKey()) // valid for its own provider
			b.Claims["iss"] = other.URL()
			tok := b.MustSerialize(t)
			o := s.expect(ctx, t, c, s.baseRole(), tok, s.baseSub())
			// The token was accepted as GitLab's (its context holds GitLab's
			// keys) and the trust evaluation refused it.
			if o.code == "AccessDenied" {
				d := decodeRefusal(ctx, t, s.admin, o.message)
				prefix := strings.TrimPrefix(other.URL(), "https://") + ":"
				if len(d.Keyless.ConditionKeys) == 0 {
					t.Error("no condition keys: the token was not validated for its own provider")
				}
				for k := range d.Keyless.ConditionKeys {
					if !strings.HasPrefix(k, prefix) {
						t.Errorf("condition key %q is not the token's provider's (%s)", k, prefix)
					}
				}
			}
		},
		"T-50": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			b := s.baseline(t)
			b.Claims["aud"], b.Claims["azp"] = m.Claims["aud"], m.Claims["azp"]
			s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
		},
		"T-53": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			b := s.baseline(t)
			b.Claims["repository_id"] = m.Claims["repository_id"] // JSON number 5001
			if !bytes.Contains(mustJSON(t, b.Claims), []byte(`"repository_id":5001`)) {
				t.Fatal("repository_id is not sent as a JSON number")
			}
			s.expect(ctx, t, c, repoIDRole, b.MustSerialize(t), s.baseSub())
			// Control: the pin is evaluated, on the canonical string of the
			// number.
			t.Run("other-number-denied", func(t *testing.T) {
				b := s.baseline(t)
				b.Claims["repository_id"] = json.Number("5002")
				tok := b.MustSerialize(t)
				d := s.wantRefusal(ctx, t, s.present(ctx, repoIDRole, "tk-T-53-control", tok), "AccessDenied", 403, tok, s.baseSub())
				key := strings.TrimPrefix(s.ghURL, "https://") + ":repository_id"
				if got := d.Keyless.ConditionKeys[key]; !slices.Equal(got, []string{"5002"}) {
					t.Errorf("%s in the request context = %q, want [\"5002\"]", key, got)
				}
			})
		},
		"T-56": runT56,
		"T-59": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			// The JWK says e=1, so the "signature" is the PKCS#1 v1.5
			// encoded message itself: s^1 mod n = EM verifies for anyone
			// who accepts the key.
			b := s.baseline(t)
			b.Key = s.keys[kidE1]
			b.Header["kid"] = kidE1
			b.Sign = func(input []byte) ([]byte, error) {
				return pkcs1v15EncodedMessage(s.keys[kidE1].Public().(*rsa.PublicKey), input)
			}
			s.expect(ctx, t, c, s.baseRole(), b.MustSerialize(t), s.baseSub())
			if s.srv.waitLogs("oidc: JWK ignored", map[string]string{"issuer": s.ghURL, "kid": kidE1}, 1) == 0 {
				t.Errorf("no log says the e=1 key %s was ignored", kidE1)
			}
		},
		"T-62": func(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
			var m tokenMutation
			mustMutation(t, c, &m)
			tok := s.baseline(t).MustSerialize(t)
			seen := map[string]bool{}
			for i := range m.Replay {
				o := s.expect(ctx, t, c, s.baseRole(), tok, s.baseSub())
				id := aws.ToString(o.out.Credentials.AccessKeyId)
				if seen[id] {
					t.Errorf("use %d returned the access key of an earlier use", i+1)
				}
				seen[id] = true
			}
		},
	}
}

// runT56 points the GitHub issuer's jwks_uri (or a redirect of its JWKS) at
// link-local, metadata and private addresses. keyless must refuse before
// dialling: IDPCommunicationError, and a "refused" fetch class in its log
// (a dial that failed would be "network" or "timeout").
func runT56(ctx context.Context, t *testing.T, s *trustSuite, c trustCase) {
	var m tokenMutation
	mustMutation(t, c, &m)
	gh := s.farm.issuer(t, s.ghURL)
	arn := s.providerARN(s.ghURL)
	t.Cleanup(func() {
		gh.SetDiscovery(nil)
		gh.RedirectJWKS("")
	})
	type poison struct {
		discovery map[string]any
		redirect  string
	}
	variants := []struct {
		name string
		p    poison
	}{
		{"case-jwks_uri", poison{discovery: m.Discovery}}, // http://169.254.169.254/latest/meta-data/
		{"https-metadata", poison{discovery: map[string]any{"jwks_uri": "https://169.254.169.254/latest/meta-data/jwks.json"}}},
		{"https-rfc1918", poison{discovery: map[string]any{"jwks_uri": "https://10.0.0.1/jwks.json"}}},
		{"jwks-redirect-to-metadata", poison{redirect: "http://169.254.169.254/latest/meta-data/"}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			gh.SetDiscovery(v.p.discovery)
			gh.RedirectJWKS(v.p.redirect)
			resetKeyCache(ctx, t, s.iam, arn)
			before := gh.Requests()
			refusedBefore := s.srv.logsWith("oidc: fetching provider keys failed", map[string]string{"issuer": s.ghURL, "class": "refused"})
			s.expect(ctx, t, c, s.baseRole(), s.baseline(t).MustSerialize(t), s.baseSub())
			after := gh.Requests()
			if after.Discovery <= before.Discovery {
				t.Errorf("keyless did not read the poisoned discovery document (%+v → %+v)", before, after)
			}
			if c.PrivateFetches != nil && *c.PrivateFetches == 0 {
				refused := s.srv.waitLogs("oidc: fetching provider keys failed", map[string]string{"issuer": s.ghURL, "class": "refused"}, refusedBefore+1) - refusedBefore
				if refused < 1 {
					t.Errorf("the fetch was not refused by the destination policy (log:\n%s)", tail(s.srv.logs.String(), 5))
				}
			}
		})
	}
	// Healed issuer, fresh cache: the same baseline is accepted again, so
	// the refusals above were the poison's doing.
	t.Run("healed", func(t *testing.T) {
		gh.SetDiscovery(nil)
		gh.RedirectJWKS("")
		resetKeyCache(ctx, t, s.iam, arn)
		session := "tk-T-56-healed"
		s.wantCredentials(ctx, t, s.present(ctx, s.baseRole(), session, s.baseline(t).MustSerialize(t)), s.baseRole(), session, s.baseSub(), s.ghURL)
	})
}

// canonical re-serializes b with canonical base64url (same signature
// bytes for deterministic algorithms).
func (s *trustSuite) canonical(t *testing.T, b *oidctest.Token) string {
	c := b.Clone()
	c.Encode = nil
	return c.MustSerialize(t)
}

// paddedToLength returns a validly signed baseline token of exactly n
// characters, grown with a filler claim. A base64url segment is never 4k+1
// characters long, so the header's optional typ is the second knob.
func (s *trustSuite) paddedToLength(t *testing.T, n int) string {
	t.Helper()
	dummy := make([]byte, s.farm.issuer(t, s.ghURL).CurrentKey().Public().(*rsa.PublicKey).Size())
	for _, typ := range []any{"JWT", nil, "application/jwt"} {
		b := s.baseline(t)
		if typ == nil {
			delete(b.Header, "typ")
		} else {
			b.Header["typ"] = typ
		}
		b.Signature = dummy // same length as the real signature, no signing while searching
		length := func(pad int) int {
			b.Claims["x_filler"] = strings.Repeat("a", pad)
			return len(b.MustSerialize(t))
		}
		pad := 0
		for l := length(pad); l < n; l = length(pad) {
			pad += max(1, (n-l)*3/4-2)
		}
		if length(pad) == n {
			b.Signature = nil
			if tok := b.MustSerialize(t); len(tok) == n {
				return tok
			}
		}
	}
	t.Fatalf("could not build a token of exactly %d characters", n)
	return ""
}

// pkcs1v15EncodedMessage is EMSA-PKCS1-v1_5 (RFC 8017 §9.2) of SHA-256 over
// input for pub's modulus: 00 01 FF… 00 DigestInfo. It is below n, so with
// e = 1 it is its own signature (EM^1 mod n = EM).
func pkcs1v15EncodedMessage(pub *rsa.PublicKey, input []byte) ([]byte, error) {
	digestInfo := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	h := sha256.Sum256(input)
	t := append(digestInfo, h[:]...)
	k := pub.Size()
	if k < len(t)+11 {
		return nil, errors.New("modulus too short")
	}
	em := make([]byte, k)
	em[1] = 0x01
	for i := 2; i < k-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(t):], t)
	if new(big.Int).SetBytes(em).Cmp(pub.N) >= 0 {
		return nil, errors.New("encoded message is not below the modulus")
	}
	return em, nil
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
