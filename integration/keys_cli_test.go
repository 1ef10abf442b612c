package integration

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/crypto"
)

// buildKeysCLI returns the pgpseudo binary.
func buildKeysCLI(t *testing.T) string { return shared.binary(t) }

// cliResult is one run of the binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cli runs the binary with only PATH, HOME and (if set) VAULT_TOKEN in its
// environment; stdin may be empty.
type cli struct {
	t      *testing.T
	bin    string
	home   string
	stderr strings.Builder // every run's stderr, for the leak check
}

func (c *cli) run(token, stdin string, args ...string) cliResult {
	c.t.Helper()
	cmd := exec.CommandContext(c.t.Context(), c.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home}
	if token != "" {
		cmd.Env = append(cmd.Env, "VAULT_TOKEN="+token)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("running %v: %v", args, err)
	}
	c.stderr.WriteString(res.stderr)
	return res
}

// expect checks a run's exit code and that stderr mentions every word.
func (c *cli) expect(res cliResult, code int, words ...string) {
	c.t.Helper()
	if res.code != code {
		c.t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", res.code, code, res.stdout, res.stderr)
	}
	for _, w := range words {
		if !strings.Contains(res.stderr, w) {
			c.t.Fatalf("stderr does not mention %q:\n%s", w, res.stderr)
		}
	}
}

