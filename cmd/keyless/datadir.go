package main

import "github.com/spf13/cobra"

// addInitFlag gives a command that opens a data dir the --init flag: without
// it a directory holding no keyless store is refused (a mistyped --data must
// not silently become a second store with its own master key).
func addInitFlag(cmd *cobra.Command) *bool {
	return cmd.PersistentFlags().Bool("init", false, "create a new data dir (store, and master.key unless KEYLESS_MASTER_KEY is set) when --data holds no keyless store")
}
