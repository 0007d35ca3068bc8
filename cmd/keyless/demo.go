package main

import (
	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		keep    string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole flow end to end on loopback (issuer → IAM → STS → use → refusal explained → audit); exit 0 on success",
		Long: `Run the whole keyless flow in one process on loopback, printed as a CI job log:
start the server with an embedded store in a temporary directory, register the
built-in issuer as an OIDC provider, create a role trusting one CircleCI project,
mint a CircleCI-shaped token, exchange it, use the credentials, show another
project's token refused and why, then read and verify the audit trail.

Everything goes through the public APIs (the AWS SDK, the issuer's token
endpoint, the audit files). Exit status 0 when every step passed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), demo.Options{Out: cmd.OutOrStdout(), DataDir: keep, Verbose: verbose})
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "use and keep this directory instead of a temporary one")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print the server's log")
	return cmd
}
