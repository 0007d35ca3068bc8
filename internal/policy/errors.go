package policy

import (
	"errors"
	"strconv"
	"strings"
)

// AWS error codes carried by *Error. Callers map them to their own AWS error
// type; the values are AWS's exact codes.
const (
	CodeMalformedPolicyDocument = "MalformedPolicyDocument"
	CodeLimitExceeded           = "LimitExceeded"
	CodePackedPolicyTooLarge    = "PackedPolicyTooLarge"
	CodeInvalidInput            = "InvalidInput"
)

// Sentinel causes, matched with errors.Is.
var (
	// ErrMalformed is the cause of every grammar or validation failure.
	ErrMalformed = errors.New("policy: malformed policy document")
	// ErrTooLarge is the cause when a document exceeds its size quota (or the
	// hard input bound); callers map it to LimitExceeded or
	// PackedPolicyTooLarge.
	ErrTooLarge = errors.New("policy: policy document too large")
	// ErrInvalidInput is the cause of a rejected simulator input (a context
	// entry whose value does not fit its declared type, for example).
	ErrInvalidInput = errors.New("policy: invalid simulation input")
)

// AWS's MalformedPolicyDocument messages. The wording is AWS's where it is
// known (observed error responses quoted in public issues, and moto, which
// reproduces them); Detail on *Error says precisely what was wrong.
const (
	msgSyntax             = "Syntax errors in policy."
	msgLegacy             = "The policy failed legacy parsing"
	msgMissingEffect      = "Missing required field Effect"
	msgMissingPrincipal   = "Missing required field Principal"
	msgNoPrincipal        = "Policy document should not specify a principal."
	msgProhibitedResource = "Has prohibited field Resource"
	msgProhibitedNotPrin  = "Has prohibited field NotPrincipal"
	msgNeedActions        = "Policy statement must contain actions."
	msgNeedResources      = "Policy statement must contain resources."
	msgSidUnique          = "Statement IDs (SID) in a single policy must be unique."
	msgSidAlnum           = "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
	msgActionVendor       = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
	msgActionColon        = "Actions/Condition can contain only one colon."
	msgTrustActions       = "AssumeRole policy may only specify STS AssumeRole actions."
	msgFederated          = "Federated principals must be valid domain names or SAML metadata ARNs"
	msgResourceVendor     = "Resource vendor must be fully qualified and cannot contain regexes."
	msgVersion2012        = "Policy document must be version 2012-10-17 or greater."
)

// Error is a rejected policy document (or simulator input). Code and Message
// are what an AWS client may read; Detail, Path, Line and Column locate the
// problem for humans and never contain secrets (a policy document holds
// none).
type Error struct {
	Code    string // AWS error code, e.g. MalformedPolicyDocument
	Message string // AWS-style message, e.g. "Syntax errors in policy."
	Detail  string // what exactly is wrong, e.g. `duplicate key "Effect"`
	Path    string // location in the document, e.g. Statement[1].Condition.StringLike
	Line    int    // 1-based; 0 when not applicable
	Column  int    // 1-based, in characters; 0 when not applicable
	Size    int    // for ErrTooLarge: the counted size
	Limit   int    // for ErrTooLarge: the limit that was exceeded
	Err     error  // ErrMalformed, ErrTooLarge or ErrInvalidInput
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Detail != "" || e.Path != "" || e.Line > 0 {
		b.WriteString(" (")
		sep := ""
		if e.Detail != "" {
			b.WriteString(e.Detail)
			sep = " "
		}
		if e.Line > 0 {
			b.WriteString(sep + "at line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column))
			sep = ", "
		}
		if e.Path != "" {
			if sep == " " {
				sep = " at "
			}
			b.WriteString(sep + e.Path)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinel cause.
func (e *Error) Unwrap() error { return e.Err }

func malformed(msg, detail string, at pos, path string) *Error {
	return &Error{
		Code:    CodeMalformedPolicyDocument,
		Message: msg,
		Detail:  detail,
		Path:    path,
		Line:    at.Line,
		Column:  at.Column,
		Err:     ErrMalformed,
	}
}
