package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/crypto"
)

// writeFile writes a test file and fails the test on error.
func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileKeysConfig writes a keys-only configuration for the file provider.
func fileKeysConfig(t *testing.T, dir string) (config, keyset string) {
	t.Helper()
	keyset = filepath.Join(dir, "keyset.json")
	config = writeFile(t, filepath.Join(dir, "keys.yaml"), "keys:\n  provider: file\n  allow_insecure_file_keys: true\n  file:\n    path: "+keyset+"\n")
	return config, keyset
}

// tokenize makes reversible tokens in domain with the keyset at path.
func tokenize(t *testing.T, path, domain string, values ...string) []string {
	t.Helper()
	ks, err := crypto.NewFileProvider(crypto.FileConfig{Path: path}, zap.NewNop()).Keyset(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := crypto.New(crypto.Spec{Kind: crypto.KindToken, Domain: domain, Reversible: true}, ks, crypto.OIDText, crypto.FormatText)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range values {
		b, err := tr.Transform(nil, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestKeysAndDetokenizeUsage(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := fileKeysConfig(t, dir)
	noKeys := writeFile(t, filepath.Join(dir, "nokeys.yaml"), "listen: 127.0.0.1:1\n")
	badKeys := writeFile(t, filepath.Join(dir, "badkeys.yaml"), "log: {level: info}\nkeys:\n  provider: vault\n")
	typo := writeFile(t, filepath.Join(dir, "typo.yaml"), "keys:\n  provider: file\n  allow_insecure_file_keys: true\n  fiel: {path: x}\n")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"keys alone", []string{"keys"}, 2, "no command given"},
		{"keys unknown", []string{"keys", "destroy"}, 2, `unknown command "destroy"`},
		{"keys without config", []string{"keys", "status"}, 2, "--config is required"},
		{"keys bad flag", []string{"keys", "init", "--force"}, 2, "flag provided but not defined"},
		{"keys stray argument", []string{"keys", "rotate", "--config", cfg, "now"}, 2, `unexpected argument "now"`},
		{"keys missing file", []string{"keys", "status", "--config", filepath.Join(dir, "none.yaml")}, 1, "no such file"},
		{"keys section missing", []string{"keys", "init", "--config", noKeys}, 1, "keys: section is required"},
		{"keys section invalid", []string{"keys", "init", "--config", badKeys}, 1, "badkeys.yaml:2: keys: vault.address is required"},
		{"keys unknown key", []string{"keys", "init", "--config", typo}, 1, "typo.yaml:4: keys.fiel: unknown key"},
		{"status before init", []string{"keys", "status", "--config", cfg}, 1, "run keys init"},
		{"detokenize without config", []string{"detokenize", "--domain", "d", "tr1_1_x"}, 2, "--config is required"},
		{"detokenize without domain", []string{"detokenize", "--config", cfg, "tr1_1_x"}, 2, "--domain is required"},
		{"detokenize before init", []string{"detokenize", "--config", cfg, "--domain", "d", "tr1_1_x"}, 1, "run keys init"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q\nstderr: %s", err, tt.wantErr, errb.String())
			}
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d, want %d", code, tt.wantCode)
			}
		})
	}
}

func TestKeysHelp(t *testing.T) {
	for _, args := range [][]string{{"keys", "-h"}, {"keys", "status", "-h"}, {"detokenize", "-h"}} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, &out, &errb); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.Contains(out.String()+errb.String(), "config") {
			t.Fatalf("%v: no usage printed", args)
		}
	}
}

