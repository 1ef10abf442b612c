package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/prf/hkdfprf"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// requireVault returns the shared Vault dev server. Vault tests fail (they
// do not skip) when the stack was started without it.
func requireVault(t *testing.T) *stack.Vault {
	t.Helper()
	if shared.stack.Vault == nil {
		t.Fatal("this test needs the Vault dev server, but the stack was started without it (PGPSEUDO_TEST_NO_VAULT=1); unset it and build Vault with `make vault`")
	}
	return shared.stack.Vault
}

// vaultEnv is one test's private corner of a Vault server: its own Transit
// mount and KV path, so tests sharing the dev server never meet.
type vaultEnv struct {
	vault *stack.Vault
	admin *api.Client // root token
	dir   string
	// cfg uses the root token (from a file) and this env's mount and path.
	cfg crypto.VaultConfig
}

func randomName(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func newVaultEnv(t *testing.T, v *stack.Vault) *vaultEnv {
	t.Helper()
	conf := api.DefaultConfig()
	conf.Address = v.Addr
	if err := conf.ConfigureTLS(&api.TLSConfig{CACert: v.CAFile}); err != nil {
		t.Fatal(err)
	}
	admin, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	admin.SetToken(v.RootToken)
	name := randomName(t)
	mount := "transit-" + name
	if err := admin.Sys().MountWithContext(t.Context(), mount, &api.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("enabling transit at %s: %v", mount, err)
	}
	e := &vaultEnv{vault: v, admin: admin, dir: t.TempDir()}
	e.cfg = crypto.Config{Provider: crypto.ProviderVault, Vault: crypto.VaultConfig{
		Address:      v.Addr,
		CAFile:       v.CAFile,
		Auth:         crypto.VaultAuthConfig{Method: crypto.AuthToken, TokenFile: e.tokenFile(t, "root", v.RootToken)},
		TransitMount: mount,
		KVPath:       "pgpseudo-test/" + name + "/keyset",
	}}.WithDefaults().Vault
	return e
}

// tokenFile writes a Vault token to a 0600 file.
func (e *vaultEnv) tokenFile(t *testing.T, name, token string) string {
	t.Helper()
	path := filepath.Join(e.dir, name+".token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// policy renders one of the policies docs/keys.md recommends for this
// env's mount and path.
func (e *vaultEnv) policy(kind string) string {
	kv := e.cfg.KVMount + "/data/" + e.cfg.KVPath
	meta := e.cfg.KVMount + "/metadata/" + e.cfg.KVPath
	transit := e.cfg.TransitMount
	key := e.cfg.TransitKey
	switch kind {
	case "serve":
		return fmt.Sprintf(`path %q { capabilities = ["read"] }
path "%s/decrypt/%s" { capabilities = ["update"] }
`, kv, transit, key)
	case "detokenize": // serve, plus the domains it may detokenize
		return fmt.Sprintf(`path %q { capabilities = ["read"] }
path "%s/decrypt/%s" { capabilities = ["update"] }
path "%s/detokenize/customers" { capabilities = ["read"] }
path "%s/detokenize/patients" { capabilities = ["read"] }
`, kv, transit, key, kv, kv)
	case "operator":
		return fmt.Sprintf(`path %q { capabilities = ["create", "read", "update"] }
path %q { capabilities = ["read"] }
path "%s/encrypt/%s" { capabilities = ["update"] }
path "%s/decrypt/%s" { capabilities = ["update"] }
path "%s/keys/%s" { capabilities = ["create", "read", "update"] }
`, kv, meta, transit, key, transit, key, transit, key)
	case "serve-audit": // serve, plus signing audit checkpoints (docs/audit.md)
		return fmt.Sprintf(`path %q { capabilities = ["read"] }
path "%s/decrypt/%s" { capabilities = ["update"] }
path "%s/sign/%s" { capabilities = ["update"] }
path "%s/keys/%s" { capabilities = ["read"] }
`, kv, transit, key, transit, auditSigningKey, transit, auditSigningKey)
	case "kv-only": // may read the wrapped keyset but not unwrap it
		return fmt.Sprintf(`path %q { capabilities = ["read"] }
`, kv)
	case "kv-detokenize": // holds the detokenize grant, but may not unwrap
		return fmt.Sprintf(`path %q { capabilities = ["read"] }
path "%s/detokenize/customers" { capabilities = ["read"] }
`, kv, kv)
	case "none":
		return ""
	}
	panic("unknown policy " + kind)
}

// token creates a token holding the given policy kind (plus Vault's
// default policy, which every token has) and returns it.
func (e *vaultEnv) token(t *testing.T, kind, displayName string, ttl string) string {
	t.Helper()
	ctx := t.Context()
	// An empty list would inherit the creator's (root's) policies.
	policies := []string{"default"}
	if hcl := e.policy(kind); hcl != "" {
		name := "pgpseudo-test-" + kind + "-" + randomName(t)
		if err := e.admin.Sys().PutPolicyWithContext(ctx, name, hcl); err != nil {
			t.Fatalf("policy %s: %v", kind, err)
		}
		policies = []string{name}
	}
	renewable := true
	sec, err := e.admin.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{
		Policies: policies, DisplayName: displayName, TTL: ttl, Renewable: &renewable,
	})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("creating %s token: %v", kind, err)
	}
	return sec.Auth.ClientToken
}

// withToken returns the env's config logging in with token.
func (e *vaultEnv) withToken(t *testing.T, token string) crypto.Config {
	t.Helper()
	c := e.cfg
	c.Auth.TokenFile = e.tokenFile(t, randomName(t), token)
	return crypto.Config{Provider: crypto.ProviderVault, Vault: c}
}

// config is the env's provider configuration with the root token.
func (e *vaultEnv) config() crypto.Config {
	return crypto.Config{Provider: crypto.ProviderVault, Vault: e.cfg}
}

// rawKeys unwraps the stored keyset with the root token, exactly as the
// provider does (KV v2 read, Transit decrypt with the version list as
// associated data), and returns every raw key in it. It is independent
// of pgpseudo's code, so the leak check cannot share a blind spot with it.
func (e *vaultEnv) rawKeys(t *testing.T) [][]byte {
	t.Helper()
	ctx := t.Context()
	sec, err := e.admin.KVv2(e.cfg.KVMount).Get(ctx, e.cfg.KVPath)
	if err != nil {
		t.Fatalf("reading keyset as root: %v", err)
	}
	blob, _ := sec.Data["keyset"].(string)
	var st struct {
		Format    string               `json:"format"`
		Encrypted bool                 `json:"encrypted"`
		Versions  []crypto.VersionInfo `json:"versions"`
		Keyset    []byte               `json:"keyset"`
	}
	if err := json.Unmarshal([]byte(blob), &st); err != nil || !st.Encrypted {
		t.Fatalf("stored keyset (encrypted=%v): %v", st.Encrypted, err)
	}
	// Format 2 binds the keyset to where it is stored.
	ad, err := json.Marshal(struct {
		Format   string               `json:"format"`
		Versions []crypto.VersionInfo `json:"versions"`
		Location string               `json:"location"`
	}{st.Format, st.Versions, e.cfg.KVMount + "/data/" + e.cfg.KVPath})
	if err != nil {
		t.Fatal(err)
	}
	kek := &rootTransit{c: e.admin, mount: e.cfg.TransitMount, key: e.cfg.TransitKey}
	h, err := keyset.ReadWithContext(ctx, keyset.NewBinaryReader(bytes.NewReader(st.Keyset)), kek, ad)
	if err != nil {
		t.Fatalf("unwrapping keyset as root: %v", err)
	}
	var keys [][]byte
	for i := range h.Len() {
		entry, err := h.Entry(i)
		if err != nil {
			t.Fatal(err)
		}
		k, ok := entry.Key().(*hkdfprf.Key)
		if !ok {
			t.Fatalf("unexpected key type %T", entry.Key())
		}
		keys = append(keys, k.KeyBytes().Data(insecuresecretdataaccess.Token{}))
	}
	if len(keys) != len(st.Versions) {
		t.Fatalf("%d keys for %d versions", len(keys), len(st.Versions))
	}
	return keys
}

// rootTransit is a tink AEAD over Vault Transit with the root token.
type rootTransit struct {
	c          *api.Client
	mount, key string
}

func (r *rootTransit) EncryptWithContext(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errors.New("not used")
}

func (r *rootTransit) DecryptWithContext(ctx context.Context, ct, ad []byte) ([]byte, error) {
	sec, err := r.c.Logical().WriteWithContext(ctx, r.mount+"/decrypt/"+r.key, map[string]any{
		"ciphertext": string(ct), "associated_data": base64.StdEncoding.EncodeToString(ad),
	})
	if err != nil {
		return nil, err
	}
	pt, _ := sec.Data["plaintext"].(string)
	return base64.StdEncoding.DecodeString(pt)
}

// transcript collects everything a run printed or returned: log entries
// (with all fields), error strings and formatted values.
type transcript struct {
	mu   sync.Mutex
	text []string
}

func (tr *transcript) add(vals ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, v := range vals {
		if v == nil {
			continue
		}
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			tr.text = append(tr.text, fmt.Sprintf(verb, v))
		}
	}
}

