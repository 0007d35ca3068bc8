package sigv4

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/awsquery"
)

const (
	algorithm     = "AWS4-HMAC-SHA256"
	terminator    = "aws4_request"
	amzDateLayout = "20060102T150405Z"
	// DefaultMaxSkew is the clock window STS and IAM accept (AWS's own
	// default for most services is 5 minutes; STS and IAM answer with
	// "... - 15 min.").
	DefaultMaxSkew = 15 * time.Minute
	// maxPresignExpires is the largest X-Amz-Expires AWS accepts (7 days).
	maxPresignExpires = 7 * 24 * 60 * 60

	paramAlgorithm     = "X-Amz-Algorithm"
	paramCredential    = "X-Amz-Credential"
	paramSignature     = "X-Amz-Signature"
	paramSignedHeaders = "X-Amz-SignedHeaders"
	paramDate          = "X-Amz-Date"
	paramExpires       = "X-Amz-Expires"
	paramToken         = "X-Amz-Security-Token"
	tokenHeader        = "x-amz-security-token"
)

// Verifier holds the verification policy. The zero value is usable: it reads
// time.Now, accepts 15 minutes of skew and the services iam and sts in any
// syntactically valid region. A Verifier is read-only once built and safe for
// concurrent use.
type Verifier struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far the request time may be from Now, both ways; zero
	// means DefaultMaxSkew. It is also how long an STS presigned request lives
	// after its X-Amz-Date (AWS ignores X-Amz-Expires there), and the cap on
	// the lifetime of any other presigned request.
	MaxSkew time.Duration
	// Services is the allow-list of credential-scope services; nil means
	// iam and sts. The caller still checks that the scope matches the action
	// (Signature.RequireService).
	Services []string
	// Regions, when not empty, is the allow-list of credential-scope regions.
	// When empty any syntactically valid region name is accepted: keyless
	// serves one logical region, and clients sign with whatever AWS_REGION
	// they have.
	Regions []string
}

// Signature is what Parse read from a request: who signed it and for which
// scope. Verify checks it against the request and the secret key.
type Signature struct {
	AccessKeyID  string
	SessionToken string // "" when the request carries none
	Region       string
	Service      string
	Time         time.Time // the request time, UTC
	Presigned    bool      // query-string authentication
	// Expires is a presigned request's X-Amz-Expires; 0 when absent, and for
	// STS, which ignores the parameter, also when it is not a valid number.
	Expires       time.Duration
	SignedHeaders []string // lowercase, sorted

	amzDate       string // request time as it appears in the string to sign
	scope         string // date/region/service/aws4_request
	signedHeaders string // the list exactly as signed
	signature     string // hex, as sent
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return DefaultMaxSkew
}

func (v *Verifier) services() []string {
	if len(v.Services) > 0 {
		return v.Services
	}
	return []string{"iam", "sts"}
}

func (v *Verifier) serviceAllowed(service string) bool {
	if len(v.Services) > 0 {
		return slices.Contains(v.Services, service)
	}
	return service == "iam" || service == "sts"
}

// Parse reads the authentication of r without the secret key: the
// Authorization header or the presigned query parameters, the request time
// and its window, the signed-header list and the credential scope. A request
// with no authentication at all gets MissingAuthenticationToken wrapping
// ErrNoAuth. The checks run in the order AWS's front end runs them, so the
// first error a client sees is the one AWS would report.
func (v *Verifier) Parse(r *http.Request) (*Signature, error) {
	authz := r.Header.Values("Authorization")
	hasAlg := hasQueryParam(r.URL.RawQuery, paramAlgorithm)
	switch {
	case len(authz) > 0 && hasAlg:
		return nil, mismatch(msgBothAuth, nil)
	case hasAlg:
		return v.parsePresigned(r)
	case len(authz) == 0:
		return nil, missingAuth(ErrNoAuth)
	case len(authz) > 1:
		return nil, incomplete("Only one Authorization header is allowed.")
	}
	return v.parseHeader(r, authz[0])
}