func TestKeysFileProviderFlow(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, keyset := fileKeysConfig(t, dir)
	runOK := func(args ...string) (stdout, stderr string) {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, args, &out, &errb); err != nil {
			t.Fatalf("%v: %v\nstderr: %s", args, err, errb.String())
		}
		return out.String(), errb.String()
	}

	out, _ := runOK("keys", "init", "--config", cfg)
	if !strings.Contains(out, "primary:   1") || !strings.Contains(out, keyset) {
		t.Fatalf("init output:\n%s", out)
	}
	var errb bytes.Buffer
	if err := run(ctx, []string{"keys", "init", "--config", cfg}, io.Discard, &errb); !errors.Is(err, crypto.ErrKeysetExists) || exitCode(err) != 1 {
		t.Fatalf("second init: %v", err)
	}
	v1 := tokenize(t, keyset, "customers", "alice@example.com", "Bob Example")

	out, errs := runOK("keys", "rotate", "--config", cfg)
	if !strings.Contains(out, "primary:   2") || !strings.Contains(errs, "versions 1 stay") {
		t.Fatalf("rotate output:\n%s\n%s", out, errs)
	}
	v2 := tokenize(t, keyset, "customers", "carol@example.com")
	if !strings.HasPrefix(v1[0], "tr2_1_") || !strings.HasPrefix(v2[0], "tr2_2_") {
		t.Fatalf("versions not in tokens: %v %v", v1, v2)
	}

	out, _ = runOK("keys", "status", "--config", cfg, "--json")
	var st crypto.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Provider != "file" || st.Primary != 2 || len(st.Versions) != 2 || st.Versions[0].Created.IsZero() {
		t.Fatalf("status: %+v", st)
	}

	// Arguments, then standard input, then JSON output.
	all := append(append([]string{}, v1...), v2...)
	want := "alice@example.com\nBob Example\ncarol@example.com\n"
	out, errs = runOK(append([]string{"detokenize", "--config", cfg, "--domain", "customers"}, all...)...)
	if out != want {
		t.Fatalf("detokenize args: %q", out)
	}
	checkDetokenizeLog(t, errs, "customers", 3, all, []string{"alice@example.com", "Bob Example", "carol@example.com"})

	var sout, serr bytes.Buffer
	stdin := strings.NewReader("\n" + strings.Join(all, "\n") + "\n\n")
	if err := detokenize(ctx, []string{"--config", cfg, "--domain", "customers"}, stdin, &sout, &serr); err != nil || sout.String() != want {
		t.Fatalf("detokenize stdin: %q %v\n%s", sout.String(), err, serr.String())
	}
	sout.Reset()
	if err := detokenize(ctx, []string{"--config", cfg, "--domain", "customers", "--json", v1[1]}, nil, &sout, &serr); err != nil || sout.String() != "[\"Bob Example\"]\n" {
		t.Fatalf("detokenize --json: %q %v", sout.String(), err)
	}
}

func TestDetokenizeFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, keyset := fileKeysConfig(t, dir)
	if err := run(ctx, []string{"keys", "init", "--config", cfg}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	good := tokenize(t, keyset, "customers", "alice@example.com", "line one\nline two")
	opaque := "tk1_1_aaaaaaaaaaaaaaaaaaaaaaaaaa"
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantIs   error
		wantErr  string
	}{
		{"opaque token", []string{"customers", good[0], opaque}, "", 1, crypto.ErrNotReversible, "token 2 of 2"},
		{"other domain", []string{"patients", good[0]}, "", 1, crypto.ErrInvalidToken, "token 1 of 1"},
		{"garbage", []string{"customers", "hello"}, "", 1, crypto.ErrInvalidToken, "token 1 of 1"},
		{"unknown version", []string{"customers", "tr1_9_aaaa"}, "", 1, crypto.ErrUnknownVersion, "token 1 of 1"},
		{"empty stdin", []string{"customers"}, "\n  \n", 2, nil, "no tokens given"},
		{"line break needs json", []string{"customers", good[1]}, "", 1, nil, "use --json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"--config", cfg, "--domain", tt.args[0]}, tt.args[1:]...)
			err := detokenize(ctx, args, strings.NewReader(tt.stdin), &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Fatalf("err = %v, want %q / %v", err, tt.wantErr, tt.wantIs)
			}
			if code := exitCode(err); code != tt.wantCode {
				t.Fatalf("exit code %d, want %d", code, tt.wantCode)
			}
			if out.Len() != 0 && tt.name != "line break needs json" {
				t.Fatalf("printed values despite failure: %q", out.String())
			}
			for _, secret := range append(good, "alice@example.com", "line one") {
				if strings.Contains(errb.String(), secret) || strings.Contains(err.Error(), secret) {
					t.Fatalf("token or value in stderr or error:\n%s\n%v", errb.String(), err)
				}
			}
		})
	}
}

