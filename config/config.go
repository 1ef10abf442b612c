// Package config loads and validates pgpseudo's configuration file
// (docs/configuration.md). The CLI commands use it without linking the
// proxy.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/pgpseudo/pgpseudo/admin"
	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/internal/yamlconf"
)

// Config is the proxy configuration file (docs/configuration.md).
type Config struct {
	Listen   string    `yaml:"listen"`
	Upstream Upstream  `yaml:"upstream"`
	TLS      ClientTLS `yaml:"tls"`
	Auth     Auth      `yaml:"auth"`
	Limits   Limits    `yaml:"limits"`
	Log      Log       `yaml:"log"`
	// Policy is the policy file (docs/policy.md); without one pgpseudo
	// relays results unchanged.
	Policy string `yaml:"policy"`
	// PolicyDatabase is the database whose schema the policy describes:
	// serve checks the policy against it at start and on every reload,
	// and `policy check --db` does by default. Empty: auth.auth_database.
	PolicyDatabase string `yaml:"policy_database"`
	// PolicyShadow is a candidate policy decided beside the enforced one
	// on every statement; its differences are counted and recorded, never
	// enforced (docs/operations.md, shadow mode).
	PolicyShadow string `yaml:"policy_shadow"`
	// Keys configures the key provider (docs/keys.md). Optional until a
	// policy tokenizes something.
	Keys crypto.Config `yaml:"keys"`
	// Audit configures the access log (docs/audit.md); off without a path.
	Audit audit.Config `yaml:"audit"`
	// Admin configures the operator listener: metrics, liveness and
	// readiness (docs/operations.md); off without a listen address.
	Admin admin.Config `yaml:"admin"`
}

// Upstream says where the database is and how to reach it.
type Upstream struct {
	Address string      `yaml:"address"`
	TLS     UpstreamTLS `yaml:"tls"`
	// ConnectTimeout bounds dialing and the TLS handshake upstream.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Reuse keeps sessions of clients that ended at rest for the next
	// login of the same user with the same startup parameters.
	Reuse UpstreamReuse `yaml:"reuse"`
}

// UpstreamReuse configures the reuse of upstream sessions (off with
// MaxIdle 0).
type UpstreamReuse struct {
	// MaxIdle bounds the sessions kept in all.
	MaxIdle int `yaml:"max_idle"`
	// IdleTimeout is how long a kept session waits for its next client.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Upstream TLS modes.
const (
	TLSDisable    = "disable"
	TLSRequire    = "require"
	TLSVerifyFull = "verify-full"
)

// UpstreamTLS configures TLS towards the database.
type UpstreamTLS struct {
	Mode       string `yaml:"mode"`
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
}

// ClientTLS configures TLS towards clients. With a certificate set, every
// client must use TLS.
type ClientTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
}

// Authentication modes.
const (
	AuthSCRAM       = "scram"
	AuthPassthrough = "passthrough"
)

// Auth configures how clients are authenticated.
type Auth struct {
	Mode             string `yaml:"mode"`
	AuthUser         string `yaml:"auth_user"`
	AuthPasswordFile string `yaml:"auth_password_file"`
	AuthQuery        string `yaml:"auth_query"`
	AuthDatabase     string `yaml:"auth_database"`
}

