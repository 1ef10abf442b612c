package admin

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Config is the "admin:" section of the proxy configuration
// (docs/operations.md). The listener is off without Listen.
type Config struct {
	// Listen is the host:port of the admin listener.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile serve it over TLS; they may be left out only
	// when Listen is a loopback address.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// TokenFile holds the bearer token that /metrics and the details of
	// /readyz require (mode 0600 or stricter).
	TokenFile string `yaml:"token_file"`
	// Profiling serves Go's CPU, heap and goroutine profiles under
	// /debug/pprof/ (bearer token required), for measuring the proxy
	// under its real load. Profiles hold code locations and counts, never
	// the data the proxy relays.
	Profiling bool `yaml:"profiling"`
}

// ConfigError names the offending key of the admin section.
type ConfigError struct {
	Key, Msg string
}

func (e *ConfigError) Error() string { return "admin." + e.Key + ": " + e.Msg }

// Validate checks a section that is on (Listen set); files are read by New.
func (c Config) Validate() error {
	if c.Listen == "" {
		if c.CertFile != "" || c.KeyFile != "" || c.TokenFile != "" {
			return &ConfigError{"listen", "is required when the admin section sets files"}
		}
		return nil
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return &ConfigError{"listen", fmt.Sprintf("want host:port, got %q", c.Listen)}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return &ConfigError{"cert_file", "cert_file and key_file go together"}
	}
	if c.CertFile == "" && !loopback(host) {
		return &ConfigError{"cert_file", fmt.Sprintf("is required when listen is not a loopback address (got %q): metrics and readiness details would cross the network in clear", host)}
	}
	if c.TokenFile == "" {
		return &ConfigError{"token_file", "is required: /metrics answers only a bearer token"}
	}
	return nil
}

// loopback reports whether host can only be reached from this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// errNoToken is returned for an empty token file.
var errNoToken = errors.New("the token file is empty")
