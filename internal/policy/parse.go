package policy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Options adjusts Parse.
type Options struct {
	// MaxSize is the size quota checked with Size; 0 means
	// DefaultMaxSize(kind) and a negative value disables the quota check
	// (MaxDocumentLength still bounds the input).
	MaxSize int
	// RequireVersion2012 rejects documents whose Version is not 2012-10-17,
	// as IAM's CreatePolicy and CreatePolicyVersion do ("Policy document
	// must be version 2012-10-17 or greater.").
	RequireVersion2012 bool
}

// Parse parses, validates and compiles a policy document of the given kind
// with the kind's default size quota. Every failure is an *Error whose
// cause is ErrMalformed or ErrTooLarge. Parse never panics, and its time
// and memory are bounded by MaxDocumentLength.
func Parse(doc string, kind Kind) (*Policy, error) {
	return ParseWithOptions(doc, kind, Options{})
}

// MustParse is Parse for documents known to be valid (tests, built-in
// policies); it panics on error.
func MustParse(doc string, kind Kind) *Policy {
	p, err := Parse(doc, kind)
	if err != nil {
		panic(err)
	}
	return p
}

// ParseWithOptions is Parse with options.
func ParseWithOptions(doc string, kind Kind, opts Options) (*Policy, error) {
	if !kind.valid() {
		return nil, &Error{Code: CodeInvalidInput, Message: "unknown policy kind " + strconv.Itoa(int(kind)), Err: ErrInvalidInput}
	}
	// Bound the work before anything else: at most 4 bytes per character.
	if len(doc) > 4*MaxDocumentLength {
		return nil, tooLarge(kind, len(doc), MaxDocumentLength)
	}
	if n := utf8.RuneCountInString(doc); n > MaxDocumentLength {
		return nil, tooLarge(kind, n, MaxDocumentLength)
	}
	limit := opts.MaxSize
	if limit == 0 {
		limit = DefaultMaxSize(kind)
	}
	if limit > 0 {
		if n := Size(doc); n > limit {
			return nil, tooLarge(kind, n, limit)
		}
	}
	root, jerr := parseJSON(doc)
	if jerr != nil {
		return nil, jerr
	}
	p := &Policy{Kind: kind}
	if err := buildPolicy(p, root); err != nil {
		return nil, err
	}
	if opts.RequireVersion2012 && p.Version != Version2012 {
		return nil, malformed(msgVersion2012, "Version is "+strconv.Quote(p.Version)+", not \"2012-10-17\"", root.start, "Version")
	}
	p.c = compilePolicy(p)
	return p, nil
}

// builder turns the JSON tree into a Policy, validating as it goes.
type builder struct {
	kind Kind
	vars bool
}

func syntaxErr(detail string, n *jnode, path string) *Error {
	var at pos
	if n != nil {
		at = n.start
	}
	return malformed(msgSyntax, detail, at, path)
}