func (v *Verifier) parseHeader(r *http.Request, header string) (*Signature, error) {
	h := strings.TrimSpace(header)
	if !strings.HasPrefix(h, "AWS4-") {
		// Another scheme (Basic, Bearer, SigV2...) is no AWS authentication.
		return nil, missingAuth(errors.New("sigv4: unsupported authorization scheme"))
	}
	alg, rest := h, ""
	if i := strings.IndexAny(h, " \t,"); i >= 0 {
		alg, rest = h[:i], h[i+1:]
	}
	var cred, signed, sig string
	var seen [3]bool
	for rest != "" {
		var tok string
		tok, rest = nextToken(rest)
		if tok == "" {
			continue
		}
		k, val, ok := strings.Cut(tok, "=")
		if !ok {
			return nil, incomplete(fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", echo(tok), echo(h)))
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, val
		case "SignedHeaders":
			i, signed = 1, val
		case "Signature":
			i, sig = 2, val
		default:
			continue // AWS ignores unknown components.
		}
		if seen[i] {
			return nil, incomplete(fmt.Sprintf("'%s' appears more than once in Authorization header: '%s'.", k, echo(h)))
		}
		seen[i] = true
	}

	amzDates := r.Header.Values("X-Amz-Date")
	dates := r.Header.Values("Date")
	var missing strings.Builder
	if cred == "" {
		missing.WriteString("Authorization header requires 'Credential' parameter. ")
	}
	if sig == "" {
		missing.WriteString("Authorization header requires 'Signature' parameter. ")
	}
	if signed == "" {
		missing.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
	}
	if len(amzDates) == 0 && len(dates) == 0 {
		missing.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	if missing.Len() > 0 {
		return nil, incomplete(missing.String() + "Authorization=" + echo(h))
	}

	// X-Amz-Date wins over Date. A Date header may also be an HTTP date, in
	// which case the string to sign carries its ISO 8601 basic form.
	var t time.Time
	var amzDate string
	switch {
	case len(amzDates) > 1:
		return nil, incomplete("Only one X-Amz-Date header is allowed.")
	case len(amzDates) == 1:
		var ok bool
		if t, ok = parseAmzDate(amzDates[0]); !ok {
			return nil, incomplete(badDate(amzDates[0]))
		}
		amzDate = amzDates[0]
	case len(dates) > 1:
		return nil, incomplete("Only one Date header is allowed.")
	default:
		var ok bool
		if t, ok = parseAmzDate(dates[0]); ok {
			amzDate = dates[0]
		} else if ht, err := http.ParseTime(dates[0]); err == nil {
			t = ht.UTC()
			amzDate = t.Format(amzDateLayout)
		} else {
			return nil, incomplete(badDate(dates[0]))
		}
	}
	now := v.now().UTC()
	if err := v.checkSkew(t, now); err != nil {
		return nil, err
	}

	names, err := parseSignedHeaders(signed)
	if err != nil {
		return nil, err
	}
	if err := checkSignedPresent(r, names); err != nil {
		return nil, err
	}
	tokens := r.Header.Values("X-Amz-Security-Token")
	if err := checkTokenHeader(tokens, names); err != nil {
		return nil, err
	}
	if alg != algorithm {
		return nil, unsupportedAlgorithm(alg)
	}
	s := &Signature{
		Time:          t,
		SignedHeaders: names,
		amzDate:       amzDate,
		signedHeaders: signed,
		signature:     sig,
	}
	if err := v.parseCredential(s, cred); err != nil {
		return nil, err
	}
	if len(tokens) == 1 {
		s.SessionToken = tokens[0]
	}
	return s, nil
}

func (v *Verifier) parsePresigned(r *http.Request) (*Signature, error) {
	names := [...]string{paramAlgorithm, paramCredential, paramSignature, paramSignedHeaders, paramDate, paramExpires, paramToken}
	var vals [len(names)]string
	var counts [len(names)]int
	for raw := r.URL.RawQuery; raw != ""; {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, val, _ := strings.Cut(seg, "=")
		if !maybeAuthParam(k) {
			continue
		}
		k = queryUnescape(k)
		switch awsquery.ClassifyName(k) {
		case awsquery.NameSigV4:
			if i := slices.Index(names[:], k); i >= 0 {
				vals[i] = queryUnescape(val)
				counts[i]++
			}
		case awsquery.NameSigV4Variant:
			// AWS's names are case-sensitive: x-amz-security-token is
			// not the session token, and must not pass as data either.
			return nil, incomplete(fmt.Sprintf("AWS query-string parameter names are case-sensitive: '%s' is not accepted. %s", echo(k), msgReexamineQuery))
		}
	}
	for i, n := range counts {
		if n > 1 {
			return nil, incomplete(fmt.Sprintf("AWS query-string parameter '%s' must appear only once. %s", names[i], msgReexamineQuery))
		}
	}
	if slices.Contains(vals[:5], "") { // the five AWS requires
		var missing strings.Builder
		for i := range 5 { // in AWS's order
			if vals[i] == "" {
				missing.WriteString("AWS query-string parameters must include '" + names[i] + "'. ")
			}
		}
		return nil, incomplete(missing.String() + msgReexamineQuery)
	}
	alg, cred, sig, signed, amzDate, expires, token := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6]

	t, ok := parseAmzDate(amzDate)
	if !ok {
		return nil, incomplete(badDate(amzDate))
	}
	// STS keeps a presigned request valid for the skew window after
	// X-Amz-Date whatever X-Amz-Expires says (EKS-style tokens rely on it).
	// Elsewhere X-Amz-Expires is honoured, capped by the same window, so a
	// presigned IAM URL can never outlive 15 minutes.
	isSTS := credentialService(cred) == "sts"
	var exp time.Duration
	if expires != "" || counts[5] > 0 {
		n, err := strconv.Atoi(expires)
		switch {
		case err == nil && n >= 1 && n <= maxPresignExpires:
			exp = time.Duration(n) * time.Second
		case !isSTS:
			return nil, incomplete(fmt.Sprintf("X-Amz-Expires must be a whole number of seconds between 1 and %d, got '%s'. %s", maxPresignExpires, echo(expires), msgReexamineQuery))
		}
	}
	now := v.now().UTC()
	skew := v.skew()
	if t.After(now.Add(skew)) {
		return nil, notYetCurrent(t, now, skew)
	}
	if !isSTS && exp > 0 && exp < skew {
		if now.After(t.Add(exp)) {
			return nil, &awsquery.Error{Code: awsquery.CodeRequestExpired, Err: ErrClockSkew,
				Message: fmt.Sprintf("Request has expired: X-Amz-Date %s plus X-Amz-Expires %d seconds ended at %s; it is now %s.",
					amzDate, exp/time.Second, t.Add(exp).Format(amzDateLayout), now.Format(amzDateLayout))}
		}
	} else if t.Before(now.Add(-skew)) {
		return nil, expired(t, now, skew)
	}

	signedNames, err := parseSignedHeaders(signed)
	if err != nil {
		return nil, err
	}
	if err := checkSignedPresent(r, signedNames); err != nil {
		return nil, err
	}
	headerTokens := r.Header.Values("X-Amz-Security-Token")
	if err := checkTokenHeader(headerTokens, signedNames); err != nil {
		return nil, err
	}
	if len(headerTokens) > 0 && counts[6] > 0 {
		return nil, incomplete("The session token must be sent either as the X-Amz-Security-Token header or as the query parameter, not both.")
	}
	if alg != algorithm {
		return nil, unsupportedAlgorithm(alg)
	}
	s := &Signature{
		Time:          t,
		Presigned:     true,
		Expires:       exp,
		SignedHeaders: signedNames,
		SessionToken:  token,
		amzDate:       amzDate,
		signedHeaders: signed,
		signature:     sig,
	}
	if err := v.parseCredential(s, cred); err != nil {
		return nil, err
	}
	if len(headerTokens) == 1 {
		s.SessionToken = headerTokens[0]
	}
	return s, nil
}

// checkSkew applies the header-signed window: AWS's messages, both ways.
func (v *Verifier) checkSkew(t, now time.Time) error {
	skew := v.skew()
	if t.Before(now.Add(-skew)) {
		return expired(t, now, skew)
	}
	if t.After(now.Add(skew)) {
		return notYetCurrent(t, now, skew)
	}
	return nil
}

// parseCredential checks AKID/date/region/service/aws4_request against the
// policy and the request date. Scope findings are reported together, in
// AWS's order, as AWS does.
func (v *Verifier) parseCredential(s *Signature, cred string) error {
	c := strings.TrimRight(cred, "/") // AWS ignores trailing slashes
	if strings.Count(c, "/") != 4 {
		return incomplete(fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", echo(cred)))
	}
	akid, scope, _ := strings.Cut(c, "/")
	date, rest, _ := strings.Cut(scope, "/")
	region, rest, _ := strings.Cut(rest, "/")
	service, term, _ := strings.Cut(rest, "/")

	badRegion, badService := !v.regionAllowed(region), !v.serviceAllowed(service)
	badTerm, badDate := term != terminator, date != s.amzDate[:8]
	if badRegion || badService || badTerm || badDate {
		var msg strings.Builder // only on failure: Fprintf makes it escape
		if badRegion {
			msg.WriteString(msgBadRegion)
		}
		if badService {
			msg.WriteString(wrongService(v.services()))
		}
		if badTerm {
			fmt.Fprintf(&msg, "Credential should be scoped with a valid terminator: '%s', not '%s'. ", terminator, echo(term))
		}
		if badDate {
			fmt.Fprintf(&msg, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'. ", echo(date), s.amzDate[:8], s.amzDate)
		}
		return mismatch(msg.String(), nil)
	}
	if !validAccessKeyID(akid) {
		return InvalidClientTokenID(errors.New("sigv4: malformed access key id"))
	}
	s.AccessKeyID, s.Region, s.Service, s.scope = akid, region, service, scope
	return nil
}

// RequireService reports AWS's scope error when the credential was scoped to
// another service than the one serving the action (keyless serves STS and
// IAM on one endpoint, so only the caller knows which one an action is).
func (s *Signature) RequireService(service string) error {
	if s.Service != service {
		return mismatch(wrongService([]string{service}), nil)
	}
	return nil
}

func (v *Verifier) regionAllowed(region string) bool {
	if len(v.Regions) > 0 {
		return slices.Contains(v.Regions, region)
	}
	return validRegionName(region)
}

// validRegionName accepts AWS-shaped region names (us-east-1,
// us-gov-west-1, eu-isoe-west-1) and simple custom ones (local): lowercase
// letters, digits and inner hyphens, starting with a letter.
func validRegionName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validAccessKeyID follows the IAM model: word characters, at most 128.
func validAccessKeyID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// parseSignedHeaders insists on the form every SDK produces: distinct
// lowercase header names, sorted, ';'-separated, including host. Anything
// else cannot have been signed the way the canonical request is rebuilt here.
func parseSignedHeaders(list string) ([]string, error) {
	names := make([]string, 0, strings.Count(list, ";")+1)
	hasHost := false
	for rest := list; ; {
		name, tail, more := strings.Cut(rest, ";")
		if !validSignedName(name) || (len(names) > 0 && name <= names[len(names)-1]) {
			return nil, incomplete(fmt.Sprintf("SignedHeaders must be a sorted, ';'-separated list of distinct lowercase header names, got '%s'.", echo(list)))
		}
		hasHost = hasHost || name == "host"
		names = append(names, name)
		if !more {
			break
		}
		rest = tail
	}
	if !hasHost {
		return nil, mismatch(msgHostNotSigned, nil)
	}
	return names, nil
}

func validSignedName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || !isTokenChar(c) {
			return false
		}
	}
	return true
}

// checkSignedPresent refuses a signed header the request does not carry:
// treating it as empty would let anyone strip a header that was signed with
// an empty value.
func checkSignedPresent(r *http.Request, names []string) error {
	for _, n := range names {
		present := false
		switch n {
		case "host":
			present = true // HTTP/1.1 requires it; net/http moves it to r.Host
		case "content-length":
			present = r.ContentLength > 0 || len(headerValues(r.Header, n)) > 0
		case "transfer-encoding":
			present = len(r.TransferEncoding) > 0 || len(headerValues(r.Header, n)) > 0
		default:
			present = len(headerValues(r.Header, n)) > 0
		}
		if !present {
			return mismatch(fmt.Sprintf("Header '%s' is listed in SignedHeaders but is missing from the request.", echo(n)), nil)
		}
	}
	return nil
}

// checkTokenHeader: a session token sent as a header must be covered by the
// signature, otherwise it could be swapped in transit (S3 refuses the same).
func checkTokenHeader(tokens, signed []string) error {
	if len(tokens) > 1 {
		return incomplete("Only one X-Amz-Security-Token header is allowed.")
	}
	if len(tokens) == 1 && !slices.Contains(signed, tokenHeader) {
		return mismatch("There were headers present in the request which were not signed: x-amz-security-token", nil)
	}
	return nil
}

func unsupportedAlgorithm(alg string) error {
	return incomplete(fmt.Sprintf("Unsupported AWS 'algorithm': '%s' (only AWS4-HMAC-SHA256 for now). ", echo(alg)))
}

func badDate(v string) string {
	return fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", echo(v))
}

// nextToken splits the Authorization header's components, which AWS
// separates by commas and/or white space.
func nextToken(s string) (tok, rest string) {
	i := strings.IndexAny(s, " \t,")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i+1:]
}

