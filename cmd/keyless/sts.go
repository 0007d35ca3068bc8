package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/server"
	"github.com/keylessci/keyless/internal/sts"
)

func newSTSCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "sts",
		Short: "Manage the keys that seal session tokens",
	}
	cmd.PersistentFlags().StringVar(&data, "data", "./keyless-data", "data directory")
	initFlag := addInitFlag(cmd)
	var revoke bool
	rotate := &cobra.Command{
		Use:   "rotate-session-key",
		Short: "Seal new session tokens with a new key now (rotation also happens daily on its own)",
		Long: `Seal new session tokens with a new key from now on. Sessions sealed with the
previous key keep working until they expire (at most 12 hours), unless
--revoke-previous is given: then every key but the new one is deleted and every
session issued before now stops verifying at once — for a suspected leak.

Running servers sharing the data dir load the new ring within a minute (at
once when they meet a token sealed with a key they do not know).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := server.Defaults()
			if err := cfg.ApplyEnv(os.Getenv); err != nil {
				return err
			}
			if cmd.Flags().Changed("data") {
				cfg.Data = data
			}
			d, err := server.OpenData(cmd.Context(), cfg, os.Getenv, rand.Reader, *initFlag)
			if err != nil {
				return err
			}
			st, master := d.Store, d.Master
			defer st.Close()
			m, err := sts.NewRingManager(cmd.Context(), st.KeyMaterial(), master, time.Now, rand.Reader, 0)
			if err != nil {
				return err
			}
			if err := m.Rotate(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session tokens are now sealed with key %d\n", m.Ring().Active())
			if revoke {
				n, err := m.RevokeAllBut(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %d previous key(s): every earlier session is revoked\n", n)
			}
			return nil
		},
	}
	rotate.Flags().BoolVar(&revoke, "revoke-previous", false, "delete every previous key: all existing sessions stop working")
	cmd.AddCommand(rotate)
	return cmd
}
