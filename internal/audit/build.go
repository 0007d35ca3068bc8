package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Keys keyless adds under additionalEventData and responseElements. They are
// part of the trail's documented format: queries and policy generation rely
// on them.
const (
	// KeyVerificationMethod is AWS's own key: how the provider's signing keys
	// were trusted ("IAMTrustStore" or "Thumbprint").
	KeyVerificationMethod = "identityProviderConnectionVerificationMethod"
	// KeyRequestDetails is AWS's own key: {awsServingRegion, endpointType}.
	KeyRequestDetails = "RequestDetails"
	// KeyTokenSHA256 is the lowercase hex SHA-256 of the compact ID token
	// (JWT) presented; the token itself is never recorded.
	KeyTokenSHA256 = "webIdentityTokenSHA256"
	// KeyTokenJTI is the ID token's jti claim.
	KeyTokenJTI = "webIdentityTokenJti"
	// KeyTokenClaims holds the verified claims, with the configured claim
	// names' values replaced by [RedactedMarker].
	KeyTokenClaims = "webIdentityTokenClaims"
	// KeyTrustDecision is "Allow" or "Deny": the trust policy's decision.
	KeyTrustDecision = "trustDecision"
	// KeyTrustTrace is the policy evaluation trace, opaque to this package.
	KeyTrustTrace = "trustTrace"
	// KeyCIRun is the CI run derived from the claims (see [CIRun]).
	KeyCIRun = "ciRun"
	// KeySessionTokenSHA256 replaces sessionToken inside
	// responseElements.credentials: lowercase hex SHA-256 of the token.
	KeySessionTokenSHA256 = "sessionTokenSHA256"
)

// RedactedMarker replaces the value of a redacted claim. It is the string
// CloudTrail itself uses for values it hides.
const RedactedMarker = "HIDDEN_DUE_TO_SECURITY_REASONS"

// maxTextField is CloudTrail's cap on userAgent, errorCode and errorMessage.
const maxTextField = 1024

// ErrInvalidEvent reports an event that cannot be recorded as given.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Builder makes events for one keyless deployment. Its fields are read-only
// after construction, so one Builder may be shared by goroutines (Rand must
// then be safe for concurrent use, as crypto/rand.Reader is).
type Builder struct {
	AccountID string           // recipientAccountId and resource accounts
	Region    string           // awsRegion when a Call leaves it empty
	Now       func() time.Time // eventTime when a Call leaves it zero
	Rand      io.Reader        // eventID (UUID v4) source
	// RedactClaims lists claim names whose values are replaced by
	// RedactedMarker in the recorded claims (for example "email",
	// "user_email", "actor").
	RedactClaims []string
}

// Call holds the facts common to every API call event.
type Call struct {
	Time      time.Time // when the request completed; zero means Builder.Now()
	Source    string    // eventSource, e.g. SourceSTS
	Name      string    // eventName = the API action
	Region    string    // zero means Builder.Region
	SourceIP  string
	UserAgent string
	RequestID string
	ReadOnly  bool
	Identity  *UserIdentity
	// RequestParameters and ResponseElements are CloudTrail's objects; nil
	// is recorded as null. Values under secret-bearing keys are scrubbed
	// (see [Scrub]).
	RequestParameters   map[string]any
	ResponseElements    map[string]any
	AdditionalEventData map[string]any
	Resources           []Resource
	ErrorCode           string
	ErrorMessage        string
	TLS                 *TLSDetails
	// Untrusted marks the event of a request refused before its caller
	// was authenticated: its caller-controlled values are size-capped
	// (see [UntrustedEventBytes]).
	Untrusted bool
	// SharedEventID links events recorded for one operation (a brokered
	// exchange's token mint and its exchange event); "" for none.
	SharedEventID string
}

// APICall builds an AwsApiCall management event.
func (b *Builder) APICall(c Call) (*Event, error) { return b.apiCall(c, true) }

