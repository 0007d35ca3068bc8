package ciauth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// ErrNoCredentials: the user gave no AWS credentials (no AWS_ACCESS_KEY_ID
// pair, no profile with credentials). keyless never falls back to EC2
// instance metadata.
var ErrNoCredentials = errors.New("no AWS credentials in the environment or the AWS config files")

// LoadExplicitConfig loads the AWS configuration the way the AWS CLI does
// (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared
// files, SSO, credential_process, web identity, container credentials),
// except that the EC2 instance metadata service is never contacted: when
// nothing but instance metadata would supply credentials, it returns the
// configuration with nil Credentials and an error wrapping
// ErrNoCredentials. A CI runner or a laptop then fails at once with a
// message saying what to set, instead of probing 169.254.169.254.
func LoadExplicitConfig(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := append(slices.Clip(optFns), config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if pe, ok := errors.AsType[config.SharedConfigProfileNotExistError](err); ok {
			return cfg, fmt.Errorf("%w: the AWS profile %q (AWS_PROFILE) is in neither the AWS config file nor the credentials file", ErrNoCredentials, pe.Profile)
		}
		return cfg, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Credentials == nil || fromInstanceMetadata(cfg.Credentials) {
		cfg.Credentials = nil
		return cfg, ErrNoCredentials
	}
	return cfg, nil
}

// fromInstanceMetadata reports whether the SDK's chain ended at the EC2
// instance-metadata provider (what it does when nothing else is set).
func fromInstanceMetadata(p aws.CredentialsProvider) bool {
	src, ok := p.(aws.CredentialProviderSource)
	return ok && slices.Contains(src.ProviderSources(), aws.CredentialSourceIMDS)
}
