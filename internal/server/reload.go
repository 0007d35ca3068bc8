package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Reloading (SIGHUP). What a reload changes while serving:
//
//   - log.level: at once (when the server was given Options.LogLevel);
//   - the TLS certificate and key: both files are read again (also when
//     their paths did not change: certificates are renewed in place) and
//     new connections get the new pair; a pair that does not load is
//     logged and the running one kept. tls.cert_file and tls.key_file may
//     name other files, but turning TLS on or off needs a restart.
//
// Every other setting takes effect at the next start: a reload logs the
// ones that changed as "needs a restart" and keeps running with the old
// values (the listener, the data dir, the issuers, the limits, ...).
var liveSettings = []string{"log.level", "tls.cert_file", "tls.key_file"}

// certificate serves the current TLS key pair to new connections.
type certificate struct {
	pair atomic.Pointer[tls.Certificate]
}

// loadKeyPair reads and checks a certificate and its key.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if pair.Leaf == nil && len(pair.Certificate) > 0 {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: %s: %w", certFile, err)
		}
	}
	return &pair, nil
}

func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.pair.Load(), nil
}

// certAttrs describe a pair in log lines (never the key).
func certAttrs(p *tls.Certificate) []any {
	if p == nil || p.Leaf == nil {
		return nil
	}
	return []any{"subject", p.Leaf.Subject.String(), "serial", p.Leaf.SerialNumber.String(),
		"not_after", p.Leaf.NotAfter.UTC().Format(time.RFC3339)}
}

// reloadState is what reloads compare against and change.
type reloadState struct {
	mu sync.Mutex
	// cfg is the configuration in effect: the start one with the live
	// settings of later reloads applied. Settings needing a restart keep
	// their start value, so every reload reports them until then.
	cfg Config
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Applied are the settings changed while serving (key paths as in the
	// YAML file); "tls" when the certificate was read again.
	Applied []string
	// NeedRestart are the changed settings that take effect at the next
	// start.
	NeedRestart []string
	// Err is why something could not be applied (the running value kept).
	Err error
}

// Reload applies next, the configuration rebuilt the way it was at start,
// as far as it can change while serving (see liveSettings), logs what it
// applied and which changed settings need a restart, and never stops the
// server: an invalid configuration or a certificate that does not load is
// logged and the running one kept.
func (s *Server) Reload(next Config) ReloadResult {
	s.reload.mu.Lock()
	defer s.reload.mu.Unlock()
	var res ReloadResult
	if err := next.Validate(); err != nil {
		res.Err = fmt.Errorf("configuration: %w", err)
		s.log.Error("reload: the new configuration is invalid; keeping the running one", "err", res.Err)
		return res
	}
	cur := &s.reload.cfg
	changed, err := configChanges(*cur, next)
	if err != nil {
		res.Err = err
		s.log.Error("reload: cannot compare the configurations; keeping the running one", "err", err)
		return res
	}
	for _, key := range changed {
		if !slices.Contains(liveSettings, key) {
			res.NeedRestart = append(res.NeedRestart, key)
		}
	}
	if slices.Contains(changed, "log.level") {
		if s.logLevel != nil {
			var lv slog.Level
			_ = lv.UnmarshalText([]byte(next.Log.Level)) // Validate checked it
			s.logLevel.Set(lv)
			cur.Log.Level = next.Log.Level
			res.Applied = append(res.Applied, "log.level")
		} else {
			res.NeedRestart = append(res.NeedRestart, "log.level")
		}
	}
	switch {
	case s.cert == nil && next.TLS.CertFile == "":
	case s.cert == nil || next.TLS.CertFile == "":
		// Turning TLS on or off changes what the listener speaks.
		res.NeedRestart = appendMissing(res.NeedRestart, "tls.cert_file", "tls.key_file")
	default:
		pair, err := loadKeyPair(next.TLS.CertFile, next.TLS.KeyFile)
		if err != nil {
			res.Err = err
			s.log.Error("reload: the TLS certificate does not load; still serving the previous one",
				append([]any{"err", err, "cert_file", next.TLS.CertFile, "key_file", next.TLS.KeyFile}, certAttrs(s.cert.pair.Load())...)...)
			break
		}
		s.cert.pair.Store(pair)
		cur.TLS = next.TLS
		res.Applied = append(res.Applied, "tls")
		s.log.Info("reload: serving the TLS certificate read now", append([]any{"cert_file", next.TLS.CertFile}, certAttrs(pair)...)...)
	}
	if len(res.NeedRestart) > 0 {
		s.log.Warn("reload: these settings changed but take effect only after a restart; running with the previous values",
			"settings", res.NeedRestart)
	}
	s.log.Info("reload: done", "applied", res.Applied, "restart_needed", res.NeedRestart, "live_settings", liveSettings)
	return res
}

func appendMissing(list []string, keys ...string) []string {
	for _, k := range keys {
		if !slices.Contains(list, k) {
			list = append(list, k)
		}
	}
	return list
}

// configChanges lists the settings (YAML key paths, e.g. "log.level",
// "audit.seal_interval"; lists such as "issuers" as a whole) whose values
// differ between a and b, sorted.
func configChanges(a, b Config) ([]string, error) {
	fa, err := flatConfig(a)
	if err != nil {
		return nil, err
	}
	fb, err := flatConfig(b)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if !reflect.DeepEqual(fa[k], fb[k]) {
			out = append(out, k)
		}
	}
	return out, nil
}

// flatConfig is c as key path → value, through its JSON form (the names
// of the YAML file).
func flatConfig(c Config) (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var tree map[string]any
	if err := json.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			out[prefix] = v
			return
		}
		for k, sub := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			walk(p, sub)
		}
	}
	walk("", tree)
	if _, ok := out[""]; ok {
		return nil, errors.New("config: not an object")
	}
	return out, nil
}