func buildPolicy(p *Policy, root *jnode) *Error {
	if root.kind != jObject {
		return syntaxErr("the policy must be a JSON object, not "+root.kind.String(), root, "")
	}
	var stmtNode *jnode
	for _, m := range root.members {
		switch m.key {
		case "Version":
			if m.val.kind != jString || m.val.str != Version2012 && m.val.str != Version2008 {
				return syntaxErr(`Version must be "2012-10-17" or "2008-10-17"`, m.val, "Version")
			}
			p.Version = m.val.str
		case "Id":
			if m.val.kind != jString {
				return syntaxErr("Id must be a string", m.val, "Id")
			}
			p.ID = m.val.str
		case "Statement":
			stmtNode = m.val
		default:
			return malformed(msgSyntax, "unknown top-level element "+strconv.Quote(m.key), m.keyPos, "")
		}
	}
	if stmtNode == nil {
		return syntaxErr("missing Statement", root, "")
	}
	b := &builder{kind: p.Kind, vars: p.Version == Version2012}
	var stmts []*jnode
	var paths []string
	switch stmtNode.kind {
	case jObject:
		stmts, paths = []*jnode{stmtNode}, []string{"Statement"}
	case jArray:
		if len(stmtNode.elems) == 0 {
			return syntaxErr("Statement must not be empty", stmtNode, "Statement")
		}
		for i, e := range stmtNode.elems {
			stmts = append(stmts, e)
			paths = append(paths, "Statement["+strconv.Itoa(i)+"]")
		}
	default:
		return syntaxErr("Statement must be an object or an array of objects", stmtNode, "Statement")
	}
	sids := map[string]bool{}
	p.Statements = make([]Statement, 0, len(stmts))
	for i, n := range stmts {
		st, err := b.statement(n, paths[i])
		if err != nil {
			return err
		}
		if st.Sid != "" {
			if sids[st.Sid] {
				return malformed(msgSidUnique, "duplicate Sid "+strconv.Quote(st.Sid), n.start, paths[i]+".Sid")
			}
			sids[st.Sid] = true
		}
		p.Statements = append(p.Statements, st)
	}
	return nil
}

