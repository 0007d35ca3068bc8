package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/oidc"
)

func newProviderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provider",
		Short: "OIDC providers as AWS sees them",
	}
	cmd.AddCommand(newProviderThumbprintCmd())
	return cmd
}

func newProviderThumbprintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "thumbprint URL",
		Short: "Print the SHA-1 thumbprint (40 lowercase hex) AWS expects for an OIDC issuer URL",
		Long: `Print the thumbprint AWS keeps for the OIDC provider of the issuer URL: the
hex SHA-1 of the last certificate (the top intermediate CA) that the host
serving the JWKS sends. The issuer's discovery document is read first (it
must name exactly URL as its issuer), then its jwks_uri, as AWS reads them.
When the discovery document and the JWKS are served by hosts with
different certificates, both thumbprints are printed, the JWKS host's
first: AWS asks for both then.

One thumbprint a line on stdout, for aws iam create-open-id-connect-provider
--thumbprint-list or Terraform's thumbprint_list. A chain this machine's
trust store does not vouch for is reported on stderr: AWS may then rely on
the thumbprint, so check it out of band. The environment's proxy settings
(HTTPS_PROXY) are honoured.`,
		Example: `  keyless provider thumbprint https://token.actions.githubusercontent.com
  aws iam create-open-id-connect-provider --url https://oidc.example.com/ci \
    --client-id-list sts.amazonaws.com \
    --thumbprint-list $(keyless provider thumbprint https://oidc.example.com/ci)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if u, err := url.Parse(args[0]); err != nil || u.Scheme != "https" || u.Host == "" {
				return usageErrorf("%q: want an https issuer URL (AWS registers https providers only, and a thumbprint is of a TLS certificate)", args[0])
			}
			hosts, err := oidc.IssuerThumbprints(cmd.Context(), args[0], oidc.ThumbprintOptions{})
			if err != nil {
				return err
			}
			for _, h := range hosts {
				fmt.Fprintln(cmd.OutOrStdout(), h.Thumbprint)
				if !h.Trusted {
					fmt.Fprintf(cmd.ErrOrStderr(), "keyless: note: this machine's trust store does not vouch for the chain of %s (%v): AWS may then rely on the thumbprint %s of %q; check it out of band\n",
						h.Host, h.TrustError, h.Thumbprint, h.Subject)
				}
			}
			return nil
		},
	}
}
