package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/keylessci/keyless/internal/server"
)

func newServeCmd() *cobra.Command {
	var (
		configFile string
		listen     string
		data       string
		account    string
		region     string
		issuerURLs []string
		loopback   bool
		logFormat  string
		logLevel   string
		printCfg   bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the keyless server: STS, IAM, the OIDC issuer and the audit trail",
		Long: `Run the keyless server.

The AWS Query API (STS Version=2011-06-15 and IAM Version=2010-05-08) is served
at POST / and GET /?Action=..., so the unmodified AWS CLI and SDKs work with
--endpoint-url or AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_IAM.

Settings come from defaults, then --config (strict YAML: unknown keys are
errors), then KEYLESS_* environment variables, then flags.

The bootstrap administrator is KEYLESS_ADMIN_ACCESS_KEY_ID and
KEYLESS_ADMIN_SECRET_ACCESS_KEY; 'keyless admin create-key' makes more.
SIGTERM or Ctrl-C stops accepting, finishes in-flight requests, seals the
audit trail and exits 0. SIGHUP re-reads the configuration and the TLS
certificate and key files: log.level and the certificate change at once;
other changed settings are logged as needing a restart. A file that does not
load is logged and the running configuration or certificate kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Before anything else: Go's default for SIGHUP is to exit.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			// effective builds the configuration: at start, and again on
			// SIGHUP (see server.Reload for what a reload can change).
			effective := func() (server.Config, error) {
				cfg := server.Defaults()
				if configFile != "" {
					if err := cfg.LoadFile(configFile); err != nil {
						return cfg, err
					}
				}
				if err := cfg.ApplyEnv(os.Getenv); err != nil {
					return cfg, err
				}
				f := cmd.Flags()
				if f.Changed("listen") {
					cfg.Listen = listen
				}
				if f.Changed("data") {
					cfg.Data = data
				}
				if f.Changed("account-id") {
					cfg.AccountID = account
				}
				if f.Changed("region") {
					cfg.Region = region
				}
				for _, u := range issuerURLs {
					cfg.AddIssuerURL(u)
				}
				if f.Changed("allow-loopback-http-issuers") {
					cfg.AllowLoopbackHTTPIssuers = loopback
				}
				if f.Changed("log-format") {
					cfg.Log.Format = logFormat
				}
				if f.Changed("log-level") {
					cfg.Log.Level = logLevel
				}
				if err := cfg.Validate(); err != nil {
					return cfg, fmt.Errorf("configuration: %w", err)
				}
				return cfg, nil
			}
			cfg, err := effective()
			if err != nil {
				return err
			}
			if printCfg {
				return server.PrintConfig(cmd.OutOrStdout(), cfg, os.Getenv)
			}
			level := new(slog.LevelVar)
			logger := newLogger(cmd.ErrOrStderr(), cfg.Log.Format, cfg.Log.Level, level)
			tuneGC()
			srv, err := server.New(cmd.Context(), cfg, server.Options{Logger: logger, LogLevel: level, Build: readBuildInfo()})
			if err != nil {
				return err
			}
			if err := srv.Listen(); err != nil {
				srv.Close()
				return err
			}
			go reloadOnHangup(cmd.Context(), hup, srv, logger, effective)
			return srv.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	f.StringVar(&listen, "listen", "127.0.0.1:8400", "address to listen on")
	f.StringVar(&data, "data", "./keyless-data", "data directory (embedded store and audit trail; created if missing)")
	f.StringVar(&account, "account-id", "", "12-digit account id used in every ARN (default: generated on first start and kept)")
	f.StringVar(&region, "region", "us-east-1", "region reported in the audit trail and default signing region")
	f.StringArrayVar(&issuerURLs, "issuer-url", nil, "turn on the built-in OIDC issuer with this exact issuer URL (repeatable)")
	f.BoolVar(&loopback, "allow-loopback-http-issuers", false, "accept http:// OIDC providers on loopback hosts (127.0.0.0/8, [::1], localhost), with a port")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.BoolVar(&printCfg, "print-config", false, "print the effective configuration (defaults, --config, KEYLESS_* variables, flags) as YAML, secrets masked, and exit")
	return cmd
}

// newLogger builds the server's logger; its level lives in lv, so that a
// reload can change it.
func newLogger(w interface{ Write([]byte) (int, error) }, format, level string, lv *slog.LevelVar) *slog.Logger {
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// tuneGC trades memory for CPU unless the operator set GOGC/GOMEMLIMIT:
// the server's live heap is small (keys, caches), so collecting at 4× the
// live heap costs little memory and saves most of the GC CPU under load,
// while a 1 GiB soft limit keeps a burst from growing the heap unbounded.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
