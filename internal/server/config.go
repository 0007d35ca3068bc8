package server

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keylessci/keyless/internal/iam"
	"github.com/keylessci/keyless/internal/issuer"
)

// Config is everything `keyless serve` can be told, from the config file
// (strict YAML), the environment and flags, in that order of precedence
// (flags win).
type Config struct {
	Listen    string `json:"listen"`
	Data      string `json:"data"`
	AccountID string `json:"account_id"`
	Region    string `json:"region"`

	// Issuers are the built-in OIDC issuers; --issuer-url adds one.
	Issuers []IssuerConfig `json:"issuers"`

	AllowLoopbackHTTPIssuers   bool `json:"allow_loopback_http_issuers"`
	AllowPrivateNetworkIssuers bool `json:"allow_private_network_issuers"`

	// DebugListen, when set, serves Go's pprof profiles on this address
	// (keep it on loopback: profiles reveal memory contents).
	DebugListen string `json:"debug_listen"`

	// MasterKeyFile holds the base64 master key; KEYLESS_MASTER_KEY wins.
	// Default DATA/master.key, created on first start.
	MasterKeyFile string `json:"master_key_file"`

	// Metrics decides who may read the Prometheus metrics. By default (for
	// compatibility) GET /metrics is served on the main listener without
	// authentication; metrics.listen moves it to a separate address (and
	// off the main listener), metrics.bearer_token_file requires
	// "Authorization: Bearer <token>" wherever it is served. Metric label
	// values never carry secrets or caller data (action names, AWS error
	// codes, registered OIDC provider URLs; no access key ids, subjects,
	// claims or tokens: keep it so when adding metrics), but
	// counts by action and error code still describe traffic, so on a
	// reachable listener set one of the two. See MetricsConfig.
	Metrics MetricsConfig `json:"metrics"`

	Log    LogConfig   `json:"log"`
	Limits iam.Limits  `json:"limits"`
	Audit  AuditConfig `json:"audit"`
	HTTP   HTTPConfig  `json:"http"`
	TLS    TLSConfig   `json:"tls"`
	STS    STSConfig   `json:"sts"`
	OIDC   OIDCConfig  `json:"oidc"`
	IAM    IAMConfig   `json:"iam"`
	// Broker tunes broker mode: roles tagged keyless:upstream-role-arn
	// are exchanged at an upstream AWS STS (docs/broker.md).
	Broker BrokerConfig `json:"broker"`

	// RefusalLimit throttles sources whose requests keep being refused
	// before authentication (junk tokens, bad signatures); see
	// RefusalLimitConfig.
	RefusalLimit RefusalLimitConfig `json:"refusal_limit"`

	// Guardrail is what CreateRole and UpdateAssumeRolePolicy do with the
	// trust-policy linter's findings: enforce (default: refuse CRITICAL
	// findings), warn (accept and record them) or off (iam.GuardrailMode).
	// iam.skip_shared_issuer_controls: true, its older spelling, means off
	// whatever this says (GuardrailMode).
	Guardrail string `json:"guardrail"`
}

// GuardrailMode is the guardrail's effective mode: off when
// iam.skip_shared_issuer_controls is set, else Guardrail.
func (c *Config) GuardrailMode() iam.GuardrailMode {
	if c.IAM.SkipSharedIssuerControls {
		return iam.GuardrailOff
	}
	m, err := iam.ParseGuardrailMode(c.Guardrail)
	if err != nil {
		return iam.GuardrailEnforce // Validate refuses it first
	}
	return m
}

// IssuerConfig configures one built-in issuer (see issuer.Config for the
// meaning and defaults of each field).
type IssuerConfig struct {
	ID                   string   `json:"id"`
	URL                  string   `json:"url"`
	Profile              string   `json:"profile"`
	Algorithm            string   `json:"algorithm"`
	Org                  string   `json:"org"`
	TokenLifetime        Duration `json:"token_lifetime"`
	MaxTokenLifetime     Duration `json:"max_token_lifetime"`
	RotationPeriod       Duration `json:"rotation_period"`
	JWKSMaxAge           Duration `json:"jwks_max_age"`
	PublishInterval      Duration `json:"publish_interval"`
	ServiceDocumentation string   `json:"service_documentation"`
}

