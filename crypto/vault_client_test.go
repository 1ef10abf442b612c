package crypto

import (
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// tokenAuth is token auth with token in a 0600 file.
func tokenAuth(t *testing.T, token string) VaultAuthConfig {
	t.Helper()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return VaultAuthConfig{Method: AuthToken, TokenFile: file}
}

// TestVaultRefusesInsecureTransport: a Vault over plain http and a Vault
// whose certificate does not verify (even with VAULT_SKIP_VERIFY=true and
// the other VAULT_* variables inherited) are refused, and the token never
// reaches them.
func TestVaultRefusesInsecureTransport(t *testing.T) {
	const token = "hvs.pgpseudo-test-token-never-sent"
	auth := tokenAuth(t, token)

	// Plain http: refused by the configuration, before any connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	defer ln.Close()
	_, err = NewVaultProvider(t.Context(), VaultConfig{Address: "http://" + ln.Addr().String(), Auth: auth}, zap.NewNop())
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("http vault: %v", err)
	}
	if _, err := NewVaultProvider(t.Context(), VaultConfig{Address: "http://vault.example:8200", Auth: auth, InsecureLoopbackHTTP: true}, zap.NewNop()); err == nil {
		t.Fatal("insecure_loopback_http allowed a host that is not loopback")
	}

	// Self-signed https with the environment asking to skip verification.
	var seen atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		if strings.Contains(r.Header.Get("X-Vault-Token"), token) {
			t.Errorf("the token reached an unverified server")
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	// The server's own certificate as an inherited CA must not be trusted
	// either: only vault.ca_file is.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_CACERT", caFile)
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_TOKEN", token)
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TLS_SERVER_NAME", "example.com")
	p, err := NewVaultProvider(t.Context(), VaultConfig{Address: srv.URL, Auth: auth}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Keyset(t.Context())
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed vault: %v", err)
	}
	if _, err := p.Identity(t.Context()); err == nil {
		t.Fatal("Identity answered before a login")
	}
	if n := seen.Load(); n != 0 {
		t.Fatalf("%d requests reached the unverified server", n)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections reached the http server", n)
	}
}

// TestVaultClientPinned: the token goes nowhere the configuration does not
// name — not to a redirect's target (the client library would follow
// 301/302/307 and re-send it), not through a proxy from the environment,
// not to a server trusted only through SSL_CERT_FILE or SSL_CERT_DIR.
func TestVaultClientPinned(t *testing.T) {
	auth := tokenAuth(t, "hvs.pgpseudo-pinned-client-token")
	var elsewhere atomic.Int32
	count := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	other := httptest.NewTLSServer(count)
	defer other.Close()
	proxy := httptest.NewServer(count)
	defer proxy.Close()
	vault := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer vault.Close()
	dir := t.TempDir()
	writeCA := func(name string, srv *httptest.Server) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Both test servers share httptest's certificate: trusting it for the
	// configured Vault trusts the redirect's target too, so only the
	// redirect rule can stop the token there.
	caFile := writeCA("vault-ca.pem", vault)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("VAULT_PROXY_ADDR", proxy.URL)
	p, err := NewVaultProvider(t.Context(), VaultConfig{Address: vault.URL, CAFile: caFile, Auth: auth}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Keyset(t.Context()); err == nil {
		t.Fatal("a Vault answering with a redirect gave a keyset")
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("%d requests followed the redirect or went through the environment's proxy", n)
	}

	// No ca_file: SSL_CERT_FILE and SSL_CERT_DIR naming the server's
	// certificate do not make it trusted.
	var seen atomic.Int32
	self := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1) }))
	defer self.Close()
	t.Setenv("SSL_CERT_FILE", writeCA("self.pem", self))
	t.Setenv("SSL_CERT_DIR", dir)
	p2, err := NewVaultProvider(t.Context(), VaultConfig{Address: self.URL, Auth: auth}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := p2.Keyset(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a server trusted only through SSL_CERT_FILE: %v", err)
	}
	if n := seen.Load(); n != 0 {
		t.Fatalf("%d requests reached a server trusted only through SSL_CERT_FILE", n)
	}
}

// TestVaultPathsArePlain: mounts and paths with empty, "." or ".."
// segments are refused (Vault checks a policy on the path as sent, the
// client reads a cleaned one), and a domain that is not a plain name is
// encoded in the detokenize path.
func TestVaultPathsArePlain(t *testing.T) {
	for _, kv := range []string{"users/alice/x/../../../pgpseudo/keyset", "./keyset", "a//b", "/abs", "trail/"} {
		err := Config{Provider: ProviderVault, Vault: VaultConfig{Address: "https://v:8200", KVPath: kv}}.WithDefaults().Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "vault.kv_path") {
			t.Errorf("kv_path %q: %v", kv, err)
		}
	}
	p, err := NewVaultProvider(t.Context(), VaultConfig{Address: "https://v:8200"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := p.DetokenizePath("customers"); got != "secret/data/pgpseudo/keyset/detokenize/customers" {
		t.Errorf("declared domain: %s", got)
	}
	for _, d := range []string{"..", "column:6:public2:..1:x", "a/b"} {
		if got := p.DetokenizePath(d); strings.Contains(strings.TrimPrefix(got, "secret/data/pgpseudo/keyset/detokenize/"), "/") || strings.Contains(got, "/../") || !strings.Contains(got, "/detokenize/x-") {
			t.Errorf("domain %q: path %s", d, got)
		}
	}
}

// TestVaultClientHTTP1: the Vault client speaks HTTP/1.1 only, so an
// inherited GODEBUG=http2debug cannot log its token and frames.
func TestVaultClientHTTP1(t *testing.T) {
	var protos atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos.Store(int32(r.ProtoMajor))
		w.WriteHeader(http.StatusForbidden)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := NewVaultProvider(t.Context(), VaultConfig{Address: srv.URL, CAFile: ca, Auth: tokenAuth(t, "hvs.x")}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, _ = p.Keyset(t.Context())
	if got := protos.Load(); got != 1 {
		t.Fatalf("request in HTTP/%d, want HTTP/1.1", got)
	}
}

// TestVaultCredentialFilesChecked: a FIFO as a credential or as a
// VAULT_CACERT the library reads does not hang start-up, and a Vault token
// file every user may read is refused.
func TestVaultCredentialFilesChecked(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open-token")
	if err := os.WriteFile(open, []byte("hvs.x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(cfg VaultConfig) error {
		done := make(chan error, 1)
		go func() {
			p, err := NewVaultProvider(t.Context(), cfg, zap.NewNop())
			if err == nil {
				defer p.Close()
				_, err = p.Keyset(t.Context())
			}
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("blocked")
			return nil
		}
	}
	base := VaultConfig{Address: "https://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		auth VaultAuthConfig
		want string
	}{
		{"token file is a FIFO", VaultAuthConfig{Method: AuthToken, TokenFile: fifo}, "not a regular file"},
		{"secret_id file is a FIFO", VaultAuthConfig{Method: AuthAppRole, RoleIDFile: tokenAuth(t, "role").TokenFile, SecretIDFile: fifo}, "not a regular file"},
		{"token file readable by every user", VaultAuthConfig{Method: AuthToken, TokenFile: open}, "readable by every user"},
	} {
		c := base
		c.Auth = tc.auth
		if err := run(c); !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	t.Setenv("VAULT_CACERT", fifo)
	if err := run(VaultConfig{Address: "https://127.0.0.1:1", Auth: tokenAuth(t, "hvs.x")}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "VAULT_CACERT") {
		t.Errorf("VAULT_CACERT naming a FIFO: %v", err)
	}
}
