package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/brokersetup"
	"github.com/keylessci/keyless/internal/ciauth"
	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/oidc"
)

func newBrokerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Broker mode: set up the AWS side of a keyless role; revoke AWS sessions already issued",
		Long: `Broker mode: keyless decides, AWS issues. A keyless role tagged
keyless:upstream-role-arn has its exchanges brokered: after keyless's own
checks, keyless presents an ID token of its built-in issuer to AWS STS and
hands back the AWS credentials of the upstream role.

  aws-setup      what to apply in AWS (Terraform or AWS CLI commands)
  revoke-older   deny, in AWS, the sessions AWS issued before a time`,
	}
	cmd.AddCommand(newBrokerAWSSetupCmd(), newBrokerRevokeOlderCmd())
	return cmd
}

// keylessFlags are how a broker command reaches keyless's IAM API.
type keylessFlags struct {
	endpoint, region string
}

func (k *keylessFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.endpoint, "endpoint-url", "", "keyless server URL (default AWS_ENDPOINT_URL_IAM, then AWS_ENDPOINT_URL)")
	cmd.Flags().StringVar(&k.region, "region", "", "SigV4 signing region for keyless (default: from the AWS configuration, else us-east-1)")
}

// resolvedEndpoint is --endpoint-url or the environment's IAM endpoint.
func (k *keylessFlags) resolvedEndpoint() (string, error) {
	e := k.endpoint
	for _, v := range []string{"AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL"} {
		if e == "" {
			e = os.Getenv(v)
		}
	}
	if e == "" {
		return "", usageErrorf("no keyless server: give --endpoint-url or set AWS_ENDPOINT_URL_IAM")
	}
	if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("--endpoint-url %q: want http(s)://HOST[:PORT]", e)
	}
	return strings.TrimSuffix(e, "/"), nil
}

// role reads a keyless role through keyless's IAM API, with credentials
// found the way the AWS CLI finds them (never instance metadata).
func (k *keylessFlags) role(ctx context.Context, endpoint, name string) (*awsiam.GetRoleOutput, error) {
	var opts []func(*config.LoadOptions) error
	if k.region != "" {
		opts = append(opts, config.WithRegion(k.region))
	}
	cfg, err := ciauth.LoadExplicitConfig(ctx, opts...)
	if errors.Is(err, ciauth.ErrNoCredentials) {
		return nil, fmt.Errorf("%w: the keyless role is read through keyless's IAM API: give keyless credentials allowed to call iam:GetRole (an administrator key) as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile with AWS_PROFILE", err)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := awsiam.NewFromConfig(cfg, func(o *awsiam.Options) { o.BaseEndpoint = aws.String(endpoint) })
	out, err := client.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String(name)})
	if ae, ok := errors.AsType[smithy.APIError](err); ok && ae.ErrorCode() == "NoSuchEntity" {
		return nil, fmt.Errorf("keyless at %s has no role %q: %w", endpoint, name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the keyless role %q at %s: %w", name, endpoint, err)
	}
	if out.Role == nil || out.Role.Arn == nil {
		return nil, fmt.Errorf("reading the keyless role %q at %s: the answer has no role", name, endpoint)
	}
	return out, nil
}

