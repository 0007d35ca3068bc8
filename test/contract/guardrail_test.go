package contract

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestSharedIssuerControls: with its default configuration keyless refuses,
// at CreateRole, exactly the sample's trust policies AWS's identity-provider
// controls for shared OIDC issuers refuse (aws_write_guardrail), and accepts
// the others.
func TestSharedIssuerControls(t *testing.T) {
	t.Parallel()
	cases := loadTrustCases(t, "testdata/trust-cases-sample.json")
	s := startServerAccount(t, "", "111122223333")
	c := s.iamClient(adminKeyID, adminSecret, "")
	ctx := context.Background()
	n := 0
	for _, tc := range cases {
		if tc.Category != "trust_policy" || string(tc.Policy) == "null" || tc.WriteGuardrail == "" {
			continue
		}
		n++
		t.Run(tc.ID, func(t *testing.T) {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("g-" + tc.ID), AssumeRolePolicyDocument: aws.String(string(tc.Policy))})
			if strings.HasPrefix(tc.WriteGuardrail, "reject") {
				wantCode(t, err, "MalformedPolicyDocument")
				if !strings.Contains(err.Error(), "which is not scoped to all") {
					t.Errorf("message = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("accepted by AWS's control (%s), refused here: %v", tc.WriteGuardrail, err)
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d cases carry a guardrail verdict", n)
	}
}
