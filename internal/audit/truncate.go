package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Untrusted events are the events of requests refused before their caller
// was authenticated: an AssumeRoleWithWebIdentity whose ID token did not
// validate ([Exchange].Unverified), or an unsigned call refused before its
// handler ([Call].Untrusted). Apart from what keyless computed itself, every
// value in them was chosen by an anonymous client, so their size is bounded:
// each caller-controlled string is cut with [TruncateText], objects and
// arrays keep their first entries, and the encoded event never exceeds
// [UntrustedEventBytes]. Authenticated events are recorded in full.
const (
	// UntrustedTextBytes bounds each string of an untrusted event's
	// requestParameters, additionalEventData, userAgent, identity and
	// resources, in JSON-encoded bytes (marker included).
	UntrustedTextBytes = 256
	// UntrustedMessageBytes bounds an untrusted event's errorMessage.
	UntrustedMessageBytes = 512
	// UntrustedEventBytes is the hard cap of an untrusted event's encoding.
	UntrustedEventBytes = 4096
	// MinTruncateBytes is the smallest bound [TruncateText] honours: a cut
	// value needs room for its marker (length and SHA-256).
	MinTruncateBytes = 128

	// KeyInputCapped (additionalEventData) is true when values of an
	// untrusted event were shortened or left out.
	KeyInputCapped = "untrustedInputCapped"
	// KeyOmitted replaces what a cap left out: under an object, the number
	// of members left out; as requestParameters' only key, the size and
	// SHA-256 of the original requestParameters' encoding.
	KeyOmitted = "…omitted"
)

const (
	untrustedEntries  = 16 // members kept per object or array
	untrustedDepth    = 4  // nesting kept below requestParameters/additionalEventData
	untrustedKeyBytes = MinTruncateBytes
	untrustedARNs     = 4 // resources kept
)

// TruncateText bounds s for the audit trail. When the JSON encoding of s
// (without its quotes) fits in limit bytes, s is returned (each invalid
// UTF-8 byte replaced by U+FFFD, as the encoder writes it). Otherwise the
// longest prefix that fits is kept and followed by a marker naming the full
// value's length and SHA-256:
//
//	<prefix>…[25000 bytes, sha256:<64 hex>]
//
// The result is valid UTF-8 and its JSON encoding is never longer than
// limit, which is raised to [MinTruncateBytes] when smaller.
func TruncateText(s string, limit int) string {
	if limit < MinTruncateBytes {
		limit = MinTruncateBytes
	}
	if n, valid := jsonTextLen(s, limit); n <= limit {
		if valid {
			return s
		}
		return validUTF8(s)
	}
	sum := sha256.Sum256([]byte(s))
	marker := "…[" + strconv.Itoa(len(s)) + " bytes, sha256:" + hex.EncodeToString(sum[:]) + "]"
	budget := limit - len(marker)
	var b strings.Builder
	b.Grow(limit)
	used := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		w, text := jsonRuneLen(r, size), s[i:i+size]
		if r == utf8.RuneError && size == 1 {
			w, text = 3, "\uFFFD"
		}
		if used+w > budget {
			break
		}
		b.WriteString(text)
		used += w
		i += size
	}
	b.WriteString(marker)
	return b.String()
}

// validUTF8 replaces each invalid byte of s by U+FFFD.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// jsonTextLen is the length of s as appendString writes it, without the
// quotes; it stops counting past limit. valid reports whether s is valid
// UTF-8 (as far as it was read).
func jsonTextLen(s string, limit int) (n int, valid bool) {
	valid = true
	for i := 0; i < len(s) && n <= limit; {
		c := s[i]
		if c < utf8.RuneSelf {
			n += jsonRuneLen(rune(c), 1)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			valid = false
			n += len(`\ufffd`)
		} else {
			n += jsonRuneLen(r, size)
		}
		i += size
	}
	return n, valid
}

// jsonRuneLen is the number of bytes appendString writes for a valid rune
// of size bytes.
func jsonRuneLen(r rune, size int) int {
	if r < utf8.RuneSelf {
		switch {
		case jsonPlain[r]:
			return 1
		case r == '"' || r == '\\' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t':
			return 2
		default:
			return 6 // \u00XX
		}
	}
	if r == '\u2028' || r == '\u2029' {
		return 6
	}
	return size
}

