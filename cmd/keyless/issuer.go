package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/issuer"
	"github.com/keylessci/keyless/internal/server"
)

// issuerFlags describe the issuer the way `keyless serve` does; they must
// match the server's configuration, since the rotation schedule derives
// from them.
type issuerFlags struct {
	configFile      string
	data            string
	id              string
	url             string
	profile         string
	algorithm       string
	org             string
	serviceDoc      string
	tokenLifetime   time.Duration
	maxLifetime     time.Duration
	rotationPeriod  time.Duration
	jwksMaxAge      time.Duration
	publishInterval time.Duration
	output          string
	init            *bool
}

func newIssuerCmd() *cobra.Command {
	o := &issuerFlags{}
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Manage the built-in OIDC issuer: rotate its signing keys, publish it as static files, list keys",
		Long: `Manage the built-in OIDC issuer of a keyless data directory.

These commands work on the data directory (--data) directly, with the same
issuer settings as 'keyless serve' (--issuer-url, --issuer-id, ...). A running
server sharing the directory picks up their changes within a minute.`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.configFile, "config", "", "the YAML configuration 'keyless serve' uses; its issuers section is read (flags override)")
	f.StringVar(&o.data, "data", "./keyless-data", "data directory (SQLite store and master.key)")
	f.StringVar(&o.id, "issuer-id", issuer.DefaultID, "issuer id")
	f.StringVar(&o.url, "issuer-url", "", "exact issuer URL (the iss claim), as given to keyless serve (required)")
	f.StringVar(&o.profile, "profile", "", "default claim profile: generic, circleci, github or gitlab (default generic)")
	f.StringVar(&o.algorithm, "algorithm", "", "signing algorithm of new keys: RS256 or ES256 (default RS256)")
	f.StringVar(&o.org, "org", "", "organisation id for the circleci profile (default: from a URL ending in /org/<id>)")
	f.StringVar(&o.serviceDoc, "service-documentation", "", "URL published as service_documentation")
	f.DurationVar(&o.tokenLifetime, "token-lifetime", 0, "default token lifetime (default 1h)")
	f.DurationVar(&o.maxLifetime, "max-token-lifetime", 0, "longest token lifetime a request may ask for (default 6h, at most 24h)")
	f.DurationVar(&o.rotationPeriod, "rotation-period", 0, "how long a key signs before the next one (default 168h)")
	f.DurationVar(&o.jwksMaxAge, "jwks-max-age", 0, "Cache-Control max-age of the JWKS (default 1h)")
	f.DurationVar(&o.publishInterval, "publish-interval", 0, "longest time between two 'issuer publish' runs when the issuer is served as static files")
	f.StringVar(&o.output, "output", "text", "output format: text or json")
	o.init = addInitFlag(cmd)
	cmd.AddCommand(newIssuerRotateCmd(o), newIssuerPublishCmd(o), newIssuerKeysCmd(o))
	return cmd
}

// config is the issuer to work on: from --config (the serve configuration)
// when given, with the flags set on the command line overriding it.
func (o *issuerFlags) config(cmd *cobra.Command) (server.Config, issuer.Config, error) {
	cfg := server.Defaults()
	if o.configFile != "" {
		if err := cfg.LoadFile(o.configFile); err != nil {
			return cfg, issuer.Config{}, err
		}
	}
	if err := cfg.ApplyEnv(os.Getenv); err != nil {
		return cfg, issuer.Config{}, err
	}
	f := cmd.Flags()
	if f.Changed("data") || cfg.Data == "" {
		cfg.Data = o.data
	}
	var ic issuer.Config
	found := false
	for _, c := range cfg.IssuerConfigs() {
		if c.ID == o.id || (!f.Changed("issuer-id") && len(cfg.Issuers) == 1) || (o.url != "" && c.URL == o.url) {
			ic, found = c, true
			break
		}
	}
	if !found {
		ic.ID = o.id
	}
	set := func(name string, apply func()) {
		if f.Changed(name) {
			apply()
		}
	}
	set("issuer-url", func() { ic.URL = o.url })
	set("profile", func() { ic.Profile = o.profile })
	set("algorithm", func() { ic.Algorithm = o.algorithm })
	set("org", func() { ic.Org = o.org })
	set("service-documentation", func() { ic.ServiceDocumentation = o.serviceDoc })
	set("token-lifetime", func() { ic.TokenLifetime = o.tokenLifetime })
	set("max-token-lifetime", func() { ic.MaxTokenLifetime = o.maxLifetime })
	set("rotation-period", func() { ic.RotationPeriod = o.rotationPeriod })
	set("jwks-max-age", func() { ic.JWKSMaxAge = o.jwksMaxAge })
	set("publish-interval", func() { ic.PublishInterval = o.publishInterval })
	if ic.URL == "" {
		return cfg, ic, fmt.Errorf("no issuer %q: give --issuer-url (the exact issuer URL keyless serve uses) or --config with an issuers section", o.id)
	}
	return cfg, ic, nil
}

