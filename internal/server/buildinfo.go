package server

import (
	"context"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo identifies the running binary: the release version (or
// "devel"), the VCS commit, the build date and the Go version. The command
// fills it from its link-time variables and runtime/debug.ReadBuildInfo;
// the server shows it in /metrics (keyless_build_info) and the start-up
// log line.
type BuildInfo struct {
	Version string `json:"version"`
	// Commit is the VCS revision ("" when unknown); Modified says the
	// work tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// Date is the build date, RFC 3339: the commit's time for release
	// builds, which are reproducible ("" when unknown).
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

// startInfo is what the start-up line says beyond the configuration.
type startInfo struct {
	build          BuildInfo
	bootstrapAdmin bool // KEYLESS_ADMIN_ACCESS_KEY_ID is set
}

// withDefaults fills what an embedding caller (a test) left empty.
func (b BuildInfo) withDefaults() BuildInfo {
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.GoVersion == "" {
		b.GoVersion = runtime.Version()
	}
	if b.Platform == "" {
		b.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	return b
}

// registerBuildInfo adds keyless_build_info{version,commit,go_version} = 1,
// the usual way to expose a build's identity to Prometheus.
func (m *metrics) registerBuildInfo(b BuildInfo) {
	commit := b.Commit
	if b.Modified && commit != "" {
		commit += "-dirty"
	}
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "keyless", Name: "build_info",
		Help: "Always 1; the labels say which keyless build is running.",
	}, []string{"version", "commit", "go_version"})
	g.WithLabelValues(b.Version, commit, b.GoVersion).Set(1)
	m.reg.MustRegister(g)
}

// logStart writes the start-up line: version, listen address, the
// built-in issuers and whether an administrator exists. Without one,
// nobody can call IAM, so the server warns and says how to make one.
func (s *Server) logStart(ctx context.Context) {
	issuers := make([]string, 0, len(s.cfg.Issuers))
	for _, is := range s.cfg.Issuers {
		issuers = append(issuers, is.URL)
	}
	bootstrap := s.start.bootstrapAdmin
	stored := 0
	if keys, err := s.store.AccessKeys().List(ctx); err != nil {
		s.log.WarnContext(ctx, "listing access keys for the start-up line", "err", err)
	} else {
		for _, k := range keys {
			if k.Kind == "admin" {
				stored++
			}
		}
	}
	admin := bootstrap || stored > 0
	s.log.InfoContext(ctx, "keyless serving",
		"version", s.start.build.Version, "commit", s.start.build.Commit, "addr", s.Addr(), "tls", s.cfg.TLS.CertFile != "",
		"account", s.account, "region", s.cfg.Region, "issuers", issuers,
		"admin_configured", admin, "bootstrap_admin", bootstrap, "admin_keys", stored)
	if !admin {
		s.log.WarnContext(ctx, "no administrator is configured: nobody can call IAM or create keys over the API; "+
			"set KEYLESS_ADMIN_ACCESS_KEY_ID and KEYLESS_ADMIN_SECRET_ACCESS_KEY, or run 'keyless admin create-key --data DIR'")
	}
}
