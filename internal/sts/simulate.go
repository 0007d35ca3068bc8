package sts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
	"github.com/keylessci/keyless/internal/policy"
	"github.com/keylessci/keyless/internal/store"
)

// Offline trust simulation (`keyless policy simulate`): the decision
// AssumeRoleWithWebIdentity takes for a token's claims against a trust
// policy, by the very path the STS takes after the token validated —
// session tags and source identity read from the claims (readTagClaims),
// the request context (trustContext), the evaluation of every required
// action (decideTrust) and the explanation (explain) — without a store, a
// signature, a key ring or a session. Token validity (signature, exp, nbf,
// audience registration, lifetime) is not decided: an expired exp or a
// future nbf only adds a note.

// ErrSimulateInput is the cause of every input the simulator cannot use:
// claims that are not a JSON object or a JWT, claims without iss, aud or
// sub, a provider or role ARN that is not one. A trust policy that does not
// parse is a *policy.Error (with its position) wrapped with it too.
var ErrSimulateInput = errors.New("invalid simulation input")

// DefaultSimulationAccount is the account of the provider and the role
// when neither the flags nor the policy's Federated principal name one.
const DefaultSimulationAccount = "123456789012"

// simulatedRoleName names the role when no role ARN is given.
const simulatedRoleName = "keyless-simulate"

// SimulateInput is one simulated exchange.
type SimulateInput struct {
	// TrustPolicy is the role's trust policy document.
	TrustPolicy string
	// Claims is the token's payload; numbers as json.Number
	// (ReadSimulationClaims).
	Claims map[string]any
	// ProviderARN, when set, is the provider the token is taken to come
	// from; otherwise it is derived from iss (iam.ProviderARN) in the
	// role's account.
	ProviderARN string
	// RoleARN, when set, is the role assumed; otherwise
	// arn:aws:iam::<account>:role/keyless-simulate.
	RoleARN string
	// RoleTags are the role's tags (aws:ResourceTag/K).
	RoleTags []store.Tag
	// RoleSessionName is sts:RoleSessionName; default keyless-simulate.
	RoleSessionName string
	// Region is aws:RequestedRegion; default us-east-1.
	Region string
	// Now is aws:CurrentTime and the time exp and nbf are noted against.
	Now time.Time
}

// Provider sources, for SimulateResult.ProviderSource.
const (
	ProviderFromFlag      = "given"
	ProviderFromRole      = "derived from iss and the role's account"
	ProviderFromPrincipal = "derived from iss and the account of the policy's Federated principal"
	ProviderFromDefault   = "derived from iss and the default account " + DefaultSimulationAccount
)

// SimulateResult is the simulated decision.
type SimulateResult struct {
	Allowed        bool
	ProviderARN    string
	ProviderSource string
	RoleARN        string
	// Explanation is what DecodeAuthorizationMessage returns for the
	// refusal (Allowed false), or the same shape for an allowed exchange
	// with allowed=true, the matching trace and no error code. Only the
	// server knows tokenSha256 (the hash of the token as sent): it is
	// empty here.
	Explanation Explanation
	// Notes are facts the decision does not depend on but a reader should
	// know (an expired exp, a provider ARN the STS would not derive).
	Notes []string
}