// parseAmzDate parses YYYYMMDDTHHMMSSZ strictly, without allocating.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	var f [6]int
	pos := [6][2]int{{0, 4}, {4, 6}, {6, 8}, {9, 11}, {11, 13}, {13, 15}}
	for i, p := range pos {
		for j := p[0]; j < p[1]; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			f[i] = f[i]*10 + int(c-'0')
		}
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], 0, time.UTC)
	// time.Date normalises out-of-range fields (month 13, hour 24); refuse them.
	if t.Year() != f[0] || int(t.Month()) != f[1] || t.Day() != f[2] || t.Hour() != f[3] || t.Minute() != f[4] || t.Second() != f[5] {
		return time.Time{}, false
	}
	return t, true
}

// credentialService peeks at the service element of a credential, before it
// is validated, to pick the presigned lifetime rule.
func credentialService(cred string) string {
	c := strings.TrimRight(cred, "/")
	if strings.Count(c, "/") != 4 {
		return ""
	}
	c = c[:strings.LastIndexByte(c, '/')]
	return c[strings.LastIndexByte(c, '/')+1:]
}

// hasQueryParam reports whether the raw query has the named X-Amz-*
// parameter.
func hasQueryParam(raw, name string) bool {
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		k, _, _ := strings.Cut(seg, "=")
		if maybeAuthParam(k) && queryUnescape(k) == name {
			return true
		}
	}
	return false
}

// maybeAuthParam is a cheap pre-filter: an X-Amz-* name, in any case and
// encoding, starts with 'X', 'x' or an escape.
func maybeAuthParam(k string) bool {
	return k != "" && (k[0] == 'X' || k[0] == 'x' || k[0] == '%')
}
