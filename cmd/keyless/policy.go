package main

import "github.com/spf13/cobra"

// newPolicyCmd is the parent of the trust-policy tools: `keyless policy
// simulate` (policy_simulate.go) and `keyless policy lint`
// (policy_lint.go). Each subcommand lives in its own file and registers
// here.
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Policy tools: generate least-privilege policies from the trail, lint trust policies for pitfalls, simulate an exchange offline",
	}
	cmd.AddCommand(
		newPolicySimulateCmd(),
		newPolicyLintCmd(),
		newPolicyGenerateCmd(),
	)
	return cmd
}
