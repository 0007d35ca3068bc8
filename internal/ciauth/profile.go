package ciauth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// ProfileFiles are the AWS shared credentials and config files.
type ProfileFiles struct {
	Credentials string
	Config      string
}

// DefaultProfileFiles locates the files as the AWS CLI and SDKs do:
// $AWS_SHARED_CREDENTIALS_FILE and $AWS_CONFIG_FILE, else ~/.aws/credentials
// and ~/.aws/config.
func DefaultProfileFiles(env Env) (ProfileFiles, error) {
	home := env.home()
	expand := func(p string) string {
		if home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
			return filepath.Join(home, p[1:])
		}
		return p
	}
	f := ProfileFiles{
		Credentials: expand(env.Get("AWS_SHARED_CREDENTIALS_FILE")),
		Config:      expand(env.Get("AWS_CONFIG_FILE")),
	}
	if (f.Credentials == "" || f.Config == "") && home == "" {
		return ProfileFiles{}, errors.New("cannot locate ~/.aws: HOME is not set (set AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE)")
	}
	if f.Credentials == "" {
		f.Credentials = filepath.Join(home, ".aws", "credentials")
	}
	if f.Config == "" {
		f.Config = filepath.Join(home, ".aws", "config")
	}
	return f, nil
}

// Profile is what WriteProfile stores under one profile name.
type Profile struct {
	Name        string
	Credentials Credentials
	Region      string // written to the config file when set
	EndpointURL string // written as the profile's endpoint_url when set
}

// ErrBadProfileName: a name that cannot be a section header.
var ErrBadProfileName = errors.New("invalid profile name")

// ValidateProfileName refuses names the INI format cannot carry.
func ValidateProfileName(name string) error {
	if name == "" || strings.ContainsAny(name, "[]\r\n\x00 \t") {
		return fmt.Errorf("%w %q: use letters, digits, dots, dashes and underscores", ErrBadProfileName, name)
	}
	return nil
}

// WriteProfile stores p's credentials in the credentials file ([NAME]) and
// its region and endpoint in the config file ([profile NAME], or [default]).
// Each file is edited under an advisory lock and replaced atomically with
// mode 0600; other profiles, comments and keys keyless does not manage are
// kept byte for byte.
//
// endpoint_url in a profile is honoured by AWS CLI v2, by v1 from botocore
// 1.31 on, and by the SDKs that support service-specific endpoints; it
// applies to every service, which fits keyless credentials (they are only
// valid at the server that minted them).
func WriteProfile(ctx context.Context, files ProfileFiles, p Profile) error {
	if err := ValidateProfileName(p.Name); err != nil {
		return err
	}
	match, header := credentialsSectionMatcher(p.Name)
	creds := []iniKV{
		{"aws_access_key_id", p.Credentials.AccessKeyID},
		{"aws_secret_access_key", p.Credentials.SecretAccessKey},
		{"aws_session_token", p.Credentials.SessionToken},
	}
	if err := updateFileLocked(ctx, files.Credentials, func(old []byte) ([]byte, error) {
		return setINISection(old, match, header, creds)
	}); err != nil {
		return fmt.Errorf("writing %s: %w", files.Credentials, err)
	}

	var cfg []iniKV
	if p.Region != "" {
		cfg = append(cfg, iniKV{"region", p.Region})
	}
	if p.EndpointURL != "" {
		cfg = append(cfg, iniKV{"endpoint_url", p.EndpointURL})
	}
	if len(cfg) == 0 {
		return nil
	}
	match, header = configSectionMatcher(p.Name)
	if err := updateFileLocked(ctx, files.Config, func(old []byte) ([]byte, error) {
		return setINISection(old, match, header, cfg)
	}); err != nil {
		return fmt.Errorf("writing %s: %w", files.Config, err)
	}
	return nil
}
