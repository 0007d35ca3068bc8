package query

import (
	"math"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

func compileCall(x *callExpr, st *symtab) evalFn {
	if x.fn == "bin" {
		p := x.args[0].(*periodExpr).p
		ts := st.slot("@timestamp")
		return func(e *env) Value { return floorTime(e.slots[ts], p, false) }
	}
	if x.fn == "datefloor" || x.fn == "dateceil" {
		f := compileExpr(x.args[0], st)
		p := x.args[1].(*periodExpr).p
		ceil := x.fn == "dateceil"
		return func(e *env) Value { return floorTime(f(e), p, ceil) }
	}
	args := make([]evalFn, len(x.args))
	for i, a := range x.args {
		args[i] = compileExpr(a, st)
	}
	a0 := args[0]
	switch x.fn {
	case "ispresent":
		return func(e *env) Value { return boolVal(a0(e).k != kNull) }
	case "isempty":
		return func(e *env) Value { v := a0(e); return boolVal(v.k == kNull || v.text() == "") }
	case "isblank":
		return func(e *env) Value {
			v := a0(e)
			return boolVal(v.k == kNull || strings.TrimSpace(v.text()) == "")
		}
	case "coalesce":
		return func(e *env) Value {
			for _, a := range args {
				if v := a(e); v.k != kNull {
					return v
				}
			}
			return Value{}
		}
	case "strlen":
		return str1(a0, func(s string) Value { return numVal(float64(utf8.RuneCountInString(s))) })
	case "tolower":
		return str1(a0, func(s string) Value { return strVal(strings.ToLower(s)) })
	case "toupper":
		return str1(a0, func(s string) Value { return strVal(strings.ToUpper(s)) })
	case "concat":
		return func(e *env) Value {
			var b strings.Builder
			for _, a := range args {
				b.WriteString(a(e).text())
			}
			return strVal(b.String())
		}
	case "substr":
		return func(e *env) Value {
			v := a0(e)
			if v.k == kNull {
				return Value{}
			}
			r := []rune(v.text())
			startF, ok := args[1](e).num()
			if !ok {
				return Value{}
			}
			start := int(math.Max(0, math.Min(float64(len(r)), startF)))
			end := len(r)
			if len(args) == 3 {
				n, ok := args[2](e).num()
				if !ok {
					return Value{}
				}
				end = int(math.Max(float64(start), math.Min(float64(len(r)), float64(start)+n)))
			}
			return strVal(string(r[start:end]))
		}
	case "replace":
		return func(e *env) Value {
			v := a0(e)
			if v.k == kNull {
				return Value{}
			}
			return strVal(strings.ReplaceAll(v.text(), args[1](e).text(), args[2](e).text()))
		}
	case "strcontains":
		return func(e *env) Value {
			v := a0(e)
			if v.k == kNull {
				return boolVal(false)
			}
			return boolVal(strings.Contains(v.text(), args[1](e).text()))
		}
	case "ltrim", "rtrim", "trim":
		fn := x.fn
		return func(e *env) Value {
			v := a0(e)
			if v.k == kNull {
				return Value{}
			}
			s := v.text()
			var cut func(rune) bool = unicode.IsSpace
			if len(args) == 2 {
				set := args[1](e).text()
				cut = func(r rune) bool { return strings.ContainsRune(set, r) }
			}
			switch fn {
			case "ltrim":
				s = strings.TrimLeftFunc(s, cut)
			case "rtrim":
				s = strings.TrimRightFunc(s, cut)
			default:
				s = strings.TrimFunc(s, cut)
			}
			return strVal(s)
		}
	case "abs":
		return num1(a0, math.Abs)
	case "ceil":
		return num1(a0, math.Ceil)
	case "floor":
		return num1(a0, math.Floor)
	case "log":
		return num1(a0, math.Log)
	case "sqrt":
		return num1(a0, math.Sqrt)
	case "greatest", "least":
		sign := 1
		if x.fn == "least" {
			sign = -1
		}
		return func(e *env) Value {
			var best Value
			for _, a := range args {
				v := a(e)
				if v.k == kNull {
					continue
				}
				if best.k == kNull {
					best = v
					continue
				}
				if c, ok := compare(v, best); ok && c*sign > 0 {
					best = v
				}
			}
			return best
		}
	case "frommillis":
		return func(e *env) Value {
			n, ok := a0(e).num()
			if !ok || math.Abs(n) > 9e15 {
				return Value{}
			}
			return timeVal(int64(n) * 1e6)
		}
	case "tomillis":
		return func(e *env) Value {
			v := a0(e)
			switch v.k {
			case kTime:
				return numVal(float64(v.t / 1e6))
			case kString:
				if ns, ok := parseTime(v.s); ok {
					return numVal(float64(ns / 1e6))
				}
			}
			return Value{}
		}
	case "isvalidip", "isvalidipv4", "isvalidipv6":
		fn := x.fn
		return func(e *env) Value {
			a, err := netip.ParseAddr(a0(e).text())
			if err != nil || a.Zone() != "" {
				return boolVal(false)
			}
			switch fn {
			case "isvalidipv4":
				return boolVal(a.Is4())
			case "isvalidipv6":
				return boolVal(a.Is6() && !a.Is4In6())
			}
			return boolVal(true)
		}
	case "isipinsubnet", "isipv4insubnet", "isipv6insubnet":
		fn := x.fn
		return func(e *env) Value {
			a, err := netip.ParseAddr(a0(e).text())
			if err != nil {
				return boolVal(false)
			}
			pfx, err := netip.ParsePrefix(args[1](e).text())
			if err != nil {
				return boolVal(false)
			}
			switch fn {
			case "isipv4insubnet":
				if !a.Is4() || !pfx.Addr().Is4() {
					return boolVal(false)
				}
			case "isipv6insubnet":
				if !a.Is6() || !pfx.Addr().Is6() {
					return boolVal(false)
				}
			}
			return boolVal(pfx.Contains(a))
		}
	}
	panic("query: unknown function " + x.fn)
}

func str1(f evalFn, g func(string) Value) evalFn {
	return func(e *env) Value {
		v := f(e)
		if v.k == kNull {
			return Value{}
		}
		return g(v.text())
	}
}

func num1(f evalFn, g func(float64) float64) evalFn {
	return func(e *env) Value {
		n, ok := f(e).num()
		if !ok {
			return Value{}
		}
		r := g(n)
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return Value{}
		}
		return numVal(r)
	}
}

// floorTime rounds a time (or a time string, or epoch ms) down, or up, to
// a multiple of p (calendar months for mo, q, y; fixed periods from the
// Unix epoch otherwise).
func floorTime(v Value, p period, ceil bool) Value {
	var ns int64
	switch v.k {
	case kTime:
		ns = v.t
	case kString:
		var ok bool
		if ns, ok = parseTime(v.s); !ok {
			return Value{}
		}
	case kNumber:
		if math.Abs(v.n) > 9e15 {
			return Value{}
		}
		ns = int64(v.n) * 1e6
	default:
		return Value{}
	}
	if p.months > 0 {
		t := time.Unix(0, ns).UTC()
		m := (t.Year()*12 + int(t.Month()) - 1) / p.months * p.months
		f := time.Date(m/12, time.Month(m%12+1), 1, 0, 0, 0, 0, time.UTC)
		if ceil && !f.Equal(t) {
			f = f.AddDate(0, p.months, 0)
		}
		return timeVal(f.UnixNano())
	}
	d := int64(p.d)
	f := ns - ((ns%d)+d)%d
	if ceil && f != ns {
		f += d
	}
	return timeVal(f)
}
