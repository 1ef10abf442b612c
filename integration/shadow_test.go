package integration

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpseudo/pgpseudo/audit"
)

// TestShadowPolicy: a candidate policy that would block a column the
// enforced one tokenizes, refuse a statement the enforced one runs, and
// match no role for a user who logs in now, is decided beside it. Each
// difference is counted and recorded as a shadow record; the clients get
// exactly what the enforced policy decides (tokens, rows, a login).
func TestShadowPolicy(t *testing.T) {
	customers := kunden(t)
	shadowFile, _ := editedPolicy(t, samplePolicy,
		// bi_analyst would withhold identity columns (full_name is tokenized now).
		[2]string{"actions: {identity: tokenize, contact: tokenize, location: tokenize, financial: mask, key: tokenize, special: block}",
			"actions: {identity: block, contact: tokenize, location: tokenize, financial: mask, key: tokenize, special: block}"},
		// city, unclassified now, would be special-category data.
		[2]string{"    religion:    {category: special}\n", "    religion:    {category: special}\n    city:        {category: special}\n"},
		// No developer role: dev_max would be refused at login.
		[2]string{"  developer:\n    match: {users: [\"dev_*\"]}", "  developer:\n    match: {users: [\"nobody_*\"]}"})
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := policyConfig(t, samplePolicy)
	cfg.PolicyShadow = shadowFile
	cfg.Audit = auditConfig(t, logPath)
	p := startProxy(t, cfg)
	a := startAdmin(t, p)
	ctx := context.Background()

	bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
	for range 3 { // a cached verdict reports its differences each time
		var name string
		if err := bi.QueryRow(ctx, "SELECT full_name FROM customers WHERE created_at = $1", customers[0].CreatedAt).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "tk1_") {
			t.Fatalf("bi_analyst got %q: the enforced policy tokenizes full_name", name)
		}
	}
	var n int
	if err := bi.QueryRow(ctx, "SELECT count(*) FROM customers WHERE city = 'Berlin'", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
		t.Fatalf("a statement only the candidate refuses: %v", err)
	}
	// Every column a result returns is compared: a star, and a table
	// COPY, with city (unclassified now) among them.
	if _, err := bi.Exec(ctx, "SELECT * FROM customers LIMIT 2", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	var copied bytes.Buffer
	if _, err := bi.PgConn().CopyTo(ctx, &copied, "COPY customers TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, "COPY under shadow mode", copied.String(), customers)
	dev := connect(t, p.dsn(userDev, samplePass, dbKunden))
	var email string
	if err := dev.QueryRow(ctx, "SELECT email FROM customers LIMIT 1").Scan(&email); err != nil || !strings.HasPrefix(email, "tk1_") {
		t.Fatalf("developer: %q, %v", email, err)
	}

	body := a.metrics(t)
	if v := metricValue(body, "pgpseudo_shadow_differences_total", `kind="would_withhold"`); v < 7 {
		t.Fatalf("would_withhold = %v, want ≥ 7 (one per run, two columns of the star and of the COPY)", v)
	}
	if v := metricValue(body, "pgpseudo_shadow_differences_total", `kind="would_refuse"`); v < 1 {
		t.Fatalf("would_refuse = %v, want ≥ 1", v)
	}
	if v := metricValue(body, "pgpseudo_shadow_differences_total", `kind="would_refuse_login"`); v != 1 {
		t.Fatalf("would_refuse_login = %v, want 1", v)
	}
	if v := metricValue(body, "pgpseudo_statements_total", `outcome="refused"`); v > 0 {
		t.Fatalf("%v statements refused: shadow mode must not refuse", v)
	}
	if v := metricValue(body, "pgpseudo_statements_total", `outcome="ok"`); v < 7 {
		t.Fatalf("%v statements ok, want the test's 7", v)
	}

	bi.Close(ctx)
	dev.Close(ctx)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p.srv.Shutdown(sctx)
	got := map[string]int{}
	var text strings.Builder
	for _, r := range readAudit(t, logPath) {
		if r.Shadow == nil {
			continue
		}
		sh := r.Shadow
		if !strings.HasPrefix(sh.PolicyHash, "sha256:") {
			t.Fatalf("shadow record without the candidate's hash: %+v", sh)
		}
		for _, d := range sh.Differences {
			text.WriteString(d.Kind + " " + d.Table + "." + d.Column + " " + d.Rule + "\n")
			switch {
			case d.Kind == audit.ShadowWithhold && d.Table == "public.customers" && d.Column == "full_name":
				if d.Enforced != audit.DecisionTokenized || d.Candidate != audit.DecisionBlocked || sh.Session.Role != "bi_analyst" || sh.ShadowRole != "bi_analyst" ||
					d.EnforcedTransform != "token, its own domain" || d.CandidateTransform != "" {
					t.Fatalf("withhold difference: %+v in %+v", d, sh)
				}
				got["withhold"]++
			case d.Kind == audit.ShadowRefuse && d.Column == "city":
				got["refuse"]++
			case d.Kind == audit.ShadowWithhold && d.Column == "city" && d.Enforced == audit.DecisionAllowed && d.Candidate == audit.DecisionBlocked:
				got["city "+sh.Kind]++
			case d.Kind == audit.ShadowRefuseLogin && sh.Session.User == userDev && sh.Kind == "login":
				got["login"]++
			}
		}
	}
	if got["withhold"] < 5 || got["refuse"] != 1 || got["login"] != 1 || got["city select"] != 1 || got["city copy"] != 1 {
		t.Fatalf("shadow records: %v\n%s", got, text.String())
	}
	assertNoLeak(t, "shadow records", text.String(), customers)
}
