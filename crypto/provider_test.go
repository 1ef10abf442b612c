package crypto

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestFileProvider(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	path := filepath.Join(t.TempDir(), "keyset.json")
	p := NewFileProvider(FileConfig{Path: path}, zap.New(core))
	if w := logs.FilterMessageSnippet("never in production").All(); len(w) != 1 || w[0].Level != zap.WarnLevel {
		t.Fatalf("want one production warning, got %v", logs.All())
	}
	ctx := t.Context()
	if _, err := p.Keyset(ctx); !errors.Is(err, ErrNoKeyset) {
		t.Fatalf("before init: %v", err)
	}
	st, err := p.Init(ctx)
	if err != nil || st.Primary != 1 || st.Provider != ProviderFile {
		t.Fatalf("init: %+v %v", st, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", fi.Mode().Perm())
	}
	if _, err := p.Init(ctx); !errors.Is(err, ErrKeysetExists) {
		t.Fatalf("second init: %v", err)
	}
	ks1, _ := p.Keyset(ctx)
	tok := apply(t, mustNew(t, Spec{Kind: KindToken, Domain: "d", Reversible: true}, ks1, OIDText, FormatText), []byte("v"))
	if st, err = p.Rotate(ctx); err != nil || st.Primary != 2 || len(st.Versions) != 2 {
		t.Fatalf("rotate: %+v %v", st, err)
	}
	fi, _ = os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after rotate %o", fi.Mode().Perm())
	}
	// A fresh provider (a restarted proxy) reads both versions.
	p2 := NewFileProvider(FileConfig{Path: path}, zap.NewNop())
	if got, err := Detokenize(ctx, p2, "d", string(tok)); err != nil || got != "v" {
		t.Fatalf("detokenize after rotate: %q %v", got, err)
	}
	if st, err := p2.Status(ctx); err != nil || st.Location != path {
		t.Fatalf("status %+v %v", st, err)
	}
	// Group/world readable files are refused.
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		p3 := NewFileProvider(FileConfig{Path: path}, zap.NewNop())
		if _, err := p3.Keyset(ctx); !errors.Is(err, ErrInsecureKeyFile) {
			t.Fatalf("mode %o: %v", mode, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"empty", Config{}, []string{"provider is required"}},
		{"bad provider", Config{Provider: "kms"}, []string{`provider "kms"`}},
		{"file", Config{Provider: "file"}, []string{"file.path is required", "allow_insecure_file_keys"}},
		{"vault", Config{Provider: "vault"}, []string{"vault.address is required"}},
		{"vault url", Config{Provider: "vault", Vault: VaultConfig{Address: "vault:8200"}}, []string{"vault.address"}},
		{"approle", Config{Provider: "vault", Vault: VaultConfig{Address: "https://v:8200", Auth: VaultAuthConfig{Method: "approle"}}},
			[]string{"vault.auth.role_id_file is required", "vault.auth.secret_id_file is required"}},
		{"k8s", Config{Provider: "vault", Vault: VaultConfig{Address: "https://v:8200", Auth: VaultAuthConfig{Method: "kubernetes"}}},
			[]string{"vault.auth.kubernetes_role is required"}},
		{"method", Config{Provider: "vault", Vault: VaultConfig{Address: "https://v:8200", Auth: VaultAuthConfig{Method: "ldap"}}},
			[]string{`vault.auth.method "ldap"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.WithDefaults().Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("want ErrInvalidConfig, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%q does not mention %q", err, w)
				}
			}
		})
	}
	ok := Config{Provider: "vault", Vault: VaultConfig{Address: "https://vault.internal:8200"}}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	if ok.Vault.TransitMount != "transit" || ok.Vault.KVMount != "secret" || ok.Vault.Auth.Method != "token" {
		t.Fatalf("defaults: %+v", ok.Vault)
	}
}

// fakeVault answers every request with one status and error body.
func fakeVault(t *testing.T, status int, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestVaultErrors(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s.fake-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A closed port: nothing listens there.
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	cases := []struct {
		name  string
		addr  string
		auth  VaultAuthConfig
		want  []error
		words []string
	}{
		{"unreachable", downURL, VaultAuthConfig{TokenFile: tokenFile}, []error{ErrVaultUnavailable}, []string{downURL, "vault unavailable"}},
		{"sealed", fakeVault(t, 503, `{"errors":["Vault is sealed"]}`), VaultAuthConfig{TokenFile: tokenFile},
			[]error{ErrVaultUnavailable, ErrVaultSealed}, []string{"sealed"}},
		{"bad token", fakeVault(t, 403, `{"errors":["permission denied"]}`), VaultAuthConfig{TokenFile: tokenFile},
			[]error{ErrAuthFailed}, []string{"authentication failed"}},
		{"approle denied", fakeVault(t, 400, `{"errors":["invalid role or secret ID"]}`),
			VaultAuthConfig{Method: "approle", RoleIDFile: tokenFile, SecretIDFile: tokenFile}, []error{ErrAuthFailed}, []string{"auth/approle/login"}},
		{"missing token file", fakeVault(t, 200, `{}`), VaultAuthConfig{TokenFile: filepath.Join(dir, "nope")},
			[]error{ErrAuthFailed}, []string{"vault.auth.token_file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewVaultProvider(t.Context(), VaultConfig{Address: tc.addr, Auth: tc.auth, InsecureLoopbackHTTP: true}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			_, err = p.Keyset(t.Context())
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Fatalf("error %v does not match %v", err, w)
				}
			}
			for _, w := range tc.words {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "fake-token-value") {
				t.Fatal("credential leaked into error")
			}
		})
	}
}

func TestVaultPermissionOnKV(t *testing.T) {
	// Login succeeds, KV read is forbidden.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "lookup-self") {
			_, _ = w.Write([]byte(`{"data":{"ttl":0,"renewable":false}}`))
			return
		}
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"errors":["1 error occurred:\n\t* permission denied\n\n"]}`))
	}))
	defer srv.Close()
	t.Setenv("VAULT_TOKEN", "s.env-token")
	p, err := NewVaultProvider(t.Context(), VaultConfig{Address: srv.URL, InsecureLoopbackHTTP: true}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Keyset(t.Context())
	if !errors.Is(err, ErrPermissionDenied) || !strings.Contains(err.Error(), "secret/data/pgpseudo/keyset") {
		t.Fatalf("got %v", err)
	}
}

