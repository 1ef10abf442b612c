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
	"testing"

	"go.uber.org/zap"
)

// TestVaultRefusesInsecureTransport: a Vault over plain http and a Vault
// whose certificate does not verify (even with VAULT_SKIP_VERIFY=true and
// the other VAULT_* variables inherited) are refused, and the token never
// reaches them.
func TestVaultRefusesInsecureTransport(t *testing.T) {
	const token = "hvs.pgpseudo-test-token-never-sent"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	auth := VaultAuthConfig{Method: AuthToken, TokenFile: tokenFile}

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

// TestFileProviderRefusesUnsafeFiles: a symbolic link in the keyset's
// place, a file of another owner or too open a mode is refused.
func TestFileProviderRefusesUnsafeFiles(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "keyset.json")
	if _, err := NewFileProvider(FileConfig{Path: real}, nil).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	_, err := NewFileProvider(FileConfig{Path: link}, nil).Keyset(t.Context())
	if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlinked keyset: %v", err)
	}
	if _, err := NewFileProvider(FileConfig{Path: link}, nil).Rotate(t.Context()); !errors.Is(err, ErrInsecureKeyFile) {
		t.Fatalf("rotate through a symlink: %v", err)
	}
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFileProvider(FileConfig{Path: real}, nil).Keyset(t.Context()); !errors.Is(err, ErrInsecureKeyFile) {
		t.Fatalf("mode 0640: %v", err)
	}
	if err := os.Chmod(real, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(real, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileProvider(FileConfig{Path: real}, nil).Keyset(t.Context())
		if !errors.Is(err, ErrInsecureKeyFile) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("keyset of another owner: %v", err)
		}
	}
	// The configuration alone does not enable the file provider.
	err = Config{Provider: ProviderFile, File: FileConfig{Path: real}}.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "allow_insecure_file_keys") {
		t.Fatalf("file provider without opt-in: %v", err)
	}
}

// TestFileProviderRotationsSerialise: concurrent rotations of one keyset
// file each add a version; none is lost to a race between read and rename.
func TestFileProviderRotationsSerialise(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyset.json")
	if _, err := NewFileProvider(FileConfig{Path: path}, nil).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := NewFileProvider(FileConfig{Path: path}, nil).Rotate(t.Context())
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st, err := NewFileProvider(FileConfig{Path: path}, nil).Status(t.Context())
	if err != nil || st.Primary != n+1 || len(st.Versions) != n+1 {
		t.Fatalf("after %d concurrent rotations: primary %d, %d versions, %v", n, st.Primary, len(st.Versions), err)
	}
}
