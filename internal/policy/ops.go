package policy

import "strings"

// family is the type a condition operator compares.
type family uint8

const (
	famString family = iota + 1
	famNumeric
	famDate
	famBool
	famBinary
	famIP
	famARN
	famNull
)

// cmpKind is the comparison a base operator performs (before negation).
type cmpKind uint8

const (
	cmpEq cmpKind = iota + 1
	cmpEqFold
	cmpLike
	cmpLT
	cmpLE
	cmpGT
	cmpGE
)

type setQual uint8

const (
	setNone setQual = iota
	setAnyValue
	setAllValues
)

// baseOp describes a base condition operator.
type baseOp struct {
	name    string
	fam     family
	cmp     cmpKind
	negated bool // NOR over the policy's values
	vars    bool // policy variables are substituted in values (2012-10-17)
}

// opInfo is a parsed operator name such as "ForAllValues:StringLikeIfExists".
type opInfo struct {
	base     baseOp
	set      setQual
	ifExists bool
}

// parseOperator parses an operator name. Names are case-sensitive, as in
// IAM. IfExists may follow every operator but Null; the set qualifiers are
// not accepted on Null either (it tests presence, not values).
func parseOperator(name string) (opInfo, bool) {
	var oi opInfo
	rest := name
	switch {
	case strings.HasPrefix(rest, "ForAnyValue:"):
		oi.set = setAnyValue
		rest = rest[len("ForAnyValue:"):]
	case strings.HasPrefix(rest, "ForAllValues:"):
		oi.set = setAllValues
		rest = rest[len("ForAllValues:"):]
	}
	if b, ok := lookupBase(rest); ok {
		oi.base = b
	} else if strings.HasSuffix(rest, "IfExists") {
		b, ok := lookupBase(strings.TrimSuffix(rest, "IfExists"))
		if !ok || b.fam == famNull {
			return opInfo{}, false
		}
		oi.base = b
		oi.ifExists = true
	} else {
		return opInfo{}, false
	}
	if oi.base.fam == famNull && oi.set != setNone {
		return opInfo{}, false
	}
	return oi, true
}

// lookupBase returns the base operator named name. The list is every
// operator in "IAM JSON policy elements: Condition operators". Variables are
// substituted with the string, ARN and Boolean operators only (that page:
// "You can use a policy variable with the ... condition operator").
func lookupBase(name string) (baseOp, bool) {
	switch name {
	case "StringEquals":
		return baseOp{"StringEquals", famString, cmpEq, false, true}, true
	case "StringNotEquals":
		return baseOp{"StringNotEquals", famString, cmpEq, true, true}, true
	case "StringEqualsIgnoreCase":
		return baseOp{"StringEqualsIgnoreCase", famString, cmpEqFold, false, true}, true
	case "StringNotEqualsIgnoreCase":
		return baseOp{"StringNotEqualsIgnoreCase", famString, cmpEqFold, true, true}, true
	case "StringLike":
		return baseOp{"StringLike", famString, cmpLike, false, true}, true
	case "StringNotLike":
		return baseOp{"StringNotLike", famString, cmpLike, true, true}, true
	case "NumericEquals":
		return baseOp{"NumericEquals", famNumeric, cmpEq, false, false}, true
	case "NumericNotEquals":
		return baseOp{"NumericNotEquals", famNumeric, cmpEq, true, false}, true
	case "NumericLessThan":
		return baseOp{"NumericLessThan", famNumeric, cmpLT, false, false}, true
	case "NumericLessThanEquals":
		return baseOp{"NumericLessThanEquals", famNumeric, cmpLE, false, false}, true
	case "NumericGreaterThan":
		return baseOp{"NumericGreaterThan", famNumeric, cmpGT, false, false}, true
	case "NumericGreaterThanEquals":
		return baseOp{"NumericGreaterThanEquals", famNumeric, cmpGE, false, false}, true
	case "DateEquals":
		return baseOp{"DateEquals", famDate, cmpEq, false, false}, true
	case "DateNotEquals":
		return baseOp{"DateNotEquals", famDate, cmpEq, true, false}, true
	case "DateLessThan":
		return baseOp{"DateLessThan", famDate, cmpLT, false, false}, true
	case "DateLessThanEquals":
		return baseOp{"DateLessThanEquals", famDate, cmpLE, false, false}, true
	case "DateGreaterThan":
		return baseOp{"DateGreaterThan", famDate, cmpGT, false, false}, true
	case "DateGreaterThanEquals":
		return baseOp{"DateGreaterThanEquals", famDate, cmpGE, false, false}, true
	case "Bool":
		return baseOp{"Bool", famBool, cmpEq, false, true}, true
	case "BinaryEquals":
		return baseOp{"BinaryEquals", famBinary, cmpEq, false, false}, true
	case "IpAddress":
		return baseOp{"IpAddress", famIP, cmpEq, false, false}, true
	case "NotIpAddress":
		return baseOp{"NotIpAddress", famIP, cmpEq, true, false}, true
	case "ArnEquals":
		return baseOp{"ArnEquals", famARN, cmpLike, false, true}, true
	case "ArnLike":
		return baseOp{"ArnLike", famARN, cmpLike, false, true}, true
	case "ArnNotEquals":
		return baseOp{"ArnNotEquals", famARN, cmpLike, true, true}, true
	case "ArnNotLike":
		return baseOp{"ArnNotLike", famARN, cmpLike, true, true}, true
	case "Null":
		return baseOp{"Null", famNull, cmpEq, false, false}, true
	}
	return baseOp{}, false
}

// OperatorInfo describes a condition operator, for callers that reason
// about conditions (the linter) without re-implementing the grammar.
type OperatorInfo struct {
	Base      string // the base operator, e.g. "StringLike"
	Type      string // String, Numeric, Date, Bool, Binary, IpAddress, Arn or Null
	Negated   bool   // values are NORed, and a missing key makes it true
	IfExists  bool   // a missing key makes it true
	Set       string // "", "ForAnyValue" or "ForAllValues"
	Wildcards bool   // values are patterns with * and ?
	Variables bool   // ${...} is substituted in values (Version 2012-10-17)
}

// ParseOperator parses a condition operator name such as
// "ForAllValues:StringNotLikeIfExists". Names are case-sensitive.
func ParseOperator(name string) (OperatorInfo, bool) {
	oi, ok := parseOperator(name)
	if !ok {
		return OperatorInfo{}, false
	}
	info := OperatorInfo{
		Base:      oi.base.name,
		Negated:   oi.base.negated,
		IfExists:  oi.ifExists,
		Wildcards: oi.base.cmp == cmpLike,
		Variables: oi.base.vars,
	}
	switch oi.set {
	case setAnyValue:
		info.Set = "ForAnyValue"
	case setAllValues:
		info.Set = "ForAllValues"
	}
	switch oi.base.fam {
	case famString:
		info.Type = "String"
	case famNumeric:
		info.Type = "Numeric"
	case famDate:
		info.Type = "Date"
	case famBool:
		info.Type = "Bool"
	case famBinary:
		info.Type = "Binary"
	case famIP:
		info.Type = "IpAddress"
	case famARN:
		info.Type = "Arn"
	case famNull:
		info.Type = "Null"
	}
	return info, true
}
