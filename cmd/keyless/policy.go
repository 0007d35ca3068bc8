package main

import "github.com/spf13/cobra"

// newPolicyCmd is the parent of the trust-policy tools: `keyless policy
// simulate` (policy_simulate.go) and `keyless policy lint`
// (policy_lint.go). Each subcommand lives in its own file and registers
// here.
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Trust-policy tools: lint for pitfalls (files, plans or live roles), simulate an exchange offline",
	}
	cmd.AddCommand(
		newPolicySimulateCmd(),
		newPolicyLintCmd(),
	)
	return cmd
}