// upstreamTag is the keyless role's keyless:upstream-role-arn tag ("" when
// it has none); tag keys are case-insensitive.
func upstreamTag(out *awsiam.GetRoleOutput) string {
	for _, t := range out.Role.Tags {
		if strings.EqualFold(aws.ToString(t.Key), iam.TagUpstreamRoleARN) {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func newBrokerAWSSetupCmd() *cobra.Command {
	var (
		k                          keylessFlags
		role, output, issuerURL    string
		upstreamAccount, upstreamN string
	)
	cmd := &cobra.Command{
		Use:   "aws-setup",
		Short: "Print what to apply in AWS so that broker mode works for a keyless role (Terraform or AWS CLI)",
		Long: `Print what an AWS account needs so that keyless brokers a keyless role: the
IAM OIDC provider for keyless's issuer (URL, audience sts.amazonaws.com,
thumbprints) and the upstream role, whose trust policy admits exactly the
keyless role's subject (keyless:<account>:role/<name>) with StringEquals on
<issuer>:sub and <issuer>:aud. --output terraform (default) prints Terraform
for the HashiCorp AWS provider; --output cli prints AWS CLI commands (a shell
script writing trust.json).

The keyless role is read through keyless's IAM API (--endpoint-url, keyless
credentials from the environment). The upstream role is its
keyless:upstream-role-arn tag; when the role has none yet, give
--upstream-account (and --upstream-role-name, default the keyless role's name):
the output then ends with the aws iam tag-role command that links the two in
keyless. The upstream role gets the keyless role's maximum session duration.

--issuer-url is the exact issuer URL of the broker's tokens (keyless serve's
broker.issuer, by default its first --issuer-url), default the keyless
endpoint + /oidc. Its discovery document and JWKS are read as AWS reads them:
the document must name exactly that issuer, and the thumbprint of each host
serving them goes into the output. AWS registers https URLs without a port
only; a loopback test issuer (http://127.0.0.1:PORT/..., for a keyless serve
--allow-loopback-http-issuers playing AWS) is printed with a warning.`,
		Example: `  keyless broker aws-setup --role ci-deploy --endpoint-url https://keyless.example.com > keyless-broker.tf
  keyless broker aws-setup --role ci-deploy --output cli --upstream-account 222222222222 \
    --issuer-url https://oidc.example.com/ci > setup.sh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if output != "terraform" && output != "cli" {
				return usageErrorf("--output must be terraform or cli")
			}
			if !brokersetup.ValidRoleName(role) {
				return usageErrorf("--role %q: want the name of a keyless role", role)
			}
			endpoint, err := k.resolvedEndpoint()
			if err != nil {
				return err
			}
			out, err := k.role(ctx, endpoint, role)
			if err != nil {
				return err
			}
			upstream, tagged, err := setupUpstream(cmd, out, role, upstreamAccount, upstreamN)
			if err != nil {
				return err
			}
			guessed := issuerURL == ""
			if guessed {
				issuerURL = endpoint + "/oidc"
			}
			is, err := brokersetup.CheckIssuer(issuerURL)
			if err != nil {
				if guessed {
					return exitCode(exitUsage, fmt.Errorf("%w; the issuer URL defaults to the keyless endpoint + /oidc: give --issuer-url, the exact issuer URL of keyless's broker tokens as AWS reaches it", err))
				}
				return exitCode(exitUsage, err)
			}
			hosts, err := oidc.IssuerThumbprints(ctx, is.URL, oidc.ThumbprintOptions{AllowHTTP: is.Loopback})
			if err != nil {
				hint := ""
				if guessed {
					hint = " (the default, the keyless endpoint + /oidc: give --issuer-url if the issuer is elsewhere)"
				}
				return fmt.Errorf("issuer %s%s: AWS must read its discovery document and JWKS, and so must this command: %w", is.URL, hint, err)
			}
			in := brokersetup.Input{
				KeylessRoleARN:     aws.ToString(out.Role.Arn),
				MaxSessionDuration: aws.ToInt32(out.Role.MaxSessionDuration),
				UpstreamRoleARN:    upstream,
				Tagged:             tagged,
				KeylessEndpoint:    endpoint,
				IssuerURL:          is.URL,
			}
			if in.MaxSessionDuration == 0 {
				in.MaxSessionDuration = 3600
			}
			for _, h := range hosts {
				in.Thumbprints = append(in.Thumbprints, brokersetup.Thumbprint{Host: h.Host, Value: h.Thumbprint, Trusted: h.Trusted})
			}
			plan, err := brokersetup.NewPlan(in)
			if err != nil {
				return err
			}
			if output == "cli" {
				return plan.WriteCLI(cmd.OutOrStdout())
			}
			return plan.WriteTerraform(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "the keyless role's name (required)")
	f.StringVar(&output, "output", "terraform", "terraform or cli")
	f.StringVar(&issuerURL, "issuer-url", "", "exact issuer URL of keyless's broker tokens, as AWS reaches it (default: the keyless endpoint + /oidc)")
	f.StringVar(&upstreamAccount, "upstream-account", "", "AWS account id of the upstream role, when the keyless role has no keyless:upstream-role-arn tag yet")
	f.StringVar(&upstreamN, "upstream-role-name", "", "name of the upstream role, when the keyless role has no tag yet (default: the keyless role's name)")
	k.add(cmd)
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// setupUpstream decides the upstream role ARN from the keyless role's tag
// and the flags: the tag when set (flags, when given, must agree with it),
// else the flags.
func setupUpstream(cmd *cobra.Command, out *awsiam.GetRoleOutput, role, account, name string) (arn string, tagged bool, err error) {
	tag := upstreamTag(out)
	flagsGiven := cmd.Flags().Changed("upstream-account") || cmd.Flags().Changed("upstream-role-name")
	if tag == "" && account == "" {
		return "", false, usageErrorf("the keyless role %q has no %s tag: give --upstream-account ID (and --upstream-role-name NAME, default %q) for the AWS role to create", role, iam.TagUpstreamRoleARN, role)
	}
	if tag != "" && !flagsGiven {
		return tag, true, nil
	}
	if name == "" {
		name = role
	}
	if !brokersetup.ValidRoleName(name) {
		return "", false, usageErrorf("--upstream-role-name %q is not an IAM role name", name)
	}
	if tag != "" {
		cur, err := brokersetup.ParseRoleARN(tag)
		if err != nil {
			return "", false, fmt.Errorf("the keyless role's %s tag: %w", iam.TagUpstreamRoleARN, err)
		}
		if account == "" {
			account = cur.Account
		}
		if !cmd.Flags().Changed("upstream-role-name") {
			name = cur.Name
		}
		if account != cur.Account || name != cur.Name {
			return "", false, usageErrorf("the keyless role %q is linked to %s already (its %s tag), not to account %s role %s: change the tag first, or leave out --upstream-account and --upstream-role-name", role, tag, iam.TagUpstreamRoleARN, account, name)
		}
		return tag, true, nil
	}
	if !brokersetup.ValidAccountID(account) {
		return "", false, usageErrorf("--upstream-account %q: want a 12-digit AWS account id", account)
	}
	return "arn:aws:iam::" + account + ":role/" + name, false, nil
}

func newBrokerRevokeOlderCmd() *cobra.Command {
	var (
		k                                 keylessFlags
		role, upstreamARN, before         string
		upstreamEndpoint, upstreamProfile string
	)
	cmd := &cobra.Command{
		Use:   "revoke-older",
		Short: "Deny, in AWS, every session of the upstream role issued before a time (AWSRevokeOlderSessions)",
		Long: `Put AWS's documented "revoke older sessions" inline policy,
AWSRevokeOlderSessions (Deny * on * when aws:TokenIssueTime is before T), on
the upstream AWS role of a keyless role, through AWS's IAM API.

Stopping keyless's side (removing the keyless:upstream-role-arn tag,
tightening the trust policy, deleting the role) stops new brokered sessions
at once, but AWS sessions already issued live until they expire: this
command is the way to end them. T is --before (RFC 3339), default now
(rounded up to the next second, so no session of the current second
survives). A later cut-off already on the role is kept.

The upstream role is the keyless role's keyless:upstream-role-arn tag, read
through keyless's IAM API (--endpoint-url, keyless credentials from the
environment), or --upstream-role-arn (no keyless call: for a role whose link
the kill switch removed). The policy is put with AWS credentials of the
role's account allowed to call iam:GetRole, iam:GetRolePolicy and
iam:PutRolePolicy on it: --upstream-profile NAME, default the environment's. The call goes to AWS's IAM endpoint, never to an
AWS_ENDPOINT_URL meant for keyless; --upstream-endpoint-url overrides it.`,
		Example: `  AWS_PROFILE=keyless-admin keyless broker revoke-older --role ci-deploy --upstream-profile prod-admin
  keyless broker revoke-older --upstream-role-arn arn:aws:iam::222222222222:role/ci-deploy --before 2026-03-04T05:06:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			now := time.Now()
			cut := brokersetup.RevokeTime(now)
			if before != "" {
				t, err := time.Parse(time.RFC3339, before)
				if err != nil {
					return usageErrorf("--before %q: want an RFC 3339 time such as 2026-03-04T05:06:07Z", before)
				}
				if t.After(cut) {
					return usageErrorf("--before %s is in the future: it would deny sessions not issued yet (to stop new brokered sessions, remove the keyless role's %s tag)", before, iam.TagUpstreamRoleARN)
				}
				cut = t.UTC()
			}
			arn := upstreamARN
			if arn == "" {
				if role == "" {
					return usageErrorf("give --role NAME (a keyless role linked to an AWS role) or --upstream-role-arn ARN")
				}
				endpoint, err := k.resolvedEndpoint()
				if err != nil {
					return err
				}
				out, err := k.role(ctx, endpoint, role)
				if err != nil {
					return err
				}
				if arn = upstreamTag(out); arn == "" {
					return fmt.Errorf("the keyless role %q has no %s tag, so keyless does not know its AWS role: give --upstream-role-arn ARN (the tag's value before it was removed)", role, iam.TagUpstreamRoleARN)
				}
			}
			up, err := brokersetup.ParseRoleARN(arn)
			if err != nil {
				return exitCode(exitUsage, err)
			}
			client, where, err := upstreamIAM(ctx, up, upstreamProfile, upstreamEndpoint)
			if err != nil {
				return err
			}
			// The IAM API names roles without their account: make sure the
			// credentials' account holds this very role, not a namesake.
			got, err := client.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String(up.Name)})
			if err != nil {
				return fmt.Errorf("reading the upstream role %s at %s: %w", up.ARN, where, err)
			}
			if arn := aws.ToString(got.Role.Arn); arn != up.ARN {
				return fmt.Errorf("the AWS credentials given reach %s, not the upstream role %s: use credentials of account %s (--upstream-profile)", arn, up.ARN, up.Account)
			}
			w := cmd.OutOrStdout()
			cur, err := client.GetRolePolicy(ctx, &awsiam.GetRolePolicyInput{RoleName: aws.String(up.Name), PolicyName: aws.String(brokersetup.RevokePolicyName)})
			if err == nil {
				if t, ok := brokersetup.RevokedBefore(aws.ToString(cur.PolicyDocument)); ok && !t.Before(cut) {
					fmt.Fprintf(w, "%s already has %s denying sessions issued before %s (not earlier than %s): nothing changed.\n",
						up.ARN, brokersetup.RevokePolicyName, t.UTC().Format(time.RFC3339), cut.Format(time.RFC3339))
					fmt.Fprintln(w, brokersetup.RevokeNote(up.ARN, t))
					return nil
				}
			}
			_, err = client.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{
				RoleName:       aws.String(up.Name),
				PolicyName:     aws.String(brokersetup.RevokePolicyName),
				PolicyDocument: aws.String(brokersetup.RevokePolicy(cut)),
			})
			if err != nil {
				return fmt.Errorf("putting %s on %s at %s: %w", brokersetup.RevokePolicyName, up.ARN, where, err)
			}
			fmt.Fprintf(w, "put inline policy %s on %s (at %s): Deny * on * when aws:TokenIssueTime < %s\n",
				brokersetup.RevokePolicyName, up.ARN, where, cut.Format(time.RFC3339))
			fmt.Fprintln(w, brokersetup.RevokeNote(up.ARN, cut))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "the keyless role whose upstream role to act on")
	f.StringVar(&upstreamARN, "upstream-role-arn", "", "the AWS role, instead of reading --role's tag at keyless")
	f.StringVar(&before, "before", "", "deny sessions issued before this RFC 3339 time (default: now)")
	f.StringVar(&upstreamEndpoint, "upstream-endpoint-url", "", "AWS IAM endpoint (default: AWS's, whatever AWS_ENDPOINT_URL says)")
	f.StringVar(&upstreamProfile, "upstream-profile", "", "AWS profile for the upstream account (default: the environment's credentials)")
	k.add(cmd)
	return cmd
}

