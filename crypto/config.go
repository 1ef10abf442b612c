package crypto

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config selects and configures the key provider. The proxy embeds it in
// its own configuration (typically under a "keys" key).
type Config struct {
	// Provider is "vault" (production) or "file" (demos and tests only).
	Provider string `yaml:"provider"`
	// AllowInsecureFileKeys must be true to use the file provider: its
	// keys lie unencrypted on local disk, which is for demos and tests.
	AllowInsecureFileKeys bool `yaml:"allow_insecure_file_keys"`
	// RefreshInterval is how often the proxy reloads the keyset, so a
	// rotation made elsewhere is picked up without a restart (default one
	// minute; at least one second).
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// ReadyMaxAge makes /readyz fail its keys check once the keyset was
	// last loaded longer ago than this (the provider unreachable for that
	// long); cached keys still serve. 0 (the default): cached keys keep
	// the proxy ready, so a Vault outage does not take every replica out
	// of its load balancer at once.
	ReadyMaxAge time.Duration `yaml:"ready_max_age"`
	File        FileConfig    `yaml:"file"`
	Vault       VaultConfig   `yaml:"vault"`
}

// defaultRefresh is the keyset refresh interval when none is configured.
const defaultRefresh = time.Minute

// FileConfig configures the file provider.
type FileConfig struct {
	// Path of the keyset file; created with mode 0600 by keys init.
	Path string `yaml:"path"`
}

// VaultConfig configures the Vault provider.
type VaultConfig struct {
	// Address is Vault's URL, e.g. https://vault.example.internal:8200.
	// Only https is accepted (InsecureLoopbackHTTP aside).
	Address string `yaml:"address"`
	// InsecureLoopbackHTTP accepts http:// for a Vault on a loopback
	// address, for local tests only: tokens, AppRole secrets and the
	// unwrapped keyset would otherwise travel in clear.
	InsecureLoopbackHTTP bool `yaml:"insecure_loopback_http"`
	// CAFile is a PEM bundle to verify Vault's certificate (optional).
	CAFile string `yaml:"ca_file"`
	// ServerName overrides the TLS server name (SNI) (optional).
	ServerName string          `yaml:"server_name"`
	Auth       VaultAuthConfig `yaml:"auth"`
	// TransitMount and TransitKey name the Transit key that wraps the
	// keyset (the KEK). Defaults: "transit", "pgpseudo".
	TransitMount string `yaml:"transit_mount"`
	TransitKey   string `yaml:"transit_key"`
	// KVMount and KVPath locate the wrapped keyset in KV v2. Defaults:
	// "secret", "pgpseudo/keyset".
	KVMount string `yaml:"kv_mount"`
	KVPath  string `yaml:"kv_path"`
}

// VaultAuthConfig configures how pgpseudo logs in to Vault.
type VaultAuthConfig struct {
	// Method is token, approle or kubernetes.
	Method string `yaml:"method"`
	// TokenFile holds a Vault token (method token); when empty the
	// VAULT_TOKEN environment variable is used.
	TokenFile string `yaml:"token_file"`
	// RoleIDFile and SecretIDFile hold the AppRole credentials.
	RoleIDFile   string `yaml:"role_id_file"`
	SecretIDFile string `yaml:"secret_id_file"`
	// KubernetesRole is the Vault role for Kubernetes auth; JWTPath the
	// service account token (default: the in-pod standard path).
	KubernetesRole string `yaml:"kubernetes_role"`
	JWTPath        string `yaml:"jwt_path"`
	// Mount is the auth method's mount path (default: the method name).
	Mount string `yaml:"mount"`
}

// Provider names.
const (
	ProviderVault = "vault"
	ProviderFile  = "file"
)

// Vault auth methods.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
)

