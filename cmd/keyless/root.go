package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "keyless",
		Short:         "CI credentials without long-term keys: OIDC issuer, STS, IAM and a tamper-evident audit trail",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what `keyless version` prints (version.go).
	root.Version = versionText(readBuildInfo())
	root.SetVersionTemplate("{{.Version}}\n")
	// Each command lives in its own file and registers here.
	root.AddCommand(
		newDemoCmd(),
		newServeCmd(),
		newAdminCmd(),
		newAssumeCmd(),
		newAuditCmd(),
		newIssuerCmd(),
		newTokenCmd(),
		newSTSCmd(),
		newVersionCmd(),
		newHealthcheckCmd(),
		newBrokerCmd(),
		newProviderCmd(),
		newPolicyCmd(),
	)
	return root
}