// IssuerConfigs converts the configured issuers for package issuer.
func (c *Config) IssuerConfigs() []issuer.Config {
	out := make([]issuer.Config, 0, len(c.Issuers))
	for _, is := range c.Issuers {
		out = append(out, issuer.Config{
			ID: is.ID, URL: is.URL, Profile: is.Profile, Algorithm: is.Algorithm, Org: is.Org,
			TokenLifetime: is.TokenLifetime.D(), MaxTokenLifetime: is.MaxTokenLifetime.D(), RotationPeriod: is.RotationPeriod.D(),
			JWKSMaxAge: is.JWKSMaxAge.D(), PublishInterval: is.PublishInterval.D(), ServiceDocumentation: is.ServiceDocumentation,
		})
	}
	return out
}

// IAMConfig tunes IAM's write-time checks.
type IAMConfig struct {
	// SkipSharedIssuerControls accepts trust policies that trust a shared
	// OIDC issuer (GitHub Actions, gitlab.com, ...) without pinning its
	// tenant claim. AWS refuses them for new writes but keeps roles written
	// before; set this only to import such roles. It is the older spelling
	// of `guardrail: off` and wins over Config.Guardrail.
	SkipSharedIssuerControls bool `json:"skip_shared_issuer_controls"`
}

// BrokerConfig tunes broker mode (package broker).
type BrokerConfig struct {
	// Issuer is the id of the built-in issuer that signs broker tokens
	// (default: the first configured issuer). Without any issuer, broker
	// roles are refused with an explanation.
	Issuer string `json:"issuer"`
	// STSEndpoint is the upstream STS endpoint of roles without a
	// keyless:upstream-sts-endpoint tag (default: the AWS SDKs' endpoint
	// settings in the server's environment, else the region's endpoint;
	// broker.FromEnv).
	STSEndpoint string `json:"sts_endpoint"`
	// AllowedSTSEndpoints are the endpoints, besides AWS's own STS
	// endpoints, a role's keyless:upstream-sts-endpoint tag may name.
	AllowedSTSEndpoints []string `json:"allowed_sts_endpoints"`
	// Timeout bounds one upstream call (default 5s, at most 1m).
	Timeout Duration `json:"timeout"`
	// TokenLifetime is the lifetime of the token keyless mints for the
	// upstream (default and maximum 5m, at least 1m).
	TokenLifetime Duration `json:"token_lifetime"`
}

func (b *BrokerConfig) validate(issuers []IssuerConfig) []error {
	var errs []error
	if b.Issuer != "" && !slices.ContainsFunc(issuers, func(is IssuerConfig) bool { return is.ID == b.Issuer }) {
		errs = append(errs, fmt.Errorf("broker.issuer %q: no issuer has that id", b.Issuer))
	}
	if _, ok := iam.NormalizeSTSEndpoint(b.STSEndpoint); b.STSEndpoint != "" && !ok {
		errs = append(errs, fmt.Errorf("broker.sts_endpoint %q: want an http(s) URL without path, query or user info", b.STSEndpoint))
	}
	for i, e := range b.AllowedSTSEndpoints {
		if _, ok := iam.NormalizeSTSEndpoint(e); !ok {
			errs = append(errs, fmt.Errorf("broker.allowed_sts_endpoints[%d] %q: want an http(s) URL without path, query or user info", i, e))
		}
	}
	// Zero stands for the default (package broker).
	if d := b.Timeout.D(); d < 0 || d > time.Minute {
		errs = append(errs, fmt.Errorf("broker.timeout %s: want more than 0 and at most 1m", d))
	}
	if d := b.TokenLifetime.D(); d != 0 && (d < time.Minute || d > 5*time.Minute || d%time.Second != 0) {
		errs = append(errs, fmt.Errorf("broker.token_lifetime %s: want whole seconds from 1m to 5m", d))
	}
	return errs
}

// LogConfig chooses the log format and level.
type LogConfig struct {
	Format string `json:"format"` // json (default) or text
	Level  string `json:"level"`  // debug, info (default), warn, error
}