func (b *builder) statement(n *jnode, path string) (Statement, *Error) {
	st := Statement{Start: n.start, End: n.end}
	if n.kind != jObject {
		return st, syntaxErr("a statement must be an object, not "+n.kind.String(), n, path)
	}
	var el struct {
		sid, effect, prin, notPrin, act, notAct, res, notRes, cond *jnode
	}
	for _, m := range n.members {
		var slot **jnode
		switch m.key {
		case "Sid":
			slot = &el.sid
		case "Effect":
			slot = &el.effect
		case "Principal":
			slot = &el.prin
		case "NotPrincipal":
			slot = &el.notPrin
		case "Action":
			slot = &el.act
		case "NotAction":
			slot = &el.notAct
		case "Resource":
			slot = &el.res
		case "NotResource":
			slot = &el.notRes
		case "Condition":
			slot = &el.cond
		default:
			// Element names are case-sensitive: "effect" is unknown.
			return st, malformed(msgSyntax, "unknown statement element "+strconv.Quote(m.key), m.keyPos, path)
		}
		*slot = m.val
	}
	var err *Error
	// Types first, as IAM's syntax check does.
	if el.sid != nil {
		if el.sid.kind != jString {
			return st, syntaxErr("Sid must be a string", el.sid, path+".Sid")
		}
		st.Sid = el.sid.str
	}
	if el.act != nil && el.notAct != nil {
		return st, syntaxErr("a statement cannot have both Action and NotAction", el.notAct, path)
	}
	if el.res != nil && el.notRes != nil {
		return st, syntaxErr("a statement cannot have both Resource and NotResource", el.notRes, path)
	}
	if el.prin != nil && el.notPrin != nil {
		return st, syntaxErr("a statement cannot have both Principal and NotPrincipal", el.notPrin, path)
	}
	if st.Action, err = stringList(el.act, path+".Action"); err != nil {
		return st, err
	}
	if st.NotAction, err = stringList(el.notAct, path+".NotAction"); err != nil {
		return st, err
	}
	if st.Resource, err = stringList(el.res, path+".Resource"); err != nil {
		return st, err
	}
	if st.NotResource, err = stringList(el.notRes, path+".NotResource"); err != nil {
		return st, err
	}

	// Effect.
	if el.effect == nil {
		return st, malformed(msgMissingEffect, "the statement has no Effect", n.start, path)
	}
	if el.effect.kind != jString {
		return st, syntaxErr("Effect must be a string", el.effect, path+".Effect")
	}
	switch e := el.effect.str; {
	case e == "Allow":
		st.Effect = Allow
	case e == "Deny":
		st.Effect = Deny
	case strings.EqualFold(e, "Allow") || strings.EqualFold(e, "Deny"):
		// IAM's syntax check accepts any case, its legacy parser does not.
		return st, malformed(msgLegacy, "Effect is case-sensitive: "+strconv.Quote(e), el.effect.start, path+".Effect")
	default:
		return st, syntaxErr(`Effect must be "Allow" or "Deny", not `+strconv.Quote(e), el.effect, path+".Effect")
	}

	// Actions.
	if len(st.Action) == 0 && len(st.NotAction) == 0 {
		return st, malformed(msgNeedActions, "the statement has no Action or NotAction, or it is empty", n.start, path)
	}

	// Principal and Resource rules by kind.
	switch {
	case b.kind == KindTrust:
		if el.notPrin != nil {
			return st, malformed(msgProhibitedNotPrin, "a role trust policy cannot use NotPrincipal", el.notPrin.start, path+".NotPrincipal")
		}
		if el.res != nil || el.notRes != nil {
			at := el.res
			if at == nil {
				at = el.notRes
			}
			return st, malformed(msgProhibitedResource, "a role trust policy cannot have Resource or NotResource", at.start, path)
		}
		if el.prin == nil {
			return st, malformed(msgMissingPrincipal, "a role trust policy statement needs a Principal", n.start, path)
		}
	case b.kind.identityLike():
		if el.prin != nil || el.notPrin != nil {
			at := el.prin
			if at == nil {
				at = el.notPrin
			}
			return st, malformed(msgNoPrincipal, "identity-based, session and boundary policies cannot name a principal", at.start, path)
		}
		if len(st.Resource) == 0 && len(st.NotResource) == 0 {
			return st, malformed(msgNeedResources, "the statement has no Resource or NotResource, or it is empty", n.start, path)
		}
	case b.kind == KindResource:
		if el.prin == nil && el.notPrin == nil {
			return st, malformed(msgMissingPrincipal, "a resource-based policy statement needs a Principal or NotPrincipal", n.start, path)
		}
		if len(st.Resource) == 0 && len(st.NotResource) == 0 {
			return st, malformed(msgNeedResources, "the statement has no Resource or NotResource, or it is empty", n.start, path)
		}
	}

	// Sid: IAM allows only ASCII letters and digits.
	if b.kind != KindResource {
		for i := 0; i < len(st.Sid); i++ {
			c := st.Sid[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return st, malformed(msgSidAlnum, "Sid "+strconv.Quote(st.Sid)+" has a character other than A-Z, a-z, 0-9", el.sid.start, path+".Sid")
			}
		}
	}

	if err := b.actions(&st, el.act, el.notAct, path); err != nil {
		return st, err
	}
	if err := b.resources(&st, el.res, el.notRes, path); err != nil {
		return st, err
	}
	if el.prin != nil {
		if st.Principal, err = b.principals(el.prin, path+".Principal"); err != nil {
			return st, err
		}
	}
	if el.notPrin != nil {
		if st.NotPrincipal, err = b.principals(el.notPrin, path+".NotPrincipal"); err != nil {
			return st, err
		}
	}
	if el.cond != nil {
		if st.Condition, err = b.conditions(el.cond, path+".Condition"); err != nil {
			return st, err
		}
	}
	return st, nil
}

// stringList reads a string or an array of strings. A nil node gives nil;
// an empty array gives an empty, non-nil slice.
func stringList(n *jnode, path string) ([]string, *Error) {
	if n == nil {
		return nil, nil
	}
	switch n.kind {
	case jString:
		return []string{n.str}, nil
	case jArray:
		out := make([]string, 0, len(n.elems))
		for i, e := range n.elems {
			if e.kind != jString {
				return nil, syntaxErr("expected a string, not "+e.kind.String(), e, path+"["+strconv.Itoa(i)+"]")
			}
			out = append(out, e.str)
		}
		return out, nil
	}
	return nil, syntaxErr("expected a string or an array of strings, not "+n.kind.String(), n, path)
}

// elemAt returns the node of the i-th value of a string-or-array element.
func elemAt(n *jnode, i int) *jnode {
	if n.kind == jArray && i < len(n.elems) {
		return n.elems[i]
	}
	return n
}