// capCallText bounds the text fields of an untrusted call before the
// builder's own (longer) limits cut them, so that a cut value's marker
// hashes the value as sent. It reports whether anything was cut.
func capCallText(c *Call) bool {
	before := *c
	c.UserAgent = TruncateText(c.UserAgent, UntrustedTextBytes)
	c.ErrorCode = TruncateText(c.ErrorCode, MinTruncateBytes)
	c.ErrorMessage = TruncateText(c.ErrorMessage, UntrustedMessageBytes)
	c.SourceIP = TruncateText(c.SourceIP, MinTruncateBytes)
	return c.UserAgent != before.UserAgent || c.ErrorCode != before.ErrorCode ||
		c.ErrorMessage != before.ErrorMessage || c.SourceIP != before.SourceIP
}

// capUntrusted bounds an untrusted event in place (its maps are replaced,
// never modified: they may be the caller's); capped says whether
// capCallText already cut something. See [UntrustedEventBytes].
func capUntrusted(ev *Event, capped bool) error {
	text := func(s string, max int) string {
		t := TruncateText(s, max)
		capped = capped || t != s
		return t
	}
	orig := ev.RequestParameters
	ev.UserAgent = text(ev.UserAgent, UntrustedTextBytes)
	ev.ErrorCode = text(ev.ErrorCode, MinTruncateBytes)
	ev.ErrorMessage = text(ev.ErrorMessage, UntrustedMessageBytes)
	ev.SourceIPAddress = text(ev.SourceIPAddress, MinTruncateBytes)
	if u := ev.UserIdentity; u != nil {
		c := *u
		c.PrincipalID = text(c.PrincipalID, UntrustedTextBytes)
		c.UserName = text(c.UserName, UntrustedTextBytes)
		c.IdentityProvider = text(c.IdentityProvider, UntrustedTextBytes)
		c.ARN = text(c.ARN, UntrustedTextBytes)
		ev.UserIdentity = &c
	}
	if len(ev.Resources) > 0 {
		n := min(len(ev.Resources), untrustedARNs)
		capped = capped || n < len(ev.Resources)
		rs := make([]Resource, n)
		for i := range rs {
			r := ev.Resources[i]
			rs[i] = Resource{ARN: text(r.ARN, UntrustedTextBytes), AccountID: text(r.AccountID, MinTruncateBytes), Type: text(r.Type, MinTruncateBytes)}
		}
		ev.Resources = rs
	}
	c := capper{text: UntrustedTextBytes, entries: untrustedEntries, top: untrustedEntries}
	ev.RequestParameters = c.object(orig, 0)
	ev.ResponseElements = c.object(ev.ResponseElements, 0)
	ev.AdditionalEventData = c.object(ev.AdditionalEventData, 0)
	ev.ServiceEventDetails = c.object(ev.ServiceEventDetails, 0)
	capped = capped || c.capped

	// The hard cap: tighter bounds on the caller's parameters, then their
	// hash only, then only what keyless computed itself.
	mark := func() {
		if capped {
			if ev.AdditionalEventData == nil {
				ev.AdditionalEventData = map[string]any{}
			}
			ev.AdditionalEventData[KeyInputCapped] = true
		}
	}
	mark()
	size, err := encodedSize(ev)
	if err != nil || size <= UntrustedEventBytes {
		return err
	}
	capped = true
	// Top-level keys are the action's parameters and keyless's own keys:
	// only nested lists and values shrink.
	tight := capper{text: MinTruncateBytes, entries: 4, top: untrustedEntries}
	tightAdd := tight
	ev.RequestParameters = tight.object(orig, 0)
	ev.AdditionalEventData = tightAdd.object(ev.AdditionalEventData, 0)
	if size, err = encodedSize(ev); err != nil || size <= UntrustedEventBytes {
		return err
	}
	if orig != nil {
		enc, err := appendObject(nil, orig)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(enc)
		ev.RequestParameters = map[string]any{KeyOmitted: map[string]any{"bytes": len(enc), "sha256": hex.EncodeToString(sum[:])}}
	}
	if size, err = encodedSize(ev); err != nil || size <= UntrustedEventBytes {
		return err
	}
	ev.AdditionalEventData = map[string]any{KeyInputCapped: true}
	ev.ResponseElements, ev.ServiceEventDetails, ev.Resources, ev.UserIdentity = nil, nil, nil, nil
	ev.UserAgent = TruncateText(ev.UserAgent, MinTruncateBytes)
	ev.ErrorMessage = TruncateText(ev.ErrorMessage, MinTruncateBytes)
	return nil
}

func encodedSize(ev *Event) (int, error) {
	b, err := encodeEvent(make([]byte, 0, UntrustedEventBytes), ev)
	return len(b), err
}

// capper bounds free-form JSON values: strings to text bytes, objects and
// arrays to entries members (top members at the top level), nesting to
// untrustedDepth.
type capper struct {
	text, entries, top int
	capped             bool
}