// Simulate decides in.
func Simulate(in SimulateInput) (*SimulateResult, error) {
	trust, err := policy.ParseWithOptions(in.TrustPolicy, policy.KindTrust, policy.Options{MaxSize: -1})
	if err != nil {
		return nil, fmt.Errorf("%w: the trust policy does not parse: %w", ErrSimulateInput, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrSimulateInput}, args...)...)
	}
	iss, ok := in.Claims["iss"].(string)
	if !ok || iss == "" {
		return nil, bad(`the claims have no "iss" string: the STS finds the provider by it`)
	}
	tok, err := simulatedToken(iss, in.Claims)
	if err != nil {
		return nil, err
	}
	res := &SimulateResult{}

	// Accounts: the role's; the STS looks the issuer up in it.
	var roleAccount string
	if in.RoleARN != "" {
		a, _, ok := iam.ParseRoleARN(in.RoleARN)
		if !ok {
			return nil, bad("%q is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)", in.RoleARN)
		}
		roleAccount = a
	}
	switch {
	case in.ProviderARN != "":
		a, ok := providerAccount(in.ProviderARN)
		if !ok {
			return nil, bad("%q is not an OIDC provider ARN (arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH)", in.ProviderARN)
		}
		res.ProviderARN, res.ProviderSource = in.ProviderARN, ProviderFromFlag
		if roleAccount == "" {
			roleAccount = a
		}
		if want := iam.ProviderARN(roleAccount, iss); want != in.ProviderARN {
			res.Notes = append(res.Notes, fmt.Sprintf("the STS would not use the given provider: it looks the token's iss up in the role's account, which gives %s", want))
		}
	case roleAccount != "":
		res.ProviderARN, res.ProviderSource = iam.ProviderARN(roleAccount, iss), ProviderFromRole
	default:
		roleAccount, res.ProviderSource = DefaultSimulationAccount, ProviderFromDefault
		if a, ok := federatedAccount(trust); ok {
			roleAccount, res.ProviderSource = a, ProviderFromPrincipal
		}
		res.ProviderARN = iam.ProviderARN(roleAccount, iss)
	}
	res.RoleARN = in.RoleARN
	if res.RoleARN == "" {
		res.RoleARN = "arn:aws:iam::" + roleAccount + ":role/" + simulatedRoleName
	}
	now := in.Now
	if !tok.Expiry.IsZero() && now.After(tok.Expiry) {
		res.Notes = append(res.Notes, fmt.Sprintf("the token expired at %s: the STS would refuse it (ExpiredTokenException) before reading the trust policy; the simulation decides the trust policy only", tok.Expiry.Format(time.RFC3339)))
	}
	if !tok.NotBefore.IsZero() && tok.NotBefore.After(now) {
		res.Notes = append(res.Notes, fmt.Sprintf("the token is not valid before %s: the STS would refuse it now; the simulation decides the trust policy only", tok.NotBefore.Format(time.RFC3339)))
	}

	x := &exchange{roleARN: res.RoleARN, sessionName: in.RoleSessionName, token: tok, providerARN: res.ProviderARN}
	if x.sessionName == "" {
		x.sessionName = simulatedRoleName
	}
	region := in.Region
	if region == "" {
		region = "us-east-1"
	}
	if !strings.HasPrefix(res.ProviderARN, "arn:aws:iam::"+roleAccount+":") {
		// The STS never finds a provider of another account: the token is
		// refused before it validates (no token in the explanation).
		x.token = nil
		x.reason = fmt.Sprintf("issuer %q is not a registered provider in the role's account %s", iss, roleAccount)
		res.Explanation = explain(x, &oidc.Error{Code: oidc.CodeInvalidIdentityToken, Rule: "V12"})
		return res, nil
	}
	authorized, err := tok.AuthorizeRole(res.RoleARN)
	if oe, ok := errors.AsType[*oidc.Error](err); ok {
		x.reason = oe.Reason
		res.Explanation = explain(x, oe)
		return res, nil
	}
	x.roleAuthorizedByIdp = authorized
	if err := x.readTagClaims(tok); err != nil {
		// The STS refuses such a token as InvalidIdentityToken without an
		// explanation; the simulator explains it with the same words.
		ae, _ := errors.AsType[*awsquery.Error](err)
		x.reason = err.Error()
		code := awsquery.CodeInvalidIdentityToken
		if ae != nil {
			x.reason, code = ae.Message, ae.Code
		}
		res.Explanation = explain(x, &oidc.Error{Code: code})
		return res, nil
	}
	c := trustContext(x, tok, in.RoleTags, trustEnv{Now: now, Region: region})
	if !x.decideTrust(trust, res.RoleARN, c) {
		res.Explanation = explain(x, nil)
		return res, nil
	}
	// Allowed: the same explanation, with the trace of the allowing
	// evaluation so the reader sees which statement admitted the token.
	set := policy.PolicySet{Resource: []*policy.Policy{trust}}
	_, x.trace = set.Explain(&policy.Request{
		Principal: policy.Principal{Type: policy.PrincipalFederated, ID: x.providerARN},
		Action:    actionAssume, Resource: res.RoleARN, Context: c,
	})
	x.reason = describeAllow(x.trace)
	res.Allowed = true
	res.Explanation = explain(x, nil)
	res.Explanation.Allowed = true
	res.Explanation.Keyless.ErrorCode = ""
	return res, nil
}

// describeAllow names the statements that admitted the token.
func describeAllow(tr *policy.Trace) string {
	var names []string
	for _, pt := range tr.Policies {
		for _, st := range pt.Statements {
			if st.Matched && st.Effect == policy.Allow {
				name := fmt.Sprintf("statement %d", st.Index)
				if st.Sid != "" {
					name += fmt.Sprintf(" (%s)", st.Sid)
				}
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return tr.Reason
	}
	return "The trust policy allows this token: " + strings.Join(names, ", ") + " matched."
}

// simulatedToken is the oidc.Token the validator would build from claims,
// without checking them: the effective audience is azp when present,
// otherwise the first aud value (the validator takes the first that is a
// registered client ID).
func simulatedToken(iss string, claims map[string]any) (*oidc.Token, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrSimulateInput}, args...)...)
	}
	t := &oidc.Token{Claims: claims, Issuer: iss, Provider: &oidc.Provider{URL: iss}}
	switch a := claims["aud"].(type) {
	case string:
		t.OriginalAudience = []string{a}
	case []any:
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return nil, bad(`"aud" holds a value that is not a string`)
			}
			t.OriginalAudience = append(t.OriginalAudience, s)
		}
	}
	if len(t.OriginalAudience) == 0 {
		return nil, bad(`the claims have no "aud" (a string or an array of strings)`)
	}
	t.Audience = t.OriginalAudience[0]
	if azp, ok := claims["azp"].(string); ok {
		t.AuthorizedParty, t.Audience = azp, azp
	}
	sub, ok := claims["sub"].(string)
	if !ok || sub == "" {
		return nil, bad(`the claims have no "sub" string`)
	}
	t.Subject = sub
	t.JTI, _ = claims["jti"].(string)
	if rv, ok := claims["https://aws.amazon.com/roles"]; ok {
		roles, ok := oidc.ClaimStrings(rv)
		if !ok {
			return nil, bad(`"https://aws.amazon.com/roles" is not a role ARN or an array of them`)
		}
		t.Roles = roles
	}
	for name, dst := range map[string]*time.Time{"exp": &t.Expiry, "nbf": &t.NotBefore, "iat": &t.IssuedAt} {
		if n, ok := claims[name].(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				*dst = time.Unix(i, 0).UTC()
			}
		}
	}
	return t, nil
}

