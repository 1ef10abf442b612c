package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/admin"
)

// adminEndpoint is an admin listener under test: its base URL, bearer
// token and a client that trusts the test CA.
type adminEndpoint struct {
	url, token string
	client     *http.Client
}

// adminConfig is an admin section on a free loopback port with the
// proxy's certificate and a new token file.
func adminConfig(t testing.TB) admin.Config {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tok, []byte("test-admin-token-"+strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := shared.stack
	return admin.Config{Listen: freeAddr(t), CertFile: s.Certs.ProxyCertFile, KeyFile: s.Certs.ProxyKey, TokenFile: tok}
}

// newAdminEndpoint is a client of the admin listener configured by c.
func newAdminEndpoint(t testing.TB, c admin.Config) *adminEndpoint {
	t.Helper()
	ca, err := os.ReadFile(shared.stack.Certs.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tok, err := os.ReadFile(c.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return &adminEndpoint{url: "https://" + c.Listen, token: strings.TrimSpace(string(tok)),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

// startAdmin serves p's admin endpoints in the test process.
func startAdmin(t *testing.T, p *runningProxy) *adminEndpoint {
	t.Helper()
	c := adminConfig(t)
	s, err := admin.New(c, p.srv.Metrics(), p.srv.ReadyChecks(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return newAdminEndpoint(t, c)
}

// get fetches path, with the token when auth is set.
func (a *adminEndpoint) get(t testing.TB, path string, auth bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.url+path, nil)
	if auth {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metrics scrapes /metrics with the token.
func (a *adminEndpoint) metrics(t testing.TB) string {
	t.Helper()
	code, body := a.get(t, "/metrics", true)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return body
}

// metricValue is the value of the sample name{labels} in a scrape, or -1
// when there is none. labels is the exact label text, e.g. `role="bi"`.
func metricValue(body, name, labels string) float64 {
	sel := name
	if labels != "" {
		sel += "{" + labels + "}"
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sel) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}

// TestAdminMetricsAndReadiness: the metrics count what a restricted
// session did (its session, rewritten values, a refusal with its rule, a
// refused login, per-stage timings, cache hits), /readyz reports every
// check ready, /metrics needs the token, and nothing the admin listener
// answers holds a personal value.
func TestAdminMetricsAndReadiness(t *testing.T) {
	customers := kunden(t)
	cfg := policyConfig(t, samplePolicy)
	cfg.Audit = auditConfig(t, filepath.Join(t.TempDir(), "audit.jsonl"))
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	ctx := context.Background()

	if code, body := a.get(t, "/readyz", false); code != 200 ||
		body != "ok accepting\nok upstream\nok policy\nok keys\nok audit\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, body := a.get(t, "/metrics", false); code != 401 || strings.Contains(body, "pgpseudo_") {
		t.Fatalf("/metrics without the token: %d %s", code, body)
	}

	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	// A later run is answered from the verdict cache (three runs: the
	// catalog may notice the sample's DDL once in between, which rightly
	// drops cached verdicts).
	for range 3 {
		rows, err := c.Query(ctx, "SELECT full_name, email FROM customers ORDER BY created_at LIMIT 5", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 5 {
			t.Fatalf("rows %d: %v", n, rows.Err())
		}
	}
	_, err := c.Exec(ctx, "SELECT count(*) FROM customers WHERE religion = 'none'")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("special category: %v", err)
	}
	if _, err := pgx.Connect(ctx, p.dsn(userBI, "wrong-password", dbKunden)); err == nil {
		t.Fatal("a wrong password logged in")
	}

	body := a.metrics(t)
	for _, want := range []struct {
		name, labels string
		min          float64
	}{
		{"pgpseudo_sessions_open", `role="bi_analyst"`, 1},
		{"pgpseudo_sessions_total", `role="bi_analyst"`, 1},
		{"pgpseudo_statements_total", `outcome="ok"`, 3},
		{"pgpseudo_statements_total", `outcome="refused"`, 1},
		{"pgpseudo_rewritten_values_total", `transform="token"`, 15},
		{"pgpseudo_rewritten_values_total", `transform="email"`, 15},
		{"pgpseudo_logins_refused_total", `sqlstate="28P01"`, 1},
		{"pgpseudo_stage_duration_seconds_count", `stage="parse"`, 1},
		{"pgpseudo_stage_duration_seconds_count", `stage="analyse"`, 1},
		{"pgpseudo_stage_duration_seconds_count", `stage="server_check"`, 1},
		{"pgpseudo_stage_duration_seconds_count", `stage="audit_write"`, 3},
		{"pgpseudo_stage_duration_seconds_count", `stage="login"`, 1},
		{"pgpseudo_stage_duration_seconds_count", `stage="plan"`, 1},
		{"pgpseudo_stage_duration_seconds_count", `stage="rewrite"`, 1},
		{"pgpseudo_cache_lookups_total", `cache="verdicts",result="hit"`, 1},
		{"pgpseudo_key_refreshes_total", `result="ok"`, 1},
		{"pgpseudo_keys_primary_version", "", 1},
		{"pgpseudo_policy_loads_total", `result="ok"`, 1},
		{"pgpseudo_audit_records_total", "", 5},
		{"pgpseudo_audit_down", "", 0},
		{"go_goroutines", "", 1},
		{"process_open_fds", "", 1},
	} {
		if got := metricValue(body, want.name, want.labels); got < want.min {
			t.Errorf("%s{%s} = %v, want at least %v", want.name, want.labels, got, want.min)
		}
	}
	if got := metricValue(body, "pgpseudo_policy_loads_total", `result="failed"`); got != 0 {
		t.Errorf("policy load failures %v, want 0", got)
	}
	refused := regexp.MustCompile(`(?m)^pgpseudo_refusals_total\{rule="[a-z_]+"\} 1$`)
	if !refused.MatchString(body) {
		t.Errorf("no refusal counted by rule:\n%s", grepLines(body, "pgpseudo_refusals"))
	}
	_, ready := a.get(t, "/readyz", true)
	secrets := sampleSecrets(customers)
	secrets.check(t, "admin answers", body+ready, "")
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