// trustActions are the actions a role trust policy may grant, and
// otherSTSActions the rest of STS's actions: a trust policy action pattern
// must match at least one of the former and none of the latter, so
// "sts:AssumeRole*" is accepted and "sts:*" or "*" rejected.
func trustActions() []string {
	return []string{"sts:assumerole", "sts:assumerolewithsaml", "sts:assumerolewithwebidentity",
		"sts:tagsession", "sts:setsourceidentity", "sts:setcontext"}
}

func otherSTSActions() []string {
	return []string{"sts:assumeroot", "sts:decodeauthorizationmessage", "sts:getaccesskeyinfo",
		"sts:getcalleridentity", "sts:getdelegatedaccesstoken", "sts:getfederationtoken",
		"sts:getservicebearertoken", "sts:getsessiontoken", "sts:getwebidentitytoken"}
}

func (b *builder) actions(st *Statement, act, notAct *jnode, path string) *Error {
	list, node, elem := st.Action, act, ".Action"
	if len(st.NotAction) > 0 {
		list, node, elem = st.NotAction, notAct, ".NotAction"
	}
	for i, a := range list {
		at := elemAt(node, i)
		p := path + elem
		if node.kind == jArray {
			p += "[" + strconv.Itoa(i) + "]"
		}
		if a != "*" {
			vendor, _, ok := strings.Cut(a, ":")
			if !ok || vendor == "" {
				return malformed(msgActionVendor, "action "+strconv.Quote(a)+" has no service prefix", at.start, p)
			}
			if strings.Count(a, ":") > 1 {
				return malformed(msgActionColon, "action "+strconv.Quote(a)+" has more than one colon", at.start, p)
			}
			if vendor != "*" {
				for j := 0; j < len(vendor); j++ {
					c := vendor[j]
					if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
						return malformed("Vendor "+vendor+" is not valid", "service prefix "+strconv.Quote(vendor)+" has a character other than letters, digits, '-' and '.'", at.start, p)
					}
				}
			}
		}
		if b.kind == KindTrust {
			if len(st.NotAction) > 0 {
				return malformed(msgTrustActions, "a role trust policy cannot use NotAction", at.start, path+".NotAction")
			}
			g := compileGlob(a, true, false, true)
			granted := false
			for _, t := range trustActions() {
				granted = granted || g.match(t, nil)
			}
			for _, o := range otherSTSActions() {
				if g.match(o, nil) {
					granted = false
					break
				}
			}
			if !granted {
				return malformed(msgTrustActions, "action "+strconv.Quote(a)+" is not limited to sts:AssumeRole, sts:AssumeRoleWithSAML, sts:AssumeRoleWithWebIdentity, sts:TagSession, sts:SetSourceIdentity or sts:SetContext", at.start, p)
			}
		}
	}
	return nil
}

// partitions are the AWS partition names accepted in a Resource ARN.
func validPartition(p string) bool {
	switch p {
	case "*", "aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc":
		return true
	}
	return false
}

func (b *builder) resources(st *Statement, res, notRes *jnode, path string) *Error {
	list, node, elem := st.Resource, res, ".Resource"
	if notRes != nil {
		list, node, elem = st.NotResource, notRes, ".NotResource"
	}
	for i, r := range list {
		at := elemAt(node, i)
		p := path + elem
		if node.kind == jArray {
			p += "[" + strconv.Itoa(i) + "]"
		}
		if r == "*" {
			continue
		}
		parts := strings.SplitN(r, ":", 3)
		if len(parts) < 2 {
			return malformed("Resource "+r+` must be in ARN format or "*".`, "", at.start, p)
		}
		if !validPartition(parts[1]) {
			return malformed(`Partition "`+parts[1]+`" is not valid for resource "`+r+`".`, "", at.start, p)
		}
		if len(parts) < 3 {
			return malformed(msgResourceVendor, "resource "+strconv.Quote(r)+" has no service", at.start, p)
		}
		// "You can't use a wildcard in the service segment."
		service := strings.SplitN(parts[2], ":", 2)[0]
		if strings.ContainsAny(service, "*?") {
			return malformed(msgResourceVendor, "resource "+strconv.Quote(r)+" has a wildcard in its service", at.start, p)
		}
		// IAM's legacy parser: an ARN with "::" needs all six parts, and the
		// service may not be empty.
		if strings.Contains(r, "::") && strings.Count(r, ":") < 5 || service == "" {
			return malformed(msgLegacy, "resource "+strconv.Quote(r)+" is not a well-formed ARN", at.start, p)
		}
	}
	return nil
}

