package policy

import (
	"encoding/base64"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// number is a parsed Numeric* operand. Plain decimals compare exactly (so
// 12-digit account ids and large counters never lose precision in a
// float64); values with an exponent fall back to float64.
type number struct {
	neg   bool
	ints  string // integer digits without leading zeros
	frac  string // fraction digits without trailing zeros
	exp   bool
	float float64
}

func parseNumber(s string) (number, bool) {
	var n number
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		n.neg = body[0] == '-'
		body = body[1:]
	}
	mant := body
	if i := strings.IndexAny(body, "eE"); i >= 0 {
		mant = body[:i]
		exp := body[i+1:]
		if exp != "" && (exp[0] == '+' || exp[0] == '-') {
			exp = exp[1:]
		}
		if exp == "" || !allDigits(exp) {
			return number{}, false
		}
		n.exp = true
	}
	ints, frac, _ := strings.Cut(mant, ".")
	if ints == "" && frac == "" || !allDigits(ints) || !allDigits(frac) {
		return number{}, false
	}
	if n.exp {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return number{}, false
		}
		n.float = f
		return n, true
	}
	n.ints = strings.TrimLeft(ints, "0")
	n.frac = strings.TrimRight(frac, "0")
	if n.ints == "" && n.frac == "" {
		n.neg = false // -0 == 0
	}
	// The float is only used when the other operand has an exponent; an
	// out-of-range plain decimal still compares exactly with its digits.
	n.float, _ = strconv.ParseFloat(s, 64)
	return n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareNumbers returns -1, 0 or +1.
func compareNumbers(a, b number) int {
	if a.exp || b.exp {
		switch {
		case a.float < b.float:
			return -1
		case a.float > b.float:
			return 1
		}
		return 0
	}
	if a.neg != b.neg {
		if a.neg {
			return -1
		}
		return 1
	}
	c := compareMagnitude(a, b)
	if a.neg {
		return -c
	}
	return c
}

func compareMagnitude(a, b number) int {
	if len(a.ints) != len(b.ints) {
		if len(a.ints) < len(b.ints) {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.ints, b.ints); c != 0 {
		return c
	}
	return strings.Compare(a.frac, b.frac) // trailing zeros were trimmed
}

// parseDate accepts what the Date* operators accept: the W3C profile of
// ISO 8601 (YYYY, YYYY-MM, YYYY-MM-DD, and with Thh:mm, Thh:mm:ss,
// Thh:mm:ss.fraction and a zone designator Z, +hh:mm, +hhmm or none = UTC;
// T and Z in either case) or epoch seconds. As in IAM's parser, a value of
// digits only is epoch seconds, so "2024" is 1970-01-01T00:33:44Z.
func parseDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if allDigits(s) {
		if len(s) > 18 {
			return time.Time{}, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	d := dateScanner{s: s}
	year, ok := d.digits(4)
	if !ok {
		return time.Time{}, false
	}
	month, day := 1, 1
	hour, minute, sec, nsec := 0, 0, 0, 0
	loc := time.UTC
	if d.eat('-') {
		if month, ok = d.digits(2); !ok {
			return time.Time{}, false
		}
		if d.eat('-') {
			if day, ok = d.digits(2); !ok {
				return time.Time{}, false
			}
			if d.eat('T') || d.eat('t') {
				if hour, ok = d.digits(2); !ok || !d.eat(':') {
					return time.Time{}, false
				}
				if minute, ok = d.digits(2); !ok {
					return time.Time{}, false
				}
				if d.eat(':') {
					if sec, ok = d.digits(2); !ok {
						return time.Time{}, false
					}
					if d.eat('.') {
						start := d.i
						for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
							d.i++
						}
						frac := d.s[start:d.i]
						if frac == "" || len(frac) > 9 {
							return time.Time{}, false
						}
						nsec, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
					}
				}
				switch {
				case d.eat('Z') || d.eat('z'):
				case d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-'):
					sign := 1
					if d.s[d.i] == '-' {
						sign = -1
					}
					d.i++
					zh, ok := d.digits(2)
					if !ok || zh > 23 {
						return time.Time{}, false
					}
					d.eat(':')
					zm := 0
					if d.i < len(d.s) {
						if zm, ok = d.digits(2); !ok || zm > 59 {
							return time.Time{}, false
						}
					}
					loc = time.FixedZone("", sign*(zh*3600+zm*60))
				}
			}
		}
	}
	if d.i != len(d.s) {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), true
}

type dateScanner struct {
	s string
	i int
}

func (d *dateScanner) eat(c byte) bool {
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *dateScanner) digits(n int) (int, bool) {
	if d.i+n > len(d.s) || !allDigits(d.s[d.i:d.i+n]) {
		return 0, false
	}
	v, _ := strconv.Atoi(d.s[d.i : d.i+n])
	d.i += n
	return v, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// parsePolicyIP parses an IpAddress operand: a CIDR, or an address that
// means /32 (IPv4) or /128 (IPv6).
func parsePolicyIP(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// parseRequestIP parses a request's aws:SourceIp-style value.
func parseRequestIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func parseBool(s string) (bool, bool) {
	switch {
	case strings.EqualFold(s, "true"):
		return true, true
	case strings.EqualFold(s, "false"):
		return false, true
	}
	return false, false
}

// decodeBinary decodes a base64 operand (standard alphabet, padded or not).
// buf is scratch space that lets small values decode without allocating.
func decodeBinary(s string, buf []byte) ([]byte, bool) {
	enc := base64.StdEncoding
	if len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	n := enc.DecodedLen(len(s))
	if n > len(buf) {
		buf = make([]byte, n)
	}
	m, err := enc.Decode(buf[:n], []byte(s))
	if err != nil {
		return nil, false
	}
	return buf[:m], true
}