// providerAccount is the account of an OIDC provider ARN.
func providerAccount(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::")
	if !ok {
		return "", false
	}
	account, res, ok := strings.Cut(rest, ":")
	if !ok || !iam.ValidAccountID(account) {
		return "", false
	}
	host, ok := strings.CutPrefix(res, "oidc-provider/")
	return account, ok && host != ""
}

// federatedAccount is the account of the first OIDC provider ARN that an
// Allow statement of the policy names as its Federated principal.
func federatedAccount(p *policy.Policy) (string, bool) {
	for _, st := range p.Statements {
		if st.Effect != policy.Allow || st.Principal == nil {
			continue
		}
		for _, f := range st.Principal.Federated {
			if a, ok := providerAccount(f); ok {
				return a, true
			}
		}
	}
	return "", false
}

// ReadSimulationClaims reads the token claims to simulate: a JSON object
// (a JWT payload) or a JWT, whose payload is decoded WITHOUT verifying its
// signature (fromJWT is then true). Numbers are json.Number, as the
// validator decodes them; duplicate member names are refused, as the
// validator refuses them.
func ReadSimulationClaims(data []byte) (claims map[string]any, fromJWT bool, err error) {
	text := strings.TrimSpace(string(data))
	if !strings.HasPrefix(text, "{") {
		parts := strings.Split(text, ".")
		if len(parts) != 3 {
			return nil, false, fmt.Errorf("%w: the claims are neither a JSON object nor a JWT (header.payload.signature)", ErrSimulateInput)
		}
		b, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
		if derr != nil {
			return nil, false, fmt.Errorf("%w: the JWT's payload is not base64url: %w", ErrSimulateInput, derr)
		}
		text, fromJWT = string(b), true
	}
	if err := checkJSON([]byte(text)); err != nil {
		return nil, fromJWT, fmt.Errorf("%w: the claims are not valid JSON: %w", ErrSimulateInput, err)
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fromJWT, fmt.Errorf("%w: the claims are not valid JSON: %w", ErrSimulateInput, err)
	}
	claims, ok := v.(map[string]any)
	if !ok {
		return nil, fromJWT, fmt.Errorf("%w: the claims are not a JSON object", ErrSimulateInput)
	}
	return claims, fromJWT, nil
}

// checkJSON validates data as one JSON value without duplicate names.
func checkJSON(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if _, err := dec.ReadValue(); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err == nil {
		return errors.New("more than one JSON value")
	}
	return nil
}

// SimulationRole is the trust policy to simulate and, when it came as a
// role, the role's ARN and tags (aws:ResourceTag/K in the context).
type SimulationRole struct {
	Document string
	FromRole bool
	ARN      string
	Tags     []store.Tag
}

// ReadSimulationTrustPolicy reads the trust policy to simulate: a policy
// document as it is, or a role as `aws iam get-role` prints it
// ({"Role":{"Arn":...,"AssumeRolePolicyDocument":...,"Tags":[...]}}), the
// document an object or a string, URL-encoded as IAM's Query API returns
// it or not. A document that is not JSON is returned as it is, for the
// policy parser to locate the error.
func ReadSimulationTrustPolicy(data []byte) (SimulationRole, error) {
	var role struct {
		Role *struct {
			Arn                      string
			AssumeRolePolicyDocument json.RawMessage
			Tags                     []struct{ Key, Value string }
		}
	}
	if json.Unmarshal(data, &role) != nil || role.Role == nil {
		return SimulationRole{Document: string(data)}, nil
	}
	out := SimulationRole{FromRole: true, ARN: role.Role.Arn}
	for _, t := range role.Role.Tags {
		out.Tags = append(out.Tags, store.Tag{Key: t.Key, Value: t.Value})
	}
	raw := role.Role.AssumeRolePolicyDocument
	if len(raw) == 0 || string(raw) == "null" {
		return out, fmt.Errorf("%w: the role has no AssumeRolePolicyDocument", ErrSimulateInput)
	}
	if raw[0] != '"' {
		out.Document = string(raw)
		return out, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return out, fmt.Errorf("%w: AssumeRolePolicyDocument: %w", ErrSimulateInput, err)
	}
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "%") {
		u, err := url.PathUnescape(t)
		if err != nil {
			return out, fmt.Errorf("%w: AssumeRolePolicyDocument is not URL-encoded JSON: %w", ErrSimulateInput, err)
		}
		s = u
	}
	out.Document = s
	return out, nil
}