// TestVaultIgnoresSkipVerifyEnv: an inherited VAULT_SKIP_VERIFY must not
// switch certificate verification off.
func TestVaultIgnoresSkipVerifyEnv(t *testing.T) {
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	p, err := NewVaultProvider(context.Background(), VaultConfig{Address: "https://127.0.0.1:1", Auth: VaultAuthConfig{Method: AuthToken}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tr, ok := p.client.CloneConfig().HttpClient.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify {
		t.Fatal("VAULT_SKIP_VERIFY turned certificate verification off")
	}
}

// TestVaultKubernetesLogin: the kubernetes method logs in at its mount
// with the role and the service account token read from jwt_path, and uses
// the token Vault answers with for what follows. (The integration tests
// cannot run Vault's Kubernetes auth: it asks a Kubernetes API server to
// review the token.)
func TestVaultKubernetesLogin(t *testing.T) {
	jwtFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwtFile, []byte("eyJ.fake-service-account.jwt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var login map[string]any
	var kvToken string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/auth/k8s-prod/login":
			if err := json.NewDecoder(r.Body).Decode(&login); err != nil {
				t.Error(err)
			}
			_, _ = w.Write([]byte(`{"auth":{"client_token":"s.k8s-issued","lease_duration":3600,"renewable":true}}`))
		default:
			kvToken = r.Header.Get("X-Vault-Token")
			w.WriteHeader(403)
			_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
		}
	}))
	defer srv.Close()
	p, err := NewVaultProvider(t.Context(), VaultConfig{Address: srv.URL, InsecureLoopbackHTTP: true,
		Auth: VaultAuthConfig{Method: AuthKubernetes, KubernetesRole: "pgpseudo", JWTPath: jwtFile, Mount: "k8s-prod"}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err = p.Keyset(t.Context()); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("got %v, want the KV read's permission error after the login", err)
	}
	if login["role"] != "pgpseudo" || login["jwt"] != "eyJ.fake-service-account.jwt" {
		t.Fatalf("login body %v", login)
	}
	if kvToken != "s.k8s-issued" {
		t.Fatalf("KV read with token %q, want the one the login returned", kvToken)
	}
	if strings.Contains(err.Error(), "fake-service-account") {
		t.Fatal("the service account token leaked into the error")
	}
}