func (tr *transcript) addLogs(logs *observer.ObservedLogs) {
	for _, e := range logs.All() {
		tr.add(e.Message, e.ContextMap())
	}
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.text, "\n")
}

// assertNoSecrets fails if any key (hex, base64 in its variants, raw) or
// any secret string appears in all.
func assertNoSecrets(t *testing.T, all string, keys [][]byte, secrets ...string) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("no keys to look for: the leak check would be vacuous")
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret: the leak check would match everything")
		}
	}
	if what := findSecret(all, keys, secrets); what != "" {
		t.Fatalf("%s found in logs or errors", what)
	}
}

// findSecret describes the first key or secret found in all, or returns "".
func findSecret(all string, keys [][]byte, secrets []string) string {
	for i, key := range keys {
		for _, enc := range []string{
			hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
			base64.StdEncoding.EncodeToString(key), base64.RawStdEncoding.EncodeToString(key),
			base64.URLEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key),
			string(key),
		} {
			// Any 24-character prefix (≥ 12 key bytes) counts as a leak.
			if probe := enc[:min(len(enc), 24)]; strings.Contains(all, probe) {
				return fmt.Sprintf("key %d", i+1)
			}
		}
	}
	for i, s := range secrets {
		if strings.Contains(all, s) {
			return fmt.Sprintf("secret %d", i+1)
		}
	}
	return ""
}