// defaultJWTPath is where Kubernetes mounts a pod's service account token.
const defaultJWTPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// WithDefaults returns c with empty optional fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = defaultRefresh
	}
	v := &c.Vault
	if v.TransitMount == "" {
		v.TransitMount = "transit"
	}
	if v.TransitKey == "" {
		v.TransitKey = "pgpseudo"
	}
	if v.KVMount == "" {
		v.KVMount = "secret"
	}
	if v.KVPath == "" {
		v.KVPath = "pgpseudo/keyset"
	}
	if v.Auth.Method == "" {
		v.Auth.Method = AuthToken
	}
	if v.Auth.Mount == "" {
		v.Auth.Mount = v.Auth.Method
	}
	if v.Auth.Method == AuthKubernetes && v.Auth.JWTPath == "" {
		v.Auth.JWTPath = defaultJWTPath
	}
	return c
}

// Validate reports every problem, each naming its configuration key; the
// result wraps ErrInvalidConfig. Call it on WithDefaults' result.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.RefreshInterval != 0 && c.RefreshInterval < time.Second {
		bad("refresh_interval %s is below one second", c.RefreshInterval)
	}
	switch c.Provider {
	case ProviderFile:
		if c.File.Path == "" {
			bad("file.path is required when provider is file")
		}
		if !c.AllowInsecureFileKeys {
			bad("provider file keeps the keys unencrypted on local disk, for demos and tests only: set allow_insecure_file_keys: true to use it, or use provider: vault")
		}
	case ProviderVault:
		errs = append(errs, c.Vault.validate()...)
	case "":
		bad("provider is required (vault or file)")
	default:
		bad("provider %q is not vault or file", c.Provider)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// loopbackHost reports whether host is a literal loopback IP address (a
// name such as localhost resolves through files others may change).
func loopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cleanVaultPath reports whether a mount or path is made of plain
// segments: no empty, "." or ".." segment and no leading or trailing
// slash. Vault matches its policies against the path as sent, while the
// client cleans some paths, so "a/../b" would be checked as one path and
// read as another.
func cleanVaultPath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (v VaultConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if v.Address == "" {
		bad("vault.address is required")
	} else if u, err := url.Parse(v.Address); err != nil || u.Host == "" {
		bad("vault.address %q must be an https URL with a host", v.Address)
	} else if u.Scheme == "http" && !(v.InsecureLoopbackHTTP && loopbackHost(u.Hostname())) {
		bad("vault.address %q is plain http: the Vault token, AppRole secrets and the keyset would travel unencrypted; use https (insecure_loopback_http: true allows http to a loopback address, for local tests only)", v.Address)
	} else if u.Scheme != "https" && u.Scheme != "http" {
		bad("vault.address %q must be an https URL", v.Address)
	}
	switch v.Auth.Method {
	case AuthToken:
	case AuthAppRole:
		if v.Auth.RoleIDFile == "" {
			bad("vault.auth.role_id_file is required when vault.auth.method is approle")
		}
		if v.Auth.SecretIDFile == "" {
			bad("vault.auth.secret_id_file is required when vault.auth.method is approle")
		}
	case AuthKubernetes:
		if v.Auth.KubernetesRole == "" {
			bad("vault.auth.kubernetes_role is required when vault.auth.method is kubernetes")
		}
		if v.Auth.JWTPath == "" {
			bad("vault.auth.jwt_path is required when vault.auth.method is kubernetes")
		}
	case "":
		bad("vault.auth.method is required (token, approle or kubernetes)")
	default:
		bad("vault.auth.method %q is not token, approle or kubernetes", v.Auth.Method)
	}
	for key, val := range map[string]string{
		"vault.transit_mount": v.TransitMount, "vault.transit_key": v.TransitKey,
		"vault.kv_mount": v.KVMount, "vault.kv_path": v.KVPath, "vault.auth.mount": v.Auth.Mount,
	} {
		switch {
		case val == "":
			bad("%s is required", key)
		case !cleanVaultPath(val):
			bad("%s %q must be plain path segments (no empty, '.' or '..' segment, no leading or trailing '/')", key, val)
		}
	}
	return errs
}
