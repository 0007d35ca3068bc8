package server

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/keylessci/keyless/internal/awsquery"
	"github.com/keylessci/keyless/internal/iam"
)

// policyValidator adapts the policy engine to the IAM service.
// TODO(policy): replaced by internal/policy when it lands.
type policyValidator struct{}

func (policyValidator) Validate(doc string, kind iam.PolicyKind) error {
	if !json.Valid([]byte(doc)) {
		return awsquery.NewError(awsquery.CodeMalformedPolicyDocument, "Syntax errors in policy.")
	}
	return nil
}

func (policyValidator) Size(doc string) int {
	n := 0
	for _, r := range doc {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	_ = strings.TrimSpace
	return n
}