// observed returns a logger capturing every entry at debug and above.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func mustTransformer(t *testing.T, spec crypto.Spec, ks *crypto.Keyset, oid uint32) crypto.Transformer {
	t.Helper()
	tr, err := crypto.New(spec, ks, oid, crypto.FormatText)
	if err != nil {
		t.Fatalf("%+v: %v", spec, err)
	}
	return tr
}

func transform(t *testing.T, tr crypto.Transformer, v string) string {
	t.Helper()
	out, err := tr.Transform(nil, []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestVaultKeysLifecycle runs the Go API against the real Vault: init,
// tokenize, rotate; tokens made before the rotation still detokenize, new
// ones carry the new version, and a restarted proxy (a fresh provider)
// sees both versions. No log line or error holds key material or a token.
func TestVaultKeysLifecycle(t *testing.T) {
	e := newVaultEnv(t, requireVault(t))
	ctx := t.Context()
	log, logs := observed()
	var tr transcript

	p, err := crypto.NewProvider(ctx, e.config(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Keyset(ctx)
	tr.add(err)
	if !errors.Is(err, crypto.ErrNoKeyset) || !strings.Contains(err.Error(), e.cfg.KVPath) {
		t.Fatalf("before init: %v", err)
	}
	st, err := p.Init(ctx)
	tr.add(st, err)
	if err != nil || st.Primary != 1 || st.Provider != "vault" || !strings.Contains(st.Location, e.vault.Addr) {
		t.Fatalf("init: %+v %v", st, err)
	}
	if kek, err := e.admin.Logical().ReadWithContext(ctx, e.cfg.TransitMount+"/keys/"+e.cfg.TransitKey); err != nil || kek == nil {
		t.Fatalf("init did not create the transit key: %v", err)
	} else if exp, _ := kek.Data["exportable"].(bool); exp {
		t.Fatal("the KEK is exportable")
	}
	_, err = p.Init(ctx)
	tr.add(err)
	if !errors.Is(err, crypto.ErrKeysetExists) {
		t.Fatalf("second init: %v", err)
	}

	ks1, err := p.Keyset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr.add(ks1)
	rev := crypto.Spec{Kind: crypto.KindToken, Domain: "customers", Reversible: true}
	opaque := crypto.Spec{Kind: crypto.KindToken, Domain: "customers"}
	intSpec := crypto.Spec{Kind: crypto.KindInt, Domain: "customers"}
	tokV1 := transform(t, mustTransformer(t, rev, ks1, crypto.OIDText), "alice@example.com")
	opqV1 := transform(t, mustTransformer(t, opaque, ks1, crypto.OIDText), "alice@example.com")
	intV1 := transform(t, mustTransformer(t, intSpec, ks1, crypto.OIDInt8), "4242")
	if !strings.HasPrefix(tokV1, "tr2_1_") || !strings.HasPrefix(opqV1, "tk1_1_") {
		t.Fatalf("version 1 tokens: %s %s", tokV1, opqV1)
	}

	st, err = p.Rotate(ctx)
	tr.add(st, err)
	if err != nil || st.Primary != 2 || len(st.Versions) != 2 || st.Versions[0].Version != 1 {
		t.Fatalf("rotate: %+v %v", st, err)
	}

	// A restarted proxy: a fresh provider loads the rotated keyset.
	p2, err := crypto.NewProvider(ctx, e.config(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	ks2, err := p2.Keyset(ctx)
	if err != nil || ks2.Primary() != 2 {
		t.Fatalf("fresh provider after rotate: %v %v", ks2, err)
	}
	tr.add(ks2, p2)
	tokV2 := transform(t, mustTransformer(t, rev, ks2, crypto.OIDText), "alice@example.com")
	opqV2 := transform(t, mustTransformer(t, opaque, ks2, crypto.OIDText), "alice@example.com")
	if !strings.HasPrefix(tokV2, "tr2_2_") || !strings.HasPrefix(opqV2, "tk1_2_") || tokV2 == tokV1 {
		t.Fatalf("version 2 tokens: %s %s", tokV2, opqV2)
	}
	for _, tok := range []string{tokV1, tokV2} {
		got, err := crypto.Detokenize(ctx, p2, "customers", tok)
		tr.add(err)
		if err != nil || got != "alice@example.com" {
			t.Fatalf("detokenize %s: %q %v", tok[:6], got, err)
		}
	}
	_, err = crypto.Detokenize(ctx, p2, "customers", opqV1)
	tr.add(err)
	if !errors.Is(err, crypto.ErrNotReversible) {
		t.Fatalf("opaque token: %v", err)
	}
	_, err = crypto.Detokenize(ctx, p2, "patients", tokV1)
	tr.add(err)
	if !errors.Is(err, crypto.ErrInvalidToken) {
		t.Fatalf("other domain: %v", err)
	}
	// Type-preserving values are made and reversed with one version for
	// good (the keyset's first unless pinned), so a rotation changes
	// neither the value nor its reversal.
	if again := transform(t, mustTransformer(t, intSpec, ks2, crypto.OIDInt8), "4242"); again != intV1 {
		t.Fatalf("int value changed by the rotation: %s, was %s", again, intV1)
	}
	if got, err := crypto.DetokenizeValue(ctx, p2, intSpec, crypto.OIDInt8, intV1); err != nil || got != "4242" {
		t.Fatalf("int after the rotation: %q %v", got, err)
	}
	intSpec.KeyVersion = 1
	if got, err := crypto.DetokenizeValue(ctx, p2, intSpec, crypto.OIDInt8, intV1); err != nil || got != "4242" {
		t.Fatalf("int with version 1: %q %v", got, err)
	}
	st, err = p2.Status(ctx)
	tr.add(st, err)
	if err != nil || st.Primary != 2 || st.KEK != e.cfg.TransitMount+"/keys/"+e.cfg.TransitKey {
		t.Fatalf("status: %+v %v", st, err)
	}
	js, _ := json.Marshal(st)
	tr.add(string(js))

	tr.addLogs(logs)
	if logs.FilterMessage("rotated keyset in vault").Len() != 1 || logs.FilterMessage("created keyset in vault").Len() != 1 {
		t.Fatalf("expected init and rotate log lines, got %v", logs.All())
	}
	keys := e.rawKeys(t)
	if len(keys) != 2 {
		t.Fatalf("%d raw keys after one rotation", len(keys))
	}
	assertNoSecrets(t, tr.String(), keys, e.vault.RootToken)
	// The check itself can fail: a key or the root token slipped into a
	// log line is found.
	for _, leak := range []string{
		"key=" + hex.EncodeToString(keys[1]), "k:" + base64.RawURLEncoding.EncodeToString(keys[0]),
		"token " + e.vault.RootToken,
	} {
		if findSecret(tr.String()+"\n"+leak, keys, []string{e.vault.RootToken}) == "" {
			t.Fatalf("leak check missed %.8s…", leak)
		}
	}
}

// TestVaultStoppedMidRun stops a private Vault after the keyset is loaded:
// tokenization and detokenization continue from the cache, a refresh fails
// with ErrVaultUnavailable and leaves the cache in service, token renewal
// keeps retrying in the background, and a provider starting now (Vault
// down at start) gets a clear error naming the address.
func TestVaultStoppedMidRun(t *testing.T) {
	requireVault(t) // the suite needs Vault; this test also starts its own
	v, err := stack.StartVault(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("starting a private vault: %v", err)
	}
	t.Cleanup(func() { _ = v.Stop() })
	e := newVaultEnv(t, v)
	ctx := t.Context()
	log, logs := observed()
	var tr transcript

	admin, err := crypto.NewProvider(ctx, e.config(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Init(ctx); err != nil {
		t.Fatal(err)
	}
	keys := e.rawKeys(t)

	// The proxy's token: short-lived and renewable, so renewal runs.
	serveToken := e.token(t, "serve", "proxy", "9s")
	p, err := crypto.NewProvider(ctx, e.withToken(t, serveToken), log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ks, err := p.Keyset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev := crypto.Spec{Kind: crypto.KindToken, Domain: "customers", Reversible: true}
	before := transform(t, mustTransformer(t, rev, ks, crypto.OIDText), "bob@example.com")

	if err := v.Stop(); err != nil {
		t.Fatalf("stopping vault: %v", err)
	}

	// Cached keys keep serving.
	ks, err = p.Keyset(ctx)
	if err != nil {
		t.Fatalf("keyset after vault stopped: %v", err)
	}
	if after := transform(t, mustTransformer(t, rev, ks, crypto.OIDText), "bob@example.com"); after != before {
		t.Fatal("tokens changed after vault stopped")
	}
	if got, err := crypto.Detokenize(ctx, p, "customers", before); err != nil || got != "bob@example.com" {
		t.Fatalf("detokenize from cache: %q %v", got, err)
	}
	_, err = p.Refresh(ctx)
	tr.add(err)
	if !errors.Is(err, crypto.ErrVaultUnavailable) || !strings.Contains(err.Error(), v.Addr) {
		t.Fatalf("refresh with vault down: %v", err)
	}
	if _, err := p.Keyset(ctx); err != nil {
		t.Fatalf("cache dropped after a failed refresh: %v", err)
	}
	if logs.FilterMessageSnippet("cached keys stay in service").Len() == 0 {
		t.Fatalf("no warning about the failed refresh: %v", logs.All())
	}

	// Renewal (at two thirds of 9s) fails and pgpseudo retries the login.
	deadline := time.Now().Add(30 * time.Second)
	for logs.FilterMessageSnippet("vault login failed").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no renewal retry logged: %v", logs.All())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := p.Keyset(ctx); err != nil {
		t.Fatalf("keyset while renewal retries: %v", err)
	}

	// A provider starting now: Vault down at start.
	p3, err := crypto.NewProvider(ctx, e.config(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer p3.Close()
	_, err = p3.Keyset(ctx)
	tr.add(err)
	if !errors.Is(err, crypto.ErrVaultUnavailable) || !strings.Contains(err.Error(), "vault at "+v.Addr) {
		t.Fatalf("vault down at start: %v", err)
	}

	p.Close()
	admin.Close()
	tr.addLogs(logs)
	assertNoSecrets(t, tr.String(), keys, v.RootToken, serveToken)
}

// TestVaultPermissions checks the policies docs/keys.md recommends and
// that a token without the needed permission gets a clear
// ErrPermissionDenied naming the refused path.
func TestVaultPermissions(t *testing.T) {
	v := requireVault(t)
	type op func(context.Context, crypto.KeyProvider) error
	load := func(ctx context.Context, p crypto.KeyProvider) error { _, err := p.Keyset(ctx); return err }
	rotate := func(ctx context.Context, p crypto.KeyProvider) error { _, err := p.Rotate(ctx); return err }
	status := func(ctx context.Context, p crypto.KeyProvider) error { _, err := p.Status(ctx); return err }
	initOp := func(ctx context.Context, p crypto.KeyProvider) error { _, err := p.Init(ctx); return err }
	cases := []struct {
		name     string
		policy   string // "" for an invalid token
		noKeyset bool   // the root does not create the keyset first
		op       op
		want     error
		path     func(e *vaultEnv) string // the refused path the error must name
	}{
		{"serve policy loads", "serve", false, load, nil, nil},
		{"operator policy rotates", "operator", false, rotate, nil, nil},
		{"operator policy reads status", "operator", false, status, nil, nil},
		{"operator policy inits", "operator", true, initOp, nil, nil},
		{"serve policy cannot rotate", "serve", false, rotate, crypto.ErrPermissionDenied,
			func(e *vaultEnv) string { return e.cfg.TransitMount + "/encrypt/" + e.cfg.TransitKey }},
		{"kv only cannot unwrap", "kv-only", false, load, crypto.ErrPermissionDenied,
			func(e *vaultEnv) string { return e.cfg.TransitMount + "/decrypt/" + e.cfg.TransitKey }},
		{"no policy cannot read", "none", false, load, crypto.ErrPermissionDenied,
			func(e *vaultEnv) string { return e.cfg.KVMount + "/data/" + e.cfg.KVPath }},
		// Reading the KEK's metadata may be refused to a token that can
		// still use it, so init goes on to the first refusal that counts.
		{"no policy cannot init", "none", true, initOp, crypto.ErrPermissionDenied,
			func(e *vaultEnv) string { return e.cfg.KVMount + "/data/" + e.cfg.KVPath }},
		{"invalid token", "", false, load, crypto.ErrAuthFailed, func(*vaultEnv) string { return "auth/token/lookup-self" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newVaultEnv(t, v)
			ctx := t.Context()
			log, logs := observed()
			var tr transcript
			if !tc.noKeyset {
				root, err := crypto.NewProvider(ctx, e.config(), zap.NewNop())
				if err != nil {
					t.Fatal(err)
				}
				_, err = root.Init(ctx)
				root.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
			token := "hvs.not-a-real-token-" + randomName(t)
			if tc.policy != "" {
				token = e.token(t, tc.policy, "perm-test", "10m")
			}
			p, err := crypto.NewProvider(ctx, e.withToken(t, token), log)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			err = tc.op(ctx, p)
			tr.add(err)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("want success, got %v", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("want %v, got %v", tc.want, err)
			case tc.want != nil:
				for _, w := range []string{"vault at " + v.Addr, tc.path(e)} {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not name %q", err, w)
					}
				}
			}
			tr.addLogs(logs)
			keys := e.rawKeysOrNil(t)
			if keys == nil {
				keys = [][]byte{[]byte("no keyset was created in this case")}
			}
			assertNoSecrets(t, tr.String(), keys, v.RootToken, token)
		})
	}
}

// rawKeysOrNil is rawKeys, or nil when no keyset is stored.
func (e *vaultEnv) rawKeysOrNil(t *testing.T) [][]byte {
	t.Helper()
	if _, err := e.admin.KVv2(e.cfg.KVMount).Get(t.Context(), e.cfg.KVPath); errors.Is(err, api.ErrSecretNotFound) {
		return nil
	}
	return e.rawKeys(t)
}
