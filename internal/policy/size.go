package policy

import (
	"strconv"
	"unicode/utf8"
)

// Size quotas ("IAM and AWS STS quotas"). Sizes are counted by Size.
const (
	// MaxDocumentLength bounds every input before it is parsed: the IAM API
	// accepts policy documents of at most 131072 characters.
	MaxDocumentLength = 131072
	// TrustPolicySizeDefault is the default role trust policy quota
	// ("ACLSizePerRole"); it can be raised to TrustPolicySizeMax.
	TrustPolicySizeDefault = 2048
	// TrustPolicySizeMax is the highest documented ACLSizePerRole quota
	// (a 2026 report of 8192 is unconfirmed).
	TrustPolicySizeMax = 4096
	// ManagedPolicySizeMax limits a managed policy (and so a permissions
	// boundary).
	ManagedPolicySizeMax = 6144
	// InlineRolePolicyAggregateMax limits the sum of a role's inline
	// policies; users have 2048 and groups 5120.
	InlineRolePolicyAggregateMax  = 10240
	InlineUserPolicyAggregateMax  = 2048
	InlineGroupPolicyAggregateMax = 5120
	// SessionPolicySizeMax limits the plaintext of a session policy passed
	// to AssumeRole*.
	SessionPolicySizeMax = 2048
)

// DefaultMaxSize is the quota Parse applies to kind: the trust policy
// default, the managed policy limit for identity policies and boundaries
// (an inline policy's aggregate limit is the caller's to check, with
// Size), the session policy limit, and only MaxDocumentLength for other
// resource-based policies.
func DefaultMaxSize(kind Kind) int {
	switch kind {
	case KindTrust:
		return TrustPolicySizeDefault
	case KindIdentity, KindBoundary:
		return ManagedPolicySizeMax
	case KindSession:
		return SessionPolicySizeMax
	default:
		return MaxDocumentLength
	}
}

// Size counts a policy document as IAM does for its quotas: characters,
// not bytes, and white space is not counted ("IAM does not count white
// space when calculating the size of a policy"). White space inside JSON
// strings is part of a value and is counted. Size accepts any input,
// well-formed or not.
func Size(doc string) int {
	n := 0
	inStr, esc := false, false
	for _, r := range doc {
		switch {
		case inStr:
			n++
			switch {
			case esc:
				esc = false
			case r == '\\':
				esc = true
			case r == '"':
				inStr = false
			}
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
		default:
			n++
			if r == '"' {
				inStr = true
			}
		}
	}
	return n
}

// ValidChars reports whether doc holds only the characters IAM accepts in
// a policy document: tab, line feed, carriage return and U+0020 to U+00FF.
// IAM rejects other characters at the API layer (a ValidationError, not a
// MalformedPolicyDocument), so Parse leaves this check to its caller.
func ValidChars(doc string) bool {
	for _, r := range doc {
		if r == utf8.RuneError || !(r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r <= 0xFF) {
			return false
		}
	}
	return true
}

func tooLarge(kind Kind, size, limit int) *Error {
	e := &Error{Code: CodeLimitExceeded, Size: size, Limit: limit, Err: ErrTooLarge}
	switch {
	case limit == MaxDocumentLength && size > limit:
		e.Message = "Policy document length exceeds the maximum of " + strconv.Itoa(limit) + " characters."
	case kind == KindTrust:
		e.Message = "Cannot exceed quota for ACLSizePerRole: " + strconv.Itoa(limit)
	case kind == KindSession:
		e.Code = CodePackedPolicyTooLarge
		e.Message = "Session policy size " + strconv.Itoa(size) + " exceeds the limit of " + strconv.Itoa(limit) + " characters."
	default:
		e.Message = "Cannot exceed quota for PolicySize: " + strconv.Itoa(limit)
	}
	e.Detail = "policy size " + strconv.Itoa(size) + " characters (white space outside strings not counted) exceeds " + strconv.Itoa(limit)
	return e
}
