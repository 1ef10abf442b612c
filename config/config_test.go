package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgpseudo/pgpseudo/internal/yamlconf"
)

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(ca, []byte("x"), 0o600)
	os.WriteFile(pw, []byte("x"), 0o600)
	base := "listen: 127.0.0.1:6432\nupstream:\n  address: db:5432\n  tls:\n    mode: verify-full\n    ca_file: " + ca +
		"\nauth:\n  auth_user: lookup\n  auth_password_file: " + pw + "\n"
	tests := []struct {
		name     string
		yaml     string
		wantLine int
		wantPath string
		wantMsg  string
	}{
		{"valid", base, 0, "", ""},
		{"unknown top-level key", base + "listn: x\n", 10, "listn", "unknown key"},
		{"unknown nested key", strings.Replace(base, "    mode:", "    modee: x\n    mode:", 1), 5, "upstream.tls.modee", "unknown key"},
		{"bad tls mode", strings.Replace(base, "verify-full", "sometimes", 1), 5, "upstream.tls.mode", "must be disable, require or verify-full"},
		{"missing upstream", "listen: 127.0.0.1:1\n", 0, "upstream.address", "is required"},
		{"bad auth mode", base + "  mode: md5\n", 10, "auth.mode", "must be scram or passthrough"},
		{"wrong type", base + "limits:\n  max_connections: lots\n", 11, "", "cannot unmarshal"},
		{"duration without unit", base + "limits:\n  idle_timeout: 10\n", 11, "limits.idle_timeout", "write 10s"},
		{"bad duration", base + "limits:\n  idle_timeout: soon\n", 11, "", "idle_timeout"},
		{"negative limit", base + "limits:\n  max_connections: -1\n", 11, "limits.max_connections", "must be positive"},
		{"bad log format", base + "log:\n  format: xml\n", 11, "log.format", "must be json or console"},
		{"missing file", strings.Replace(base, pw, "/nonexistent/pw", 1), 9, "auth.auth_password_file", "no such file"},
		{"verify-full without CA", strings.Replace(base, "    ca_file: "+ca+"\n", "", 1), 4, "upstream.tls.ca_file", "is required"},
		{"keys without provider", base + "keys:\n  file: {path: /x}\n", 10, "keys", "provider is required"},
		{"keys bad vault method", base + "keys:\n  provider: vault\n  vault: {address: http://v:8200, auth: {method: ldap}}\n", 10, "keys", "vault.auth.method"},
		{"keys unknown key", base + "keys:\n  provider: file\n  allow_insecure_file_keys: true\n  fle: {}\n", 13, "keys.fle", "unknown key"},
		{"yaml syntax", "listen: [\n", 0, "", "did not find"},
		{"reuse in passthrough", strings.Replace(base, "auth:\n", "  reuse: {max_idle: 5}\nauth:\n  mode: passthrough\n", 1), 0, "upstream.reuse.max_idle", "needs auth.mode scram"},
		{"negative reuse", strings.Replace(base, "auth:\n", "  reuse: {max_idle: -1}\nauth:\n", 1), 0, "upstream.reuse.max_idle", "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("pgpseudo.yaml", []byte(tt.yaml))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Auth.Mode != AuthSCRAM || cfg.Limits.MaxConnections != 1000 || cfg.Auth.AuthQuery != DefaultAuthQuery {
					t.Fatalf("defaults not applied: %+v", cfg)
				}
				return
			}
			var ce *yamlconf.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *yamlconf.Error", err)
			}
			if !strings.Contains(ce.Msg, tt.wantMsg) && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", err, tt.wantMsg)
			}
			if tt.wantLine != 0 && ce.Line != tt.wantLine {
				t.Errorf("line = %d, want %d (%v)", ce.Line, tt.wantLine, err)
			}
			if tt.wantPath != "" && ce.Path != tt.wantPath {
				t.Errorf("path = %q, want %q", ce.Path, tt.wantPath)
			}
			if !strings.HasPrefix(err.Error(), "pgpseudo.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestExampleConfigParses: the shipped example is valid apart from the
// files it names, which do not exist here.
func TestExampleConfigParses(t *testing.T) {
	data, err := os.ReadFile("../configs/pgpseudo.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("pgpseudo.example.yaml", data)
	var ce *yamlconf.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "no such file") {
		t.Fatalf("example config: %v (want only a missing-file error)", err)
	}
}
