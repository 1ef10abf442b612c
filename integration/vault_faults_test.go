package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/crypto"
	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// ownerPolicy is the sample policy with one more role, first so it wins:
// owner (for user), that sees every column and so needs no keys.
func ownerPolicy(t *testing.T, user string) string {
	t.Helper()
	b, err := os.ReadFile(samplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "policy.yaml")
	owner := `  owner:
    match: {users: [` + user + `]}
    actions: {special: allow, identity: allow, contact: allow, location: allow, financial: allow, key: allow, online: allow, employment: allow}
    unclassified: allow
    legal_basis: "Art. 9(2)(h) GDPR"
`
	text := strings.Replace(string(b), "\nroles:\n", "\nroles:\n"+owner, 1)
	if text == string(b) {
		t.Fatal("no roles section in the sample policy")
	}
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// privateVault starts a Vault of the test's own (it is stopped and paused)
// with a keyset and the audit signing key.
func privateVault(t *testing.T) *vaultEnv {
	t.Helper()
	requireVault(t)
	v, err := stack.StartVault(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("starting a private vault: %v", err)
	}
	t.Cleanup(func() { _ = v.Resume(); _ = v.Stop() })
	e := newVaultEnv(t, v)
	kp, err := crypto.NewProvider(t.Context(), e.config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	if _, err := kp.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Logical().WriteWithContext(t.Context(), e.cfg.TransitMount+"/keys/"+auditSigningKey,
		map[string]any{"type": "ed25519"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// faultProxyConfig is a proxy on the owner policy whose keys and audit
// signer are in e's Vault, reloading keys and checkpointing every second.
func faultProxyConfig(t *testing.T, e *vaultEnv, keys crypto.Config) *config.Config {
	t.Helper()
	cfg := proxyConfig()
	cfg.Policy = ownerPolicy(t, userCare)
	keys.RefreshInterval = time.Second
	cfg.Keys = keys.WithDefaults()
	cfg.Audit = audit.Config{Path: filepath.Join(t.TempDir(), "audit.jsonl"), SigningTransitKey: auditSigningKey,
		CheckpointInterval: time.Second}.WithDefaults()
	return cfg
}

// firstNames reads the first three customers' names in a fixed order.
func firstNames(t *testing.T, c *pgx.Conn) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := c.Query(ctx, "SELECT full_name FROM customers ORDER BY created_at, customer_id LIMIT 3")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != 3 {
		t.Fatalf("names %v: %v", names, err)
	}
	return names
}

// waitMetric waits up to d for the sample name{labels} to reach min.
func waitMetric(t *testing.T, a *adminEndpoint, name, labels string, min float64, d time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := metricValue(a.metrics(t), name, labels)
		if v >= min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v after %s, want at least %v", name, labels, v, d, min)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestVaultHungMidRun: while Vault hangs (its process stopped), cached
// keys keep serving restricted sessions, open and new, with the same
// tokens; each failed reload and unsigned checkpoint is counted; the proxy
// stays ready. Once Vault runs again, keys reload and the audit log is
// signed through without a restart.
func TestVaultHungMidRun(t *testing.T) {
	customers := kunden(t)
	e := privateVault(t)
	cfg := faultProxyConfig(t, e, e.withToken(t, e.token(t, "serve-audit", "proxy", "1h")))
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
	before := firstNames(t, bi)
	for _, n := range before {
		if !strings.HasPrefix(n, "tk1_") {
			t.Fatalf("not a token: %q", n)
		}
	}

	if err := e.vault.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if got := firstNames(t, bi); !slices.Equal(got, before) {
		t.Fatalf("tokens changed while Vault hangs: %v, before %v", got, before)
	}
	bi2 := connect(t, p.dsn(userBI, samplePass, dbKunden))
	if got := firstNames(t, bi2); !slices.Equal(got, before) {
		t.Fatalf("a new session while Vault hangs: %v, before %v", got, before)
	}
	if d := time.Since(paused); d > 10*time.Second {
		t.Fatalf("sessions waited %s for the hung Vault", d)
	}
	failed := waitMetric(t, a, "pgpseudo_key_refreshes_total", `result="failed"`, 1, 90*time.Second)
	waitMetric(t, a, "pgpseudo_audit_sign_failures_total", "", 1, 60*time.Second)
	if code, body := a.get(t, "/readyz", false); code != 200 {
		t.Fatalf("cached keys serve, yet /readyz says %d %s", code, body)
	}
	if !waitLog(p, 0, "cached keys stay in service") {
		t.Fatal("the failed reload was not logged")
	}

	if err := e.vault.Resume(); err != nil {
		t.Fatal(err)
	}
	ok := metricValue(a.metrics(t), "pgpseudo_key_refreshes_total", `result="ok"`)
	waitMetric(t, a, "pgpseudo_key_refreshes_total", `result="ok"`, ok+1, 90*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for metricValue(a.metrics(t), "pgpseudo_audit_unsigned_records", "") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the audit log was never signed again after Vault came back")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := firstNames(t, bi); !slices.Equal(got, before) {
		t.Fatalf("tokens changed after Vault came back: %v", got)
	}
	if metricValue(a.metrics(t), "pgpseudo_key_refreshes_total", `result="failed"`) < failed {
		t.Fatal("a counter went backwards")
	}
	bi.Close(context.Background())
	bi2.Close(context.Background())
	shutdown(t, p)
	res := verifyTransitLog(t, cfg)
	if !res.Closed || res.Unsigned != 0 || len(res.Gaps) != 0 {
		t.Fatalf("audit log after the outage: %+v", res)
	}
	assertNoLeak(t, "audit log", readFile(t, cfg.Audit.Path), customers)
}

// verifyTransitLog verifies cfg's audit log with the public keys of its
// Transit signing key.
func verifyTransitLog(t *testing.T, cfg *config.Config) audit.VerifyResult {
	t.Helper()
	kp, err := crypto.NewProvider(t.Context(), cfg.Keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Close()
	signer, err := config.NewAuditSigner(cfg.Audit, kp)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := config.AuditPublicKeys(t.Context(), signer)
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(t.Context(), keys, []string{cfg.Audit.Path}, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v (%+v)", err, res)
	}
	return res
}

// TestVaultDownAtStart: with Vault stopped before the proxy starts, the
// proxy starts; a role that needs no keys reads in clear; a restricted
// login is refused with 57P03 naming Vault; /readyz is not ready and says
// why to the token holder; the failures are counted; the audit log is
// written, reported unsigned.
func TestVaultDownAtStart(t *testing.T) {
	customers := kunden(t)
	e := privateVault(t)
	cfg := faultProxyConfig(t, e, e.withToken(t, e.token(t, "serve-audit", "proxy", "1h")))
	if err := e.vault.Stop(); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	ctx := context.Background()

	owner := connect(t, p.dsn(userCare, samplePass, dbKunden))
	var name string
	if err := owner.QueryRow(ctx, "SELECT full_name FROM customers WHERE customer_id = $1", customers[0].ID).Scan(&name); err != nil || name != customers[0].FullName {
		t.Fatalf("the owner role with Vault down: %q, %v", name, err)
	}
	_, err := pgx.Connect(ctx, p.dsn(userBI, samplePass, dbKunden))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P03" || !strings.Contains(pe.Message, "Vault") {
		t.Fatalf("restricted login with Vault down: %v", err)
	}
	// The client is told which provider failed, never where it is: the
	// address and the cause are in the proxy's log.
	if msg := pe.Message + pe.Detail + pe.Hint; strings.Contains(msg, e.vault.Addr) || strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "pgpseudo/") {
		t.Fatalf("the refusal names internal addresses or paths: %v", err)
	}
	if !waitLog(p, 0, e.vault.Addr) {
		t.Fatal("the proxy's log does not name the Vault that failed")
	}
	assertNoLeak(t, "refusal", err.Error(), customers)

	code, body := a.get(t, "/readyz", false)
	if code != 503 || !strings.Contains(body, "fail keys\n") || !strings.Contains(body, "ok upstream\n") || strings.Contains(body, e.vault.Addr) {
		t.Fatalf("/readyz with Vault down: %d %q", code, body)
	}
	if _, body := a.get(t, "/readyz", true); !strings.Contains(body, "fail keys: keys not loaded") || !strings.Contains(body, e.vault.Addr) {
		t.Fatalf("/readyz details: %q", body)
	}
	waitMetric(t, a, "pgpseudo_vault_login_failures_total", "", 1, 10*time.Second)
	waitMetric(t, a, "pgpseudo_key_refreshes_total", `result="failed"`, 1, 10*time.Second)
	waitMetric(t, a, "pgpseudo_audit_sign_failures_total", "", 1, 10*time.Second)
	waitMetric(t, a, "pgpseudo_audit_unsigned_records", "", 1, 10*time.Second)
	if got := metricValue(a.metrics(t), "pgpseudo_keys_primary_version", ""); got != 0 {
		t.Fatalf("keys primary version %v with no keys loaded", got)
	}
	if !waitLog(p, 0, "audit checkpoint cannot be signed now") {
		t.Fatal("the unsigned start was not logged")
	}
}

// appRoleKeys enables AppRole in e's Vault with a role holding the
// serve-audit policy whose tokens live ttl and at most maxTTL, and returns
// a keys config logging in with it.
func appRoleKeys(t *testing.T, e *vaultEnv, ttl, maxTTL string) crypto.Config {
	t.Helper()
	ctx := t.Context()
	if err := e.admin.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	policy := "pgpseudo-serve-audit"
	if err := e.admin.Sys().PutPolicyWithContext(ctx, policy, e.policy("serve-audit")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Logical().WriteWithContext(ctx, "auth/approle/role/pgpseudo",
		map[string]any{"token_policies": policy, "token_ttl": ttl, "token_max_ttl": maxTTL}); err != nil {
		t.Fatal(err)
	}
	rid, err := e.admin.Logical().ReadWithContext(ctx, "auth/approle/role/pgpseudo/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := e.admin.Logical().WriteWithContext(ctx, "auth/approle/role/pgpseudo/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := e.cfg
	c.Auth = crypto.VaultAuthConfig{Method: crypto.AuthAppRole,
		RoleIDFile:   e.tokenFile(t, "role-id", rid.Data["role_id"].(string)),
		SecretIDFile: e.tokenFile(t, "secret-id", sid.Data["secret_id"].(string))}
	return crypto.Config{Provider: crypto.ProviderVault, Vault: c}
}

// TestVaultTokenRevokedAndExpired: the proxy logs in with AppRole; its
// tokens expire (max TTL) and are revoked while restricted sessions
// query. The proxy logs in again each time, the failures are counted, and
// every value a restricted session receives meanwhile is the same token
// as before: never a clear value, never one made without the keys.
func TestVaultTokenRevokedAndExpired(t *testing.T) {
	customers := kunden(t)
	e := privateVault(t)
	cfg := faultProxyConfig(t, e, appRoleKeys(t, e, "3s", "6s"))
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
	before := firstNames(t, bi)

	revoked := false
	start := time.Now()
	for time.Since(start) < 15*time.Second {
		if !revoked && time.Since(start) > 7*time.Second {
			// Every token AppRole issued so far, the proxy's included.
			if _, err := e.admin.Logical().WriteWithContext(t.Context(), "sys/leases/revoke-prefix/auth/approle/login", nil); err != nil {
				t.Fatal(err)
			}
			revoked = true
		}
		if got := firstNames(t, bi); !slices.Equal(got, before) {
			t.Fatalf("after %s: %v, before %v", time.Since(start), got, before)
		}
		time.Sleep(300 * time.Millisecond)
	}
	bi2 := connect(t, p.dsn(userBI, samplePass, dbKunden))
	if got := firstNames(t, bi2); !slices.Equal(got, before) {
		t.Fatalf("a new session after the revocation: %v", got)
	}
	bi2.Close(context.Background())
	if n := p.logs.FilterMessage("logged in to vault").Len(); n < 3 {
		t.Fatalf("%d Vault logins in 15 s of 6 s tokens and a revocation, want at least 3", n)
	}
	waitMetric(t, a, "pgpseudo_vault_renewal_failures_total", "", 1, 20*time.Second)
	// Keys reload with the new login, and the log is signed with it.
	ok := metricValue(a.metrics(t), "pgpseudo_key_refreshes_total", `result="ok"`)
	waitMetric(t, a, "pgpseudo_key_refreshes_total", `result="ok"`, ok+1, 20*time.Second)
	bi.Close(context.Background())
	shutdown(t, p)
	if res := verifyTransitLog(t, cfg); !res.Closed || res.Unsigned != 0 {
		t.Fatalf("audit log: %+v", res)
	}
	assertNoLeak(t, "audit log", readFile(t, cfg.Audit.Path), customers)
}

// shutdown stops p, failing the test when a session is still open after
// 30 s.
func shutdown(t *testing.T, p *runningProxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// TestReadinessKeysMaxAge: with keys.ready_max_age, /readyz turns not
// ready once Vault has been unreachable that long, and ready again when
// it answers; cached keys serve throughout.
func TestReadinessKeysMaxAge(t *testing.T) {
	customers := kunden(t)
	e := privateVault(t)
	cfg := faultProxyConfig(t, e, e.withToken(t, e.token(t, "serve-audit", "proxy", "1h")))
	cfg.Keys.ReadyMaxAge = 3 * time.Second
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
	before := firstNames(t, bi)
	waitReady(t, a, true, "ok keys", 10*time.Second)
	if err := e.vault.Pause(); err != nil {
		t.Fatal(err)
	}
	defer e.vault.Resume()
	waitReady(t, a, false, "fail keys", 30*time.Second)
	if _, body := a.get(t, "/readyz", true); !strings.Contains(body, "keys.ready_max_age") || strings.Contains(body, "hvs.") {
		t.Fatalf("/readyz details: %q", body)
	}
	if got := firstNames(t, bi); !slices.Equal(got, before) {
		t.Fatalf("cached keys changed: %v, before %v", got, before)
	}
	assertNoLeak(t, "tokens while Vault hangs", strings.Join(before, " "), customers)
	if err := e.vault.Resume(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a, true, "ok keys", 60*time.Second)
}