func (c *capper) object(m map[string]any, depth int) map[string]any {
	if m == nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	limit := c.entries
	if depth == 0 {
		limit = c.top
	}
	out := make(map[string]any, min(len(m), limit)+1)
	for i, k := range keys {
		if i == limit {
			c.capped = true
			out[KeyOmitted] = len(keys) - i
			break
		}
		ck := TruncateText(k, untrustedKeyBytes)
		c.capped = c.capped || ck != k
		out[ck] = c.value(m[k], depth+1)
	}
	return out
}

func (c *capper) value(v any, depth int) any {
	switch x := v.(type) {
	case nil, bool, int, int32, int64, uint64, float32, float64:
		return v
	case string:
		t := TruncateText(x, c.text)
		c.capped = c.capped || t != x
		return t
	}
	if depth >= untrustedDepth {
		return c.opaque(v)
	}
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return x
		}
		return c.object(x, depth)
	case map[string]string:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return c.object(m, depth)
	case []any:
		return capArray(c, x, depth)
	case []string:
		return capArray(c, x, depth)
	case []map[string]any:
		return capArray(c, x, depth)
	}
	return c.opaque(v)
}

// opaque replaces any other value by its JSON text, bounded.
func (c *capper) opaque(v any) any {
	enc, err := appendValue(nil, v)
	if err != nil {
		c.capped = true
		return TruncateText("unencodable value: "+err.Error(), c.text)
	}
	if len(enc) <= c.text && len(enc) > 0 && enc[0] != '{' && enc[0] != '[' {
		return v // a short scalar (json.Number, …)
	}
	c.capped = true
	return TruncateText(string(enc), c.text)
}

func capArray[E any](c *capper, xs []E, depth int) any {
	if xs == nil {
		return nil
	}
	n := min(len(xs), c.entries)
	out := make([]any, 0, n+1)
	for _, e := range xs[:n] {
		out = append(out, c.value(e, depth+1))
	}
	if n < len(xs) {
		c.capped = true
		out = append(out, "…"+strconv.Itoa(len(xs)-n)+" more")
	}
	return out
}

// MaxParamsBytes bounds the encoded requestParameters and responseElements
// of an authenticated event, as CloudTrail bounds them (100 KB). A larger
// one is replaced by its size and SHA-256 under [KeyOmitted], and
// additionalEventData says so: the call is on record, its bulk is not (a
// 1 MiB SimulateCustomPolicy would otherwise exceed the journal's event
// limit and leave no record at all).
const MaxParamsBytes = 100 << 10

// KeyParamsOmitted (additionalEventData) lists what capParams replaced.
const KeyParamsOmitted = "parametersOmitted"

// capParams applies [MaxParamsBytes]. It encodes a map only when its text
// could exceed the bound, so ordinary events pay a walk over their
// strings, not a second encoding.
func capParams(ev *Event) error {
	var omitted []string
	for _, f := range []struct {
		name string
		m    *map[string]any
	}{{"requestParameters", &ev.RequestParameters}, {"responseElements", &ev.ResponseElements}} {
		if *f.m == nil || roughSize(*f.m, MaxParamsBytes/6) <= MaxParamsBytes/6 {
			continue // even escaped at 6 bytes a byte it fits
		}
		enc, err := appendObject(nil, *f.m)
		if err != nil {
			return err
		}
		if len(enc) <= MaxParamsBytes {
			continue
		}
		sum := sha256.Sum256(enc)
		*f.m = map[string]any{KeyOmitted: map[string]any{"bytes": len(enc), "sha256": hex.EncodeToString(sum[:])}}
		omitted = append(omitted, f.name)
	}
	if len(omitted) > 0 {
		add := make(map[string]any, len(ev.AdditionalEventData)+1)
		for k, v := range ev.AdditionalEventData {
			add[k] = v // a copy: the map may be the caller's
		}
		add[KeyParamsOmitted] = omitted
		ev.AdditionalEventData = add
	}
	return nil
}

// roughSize adds up the lengths of the keys and strings of v, stopping
// once it passes limit; other values count a few bytes.
func roughSize(v any, limit int) int {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case string:
			n += len(x) + 2
		case map[string]any:
			for k, e := range x {
				n += len(k) + 4
				walk(e)
			}
		case map[string]string:
			for k, e := range x {
				n += len(k) + len(e) + 6
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case []string:
			for _, e := range x {
				n += len(e) + 3
			}
		case []map[string]any:
			for _, e := range x {
				walk(e)
			}
		default:
			n += 24 // numbers, bools, and what the encoder writes as text
		}
	}
	walk(v)
	return n
}
