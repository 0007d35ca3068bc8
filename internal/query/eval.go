package query

import (
	"math"
	"strings"
	"unsafe"
)

// env is the evaluation state of one row: its slot values and order key.
type env struct {
	slots   []Value
	ts      int64 // @timestamp in Unix ns; minTS when absent
	file    int
	idx     int64
	scratch []byte // decoded strings of the current record
}

const minTS = math.MinInt64

type evalFn func(*env) Value

// symtab maps the field names of one phase to env slots.
type symtab struct {
	names []string
	index map[string]int
}

func newSymtab(names ...string) *symtab {
	s := &symtab{index: map[string]int{}}
	for _, n := range names {
		s.slot(n)
	}
	return s
}

func (s *symtab) slot(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	s.index[name] = len(s.names)
	s.names = append(s.names, name)
	return len(s.names) - 1
}

func compileExpr(e Expr, st *symtab) evalFn {
	switch x := e.(type) {
	case *litExpr:
		v := x.v
		return func(*env) Value { return v }
	case *fieldExpr:
		i := st.slot(x.name)
		return func(e *env) Value { return e.slots[i] }
	case *periodExpr:
		return func(*env) Value { return Value{} }
	case *unaryExpr:
		f := compileExpr(x.x, st)
		if x.op == "not" {
			return func(e *env) Value { return boolVal(!f(e).truthy()) }
		}
		return func(e *env) Value {
			if n, ok := f(e).num(); ok {
				return numVal(-n)
			}
			return Value{}
		}
	case *binExpr:
		return compileBin(x, st)
	case *matchExpr:
		f := compileExpr(x.x, st)
		not := x.not
		if x.re == nil {
			sub := x.sub
			return func(e *env) Value {
				v := f(e)
				if v.k == kNull {
					return boolVal(not)
				}
				return boolVal(strings.Contains(v.text(), sub) != not)
			}
		}
		re := x.re
		return func(e *env) Value {
			v := f(e)
			if v.k == kNull {
				return boolVal(not)
			}
			return boolVal(re.MatchString(v.text()) != not)
		}
	case *inExpr:
		f := compileExpr(x.x, st)
		list := make([]evalFn, len(x.list))
		for i, y := range x.list {
			list[i] = compileExpr(y, st)
		}
		not := x.not
		return func(e *env) Value {
			v := f(e)
			if v.k == kNull {
				return boolVal(not)
			}
			for _, g := range list {
				if c, ok := compare(v, g(e)); ok && c == 0 {
					return boolVal(!not)
				}
			}
			return boolVal(not)
		}
	case *callExpr:
		return compileCall(x, st)
	}
	panic("query: unknown expression")
}

func compileBin(x *binExpr, st *symtab) evalFn {
	l, r := compileExpr(x.l, st), compileExpr(x.r, st)
	switch x.op {
	case "and":
		return func(e *env) Value { return boolVal(l(e).truthy() && r(e).truthy()) }
	case "or":
		return func(e *env) Value { return boolVal(l(e).truthy() || r(e).truthy()) }
	case "=", "!=", "<", "<=", ">", ">=":
		op := x.op
		// Fast path: field = "literal" string equality.
		if lit, ok := x.r.(*litExpr); ok && lit.v.k == kString && (op == "=" || op == "!=") {
			if _, isNum := lit.v.num(); !isNum {
				if _, isTime := parseTime(lit.v.s); !isTime {
					s, eq := lit.v.s, op == "="
					return func(e *env) Value {
						v := l(e)
						if v.k == kNull {
							return boolVal(!eq)
						}
						return boolVal((v.text() == s) == eq)
					}
				}
			}
		}
		return func(e *env) Value {
			a, b := l(e), r(e)
			c, ok := compare(a, b)
			if !ok {
				// null: only != holds, and only against a non-null.
				return boolVal(op == "!=" && a.k != b.k)
			}
			switch op {
			case "=":
				return boolVal(c == 0)
			case "!=":
				return boolVal(c != 0)
			case "<":
				return boolVal(c < 0)
			case "<=":
				return boolVal(c <= 0)
			case ">":
				return boolVal(c > 0)
			}
			return boolVal(c >= 0)
		}
	}
	op := x.op
	return func(e *env) Value {
		a, ok1 := l(e).num()
		b, ok2 := r(e).num()
		if !ok1 || !ok2 {
			return Value{}
		}
		var f float64
		switch op {
		case "+":
			f = a + b
		case "-":
			f = a - b
		case "*":
			f = a * b
		case "/":
			if b == 0 {
				return Value{}
			}
			f = a / b
		case "%":
			if b == 0 {
				return Value{}
			}
			f = math.Mod(a, b)
		case "^":
			f = math.Pow(a, b)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return Value{}
		}
		return numVal(f)
	}
}

// setJSON stores a value found in a record into the given slots.
func (e *env) setJSON(slots []int, v jsonVal) {
	var val Value
	switch v.typ {
	case '"':
		b := v.b
		if v.escaped {
			start := len(e.scratch)
			var ok bool
			e.scratch, ok = unescape(b, e.scratch)
			if !ok {
				e.scratch = append(e.scratch[:start], b...)
			}
			b = e.scratch[start:]
		}
		val = Value{k: kString, s: bstr(b)}
	case 'n':
		s := bstr(v.b)
		f, err := parseFloat(s)
		if err {
			val = Value{k: kString, s: s}
		} else {
			val = Value{k: kNumber, n: f, s: s}
		}
	case 't':
		val = boolVal(true)
	case 'f':
		val = boolVal(false)
	case '{', '[':
		b := v.b
		if hasWS(b) {
			start := len(e.scratch)
			e.scratch = compactJSON(b, e.scratch)
			b = e.scratch[start:]
		}
		val = Value{k: kString, s: bstr(b)}
	}
	for _, s := range slots {
		e.slots[s] = val
	}
}

func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func hasWS(b []byte) bool {
	for _, c := range b {
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			return true
		}
	}
	return false
}

// compactJSON appends b without the whitespace outside strings.
func compactJSON(b, dst []byte) []byte {
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			dst = append(dst, c)
			if c == '\\' && i+1 < len(b) {
				i++
				dst = append(dst, b[i])
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case ' ', '\n', '\t', '\r':
			continue
		case '"':
			inStr = true
		}
		dst = append(dst, c)
	}
	return dst
}