// keysConfigFile writes a configuration with only a keys: section; the
// token comes from VAULT_TOKEN.
func keysConfigFile(t *testing.T, dir, name string, c crypto.VaultConfig) string {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	data := fmt.Sprintf(`keys:
  provider: vault
  vault:
    address: %s
    ca_file: %s
    transit_mount: %s
    transit_key: %s
    kv_mount: %s
    kv_path: %s
`, c.Address, c.CAFile, c.TransitMount, c.TransitKey, cmp.Or(c.KVMount, "secret"), c.KVPath)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// detokenizeLine returns the one "detokenized" log line in stderr.
func detokenizeLine(t *testing.T, stderr string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, line := range strings.Split(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "detokenized" {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one detokenize log line, got %d in:\n%s", len(found), stderr)
	}
	return found[0]
}

// TestKeysCLIVault runs the real binary against the shared Vault: keys
// init, rotate and status, and detokenize (arguments and stdin), with the
// exit codes, the permission model (Vault decides who may detokenize), the
// detokenize log line, and no key material, token or value in any output
// but detokenize's own stdout.
func TestKeysCLIVault(t *testing.T) {
	e := newVaultEnv(t, requireVault(t))
	bin := buildKeysCLI(t)
	c := &cli{t: t, bin: bin, home: t.TempDir()}
	ctx := t.Context()
	dir := t.TempDir()
	cfg := keysConfigFile(t, dir, "keys", e.cfg)
	root := e.vault.RootToken
	operator := e.token(t, "operator", "alice-operator", "1h")
	reader := e.token(t, "kv-detokenize", "mallory", "1h")
	detok := e.token(t, "detokenize", "dpo-bob", "1h")
	proxyTok := e.token(t, "serve", "proxy", "1h")

	// Before init.
	c.expect(c.run(operator, "", "keys", "status", "--config", cfg), 1, "run keys init", e.cfg.KVPath)
	// Usage errors.
	c.expect(c.run(operator, "", "keys", "status"), 2, "--config is required")
	c.expect(c.run(operator, "", "keys", "spin", "--config", cfg), 2, "unknown command")
	c.expect(c.run(operator, "", "detokenize", "--config", cfg), 2, "--domain is required")
	// No token at all.
	c.expect(c.run("", "", "keys", "status", "--config", cfg), 1, "no token", "VAULT_TOKEN")

	// init (creates the Transit key), and a second init is refused.
	res := c.run(operator, "", "keys", "init", "--config", cfg)
	c.expect(res, 0, "created keyset with primary version 1", e.vault.Addr)
	if !strings.Contains(res.stdout, "primary:   1") || !strings.Contains(res.stdout, e.cfg.TransitMount+"/keys/"+e.cfg.TransitKey) {
		t.Fatalf("init stdout:\n%s", res.stdout)
	}
	c.expect(c.run(operator, "", "keys", "init", "--config", cfg), 1, "already exists")

	// Tokenize with version 1 through the Go API (as the proxy does).
	tokenizeNow := func(values ...string) []string {
		t.Helper()
		p, err := crypto.NewProvider(ctx, crypto.Config{Provider: crypto.ProviderVault, Vault: e.cfg}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ks, err := p.Keyset(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := mustTransformer(t, crypto.Spec{Kind: crypto.KindToken, Domain: "customers", Reversible: true}, ks, crypto.OIDText)
		var out []string
		for _, v := range values {
			out = append(out, transform(t, tr, v))
		}
		return out
	}
	v1 := tokenizeNow("alice@example.com", "Bob Example")

	res = c.run(operator, "", "keys", "rotate", "--config", cfg)
	c.expect(res, 0, "new primary version 2")
	v2 := tokenizeNow("carol@example.com")
	if !strings.HasPrefix(v1[0], "tr2_1_") || !strings.HasPrefix(v2[0], "tr2_2_") {
		t.Fatalf("token versions: %v %v", v1, v2)
	}

	// status --json, from a full proxy configuration file whose other
	// sections are not meaningful for this command.
	full := filepath.Join(dir, "proxy.yaml")
	keysYAML, _ := os.ReadFile(cfg)
	os.WriteFile(full, append([]byte("listen: 127.0.0.1:6432\nupstream:\n  address: db.invalid:5432\n  tls: {mode: verify-full, ca_file: /nonexistent.pem}\n"), keysYAML...), 0o600)
	res = c.run(operator, "", "keys", "status", "--config", full, "--json")
	c.expect(res, 0)
	var st crypto.Status
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.stdout)
	}
	if st.Provider != "vault" || st.Primary != 2 || len(st.Versions) != 2 || st.Versions[1].Created.IsZero() ||
		!strings.Contains(st.Location, e.vault.Addr) {
		t.Fatalf("status: %+v", st)
	}
	res = c.run(operator, "", "keys", "status", "--config", cfg)
	c.expect(res, 0)
	if !strings.Contains(res.stdout, "VERSION") || !strings.Contains(res.stdout, "primary:   2") {
		t.Fatalf("status:\n%s", res.stdout)
	}

	// detokenize: arguments, then stdin; old and new versions.
	all := append(append([]string{}, v1...), v2...)
	values := []string{"alice@example.com", "Bob Example", "carol@example.com"}
	want := strings.Join(values, "\n") + "\n"
	res = c.run(detok, "", append([]string{"detokenize", "--config", cfg, "--domain", "customers"}, all...)...)
	c.expect(res, 0)
	if res.stdout != want {
		t.Fatalf("detokenize stdout %q", res.stdout)
	}
	line := detokenizeLine(t, res.stderr)
	if line["level"] != "info" || line["who"] != "token-dpo-bob" || line["domain"] != "customers" ||
		line["tokens"] != float64(3) || line["auth_method"] != "token" {
		t.Fatalf("detokenize log line: %v", line)
	}
	res = c.run(detok, strings.Join(all, "\n")+"\n", "detokenize", "--config", cfg, "--domain", "customers")
	c.expect(res, 0)
	if res.stdout != want {
		t.Fatalf("detokenize from stdin: %q", res.stdout)
	}
	// Failures print nothing and name no token.
	res = c.run(detok, "", "detokenize", "--config", cfg, "--domain", "patients", v1[0])
	c.expect(res, 1, "invalid token", "token 1 of 1")
	res = c.run(detok, "", "detokenize", "--config", cfg, "--domain", "customers")
	c.expect(res, 2, "no tokens given")
	// Vault scopes detokenisation per domain: a domain the identity holds
	// no grant for, and the proxy's token, which may unwrap the keyset
	// but detokenize nothing, are refused before any token is reversed.
	for _, tc := range []struct{ token, domain string }{{detok, "orders"}, {proxyTok, "customers"}} {
		res = c.run(tc.token, "", "detokenize", "--config", cfg, "--domain", tc.domain, v1[0])
		c.expect(res, 1, "vault permission denied", "may not detokenize domain \""+tc.domain+"\"", e.cfg.KVPath+"/detokenize/"+tc.domain)
		if res.stdout != "" {
			t.Fatalf("detokenize outside the identity's domains printed %q", res.stdout)
		}
	}
	// The proxy's token copies the wrapped keyset into its own cubbyhole,
	// where Vault's default policy lets it do anything, and names that
	// mount: the grant check passes there, but the copy is bound to its
	// original path and does not unwrap.
	sec, err := e.admin.KVv2(e.cfg.KVMount).Get(ctx, e.cfg.KVPath)
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.admin.Clone()
	if err != nil {
		t.Fatal(err)
	}
	own.SetToken(proxyTok)
	if _, err := own.Logical().WriteWithContext(ctx, "cubbyhole/data/"+e.cfg.KVPath, map[string]any{"data": sec.Data, "metadata": map[string]any{"version": 1}}); err != nil {
		t.Fatal(err)
	}
	cub := e.cfg
	cub.KVMount = "cubbyhole"
	res = c.run(proxyTok, "", "detokenize", "--config", keysConfigFile(t, dir, "cubbyhole", cub), "--domain", "customers", v1[0])
	c.expect(res, 1, "message authentication failed")
	if res.stdout != "" {
		t.Fatalf("detokenize from a copied keyset printed %q", res.stdout)
	}

	// Vault decides: a token that may read but not unwrap the keyset.
	res = c.run(reader, "", "detokenize", "--config", cfg, "--domain", "customers", v1[0])
	c.expect(res, 1, "vault permission denied", e.cfg.TransitMount+"/decrypt/"+e.cfg.TransitKey, "vault at "+e.vault.Addr)
	if res.stdout != "" {
		t.Fatalf("denied detokenize printed %q", res.stdout)
	}
	if !strings.Contains(res.stderr, `"msg":"detokenize failed"`) || !strings.Contains(res.stderr, `"who":"token-mallory"`) {
		t.Fatalf("denied detokenize not logged with who:\n%s", res.stderr)
	}
	// The detokenize token may not rotate.
	c.expect(c.run(detok, "", "keys", "rotate", "--config", cfg), 1, "vault permission denied", "/encrypt/")
	// An unknown token.
	c.expect(c.run("hvs.not-a-token", "", "keys", "status", "--config", cfg), 1, "vault authentication failed")

	// Vault down: the error names the address.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + l.Addr().String()
	l.Close()
	downCfg := e.cfg
	downCfg.Address = down
	res = c.run(operator, "", "keys", "status", "--config", keysConfigFile(t, dir, "down", downCfg))
	c.expect(res, 1, "vault at "+down, "vault unavailable")
	res = c.run(detok, "", "detokenize", "--config", keysConfigFile(t, dir, "down2", downCfg), "--domain", "customers", v1[0])
	c.expect(res, 1, "vault at "+down, "vault unavailable")

	// Nothing secret in any stderr: no key, no Vault token, no token, no value.
	secrets := append([]string{root, operator, reader, detok}, all...)
	secrets = append(secrets, values...)
	assertNoSecrets(t, c.stderr.String(), e.rawKeys(t), secrets...)
}