// Limits bounds resource use.
type Limits struct {
	MaxConnections  int           `yaml:"max_connections"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// StartupTimeout bounds the time a client may take to finish startup
	// and authentication, so half-open connections cannot pile up.
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// MaxPendingRequests bounds the requests of one session that await
	// replies (a client pipelining without reading); beyond it the session
	// ends with 54000. MaxPreparedStatements bounds its protocol-level
	// prepared statements; a Parse beyond it fails with 54000. Both bound
	// what the proxy holds per session.
	MaxPendingRequests    int `yaml:"max_pending_requests"`
	MaxPreparedStatements int `yaml:"max_prepared_statements"`
	// MaxPreparedBytes bounds the statement text and result descriptions
	// one session's statements and portals hold in the proxy; a Parse or
	// Bind beyond it fails with 54000. MaxPreparedStatements also bounds
	// its named portals.
	MaxPreparedBytes audit.ByteSize `yaml:"max_prepared_bytes"`
	// CatalogTTL bounds how long catalog facts and the verdicts that
	// depend on them are reused when the proxy sees no DDL (DDL run
	// directly on the database is noticed after at most this long).
	CatalogTTL time.Duration `yaml:"catalog_ttl"`
}

// Log configures process logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultAuthQuery reads the verifier through a SECURITY DEFINER function,
// so the lookup role needs no superuser rights (docs/configuration.md shows
// how to create it).
const DefaultAuthQuery = "SELECT rolname, rolpassword FROM pgpseudo.get_auth($1)"

// Defaults returns a Config with every default set.
func Defaults() Config {
	return Config{
		Listen:   "127.0.0.1:6432",
		Upstream: Upstream{TLS: UpstreamTLS{Mode: TLSVerifyFull}, ConnectTimeout: 10 * time.Second, Reuse: UpstreamReuse{IdleTimeout: 30 * time.Second}},
		Auth:     Auth{Mode: AuthSCRAM, AuthQuery: DefaultAuthQuery, AuthDatabase: "postgres"},
		Limits: Limits{
			MaxConnections:  1000,
			ShutdownTimeout: 30 * time.Second,
			StartupTimeout:  30 * time.Second,
			CatalogTTL:      30 * time.Second,

			MaxPendingRequests:    65536,
			MaxPreparedStatements: 10000,
			MaxPreparedBytes:      64 << 20,
		},
		Log: Log{Level: "info", Format: "json"},
	}
}

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates config data; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	cfg := Defaults()
	pos, err := yamlconf.Decode(name, data, &cfg)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(pos); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func (c *Config) validate(pos *yamlconf.Positions) error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return pos.Errorf("listen", "want host:port, got %q", c.Listen)
	}
	if c.Upstream.Address == "" {
		return pos.Errorf("upstream.address", "is required")
	}
	if _, _, err := net.SplitHostPort(c.Upstream.Address); err != nil {
		return pos.Errorf("upstream.address", "want host:port, got %q", c.Upstream.Address)
	}
	switch c.Upstream.TLS.Mode {
	case TLSDisable, TLSRequire:
	case TLSVerifyFull:
		if c.Upstream.TLS.CAFile == "" {
			return pos.Errorf("upstream.tls.ca_file", "is required with mode verify-full")
		}
	default:
		return pos.Errorf("upstream.tls.mode", "must be disable, require or verify-full, got %q", c.Upstream.TLS.Mode)
	}
	if c.Upstream.ConnectTimeout <= 0 {
		return pos.Errorf("upstream.connect_timeout", "must be positive")
	}
	if c.Upstream.Reuse.MaxIdle < 0 {
		return pos.Errorf("upstream.reuse.max_idle", "must not be negative")
	}
	if c.Upstream.Reuse.MaxIdle > 0 && c.Auth.Mode == AuthPassthrough {
		return pos.Errorf("upstream.reuse.max_idle", "needs auth.mode scram: in passthrough mode only the database checks passwords, so a kept session would skip that check")
	}
	if c.Upstream.Reuse.MaxIdle > 0 && c.Upstream.Reuse.IdleTimeout <= 0 {
		return pos.Errorf("upstream.reuse.idle_timeout", "must be positive when max_idle is set")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return pos.Errorf("tls", "cert_file and key_file go together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		return pos.Errorf("tls.client_ca_file", "needs tls.cert_file and tls.key_file")
	}
	switch c.Auth.Mode {
	case AuthSCRAM:
		if c.Auth.AuthUser == "" {
			return pos.Errorf("auth.auth_user", "is required with mode scram")
		}
		if c.Auth.AuthPasswordFile == "" {
			return pos.Errorf("auth.auth_password_file", "is required with mode scram")
		}
		if c.Auth.AuthQuery == "" {
			return pos.Errorf("auth.auth_query", "must not be empty")
		}
	case AuthPassthrough:
	default:
		return pos.Errorf("auth.mode", "must be scram or passthrough, got %q", c.Auth.Mode)
	}
	if c.Limits.MaxConnections <= 0 {
		return pos.Errorf("limits.max_connections", "must be positive, got %d", c.Limits.MaxConnections)
	}
	if c.Limits.MaxPendingRequests <= 0 || c.Limits.MaxPreparedStatements <= 0 || c.Limits.MaxPreparedBytes <= 0 {
		return pos.Errorf("limits", "max_pending_requests, max_prepared_statements and max_prepared_bytes must be positive")
	}
	if c.Limits.IdleTimeout < 0 {
		return pos.Errorf("limits.idle_timeout", "must not be negative")
	}
	if c.Limits.CatalogTTL < time.Second {
		return pos.Errorf("limits.catalog_ttl", "must be at least 1s")
	}
	if c.Limits.ShutdownTimeout < 0 || c.Limits.StartupTimeout <= 0 {
		return pos.Errorf("limits", "shutdown_timeout must not be negative and startup_timeout must be positive")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return pos.Errorf("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		return pos.Errorf("log.format", "must be json or console, got %q", c.Log.Format)
	}
	if pos.Has("keys") {
		c.Keys = c.Keys.WithDefaults()
		if err := c.Keys.Validate(); err != nil {
			return pos.Errorf("keys", "%v", strings.TrimPrefix(err.Error(), crypto.ErrInvalidConfig.Error()+": "))
		}
	}
	if pos.Has("audit") {
		c.Audit = c.Audit.WithDefaults()
		if err := c.Audit.Validate(); err != nil {
			var ce *audit.ConfigError
			if errors.As(err, &ce) {
				return pos.Errorf(ce.Key, "%s", ce.Msg)
			}
			return pos.Errorf("audit", "%v", err)
		}
		switch {
		case c.Audit.Path == "":
		case c.Audit.SigningKeyFile == "" && c.Audit.SigningTransitKey == "":
			return pos.Errorf("audit.signing_key_file", "%s", audit.NoSigningKeyMsg)
		case c.Audit.SigningTransitKey != "" && c.Keys.Provider != crypto.ProviderVault:
			return pos.Errorf("audit.signing_transit_key", "needs keys.provider: vault (the Transit key lives in the Vault of keys.vault)")
		}
	}
	if err := c.Admin.Validate(); err != nil {
		var ce *admin.ConfigError
		if errors.As(err, &ce) {
			return pos.Errorf("admin."+ce.Key, "%s", ce.Msg)
		}
		return pos.Errorf("admin", "%v", err)
	}
	if c.Policy != "" && (c.Auth.AuthUser == "" || c.Auth.AuthPasswordFile == "") {
		return pos.Errorf("policy", "a policy needs auth.auth_user and auth.auth_password_file (catalog and role lookups)")
	}
	if c.PolicyShadow != "" && c.Policy == "" {
		return pos.Errorf("policy_shadow", "a shadow policy is compared with the enforced one: set policy too")
	}
	// Files are checked now so a typo fails at start, not at first login.
	for path, file := range map[string]string{
		"upstream.tls.ca_file":    c.Upstream.TLS.CAFile,
		"tls.cert_file":           c.TLS.CertFile,
		"tls.key_file":            c.TLS.KeyFile,
		"tls.client_ca_file":      c.TLS.ClientCAFile,
		"auth.auth_password_file": c.Auth.AuthPasswordFile,
		"policy":                  c.Policy,
		"policy_shadow":           c.PolicyShadow,
		"admin.cert_file":         c.Admin.CertFile,
		"admin.key_file":          c.Admin.KeyFile,
		"admin.token_file":        c.Admin.TokenFile,
	} {
		if file == "" {
			continue
		}
		if _, err := os.Stat(file); err != nil {
			return pos.Errorf(path, "%v", err)
		}
	}
	return nil
}

// ClientTLSConfig builds the TLS config for client connections, or nil,
// and returns the leaf certificate (for SCRAM channel binding).
func (c *Config) ClientTLSConfig() (*tls.Config, *x509.Certificate, error) {
	if c.TLS.CertFile == "" {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"postgresql"},
		// Result streams are bulk transfers: full-size records from the
		// start cost less CPU per byte.
		DynamicRecordSizingDisabled: true,
	}
	if c.TLS.ClientCAFile != "" {
		pool, err := loadPool(c.TLS.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	return cfg, leaf, nil
}

// UpstreamTLSConfig builds the TLS config for the upstream leg, or nil.
func (c *Config) UpstreamTLSConfig() (*tls.Config, error) {
	u := c.Upstream.TLS
	host, _, _ := net.SplitHostPort(c.Upstream.Address)
	switch u.Mode {
	case TLSDisable:
		return nil, nil
	case TLSRequire:
		// Like libpq's sslmode=require: encrypted, the server not verified.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // documented mode
	}
	pool, err := loadPool(u.CAFile)
	if err != nil {
		return nil, fmt.Errorf("upstream.tls.ca_file: %w", err)
	}
	name := u.ServerName
	if name == "" {
		name = host
	}
	return &tls.Config{RootCAs: pool, ServerName: name, MinVersion: tls.VersionTLS12}, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", file)
	}
	return pool, nil
}

// PolicyCheckDatabase is the database the policy is checked against.
func (c *Config) PolicyCheckDatabase() string {
	if c.PolicyDatabase != "" {
		return c.PolicyDatabase
	}
	return c.Auth.AuthDatabase
}
