package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/keylessci/keyless/internal/ciauth"
)

// errMintNoKey is what `keyless token mint` says when it has no key to
// sign with.
const errMintNoKey = "token mint signs its request with a keyless key and found none: " +
	"give it an administrator key or an issuer-client key (keyless admin create-key [--kind issuer-client --scope ISSUER]) " +
	"as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile holding one with AWS_PROFILE"

// mintConfig loads the credentials token mint signs with: those the user
// gave (environment or profile), never EC2 instance metadata, and says what
// to set when there are none, instead of the SDK's credential-chain dump.
func mintConfig(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	cfg, err := ciauth.LoadExplicitConfig(ctx, opts...)
	if err == ciauth.ErrNoCredentials {
		return cfg, errors.New(errMintNoKey)
	}
	if errors.Is(err, ciauth.ErrNoCredentials) {
		return cfg, fmt.Errorf("%w; %s", err, errMintNoKey)
	}
	if err != nil {
		return cfg, err
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return cfg, fmt.Errorf("token mint: the AWS credentials given cannot be used: %w", err)
	}
	return cfg, nil
}