func (b *builder) principals(n *jnode, path string) (*Principals, *Error) {
	pr := &Principals{}
	if n.kind == jString {
		if n.str != "*" {
			return nil, malformed("Invalid principal in policy: "+strconv.Quote(n.str), `a string Principal must be "*"`, n.start, path)
		}
		pr.Wildcard = true
		return pr, nil
	}
	if n.kind != jObject {
		return nil, syntaxErr("Principal must be \"*\" or an object, not "+n.kind.String(), n, path)
	}
	if len(n.members) == 0 {
		return nil, malformed("Invalid principal in policy: {}", "the Principal object is empty", n.start, path)
	}
	for _, m := range n.members {
		p := path + keySeg(m.key)
		vals, err := stringList(m.val, p)
		if err != nil {
			return nil, err
		}
		if len(vals) == 0 {
			return nil, malformed("Invalid principal in policy: "+strconv.Quote(m.key)+":[]", "the principal list is empty", m.val.start, p)
		}
		for i, v := range vals {
			at := elemAt(m.val, i)
			if !validPrincipal(m.key, v) {
				msg := "Invalid principal in policy: " + strconv.Quote(m.key) + ":" + strconv.Quote(v)
				if m.key == "Federated" {
					msg = msgFederated
				}
				return nil, malformed(msg, "invalid "+m.key+" principal "+strconv.Quote(v), at.start, p)
			}
		}
		switch m.key {
		case "AWS":
			pr.AWS = vals
		case "Federated":
			pr.Federated = vals
		case "Service":
			pr.Service = vals
		case "CanonicalUser":
			pr.CanonicalUser = vals
		default:
			return nil, malformed(msgSyntax, "unknown principal type "+strconv.Quote(m.key)+` (expected "AWS", "Federated", "Service" or "CanonicalUser")`, m.keyPos, path)
		}
	}
	return pr, nil
}

// validPrincipal checks one principal value. Wildcards never match part of
// a principal ("You cannot use a wildcard to match part of a principal
// name or ARN"); only {"AWS": "*"} is a wildcard.
func validPrincipal(typ, v string) bool {
	if v == "" || strings.ContainsAny(v, "*? \t\r\n") {
		return typ == "AWS" && v == "*"
	}
	switch typ {
	case "AWS":
		if isAccountID(v) || isUniqueID(v) {
			return true
		}
		parts, ok := splitARN(v, false)
		if !ok || parts[0] != "arn" || !validPartition(parts[1]) || parts[1] == "*" || parts[3] != "" || !isAccountID(parts[4]) {
			return false
		}
		switch parts[2] {
		case "iam":
			return parts[5] == "root" || strings.HasPrefix(parts[5], "user/") || strings.HasPrefix(parts[5], "role/")
		case "sts":
			return strings.HasPrefix(parts[5], "assumed-role/") || strings.HasPrefix(parts[5], "federated-user/")
		}
		return false
	case "Federated":
		if parts, ok := splitARN(v, false); ok {
			return parts[0] == "arn" && validPartition(parts[1]) && parts[1] != "*" && parts[2] == "iam" &&
				parts[3] == "" && isAccountID(parts[4]) &&
				(strings.HasPrefix(parts[5], "oidc-provider/") && len(parts[5]) > len("oidc-provider/") ||
					strings.HasPrefix(parts[5], "saml-provider/") && len(parts[5]) > len("saml-provider/"))
		}
		return isHostName(v)
	case "Service":
		return isHostName(v)
	case "CanonicalUser":
		return true
	}
	return true // unknown types are reported by the caller
}

