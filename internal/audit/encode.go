package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
)

// Event encoding is on the path of every exchange (the event is encoded
// before the credentials leave the server), so events are written by the
// appenders below instead of by reflection: an exchange event encodes in
// about a fifth of the time encoding/json/v2 takes. The output is exactly
// what encoding/json writes with HTML escaping off (CloudTrail does not
// HTML-escape): struct fields in declaration order with their omitempty and
// omitzero rules, map keys sorted bytewise, numbers and strings formatted
// as encoding/json formats them. TestAppendEventMatchesEncodingJSON and
// FuzzAppendEvent hold that equivalence; a value of a type the appenders do
// not know is handed to the encoding/json/v2 engine with v1 options.

// appendEvent appends ev's JSON to dst. ev must already be normalised
// (marshalEvent does it).
func appendEvent(dst []byte, ev *Event) ([]byte, error) {
	var err error
	dst = append(dst, `{"eventVersion":`...)
	dst = appendString(dst, ev.EventVersion)
	if ev.UserIdentity != nil {
		dst = append(dst, `,"userIdentity":`...)
		if dst, err = appendUserIdentity(dst, ev.UserIdentity); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `,"eventTime":`...)
	if dst, err = appendTime(dst, ev.EventTime); err != nil {
		return dst, err
	}
	dst = appendStringField(dst, "eventSource", ev.EventSource)
	dst = appendStringField(dst, "eventName", ev.EventName)
	dst = appendStringField(dst, "awsRegion", ev.AWSRegion)
	dst = appendStringField(dst, "sourceIPAddress", ev.SourceIPAddress)
	dst = appendStringField(dst, "userAgent", ev.UserAgent)
	dst = appendStringField(dst, "errorCode", ev.ErrorCode)
	dst = appendStringField(dst, "errorMessage", ev.ErrorMessage)
	dst = append(dst, `,"requestParameters":`...)
	if dst, err = appendObject(dst, ev.RequestParameters); err != nil {
		return dst, err
	}
	dst = append(dst, `,"responseElements":`...)
	if dst, err = appendObject(dst, ev.ResponseElements); err != nil {
		return dst, err
	}
	if ev.AdditionalEventData != nil {
		dst = append(dst, `,"additionalEventData":`...)
		if dst, err = appendObject(dst, ev.AdditionalEventData); err != nil {
			return dst, err
		}
	}
	dst = appendStringField(dst, "requestID", ev.RequestID)
	dst = append(dst, `,"eventID":`...)
	dst = appendString(dst, ev.EventID)
	dst = append(dst, `,"readOnly":`...)
	dst = strconv.AppendBool(dst, ev.ReadOnly)
	if ev.Resources != nil {
		dst = append(dst, `,"resources":[`...)
		for i, r := range ev.Resources {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			n := len(dst)
			dst = appendStringField(dst, "ARN", r.ARN)
			dst = appendStringField(dst, "accountId", r.AccountID)
			dst = appendStringField(dst, "type", r.Type)
			dst = closeObject(dst, n)
		}
		dst = append(dst, ']')
	}
	dst = appendStringField(dst, "eventType", ev.EventType)
	dst = appendStringField(dst, "apiVersion", ev.APIVersion)
	dst = append(dst, `,"managementEvent":`...)
	dst = strconv.AppendBool(dst, ev.ManagementEvent)
	dst = appendStringField(dst, "recipientAccountId", ev.RecipientAccountID)
	dst = appendStringField(dst, "sharedEventID", ev.SharedEventID)
	dst = appendStringField(dst, "vpcEndpointId", ev.VPCEndpointID)
	dst = appendStringField(dst, "vpcEndpointAccountId", ev.VPCEndpointAccountID)
	if ev.ServiceEventDetails != nil {
		dst = append(dst, `,"serviceEventDetails":`...)
		if dst, err = appendObject(dst, ev.ServiceEventDetails); err != nil {
			return dst, err
		}
	}
	dst = appendStringField(dst, "eventCategory", ev.EventCategory)
	if a := ev.Addendum; a != nil {
		dst = append(dst, `,"addendum":{`...)
		n := len(dst)
		dst = appendStringField(dst, "reason", a.Reason)
		dst = appendStringField(dst, "updatedFields", a.UpdatedFields)
		dst = appendStringField(dst, "originalRequestID", a.OriginalRequestID)
		dst = appendStringField(dst, "originalEventID", a.OriginalEventID)
		dst = closeObject(dst, n)
	}
	dst = appendStringField(dst, "sessionCredentialFromConsole", ev.SessionCredentialFromConsole)
	if ev.EdgeDeviceDetails != nil {
		dst = append(dst, `,"edgeDeviceDetails":`...)
		if dst, err = appendObject(dst, ev.EdgeDeviceDetails); err != nil {
			return dst, err
		}
	}
	if d := ev.TLSDetails; d != nil {
		dst = append(dst, `,"tlsDetails":{`...)
		n := len(dst)
		dst = appendStringField(dst, "tlsVersion", d.TLSVersion)
		dst = appendStringField(dst, "cipherSuite", d.CipherSuite)
		dst = appendStringField(dst, "clientProvidedHostHeader", d.ClientProvidedHostHeader)
		dst = closeObject(dst, n)
	}
	if ev.EventContext != nil {
		dst = append(dst, `,"eventContext":`...)
		if dst, err = appendObject(dst, ev.EventContext); err != nil {
			return dst, err
		}
	}
	if ev.InsightDetails != nil {
		dst = append(dst, `,"insightDetails":`...)
		if dst, err = appendObject(dst, ev.InsightDetails); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendUserIdentity(dst []byte, u *UserIdentity) ([]byte, error) {
	dst = append(dst, '{')
	n := len(dst)
	dst = appendStringField(dst, "type", u.Type)
	dst = appendStringField(dst, "principalId", u.PrincipalID)
	dst = appendStringField(dst, "arn", u.ARN)
	dst = appendStringField(dst, "accountId", u.AccountID)
	dst = appendStringField(dst, "accessKeyId", u.AccessKeyID)
	dst = appendStringField(dst, "userName", u.UserName)
	dst = appendStringField(dst, "invokedBy", u.InvokedBy)
	dst = appendStringField(dst, "identityProvider", u.IdentityProvider)
	dst = appendStringField(dst, "credentialId", u.CredentialID)
	if s := u.SessionContext; s != nil {
		dst = append(dst, `,"sessionContext":{`...)
		m := len(dst)
		if i := s.SessionIssuer; i != nil {
			dst = append(dst, `,"sessionIssuer":{`...)
			k := len(dst)
			dst = appendStringField(dst, "type", i.Type)
			dst = appendStringField(dst, "principalId", i.PrincipalID)
			dst = appendStringField(dst, "arn", i.ARN)
			dst = appendStringField(dst, "accountId", i.AccountID)
			dst = appendStringField(dst, "userName", i.UserName)
			dst = closeObject(dst, k)
		}
		if w := s.WebIDFederationData; w != nil {
			dst = append(dst, `,"webIdFederationData":{`...)
			k := len(dst)
			dst = appendStringField(dst, "federatedProvider", w.FederatedProvider)
			if w.Attributes != nil {
				dst = append(dst, `,"attributes":`...)
				dst = appendStringMap(dst, w.Attributes)
			}
			dst = closeObject(dst, k)
		}
		if a := s.Attributes; a != nil {
			dst = append(dst, `,"attributes":{`...)
			k := len(dst)
			dst = appendStringField(dst, "creationDate", a.CreationDate)
			dst = appendStringField(dst, "mfaAuthenticated", a.MFAAuthenticated)
			dst = closeObject(dst, k)
		}
		dst = appendStringField(dst, "sourceIdentity", s.SourceIdentity)
		dst = appendStringField(dst, "ec2RoleDelivery", s.EC2RoleDelivery)
		dst = appendStringField(dst, "assumedRoot", s.AssumedRoot)
		dst = closeObject(dst, m)
	}
	if o := u.OnBehalfOf; o != nil {
		dst = append(dst, `,"onBehalfOf":{`...)
		k := len(dst)
		dst = appendStringField(dst, "userId", o.UserID)
		dst = appendStringField(dst, "identityStoreArn", o.IdentityStoreARN)
		dst = closeObject(dst, k)
	}
	if u.InScopeOf != nil {
		dst = append(dst, `,"inScopeOf":`...)
		var err error
		if dst, err = appendObject(dst, u.InScopeOf); err != nil {
			return dst, err
		}
	}
	return closeObject(dst, n), nil
}

// appendStringField appends `,"name":"value"` unless value is empty
// (omitempty). Objects are written with a leading comma before every member
// and closeObject drops the first one.
func appendStringField(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendString(dst, value)
}

// closeObject ends an object opened just before start: the comma written
// before its first member (if any) is removed.
func closeObject(dst []byte, start int) []byte {
	if len(dst) > start && dst[start] == ',' {
		dst = append(dst[:start], dst[start+1:]...)
	}
	return append(dst, '}')
}

// appendTime writes t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, refusing years outside 0000–9999).
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, fmt.Errorf("%w: eventTime year %d outside [0,9999]", ErrInvalidEvent, y)
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendObject writes a free-form object; nil is null.
func appendObject(dst []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	return appendMap(dst, m)
}

// sortedKeys returns m's keys in bytewise order, using buf's storage when it
// is large enough (most event objects have a handful of keys).
func sortedKeys[V any](m map[string]V, buf []string) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// member is one key and value of a map being encoded.
type member struct {
	k string
	v any
}

func appendMap(dst []byte, m map[string]any) ([]byte, error) {
	// Members are collected with their values (one map walk, no lookups)
	// and sorted; most event objects fit the stack buffer.
	var buf [32]member
	ms := buf[:0]
	for k, v := range m {
		ms = append(ms, member{k, v})
	}
	slices.SortFunc(ms, func(a, b member) int { return strings.Compare(a.k, b.k) })
	dst = append(dst, '{')
	var err error
	for i, e := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, e.k)
		dst = append(dst, ':')
		if dst, err = appendValue(dst, e.v); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendStringMap(dst []byte, m map[string]string) []byte {
	if m == nil {
		return append(dst, "null"...)
	}
	var buf [16]string
	dst = append(dst, '{')
	for i, k := range sortedKeys(m, buf[:]) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendValue writes one free-form value: the types JSON decoding and the
// builders produce are written directly, anything else goes through the
// encoding/json/v2 engine with the same options marshalEvent used to.
func appendValue(dst []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case json.Number:
		return appendNumber(dst, x)
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case map[string]any:
		return appendObject(dst, x)
	case map[string]string:
		return appendStringMap(dst, x), nil
	case []any:
		return appendArray(dst, x, appendValue)
	case []string:
		return appendArray(dst, x, func(dst []byte, e string) ([]byte, error) { return appendString(dst, e), nil })
	case []map[string]any:
		return appendArray(dst, x, appendObject)
	case *CIRun:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return x.AppendJSON(dst), nil
	case json.RawMessage:
		if x == nil {
			return append(dst, "null"...), nil
		}
		var b bytes.Buffer
		if err := json.Compact(&b, x); err != nil {
			return dst, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		return append(dst, b.Bytes()...), nil
	}
	b, err := jsonv2.Marshal(v, eventJSONOptions)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return append(dst, b...), nil
}

// appendArray writes xs as a JSON array (nil is null), each element with
// elem.
func appendArray[E any](dst []byte, xs []E, elem func([]byte, E) ([]byte, error)) ([]byte, error) {
	if xs == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	var err error
	for i, e := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = elem(dst, e); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendNumber writes a json.Number verbatim after checking that it is a
// JSON number; the empty Number is 0, as encoding/json writes it.
func appendNumber(dst []byte, n json.Number) ([]byte, error) {
	if n == "" {
		return append(dst, '0'), nil
	}
	if !isJSONNumber(string(n)) {
		return dst, fmt.Errorf("%w: invalid number literal %q", ErrInvalidEvent, string(n))
	}
	return append(dst, n...), nil
}

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		for s = s[1:]; s != "" && '0' <= s[0] && s[0] <= '9'; s = s[1:] {
		}
	default:
		return false
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		for s = s[2:]; s != "" && '0' <= s[0] && s[0] <= '9'; s = s[1:] {
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for ; s != "" && '0' <= s[0] && s[0] <= '9'; s = s[1:] {
		}
	}
	return s == ""
}

// appendFloat formats f as encoding/json does: the shortest representation
// that round-trips, in exponent form only for very large or small
// magnitudes, with a one-digit negative exponent written without padding.
func appendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, fmt.Errorf("%w: unsupported value %v", ErrInvalidEvent, f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes a JSON string holds as they are: printable
// ASCII except the quote and the backslash. A table makes the common case
// one load per byte.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString writes s as a JSON string the way encoding/json does without
// HTML escaping: quotes, backslashes and control characters escaped (\b,
// \f, \n, \r, \t by name), invalid UTF-8 replaced by U+FFFD, and U+2028 and
// U+2029 escaped (JavaScript treats them as line ends).
// AppendJSONString appends s as a JSON string the way the trail writes
// strings (appendString); other packages that write JSON by hand use it
// rather than a copy.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