// upstreamIAM is an IAM client for the upstream AWS account: the
// credentials of --upstream-profile or the environment (any source the
// SDK knows, instance metadata included: this is AWS), AWS's endpoint for
// the ARN's partition unless --upstream-endpoint-url says otherwise. It
// returns a description of where calls go.
func upstreamIAM(ctx context.Context, up brokersetup.RoleARN, profile, endpoint string) (*awsiam.Client, string, error) {
	var opts []func(*config.LoadOptions) error
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("AWS configuration for the upstream account: %w", err)
	}
	if !regionFits(up.Partition, cfg.Region) {
		cfg.Region = map[string]string{"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}[up.Partition]
	}
	where := "AWS IAM (" + up.Partition + ")"
	if endpoint != "" {
		where = endpoint
	}
	client := awsiam.NewFromConfig(cfg, func(o *awsiam.Options) {
		// AWS_ENDPOINT_URL(_IAM) is likely keyless here: ignore it.
		o.BaseEndpoint = nil
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return client, where, nil
}

// regionFits reports whether region (a signing region) belongs to the
// partition; "" fits none.
func regionFits(partition, region string) bool {
	cn, gov := strings.HasPrefix(region, "cn-"), strings.HasPrefix(region, "us-gov-")
	switch partition {
	case "aws-cn":
		return cn
	case "aws-us-gov":
		return gov
	}
	return region != "" && !cn && !gov
}