// apiCall is APICall; scrub false is for builders whose maps hold no
// secret-bearing key by construction.
func (b *Builder) apiCall(c Call, scrub bool) (*Event, error) {
	if c.Source == "" || c.Name == "" {
		return nil, fmt.Errorf("%w: eventSource and eventName are required", ErrInvalidEvent)
	}
	var textCapped bool
	if c.Untrusted {
		textCapped = capCallText(&c)
	}
	id, err := NewEventID(b.Rand)
	if err != nil {
		return nil, err
	}
	t := c.Time
	if t.IsZero() {
		if b.Now == nil {
			return nil, fmt.Errorf("%w: no event time and no clock", ErrInvalidEvent)
		}
		t = b.Now()
	}
	region := c.Region
	if region == "" {
		region = b.Region
	}
	ev := &Event{
		EventVersion:        EventVersion,
		UserIdentity:        c.Identity,
		EventTime:           t.UTC().Truncate(time.Second),
		EventSource:         c.Source,
		EventName:           c.Name,
		AWSRegion:           region,
		SourceIPAddress:     c.SourceIP,
		UserAgent:           truncateUTF8(c.UserAgent, maxTextField),
		ErrorCode:           truncateUTF8(c.ErrorCode, maxTextField),
		ErrorMessage:        truncateUTF8(c.ErrorMessage, maxTextField),
		RequestParameters:   c.RequestParameters,
		ResponseElements:    c.ResponseElements,
		AdditionalEventData: c.AdditionalEventData,
		RequestID:           c.RequestID,
		EventID:             id,
		ReadOnly:            c.ReadOnly,
		Resources:           c.Resources,
		EventType:           EventTypeAPICall,
		ManagementEvent:     true,
		RecipientAccountID:  b.AccountID,
		EventCategory:       EventCategoryManagement,
		TLSDetails:          c.TLS,
		SharedEventID:       c.SharedEventID,
	}
	if scrub {
		Scrub(ev)
	}
	if c.Untrusted {
		if err := capUntrusted(ev, textCapped); err != nil {
			return nil, err
		}
	} else if err := capParams(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// Exchange is what the STS layer knows about one AssumeRoleWithWebIdentity
// call. Secrets (IDToken, Credentials.SessionToken) are only ever hashed.
type Exchange struct {
	// Request.
	RoleARN           string
	RoleSessionName   string
	DurationSeconds   int // 0 when the caller did not send it
	SourceIdentity    string
	PrincipalTags     map[string]string
	TransitiveTagKeys []string
	PolicyARNs        []string
	Policy            string // session policy document, as sent

	// Identity from the token. Audience is the audience matched against the
	// provider's client id list.
	ProviderARN string
	Issuer      string // the token's iss (used to build CI run URLs)
	Audience    string
	Subject     string

	// Token details. IDToken is hashed and dropped; Claims are recorded
	// after redaction; JTI defaults to the "jti" claim.
	IDToken string
	// IDTokenSHA256, when set, is the lowercase hex SHA-256 of IDToken
	// already computed by the validator; it spares hashing the token twice.
	IDTokenSHA256      string
	JTI                string
	Claims             map[string]any
	VerificationMethod string // "IAMTrustStore" (default) or "Thumbprint"

	// Trust decision ("Allow"/"Deny") and its trace (any JSON; owned by the
	// policy package).
	Decision string
	Trace    json.RawMessage

	// Unverified marks an exchange whose ID token did not validate
	// (malformed, bad signature, unknown issuer, expired, ...): every value
	// is then an anonymous caller's, and the event is size-capped like an
	// untrusted [Call].
	Unverified bool

	// SharedEventID links the exchange event to another event of the same
	// request (a brokered exchange's MintBrokerToken event); "" for none.
	SharedEventID string

	// Response, on success.
	Credentials      *IssuedCredentials
	AssumedRoleID    string // AROA...:session
	AssumedRoleARN   string // arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
	PackedPolicySize int    // percent; 0 = not reported
}

// IssuedCredentials are the session credentials returned to the caller. The
// secret access key is deliberately not a field.
type IssuedCredentials struct {
	AccessKeyID  string
	SessionToken string // hashed into sessionTokenSHA256, never recorded
	Expiration   time.Time
}

// WebIdentityExchange builds the AssumeRoleWithWebIdentity event in the shape
// AWS records it, plus keyless's additionalEventData keys. c.Source, c.Name,
// c.Identity, c.Resources and c.ReadOnly are set from x; c.ErrorCode and
// c.ErrorMessage mark a failed exchange (no responseElements then).
func (b *Builder) WebIdentityExchange(c Call, x Exchange) (*Event, error) {
	if x.Trace != nil && !json.Valid(x.Trace) {
		return nil, fmt.Errorf("%w: trust trace is not valid JSON", ErrInvalidEvent)
	}
	c.Source = SourceSTS
	c.Name = "AssumeRoleWithWebIdentity"
	c.ReadOnly = true
	if x.SharedEventID != "" {
		c.SharedEventID = x.SharedEventID
	}
	c.Identity = WebIdentityUser(x.ProviderARN, x.Audience, x.Subject)
	if x.RoleARN != "" {
		c.Resources = []Resource{{ARN: x.RoleARN, AccountID: arnAccount(x.RoleARN), Type: ResourceTypeRole}}
	}

	req := map[string]any{"roleArn": x.RoleARN, "roleSessionName": x.RoleSessionName}
	if x.DurationSeconds != 0 {
		req["durationSeconds"] = x.DurationSeconds
	}
	if x.SourceIdentity != "" {
		req["sourceIdentity"] = x.SourceIdentity
	}
	if len(x.PrincipalTags) > 0 {
		req["principalTags"] = x.PrincipalTags
	}
	if len(x.TransitiveTagKeys) > 0 {
		req["transitiveTagKeys"] = x.TransitiveTagKeys
	}
	if x.Policy != "" {
		req["policy"] = x.Policy
	}
	if len(x.PolicyARNs) > 0 {
		arns := make([]any, len(x.PolicyARNs))
		for i, a := range x.PolicyARNs {
			arns[i] = map[string]any{"arn": a}
		}
		req["policyArns"] = arns
	}
	c.RequestParameters = req

	c.ResponseElements = nil
	if c.ErrorCode == "" && x.Credentials != nil {
		creds := map[string]any{
			"accessKeyId": x.Credentials.AccessKeyID,
			"expiration":  FormatExpiration(x.Credentials.Expiration),
		}
		if x.Credentials.SessionToken != "" {
			creds[KeySessionTokenSHA256] = SHA256Hex(x.Credentials.SessionToken)
		}
		resp := map[string]any{
			"credentials":                 creds,
			"subjectFromWebIdentityToken": x.Subject,
			"assumedRoleUser":             map[string]any{"assumedRoleId": x.AssumedRoleID, "arn": x.AssumedRoleARN},
			"provider":                    x.ProviderARN,
			"audience":                    x.Audience,
		}
		if x.SourceIdentity != "" {
			resp["sourceIdentity"] = x.SourceIdentity
		}
		if x.PackedPolicySize != 0 {
			resp["packedPolicySize"] = x.PackedPolicySize
		}
		c.ResponseElements = resp
	}

	// The builder's own keys hold no secret; the caller's entries are
	// scrubbed here (on copies: the caller's maps are left alone), so the
	// event needs no Scrub pass over everything.
	add := make(map[string]any, len(c.AdditionalEventData)+9)
	for k, v := range c.AdditionalEventData {
		scrubEntry(add, k, v)
	}
	method := x.VerificationMethod
	if method == "" {
		method = "IAMTrustStore"
	}
	add[KeyVerificationMethod] = method
	region := c.Region
	if region == "" {
		region = b.Region
	}
	add[KeyRequestDetails] = map[string]any{"awsServingRegion": region, "endpointType": "regional"}
	switch {
	case x.IDTokenSHA256 != "":
		add[KeyTokenSHA256] = x.IDTokenSHA256
	case x.IDToken != "":
		add[KeyTokenSHA256] = SHA256Hex(x.IDToken)
	}
	claims, copied := redactClaims(x.Claims, b.RedactClaims)
	if copied {
		scrubMap(claims)
	}
	jti := x.JTI
	if jti == "" {
		jti, _ = claims["jti"].(string)
	}
	if jti != "" {
		add[KeyTokenJTI] = jti
	}
	if x.Decision != "" {
		add[KeyTrustDecision] = x.Decision
	}
	// Structured values are stored as plain JSON values so that the event
	// reads back exactly as it was written (same key order on re-encoding).
	if x.Trace != nil {
		v, err := jsonValue(x.Trace)
		if err != nil {
			return nil, err
		}
		add[KeyTrustTrace] = v
	}
	c.AdditionalEventData = add
	untrusted := c.Untrusted || x.Unverified
	c.Untrusted = false // capped below, once the claims are in
	var textCapped bool
	if untrusted {
		textCapped = capCallText(&c)
	}
	ev, err := b.apiCall(c, false)
	if err != nil {
		return nil, err
	}
	// Added after APICall's Scrub: the claims are scrubbed already (or
	// needed no scrubbing), and the CI run's keys are fixed, so walking
	// them again would only cost time on every exchange.
	if claims != nil {
		ev.AdditionalEventData[KeyTokenClaims] = claims
	}
	if run := CIRunFromClaims(x.Issuer, claims); run != nil {
		ev.AdditionalEventData[KeyCIRun] = run
	}
	if untrusted {
		if err := capUntrusted(ev, textCapped); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

// jsonValue converts v to the generic JSON value (maps, slices, json.Number)
// a decoder would produce.
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return out, nil
}

// WebIdentityUser is the userIdentity of an AssumeRoleWithWebIdentity call
// through an IAM OIDC provider: principalId is providerARN:aud:sub and
// userName is the subject.
func WebIdentityUser(providerARN, audience, subject string) *UserIdentity {
	u := &UserIdentity{Type: IdentityWebIdentityUser, UserName: subject, IdentityProvider: providerARN}
	if providerARN != "" || audience != "" || subject != "" {
		u.PrincipalID = providerARN + ":" + audience + ":" + subject
	}
	return u
}

// Session describes a role session for [AssumedRole].
type Session struct {
	AccountID   string
	RoleName    string // without path
	RoleARN     string // with path: arn:aws:iam::ACCT:role/PATH/NAME
	RoleID      string // AROA...
	SessionName string
	AccessKeyID string
	// ProviderARN is the OIDC provider of a web-identity session; empty for
	// other sessions (webIdFederationData is then {} as in CloudTrail).
	ProviderARN       string
	ProviderAttribute map[string]string
	CreationDate      time.Time
	MFAAuthenticated  bool
	SourceIdentity    string
}

// AssumedRole is the userIdentity of a call signed with role-session
// credentials.
func AssumedRole(s Session) *UserIdentity {
	web := &WebIDFederationData{}
	if s.ProviderARN != "" {
		attrs := s.ProviderAttribute
		if attrs == nil {
			attrs = map[string]string{}
		}
		web = &WebIDFederationData{FederatedProvider: s.ProviderARN, Attributes: attrs}
	}
	mfa := "false"
	if s.MFAAuthenticated {
		mfa = "true"
	}
	return &UserIdentity{
		Type:        IdentityAssumedRole,
		PrincipalID: s.RoleID + ":" + s.SessionName,
		ARN:         "arn:aws:sts::" + s.AccountID + ":assumed-role/" + s.RoleName + "/" + s.SessionName,
		AccountID:   s.AccountID,
		AccessKeyID: s.AccessKeyID,
		SessionContext: &SessionContext{
			SessionIssuer: &SessionIssuer{
				Type:        IdentityRole,
				PrincipalID: s.RoleID,
				ARN:         s.RoleARN,
				AccountID:   s.AccountID,
				UserName:    s.RoleName,
			},
			WebIDFederationData: web,
			Attributes: &SessionAttributes{
				CreationDate:     s.CreationDate.UTC().Format(time.RFC3339),
				MFAAuthenticated: mfa,
			},
			SourceIdentity: s.SourceIdentity,
		},
	}
}

// IAMUser is the userIdentity of a call signed with a long-term key, as for
// keyless administrators. path is the IAM path ("/" when empty).
func IAMUser(accountID, userID, path, userName, accessKeyID string) *UserIdentity {
	if path == "" {
		path = "/"
	}
	return &UserIdentity{
		Type:        IdentityIAMUser,
		PrincipalID: userID,
		ARN:         "arn:aws:iam::" + accountID + ":user" + path + userName,
		AccountID:   accountID,
		AccessKeyID: accessKeyID,
		UserName:    userName,
	}
}

// FormatExpiration renders a credential expiration the way CloudTrail does in
// responseElements: "Apr 16, 2025, 3:46:56 AM" (UTC).
func FormatExpiration(t time.Time) string {
	return t.UTC().Format("Jan 2, 2006, 3:04:05 PM")
}

// SHA256Hex is the lowercase hex SHA-256 of s, the form in which tokens are
// recorded.
func SHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// NewEventID returns a random (version 4) UUID read from r.
func NewEventID(r io.Reader) (string, error) {
	if r == nil {
		return "", fmt.Errorf("%w: no randomness source for eventID", ErrInvalidEvent)
	}
	u, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return "", fmt.Errorf("audit: read eventID randomness: %w", err)
	}
	return u.String(), nil
}

// RedactClaims returns a copy of claims with the values of the named claims
// replaced by RedactedMarker. Only top-level claim names are matched, exactly.
//
// When nothing needs replacing (no named claim present, no claim that
// [Scrub] would rewrite) claims itself is returned: copying every token's
// claims would cost each exchange a map allocation for nothing.
func RedactClaims(claims map[string]any, names []string) map[string]any {
	out, _ := redactClaims(claims, names)
	return out
}

// redactClaims is RedactClaims, also reporting whether it made a copy.
func redactClaims(claims map[string]any, names []string) (map[string]any, bool) {
	if claims == nil {
		return nil, false
	}
	if !needsScrub(claims) && !slices.ContainsFunc(names, func(n string) bool { _, ok := claims[n]; return ok }) {
		return claims, false
	}
	// A deep copy: Scrub rewrites secret keys at any depth, and must not
	// rewrite the caller's nested objects.
	out := copyJSON(claims).(map[string]any)
	for _, n := range names {
		if _, ok := out[n]; ok {
			out[n] = RedactedMarker
		}
	}
	return out, true
}

// secretKind classifies a key case-insensitively: token values are
// high-entropy, so their hash is recorded (under key+"SHA256"); passwords
// and private keys could be guessed from a hash, so they are dropped. It
// runs for every key of every event, hence the switch on length and no
// allocation.
func secretKind(key string) (hashed, dropped bool) {
	eq := func(k string) bool { return strings.EqualFold(key, k) }
	switch len(key) {
	case 5:
		return eq("token"), false
	case 7:
		return eq("idtoken"), false
	case 8:
		return eq("id_token"), eq("password")
	case 9:
		return false, eq("secretkey")
	case 10:
		return false, eq("privatekey")
	case 11:
		return false, eq("newpassword") || eq("oldpassword")
	case 12:
		return eq("sessiontoken"), false
	case 13:
		return eq("samlassertion"), false
	case 15:
		return false, eq("secretaccesskey")
	case 16:
		return eq("webidentitytoken"), false
	}
	return false, false
}

// Scrub removes secrets from an event's requestParameters, responseElements
// and additionalEventData, at any depth: values of token keys
// (sessionToken, webIdentityToken, SAMLAssertion, idToken, token) are
// replaced by their SHA-256 under "<key>SHA256"; secret keys and passwords
// are removed. Builders call it; it is exported for events made by hand.
func Scrub(ev *Event) {
	scrubMap(ev.RequestParameters)
	scrubMap(ev.ResponseElements)
	scrubMap(ev.AdditionalEventData)
}

// copyJSON copies the objects and arrays of a generic JSON value; scalars
// are shared.
func copyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyJSON(e)
		}
		return m
	case []any:
		if x == nil {
			return x
		}
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = copyJSON(e)
		}
		return s
	case []map[string]any:
		if x == nil {
			return x
		}
		s := make([]map[string]any, len(x))
		for i, e := range x {
			s[i] = copyJSON(e).(map[string]any)
		}
		return s
	}
	return v
}

