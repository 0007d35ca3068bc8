package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/server"
	"github.com/keylessci/keyless/internal/store"
)

func newAdminCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage long-term administrator and issuer-client keys in a data dir",
		Long: `Manage the long-term keys of a keyless data dir.

These commands open the data dir directly (they work while the server runs).
A secret is shown once, at creation; keyless keeps it only sealed with the
master key. A running server may accept a deleted key for up to 30 seconds.`,
	}
	cmd.PersistentFlags().StringVar(&data, "data", "./keyless-data", "data directory")
	initFlag := addInitFlag(cmd)
	var configFile string
	var issuerURLs []string
	cmd.PersistentFlags().StringVar(&configFile, "config", "", "the YAML configuration keyless serve uses (its data dir and issuers)")
	cmd.PersistentFlags().StringArrayVar(&issuerURLs, "issuer-url", nil, "an issuer URL keyless serve is given (repeatable; names issuers as serve does: default, issuer-2, ...)")

	// config is the configuration as keyless serve builds it from the
	// same --config, environment, --data and --issuer-url.
	config := func(cmd *cobra.Command) (server.Config, error) {
		cfg := server.Defaults()
		if configFile != "" {
			if err := cfg.LoadFile(configFile); err != nil {
				return cfg, err
			}
		}
		if err := cfg.ApplyEnv(os.Getenv); err != nil {
			return cfg, err
		}
		if cmd.Flags().Changed("data") {
			cfg.Data = data
		}
		for _, u := range issuerURLs {
			cfg.AddIssuerURL(u)
		}
		return cfg, nil
	}

	open := func(cmd *cobra.Command) (*iam.KeyManager, store.Store, func(), error) {
		cfg, err := config(cmd)
		if err != nil {
			return nil, nil, nil, err
		}
		d, err := server.OpenData(cmd.Context(), cfg, os.Getenv, rand.Reader, *initFlag)
		if err != nil {
			return nil, nil, nil, err
		}
		st, master := d.Store, d.Master
		acct, err := server.AccountID(cmd.Context(), st, cfg.AccountID, rand.Reader)
		if err != nil {
			st.Close()
			return nil, nil, nil, err
		}
		km, err := iam.NewKeyManager(iam.KeyManagerOptions{Store: st, Master: master, Account: acct, Now: time.Now, Rand: rand.Reader})
		if err != nil {
			st.Close()
			return nil, nil, nil, err
		}
		return km, st, func() { st.Close() }, nil
	}

	var name, kind, scope, output string
	create := &cobra.Command{
		Use:   "create-key",
		Short: "Create a key and print its secret once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			km, st, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			if kind == iam.KindIssuerClient && scope != "" {
				cfg, err := config(cmd)
				if err != nil {
					return err
				}
				if err := checkIssuerScope(cmd.Context(), cfg, st.KeyMaterial(), scope); err != nil {
					return err
				}
			}
			k, err := km.Create(cmd.Context(), name, kind, scope)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				return json.NewEncoder(out).Encode(map[string]any{"AccessKey": map[string]any{
					"UserName": k.UserName, "AccessKeyId": k.AccessKeyID, "SecretAccessKey": k.SecretAccessKey,
					"Kind": k.Kind, "Scope": k.Scope, "CreateDate": k.CreateDate.Format(time.RFC3339),
				}})
			}
			fmt.Fprintf(out, "AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", k.AccessKeyID, k.SecretAccessKey)
			fmt.Fprintf(cmd.ErrOrStderr(), "Created %s key %s for %q. The secret is shown only now; store it safely.\n", k.Kind, k.AccessKeyID, k.UserName)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "admin", "user name shown in ARNs (arn:aws:iam::ACCOUNT:user/NAME)")
	create.Flags().StringVar(&kind, "kind", iam.KindAdmin, "admin, or issuer-client (may only mint ID tokens for --scope)")
	create.Flags().StringVar(&scope, "scope", "", "for issuer-client keys: the id of the issuer it may mint for (one the server runs: see --config, --issuer-url)")
	create.Flags().StringVar(&output, "output", "env", "env or json")

	list := &cobra.Command{
		Use:   "list-keys",
		Short: "List keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			km, _, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			ks, err := km.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY ID\tNAME\tKIND\tSCOPE\tCREATED\tLAST USED")
			if row := bootstrapRow(os.Getenv); row != "" {
				fmt.Fprintln(tw, row)
			}
			for _, k := range ks {
				last := "-"
				if !k.LastUsedDate.IsZero() {
					last = k.LastUsedDate.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Description, k.Kind, k.Scope, k.CreateDate.Format(time.RFC3339), last)
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete-key ACCESS_KEY_ID",
		Short: "Delete a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			km, _, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			if err := km.Delete(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("delete %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
