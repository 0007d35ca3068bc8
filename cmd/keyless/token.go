package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/ciauth"
	"github.com/keylessci/keyless/internal/issuer"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Get ID tokens from a keyless server's built-in OIDC issuer",
	}
	cmd.AddCommand(newTokenMintCmd())
	return cmd
}

func newTokenMintCmd() *cobra.Command {
	var (
		endpoint, audience, subject, profile, issuerID, lifetime, region, output string
		caBundle                                                                 string
		claims                                                                   []string
	)
	cmd := &cobra.Command{
		Use:   "mint",
		Short: "Ask the built-in issuer for a signed ID token; prints the JWT alone on stdout",
		Long: `Ask a keyless server's built-in OIDC issuer for a signed ID token and print the
JWT alone on stdout (--output json prints the whole answer). On a terminal the
token is followed by a newline; redirected to a file or a pipe it is not, so
'keyless token mint ... > tok.jwt' writes exactly the token.

The request is signed with SigV4 (service sts) using credentials found the way
the AWS CLI finds them: an administrator key, or an issuer-client key, which
may mint only for its own issuer.

Claims:
  --claim KEY=VALUE   VALUE is a string; for claims the profile types, the
                      server converts it: true/false for booleans
                      (oidc.circleci.com/ssh-rerun), a JSON array or one value
                      for string arrays (oidc.circleci.com/context-ids),
                      digits for integers (gitlab runner_id)
  --claim KEY:=JSON   VALUE is raw JSON of any type, e.g. 'groups:=["a","b"]'

An issuer mints tokens of its own claim profile only; --profile, when given,
must name it.

Examples:
  keyless token mint --endpoint-url http://127.0.0.1:8400 --issuer gh \
    --audience sts.amazonaws.com --claim repository=acme/app --claim ref=refs/heads/main
  keyless token mint --issuer circle \
    --subject org/ORG/project/PROJECT/user/USER \
    --claim 'oidc.circleci.com/context-ids=["CTX"]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if endpoint == "" {
				endpoint = os.Getenv("AWS_ENDPOINT_URL_STS")
			}
			if endpoint == "" {
				endpoint = os.Getenv("AWS_ENDPOINT_URL")
			}
			if endpoint == "" {
				return usageErrorf("no server: give --endpoint-url or set AWS_ENDPOINT_URL_STS")
			}
			if output != "token" && output != "json" {
				return usageErrorf("--output must be token or json")
			}
			req := issuer.MintRequest{Profile: profile, Audience: audience, Subject: subject}
			if lifetime != "" {
				d, err := tokenLifetimeFlag(lifetime)
				if err != nil {
					return exitCode(exitUsage, err)
				}
				req.Lifetime = d
			}
			for _, arg := range claims {
				k, v, err := issuer.ParseClaimFlag(arg)
				if err != nil {
					return exitCode(exitUsage, err)
				}
				if req.Claims == nil {
					req.Claims = map[string]any{}
				}
				if _, dup := req.Claims[k]; dup {
					return usageErrorf("--claim %s given twice", k)
				}
				req.Claims[k] = v
			}
			var opts []func(*config.LoadOptions) error
			if region != "" {
				opts = append(opts, config.WithRegion(region))
			}
			// The token endpoint is called with its own HTTP client: give it
			// the CA bundle the SDK would use (--ca-bundle, AWS_CA_BUNDLE).
			bundle := ciauth.CABundlePath(caBundle, os.Getenv)
			httpClient, err := ciauth.CABundleClient(bundle, 30*time.Second)
			if err != nil {
				return err
			}
			if caBundle != "" {
				// And to the SDK's own calls (credential providers that
				// fetch over HTTPS); AWS_CA_BUNDLE it reads by itself.
				pem, err := os.ReadFile(caBundle)
				if err != nil {
					return fmt.Errorf("--ca-bundle: %w", err)
				}
				opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
			}
			awsCfg, err := mintConfig(ctx, opts...)
			if err != nil {
				return err
			}
			client := &issuer.Client{
				Endpoint:   endpoint,
				HTTPClient: httpClient,
				Sign:       issuer.SigV4Signer(awsCfg.Credentials, awsCfg.Region, time.Now),
			}
			resp, err := client.Mint(ctx, issuerID, req)
			if err != nil {
				return err
			}
			if output == "json" {
				return issuerWriteJSON(cmd.OutOrStdout(), resp)
			}
			return writeToken(cmd.OutOrStdout(), resp.Token)
		},
	}
	f := cmd.Flags()
	f.StringVar(&endpoint, "endpoint-url", "", "keyless server URL (default AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL)")
	f.StringVar(&audience, "audience", "", "aud claim (default: the profile's: circleci the org id, github https://github.com/OWNER)")
	f.StringVar(&subject, "subject", "", "sub claim (github and gitlab derive it from the claims when omitted)")
	f.StringArrayVar(&claims, "claim", nil, "claim as KEY=VALUE (string) or KEY:=JSON (repeatable)")
	f.StringVar(&profile, "profile", "", "claim profile: generic, circleci, github or gitlab; must be the issuer's (default: the issuer's)")
	f.StringVar(&issuerID, "issuer", "", "issuer id (default: the key's own issuer, or the server's first)")
	f.StringVar(&lifetime, "lifetime", "", "token lifetime, e.g. 15m or 900 (seconds) (default: the issuer's, 1h)")
	f.StringVar(&region, "region", "", "SigV4 signing region (default: from the AWS configuration, else us-east-1)")
	f.StringVar(&output, "output", "token", "token (the JWT alone) or json (the whole answer)")
	f.StringVar(&caBundle, "ca-bundle", "", "PEM file of the CA certificates to trust for the server's TLS certificate instead of the system's (default $AWS_CA_BUNDLE)")
	return cmd
}

// writeToken prints the JWT alone. On a terminal it ends the line, for the
// prompt; anywhere else (a file, a pipe, $(...)) it writes the token and
// nothing more, so `keyless token mint > tok.jwt` makes a file that every
// consumer reads as the token, AWS_WEB_IDENTITY_TOKEN_FILE included.
func writeToken(w io.Writer, token string) error {
	if isTerminal(w) {
		token += "\n"
	}
	_, err := io.WriteString(w, token)
	return err
}

// isTerminal reports whether w is a character device (a terminal), from
// its file mode: no ioctl, no dependency. /dev/null counts as one too,
// which is harmless there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// tokenLifetimeFlag reads a duration ("15m") or whole seconds ("900").
func tokenLifetimeFlag(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(issuer.MaxTokenLifetimeCeiling/time.Second) {
			return 0, fmt.Errorf("--lifetime %s: out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--lifetime %q: want a duration such as 15m, or seconds", s)
	}
	return d, nil
}