// checkDetokenizeLog finds the one detokenize log line in stderr and checks
// its fields; no token and no value may appear anywhere in stderr.
func checkDetokenizeLog(t *testing.T, stderr, domain string, count int, tokens, values []string) {
	t.Helper()
	var found int
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] != "detokenized" {
			continue
		}
		found++
		if m["level"] != "info" || m["domain"] != domain || m["tokens"] != float64(count) || m["auth_method"] == "" {
			t.Fatalf("detokenize log line: %v", m)
		}
		if _, ok := m["who"]; !ok {
			t.Fatalf("detokenize log line has no who: %v", m)
		}
	}
	if found != 1 {
		t.Fatalf("want one detokenize log line, found %d in:\n%s", found, stderr)
	}
	for _, s := range append(append([]string{}, tokens...), values...) {
		if strings.Contains(stderr, s) {
			t.Fatalf("token or value %q in stderr:\n%s", s, stderr)
		}
	}
}

func TestLoadKeysConfigFullProxyFile(t *testing.T) {
	dir := t.TempDir()
	// A complete proxy file whose other sections are not meaningful here
	// (no such CA file): the key commands neither need nor check them.
	path := writeFile(t, filepath.Join(dir, "proxy.yaml"), `listen: 127.0.0.1:6432
upstream:
  address: db.internal:5432
  tls: {mode: verify-full, ca_file: /nonexistent/ca.pem}
auth: {auth_user: pgpseudo_auth, auth_password_file: /nonexistent/pw}
log: {level: warn, format: console}
keys:
  provider: vault
  vault:
    address: https://vault.internal:8200
`)
	kf, err := loadKeysConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if kf.Keys.Vault.TransitKey != "pgpseudo" || kf.Keys.Vault.KVPath != "pgpseudo/keyset" || kf.Log.Level != "warn" || kf.Log.Format != "console" {
		t.Fatalf("loaded %+v", kf)
	}
}

func TestLogDetokenize(t *testing.T) {
	var buf bytes.Buffer
	log, err := newCLILogger(config.Log{Level: "info", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	logDetokenize(log, actor{Name: "token-alice", EntityID: "e-1", Method: "token"}, "customers", 2, nil)
	logDetokenize(log, actor{Method: "approle"}, "customers", 1, crypto.ErrPermissionDenied)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log:\n%s", buf.String())
	}
	var ok, failed map[string]any
	if json.Unmarshal([]byte(lines[0]), &ok) != nil || json.Unmarshal([]byte(lines[1]), &failed) != nil {
		t.Fatalf("log:\n%s", buf.String())
	}
	if ok["level"] != "info" || ok["who"] != "token-alice" || ok["vault_entity_id"] != "e-1" || ok["tokens"] != float64(2) {
		t.Fatalf("success line: %v", ok)
	}
	if failed["level"] != "warn" || failed["auth_method"] != "approle" || !strings.Contains(failed["error"].(string), "permission denied") {
		t.Fatalf("failure line: %v", failed)
	}
}

// TestDetokenizeSendsNoTokenToAnUnverifiedVault: with VAULT_SKIP_VERIFY
// and VAULT_CACERT inherited, detokenize against a Vault whose certificate
// the configuration does not trust fails, and no request (so no token)
// reaches it — neither from the provider nor from the who-am-I lookup.
func TestDetokenizeSendsNoTokenToAnUnverifiedVault(t *testing.T) {
	var seen atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := writeFile(t, filepath.Join(dir, "ca.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_CACERT", ca)
	t.Setenv("VAULT_TOKEN", "hvs.never-sent")
	cfg := writeFile(t, filepath.Join(dir, "keys.yaml"), "keys:\n  provider: vault\n  vault:\n    address: "+srv.URL+"\n")
	var out, errb bytes.Buffer
	err := detokenize(t.Context(), []string{"--config", cfg, "--domain", "customers", "tr2_1_aaaa"}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "certificate") || out.Len() != 0 {
		t.Fatalf("detokenize against an unverified vault: %v, stdout %q", err, out.String())
	}
	if n := seen.Load(); n != 0 {
		t.Fatalf("%d requests reached the unverified server", n)
	}
}