// open brings the issuer's keys up to date (creating the master key and
// the first signing key of a new data directory) and returns the service.
func (o *issuerFlags) open(cmd *cobra.Command) (*issuer.Service, func(), error) {
	if o.output != "text" && o.output != "json" {
		return nil, nil, fmt.Errorf("--output must be text or json")
	}
	cfg, ic, err := o.config(cmd)
	if err != nil {
		return nil, nil, err
	}
	ctx := cmd.Context()
	o.id = ic.ID // the commands act on the issuer the configuration selected
	d, err := server.OpenData(ctx, cfg, os.Getenv, rand.Reader, *o.init)
	if err != nil {
		return nil, nil, err
	}
	st, master := d.Store, d.Master
	svc, err := issuer.New(issuer.Options{
		Keys: st.KeyMaterial(), Master: master, Issuers: []issuer.Config{ic},
		Logger: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := svc.Sync(ctx); err != nil {
		st.Close()
		return nil, nil, err
	}
	return svc, func() { st.Close() }, nil
}

func newIssuerRotateCmd(o *issuerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Start a key rotation now: publish the next key; it signs once every verifier can know it",
		Long: `Start a key rotation now.

The next signing key is published at once and starts signing after the
pre-publication period (the JWKS max-age plus reload and clock-skew leeway),
so no verifier holding a cached JWKS ever meets an unknown kid. The current
key stays published until every token it signed has expired. If a next key
is already published, it is brought forward instead of making another.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			svc, closeFn, err := o.open(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			r, err := svc.Rotate(ctx, o.id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				return issuerWriteJSON(out, r)
			}
			verb := "published"
			if !r.Created {
				verb = "already published"
			}
			fmt.Fprintf(out, "issuer %s: next key %s (%s) %s at %s; it signs from %s\n",
				r.Issuer, r.KeyID, r.Algorithm, verb, issuerStamp(r.PublishedAt), issuerStamp(r.ActivateAt))
			if r.RetiringKeyID != "" {
				fmt.Fprintf(out, "key %s stops signing then and stays published until %s\n", r.RetiringKeyID, issuerStamp(r.RetiredKeyExpireAt))
			}
			return nil
		},
	}
}

func newIssuerPublishCmd(o *issuerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "publish DIR",
		Short: "Write the discovery document and JWKS as static files for a web server or S3 bucket",
		Long: `Write the issuer's discovery document and JWKS (pending keys included) under DIR:

  DIR/.well-known/openid-configuration
  DIR/.well-known/jwks.json

Serve DIR at the issuer URL (for example an S3 bucket website, with
Content-Type application/json) so that AWS can federate with an issuer that
is not reachable from the internet. Rotations that are due happen first.
Run it again before the reported time, and at least every --publish-interval.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			svc, closeFn, err := o.open(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			res, err := svc.Publish(ctx, args[0], o.id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				return issuerWriteJSON(out, res)
			}
			for _, f := range res.Files {
				fmt.Fprintln(out, "wrote", f)
			}
			fmt.Fprintf(out, "keys: %v\n", res.Keys)
			if !res.NextChange.IsZero() {
				fmt.Fprintf(out, "publish again before %s", issuerStamp(res.NextChange))
				if o.publishInterval > 0 {
					fmt.Fprintf(out, " and at least every %s", o.publishInterval)
				}
				fmt.Fprintln(out)
			}
			return nil
		},
	}
}

func newIssuerKeysCmd(o *issuerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "keys",
		Short: "List the issuer's published signing keys and their schedule",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, closeFn, err := o.open(cmd)
			if err != nil {
				return err
			}
			defer closeFn()
			keys, err := svc.Keys(o.id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				return issuerWriteJSON(out, keys)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tRETIRES\tLEAVES JWKS")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KeyID, k.Algorithm, k.State, issuerStamp(k.ActivateAt), issuerStamp(k.RetireAt), issuerStamp(k.ExpireAt))
			}
			return tw.Flush()
		},
	}
}

func issuerStamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func issuerWriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