// isUniqueID recognises IAM unique ids (AIDA…, AROA…), which IAM stores in
// place of a deleted user's or role's ARN.
func isUniqueID(s string) bool {
	if len(s) < 16 || len(s) > 128 || !(strings.HasPrefix(s, "AIDA") || strings.HasPrefix(s, "AROA")) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isHostName(s string) bool {
	if !strings.Contains(s, ".") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (b *builder) conditions(n *jnode, path string) ([]Condition, *Error) {
	if n.kind != jObject {
		return nil, syntaxErr("Condition must be an object, not "+n.kind.String(), n, path)
	}
	var out []Condition
	for _, om := range n.members {
		opPath := path + keySeg(om.key)
		oi, ok := parseOperator(om.key)
		if !ok {
			return nil, malformed(msgSyntax, "unknown condition operator "+strconv.Quote(om.key), om.keyPos, path)
		}
		if om.val.kind != jObject {
			return nil, syntaxErr("a condition operator's value must be an object of keys, not "+om.val.kind.String(), om.val, opPath)
		}
		for _, km := range om.val.members {
			keyPath := opPath + keySeg(km.key)
			if km.key == "" {
				return nil, malformed(msgSyntax, "empty condition key", km.keyPos, opPath)
			}
			vals, err := conditionValues(km.val, keyPath)
			if err != nil {
				return nil, err
			}
			for i, v := range vals {
				if err := b.checkValue(oi, v, elemAt(km.val, i), keyPath); err != nil {
					return nil, err
				}
			}
			out = append(out, Condition{Operator: om.key, Key: km.key, Values: vals})
		}
	}
	return out, nil
}

// conditionValues reads a scalar or an array of scalars (string, number,
// boolean); nulls, objects and nested arrays are syntax errors.
func conditionValues(n *jnode, path string) ([]string, *Error) {
	scalar := func(e *jnode, p string) (string, *Error) {
		switch e.kind {
		case jString, jNumber, jBool:
			return e.str, nil
		}
		return "", syntaxErr("a condition value must be a string, number or boolean, not "+e.kind.String(), e, p)
	}
	if n.kind == jArray {
		out := make([]string, 0, len(n.elems))
		for i, e := range n.elems {
			s, err := scalar(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := scalar(n, path)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// checkValue validates a value for its operator's type. IAM rejects
// malformed dates with its legacy-parsing message; the other typed
// operators get the syntax message.
func (b *builder) checkValue(oi opInfo, v string, at *jnode, path string) *Error {
	bad := func(msg, what string) *Error {
		return malformed(msg, strconv.Quote(v)+" is not "+what+" (operator "+oi.base.name+")", at.start, path)
	}
	switch oi.base.fam {
	case famNumeric:
		if _, ok := parseNumber(v); !ok {
			return bad(msgSyntax, "a number")
		}
	case famDate:
		if _, ok := parseDate(v); !ok {
			return bad(msgLegacy, "an ISO 8601 date or epoch seconds")
		}
	case famBool:
		if _, ok := parseBool(v); !ok && !(b.vars && strings.Contains(v, "${")) {
			return bad(msgSyntax, `"true" or "false"`)
		}
	case famBinary:
		if _, ok := decodeBinary(v, nil); !ok {
			return bad(msgSyntax, "base64")
		}
	case famIP:
		if _, ok := parsePolicyIP(v); !ok {
			return bad(msgSyntax, "an IP address or CIDR block")
		}
	case famNull:
		if _, ok := parseBool(v); !ok {
			return bad(msgSyntax, `"true" or "false"`)
		}
	}
	return nil
}
