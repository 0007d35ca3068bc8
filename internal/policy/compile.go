package policy

import (
	"net/netip"
	"strings"
	"time"
)

// The compiled form is built once by Parse. Evaluation reads it without
// allocating: keys are pre-folded, patterns pre-split, and typed operands
// (numbers, dates, CIDRs, base64) pre-decoded.

type compiledPolicy struct {
	stmts []cstmt
	// keys[i] are the folded keys of stmts[i].keys with their hashes, for
	// the simulator's MissingContextValues (kept out of cstmt, which the
	// evaluator walks).
	keys [][]keyRef
}

// keyRef is a folded context key with its keyHash.
type keyRef struct {
	fold string
	hash uint32
}

type cstmt struct {
	deny      bool
	prin      *cprincipals // nil: no Principal/NotPrincipal element
	notPrin   bool
	actions   []glob
	notAction bool
	res       []arnPattern // nil with hasRes false: every resource
	notRes    bool
	hasRes    bool
	conds     []ccond
	keys      []string // condition and variable keys referenced, for MissingContextValues
}

type cprincipals struct {
	wildcard  bool     // "Principal": "*"
	awsAny    bool     // {"AWS": "*"}
	awsARNs   []string // users, roles, sessions
	accounts  []string // 12-digit accounts (bare ids and :root ARNs)
	federated []string
	service   []string
	canonical []string
}

type ccond struct {
	op      opInfo
	key     string // folded
	keyHash uint32
	rawKey  string
	rawOp   string
	values  []string // as written
	vals    []cval
}

// cval is one policy value of a condition, decoded for its operator.
type cval struct {
	g    glob      // string operators: literal (Equals) or wildcard (Like) tokens
	fold string    // StringEqualsIgnoreCase without variables
	num  number    // Numeric*
	t    time.Time // Date*
	ip   netip.Prefix
	bin  []byte
	b    bool // Bool, Null
	bvar bool // Bool with a variable: g holds the tokens
	// arn is set for the Arn* operators only: an arnPattern is 750 bytes,
	// which every value of a long condition list would otherwise carry.
	arn *arnPattern
}

func compilePolicy(p *Policy) compiledPolicy {
	vars := p.VariablesEnabled()
	cp := compiledPolicy{stmts: make([]cstmt, len(p.Statements)), keys: make([][]keyRef, len(p.Statements))}
	for i := range p.Statements {
		cp.stmts[i] = compileStatement(&p.Statements[i], vars)
		if ks := cp.stmts[i].keys; len(ks) > 0 {
			cp.keys[i] = make([]keyRef, len(ks))
			for j, k := range ks {
				fk := foldKey(k)
				cp.keys[i][j] = keyRef{fold: fk, hash: keyHash(fk)}
			}
		}
	}
	return cp
}

func compileStatement(st *Statement, vars bool) cstmt {
	c := cstmt{deny: st.Effect == Deny}
	switch {
	case st.Principal != nil:
		c.prin = compilePrincipals(st.Principal)
	case st.NotPrincipal != nil:
		c.prin = compilePrincipals(st.NotPrincipal)
		c.notPrin = true
	}
	acts := st.Action
	if len(st.NotAction) > 0 {
		acts, c.notAction = st.NotAction, true
	}
	c.actions = make([]glob, len(acts))
	for i, a := range acts {
		c.actions[i] = compileGlob(a, true, false, true)
	}
	res := st.Resource
	if st.NotResource != nil {
		res, c.notRes = st.NotResource, true
	}
	if res != nil {
		c.hasRes = true
		c.res = make([]arnPattern, len(res))
		for i, r := range res {
			c.res[i] = compileARN(r, vars, false)
		}
	}
	c.conds = make([]ccond, 0, len(st.Condition))
	for _, cd := range st.Condition {
		c.conds = append(c.conds, compileCondition(cd, vars))
	}
	c.keys = statementKeys(&c)
	return c
}

// statementKeys lists the keys a statement reads: condition keys and the
// keys of variables in its resources and condition values. Folded
// duplicates are dropped; the first spelling wins.
func statementKeys(c *cstmt) []string {
	var keys []string
	seen := map[string]bool{}
	add := func(raw string) {
		if fk := foldKey(raw); !seen[fk] {
			seen[fk] = true
			keys = append(keys, raw)
		}
	}
	for i := range c.res {
		c.res[i].forEachVar(func(t *tok) { add(t.raw) })
	}
	for i := range c.conds {
		cd := &c.conds[i]
		add(cd.rawKey)
		for j := range cd.vals {
			for _, t := range cd.vals[j].g.toks {
				if t.kind == tokVar {
					add(t.raw)
				}
			}
			if a := cd.vals[j].arn; a != nil {
				a.forEachVar(func(t *tok) { add(t.raw) })
			}
		}
	}
	return keys
}

func compilePrincipals(p *Principals) *cprincipals {
	c := &cprincipals{wildcard: p.Wildcard}
	for _, a := range p.AWS {
		switch {
		case a == "*":
			c.awsAny = true
		case isAccountID(a):
			c.accounts = append(c.accounts, a)
		default:
			if acct, ok := rootARNAccount(a); ok {
				c.accounts = append(c.accounts, acct)
			} else {
				c.awsARNs = append(c.awsARNs, a)
			}
		}
	}
	c.federated = append(c.federated, p.Federated...)
	c.service = append(c.service, p.Service...)
	c.canonical = append(c.canonical, p.CanonicalUser...)
	return c
}

func isAccountID(s string) bool { return len(s) == 12 && allDigits(s) }

// rootARNAccount returns ACCT for arn:<partition>:iam::ACCT:root.
func rootARNAccount(s string) (string, bool) {
	parts, ok := splitARN(s, false)
	if !ok || parts[0] != "arn" || parts[2] != "iam" || parts[3] != "" || parts[5] != "root" || !isAccountID(parts[4]) {
		return "", false
	}
	return parts[4], true
}

func compileCondition(cd Condition, vars bool) ccond {
	oi, _ := parseOperator(cd.Operator) // validated by Parse
	fk := foldKey(cd.Key)
	c := ccond{op: oi, key: fk, keyHash: keyHash(fk), rawKey: cd.Key, rawOp: cd.Operator, values: cd.Values}
	useVars := vars && oi.base.vars
	c.vals = make([]cval, len(cd.Values))
	for i, v := range cd.Values {
		cv := &c.vals[i]
		switch oi.base.fam {
		case famString:
			switch oi.base.cmp {
			case cmpLike:
				cv.g = compileGlob(v, true, useVars, false)
			case cmpEqFold:
				cv.g = compileGlob(v, false, useVars, false)
				if cv.g.nvars == 0 {
					cv.fold = concatLits(cv.g.toks)
				}
			default:
				cv.g = compileGlob(v, false, useVars, false)
			}
		case famNumeric:
			cv.num, _ = parseNumber(v)
		case famDate:
			cv.t, _ = parseDate(v)
		case famBool:
			if b, ok := parseBool(v); ok {
				cv.b = b
			} else {
				cv.g = compileGlob(v, false, useVars, false)
				cv.bvar = true
			}
		case famBinary:
			cv.bin, _ = decodeBinary(v, nil)
		case famIP:
			cv.ip, _ = parsePolicyIP(v)
		case famARN:
			a := compileARN(v, useVars, true)
			cv.arn = &a
		case famNull:
			cv.b, _ = parseBool(v)
		}
	}
	return c
}

func concatLits(toks []tok) string {
	var b strings.Builder
	for _, t := range toks {
		b.WriteString(t.s)
	}
	return b.String()
}