// AuditConfig tunes the audit trail.
type AuditConfig struct {
	SealInterval Duration `json:"seal_interval"`
	// GroupCommitWindow is how long the journal keeps gathering exchange
	// events into one fsync once they arrive at 4,000/s or more (0 = never
	// wait). Longer windows mean fewer fsyncs under load, at up to this
	// much added latency per exchange.
	GroupCommitWindow Duration `json:"group_commit_window"`
	// Stdout also writes every event as a JSON line to stdout.
	Stdout bool `json:"stdout"`
	// RedactClaims lists token claims whose values the trail replaces.
	RedactClaims []string `json:"redact_claims"`
	// MaxDiskBytes is the ceiling of the trail's size on disk (DATA/audit;
	// 0 = none). At the ceiling the trail refuses every event, so the
	// server refuses what it cannot record (no credentials, no change).
	MaxDiskBytes int64 `json:"max_disk_bytes"`
	// MinFreeBytes is the free space the trail leaves on its filesystem
	// (default 128 MiB; 0 = none): the same refusal when it would go
	// below.
	MinFreeBytes int64 `json:"min_free_bytes"`
	// DiskAlarmRatio is the fill (the larger of size/max_disk_bytes and
	// the filesystem's used share of the space above min_free_bytes) at
	// which keyless_audit_disk_alarm turns 1 and a warning is logged
	// (default 0.8).
	DiskAlarmRatio float64 `json:"disk_alarm_ratio"`
	// DiskShedRatio is the fill from which requests refused before
	// authentication are no longer recorded one by one, only counted in
	// the periodic refusal reports (default 0.9).
	DiskShedRatio float64 `json:"disk_shed_ratio"`
}

// HTTPConfig bounds requests.
type HTTPConfig struct {
	MaxBodyBytes      int64    `json:"max_body_bytes"`
	ReadHeaderTimeout Duration `json:"read_header_timeout"`
	ReadTimeout       Duration `json:"read_timeout"`
	WriteTimeout      Duration `json:"write_timeout"`
	IdleTimeout       Duration `json:"idle_timeout"`
	ShutdownTimeout   Duration `json:"shutdown_timeout"`
}

// TLSConfig serves HTTPS when both files are set.
type TLSConfig struct {
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
}

// STSConfig tunes token validation and sessions.
type STSConfig struct {
	// MaxTokenAge refuses ID tokens older than this (AWS: about 1 day).
	MaxTokenAge Duration `json:"max_token_age"`
	// MaxTokenLifetime refuses ID tokens whose exp − iat is longer
	// (InvalidIdentityToken), 1m to 168h; a provider's
	// keyless:max-token-lifetime tag overrides it for its issuer.
	MaxTokenLifetime Duration `json:"max_token_lifetime"`
	// ClockLeeway tolerates issuer clock skew on nbf/iat/exp.
	ClockLeeway Duration `json:"clock_leeway"`
}

// Duration is a time.Duration written as "5m" in YAML.
type Duration time.Duration

// UnmarshalJSON accepts Go duration strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use forms like 30s, 5m, 1h)", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Listen: "127.0.0.1:8400",
		Data:   "./keyless-data",
		Region: "us-east-1",
		Log:    LogConfig{Format: "json", Level: "info"},
		Audit: AuditConfig{SealInterval: Duration(5 * time.Minute), GroupCommitWindow: Duration(2 * time.Millisecond),
			MinFreeBytes: 128 << 20, DiskAlarmRatio: 0.8, DiskShedRatio: 0.9},
		RefusalLimit: defaultRefusalLimit(),
		Guardrail:    string(iam.GuardrailEnforce),
		HTTP: HTTPConfig{
			MaxBodyBytes:      1 << 20,
			ReadHeaderTimeout: Duration(10 * time.Second),
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(30 * time.Second),
			IdleTimeout:       Duration(2 * time.Minute),
			ShutdownTimeout:   Duration(20 * time.Second),
		},
		STS:    STSConfig{MaxTokenAge: Duration(24 * time.Hour), MaxTokenLifetime: Duration(24 * time.Hour), ClockLeeway: Duration(60 * time.Second)},
		Broker: BrokerConfig{Timeout: Duration(5 * time.Second), TokenLifetime: Duration(5 * time.Minute)},
	}
}

// LoadFile merges a YAML config file over c. Unknown keys are errors, so a
// typo never silently falls back to a default; every error names the file,
// the line and the key path (*ConfigError), an unknown key the nearest
// valid one. On error c is unchanged.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return decodeConfigYAML(path, b, c)
}

