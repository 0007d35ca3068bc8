package contract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"

	"github.com/keylessci/keyless/internal/issuer"
)

// TestNothingChangesWithoutRecord (issue 11, item 3) through a real keyless
// serve whose audit trail reaches its disk ceiling: from then on an
// administrator's IAM change is refused with ServiceUnavailable and is not
// applied, and the token endpoint issues no token — nothing changes and no
// token leaves without its record.
func TestNothingChangesWithoutRecord(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "keyless.yaml")
	if err := os.WriteFile(cfg, []byte("audit:\n  max_disk_bytes: 1048576\n  seal_interval: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", "--config", cfg, "--issuer-url", "http://127.0.0.1:{PORT}/oidc")
	ctx := context.Background()
	c := srv.iamClient(adminKeyID, adminSecret, "")
	if _, err := c.CreateRole(ctx, iamCreateRole("target", trustDoc)); err != nil {
		t.Fatal(err)
	}
	mint := &issuer.Client{Endpoint: srv.URL, Sign: issuer.SigV4Signer(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: adminKeyID, SecretAccessKey: adminSecret}, nil
	}), "us-east-1", nil)}
	if _, err := mint.Mint(ctx, "", issuer.MintRequest{Audience: "sts.amazonaws.com", Subject: "before"}); err != nil {
		t.Fatalf("mint before the ceiling: %v", err)
	}
	applied, refused := "", ""
	for i := 0; i < 5000 && refused == ""; i++ {
		desc := fmt.Sprintf("change %d", i)
		_, err := c.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String("target"), Description: aws.String(desc)})
		var ae smithy.APIError
		switch {
		case err == nil:
			applied = desc
		case errors.As(err, &ae) && ae.ErrorCode() == "ServiceUnavailable":
			refused = desc
		default:
			t.Fatalf("change %d: %v", i, err)
		}
	}
	if refused == "" || applied == "" {
		t.Fatalf("the trail never filled (applied %q)", applied)
	}
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("target")})
	if err != nil {
		t.Fatal(err)
	}
	if d := aws.ToString(got.Role.Description); d != applied {
		t.Errorf("role description = %q after %q was refused; want the last recorded change %q", d, refused, applied)
	}
	for range 3 {
		if _, err := c.UpdateRoleDescription(ctx, &iam.UpdateRoleDescriptionInput{RoleName: aws.String("target"), Description: aws.String("later")}); err == nil {
			t.Fatal("a change was applied at the ceiling")
		}
	}
	resp, err := mint.Mint(ctx, "", issuer.MintRequest{Audience: "sts.amazonaws.com", Subject: "after"})
	se, ok := errors.AsType[*issuer.ServerError](err)
	if resp != nil || !ok || se.Code != "ServiceUnavailable" {
		t.Errorf("mint at the ceiling = %v, %v; want ServiceUnavailable and no token", resp, err)
	}
}
