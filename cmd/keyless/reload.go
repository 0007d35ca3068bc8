package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/keylessci/keyless/internal/server"
)

// reloadOnHangup applies a fresh configuration on each SIGHUP until ctx
// ends: load builds it as at start (defaults, --config, environment,
// flags); server.Reload applies what can change live and logs the rest.
// A configuration that does not load is logged and the running one kept:
// SIGHUP never stops the server.
func reloadOnHangup(ctx context.Context, hup <-chan os.Signal, srv *server.Server, log *slog.Logger, load func() (server.Config, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		log.Info("SIGHUP: reloading the configuration and TLS certificate")
		cfg, err := load()
		if err != nil {
			log.Error("reload: the configuration does not load; keeping the running one", "err", err)
			continue
		}
		srv.Reload(cfg)
	}
}