// ApplyEnv applies KEYLESS_* environment variables (getenv is os.Getenv in
// production). A boolean variable that is not a boolean (ParseBool) is an
// error naming the variable; the other variables are applied regardless.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	set := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set("KEYLESS_LISTEN", &c.Listen)
	set("KEYLESS_DATA", &c.Data)
	set("KEYLESS_ACCOUNT_ID", &c.AccountID)
	set("KEYLESS_REGION", &c.Region)
	set("KEYLESS_MASTER_KEY_FILE", &c.MasterKeyFile)
	set("KEYLESS_LOG_FORMAT", &c.Log.Format)
	set("KEYLESS_LOG_LEVEL", &c.Log.Level)
	set("KEYLESS_DEBUG_LISTEN", &c.DebugListen)
	set("KEYLESS_METRICS_LISTEN", &c.Metrics.Listen)
	set("KEYLESS_METRICS_BEARER_TOKEN_FILE", &c.Metrics.BearerTokenFile)
	var errs []error
	setBool := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
				return
			}
			*dst = b
		}
	}
	setBool("KEYLESS_ALLOW_LOOPBACK_HTTP_ISSUERS", &c.AllowLoopbackHTTPIssuers)
	if v := getenv("KEYLESS_ISSUER_URL"); v != "" {
		c.AddIssuerURL(v)
	}
	return errors.Join(errs...)
}

// ErrNotBool is returned by ParseBool for a word that is not a boolean.
var ErrNotBool = errors.New("want true or false (also 1/0, yes/no, on/off, in any case)")

// ParseBool reads the usual spellings of a boolean: 1/0, true/false,
// yes/no, on/off, t/f, y/n, in any case, surrounding spaces ignored.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "t", "yes", "y", "on":
		return true, nil
	case "0", "false", "f", "no", "n", "off":
		return false, nil
	}
	return false, ErrNotBool
}

// AddIssuerURL adds a built-in issuer with default settings, unless one
// with that URL is configured already.
func (c *Config) AddIssuerURL(u string) {
	for _, is := range c.Issuers {
		if is.URL == u {
			return
		}
	}
	id := issuer.DefaultID
	if len(c.Issuers) > 0 {
		id = fmt.Sprintf("issuer-%d", len(c.Issuers)+1)
	}
	c.Issuers = append(c.Issuers, IssuerConfig{ID: id, URL: u})
}

// Validate checks the merged configuration before anything starts.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: want host:port (for example 127.0.0.1:8400)", c.Listen))
	}
	if c.Data == "" {
		errs = append(errs, errors.New("data: a directory is required"))
	}
	errs = append(errs, c.Metrics.validate(c.Listen)...)
	if c.AccountID != "" && !iam.ValidAccountID(c.AccountID) {
		errs = append(errs, fmt.Errorf("account_id %q: want 12 digits", c.AccountID))
	}
	if c.Region == "" || strings.ContainsAny(c.Region, " /") {
		errs = append(errs, fmt.Errorf("region %q: want a region name such as us-east-1", c.Region))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want json or text", c.Log.Format))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls: set both cert_file and key_file, or neither"))
	}
	if c.HTTP.MaxBodyBytes < 64<<10 {
		errs = append(errs, errors.New("http.max_body_bytes: at least 65536 (IAM policies can be 131072 characters)"))
	}
	seen := map[string]bool{}
	for i, is := range c.Issuers {
		u, err := url.Parse(is.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("issuers[%d].url %q: want an absolute http(s) URL without query or fragment", i, is.URL))
		}
		if is.ID == "" || seen[is.ID] {
			errs = append(errs, fmt.Errorf("issuers[%d].id %q: want a unique, non-empty id", i, is.ID))
		}
		seen[is.ID] = true
	}
	if _, err := parseConnectTo(c.OIDC.ConnectTo); err != nil {
		errs = append(errs, err)
	}
	if w := c.Audit.GroupCommitWindow.D(); w < 0 || w > 50*time.Millisecond {
		errs = append(errs, fmt.Errorf("audit.group_commit_window %s: want between 0 and 50ms", w))
	}
	if err := c.Audit.validateDisk(); err != nil {
		errs = append(errs, err)
	}
	if err := c.RefusalLimit.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.Broker.validate(c.Issuers)...)
	if _, err := iam.ParseGuardrailMode(c.Guardrail); err != nil {
		errs = append(errs, err)
	}
	if c.STS.MaxTokenAge.D() <= 0 || c.STS.ClockLeeway.D() < 0 || c.STS.ClockLeeway.D() > 5*time.Minute {
		errs = append(errs, errors.New("sts: max_token_age must be positive and clock_leeway between 0 and 5m"))
	}
	if l := c.STS.MaxTokenLifetime.D(); l < iam.MinProviderTokenLifetime || l > iam.MaxProviderTokenLifetime || l%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sts.max_token_lifetime %s: want whole seconds from 1m to 168h (7 days)", l))
	}
	return errors.Join(errs...)
}