// needsScrub reports whether Scrub would change v (a secret-bearing key at
// any depth).
func needsScrub(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if hashed, dropped := secretKind(k); hashed || dropped || needsScrub(e) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(x, needsScrub)
	case []map[string]any:
		for _, e := range x {
			if needsScrub(e) {
				return true
			}
		}
	}
	return false
}

// scrubEntry stores key and value in m as Scrub would leave them, scrubbing
// a copy of value when it holds secrets.
func scrubEntry(m map[string]any, key string, value any) {
	hashed, dropped := secretKind(key)
	switch {
	case dropped:
	case hashed:
		if s, ok := value.(string); ok && s != "" {
			m[key+"SHA256"] = SHA256Hex(s)
		}
	case needsScrub(value):
		value = copyJSON(value)
		scrubValue(value)
		m[key] = value
	default:
		m[key] = value
	}
}

func scrubMap(m map[string]any) {
	for k, v := range m {
		hashed, dropped := secretKind(k)
		switch {
		case dropped:
			delete(m, k)
		case hashed:
			delete(m, k)
			if s, ok := v.(string); ok && s != "" {
				m[k+"SHA256"] = SHA256Hex(s)
			}
		default:
			scrubValue(v)
		}
	}
}

func scrubValue(v any) {
	switch x := v.(type) {
	case map[string]any:
		scrubMap(x)
	case []any:
		for _, e := range x {
			scrubValue(e)
		}
	case []map[string]any:
		for _, e := range x {
			scrubMap(e)
		}
	}
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop the bytes of a rune cut in half by the limit.
	for i := 0; i < utf8.UTFMax-1 && len(s) > 0; i++ {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

// arnAccount returns the account field of an ARN (the fifth colon-separated
// part), or "".
func arnAccount(arn string) string {
	rest := arn
	for range 4 {
		_, after, ok := strings.Cut(rest, ":")
		if !ok {
			return ""
		}
		rest = after
	}
	account, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return account
}
