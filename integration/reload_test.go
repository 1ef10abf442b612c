package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/proxy"
	"github.com/pgpseudo/pgpseudo/proxy/catalog"
)

// TestPolicyReload: a changed valid file changes what an open connection
// sees next (on file change and on ReloadPolicy, which SIGHUP calls); an
// invalid file keeps the old policy; serve and policy loading fail with
// file:line on an invalid file.
func TestPolicyReload(t *testing.T) {
	customers := kunden(t)
	orig, err := os.ReadFile(samplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	p := policyProxy(t, file)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	name := func() string {
		var n string
		// Filter on an unclassified column: pseudonymised ones may not be
		// compared with parameters.
		if err := c.QueryRow(ctx, "SELECT full_name FROM customers WHERE created_at = $1", customers[0].CreatedAt).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := name(); !strings.HasPrefix(n, "tk1_") {
		t.Fatalf("before reload: %q", n)
	}
	allowIdentity := strings.Replace(string(orig), "actions: {identity: tokenize, contact: tokenize, location: tokenize, financial: mask, key: tokenize, special: block}",
		"actions: {identity: allow, contact: tokenize, location: tokenize, financial: mask, key: tokenize, special: block}", 1)
	if allowIdentity == string(orig) {
		t.Fatal("test edit did not apply")
	}

	// The watcher notices a changed file.
	time.Sleep(1100 * time.Millisecond) // a different modification time
	if err := os.WriteFile(file, []byte(allowIdentity), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for name() != customers[0].FullName {
		if time.Now().After(deadline) {
			t.Fatal("the open connection never saw the reloaded policy")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An invalid file keeps the policy in force.
	bad := strings.Replace(string(orig), "transform: token}", "transform: tokn}", 1)
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err = p.srv.ReloadPolicy()
	if err == nil || !strings.Contains(err.Error(), "policy.yaml:") {
		t.Fatalf("reload of an invalid file: %v, want a file:line error", err)
	}
	if n := name(); n != customers[0].FullName {
		t.Fatalf("after a failed reload: %q", n)
	}
	if !waitLog(p, 0, "previous policy stays in force") {
		t.Fatal("failed reload not logged")
	}
	body := startAdmin(t, p).metrics(t)
	if failed, ok := metricValue(body, "pgpseudo_policy_loads_total", `result="failed"`), metricValue(body, "pgpseudo_policy_loads_total", `result="ok"`); failed < 1 || ok < 2 {
		t.Fatalf("policy loads counted: %v failed, %v ok; want the failed reload and the good ones", failed, ok)
	}

	// SIGHUP's path back to the original policy.
	if err := os.WriteFile(file, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	if n := name(); !strings.HasPrefix(n, "tk1_") {
		t.Fatalf("after reloading the original: %q", n)
	}

	// An invalid policy refuses to start, naming file and line.
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := proxyConfig()
	cfg.Policy = file
	cfg.Keys = proxyKeys()
	if _, err := proxy.NewServer(cfg, zap.NewNop()); err == nil || !regexp.MustCompile(`policy\.yaml:\d+: columns\.public\.customers\.full_name\.transform`).MatchString(err.Error()) {
		t.Fatalf("NewServer with an invalid policy: %v", err)
	}
	if _, err := policy.Load(file); err == nil {
		t.Fatal("policy.Load accepted an invalid file")
	}
}

// TestPolicyCheckDB: checked against the sample database, the sample
// policy has no errors and lists the unclassified columns; a policy naming
// a missing column is reported.
func TestPolicyCheckDB(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	cfg := proxyConfig()
	conn, err := catalog.Connect(ctx, cfg, dbKunden)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables, err := catalog.ReadSchema(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(samplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	var report []string
	for _, f := range pol.CheckSchema(tables) {
		if f.Severity == policy.SeverityError {
			t.Errorf("sample policy: %s", f)
		}
		report = append(report, f.String())
	}
	if !strings.Contains(strings.Join(report, "\n"), "info: public.customers.city: unclassified (text)") {
		t.Fatalf("unclassified columns not listed:\n%s", strings.Join(report, "\n"))
	}
	orig, _ := os.ReadFile(samplePolicy)
	broken, err := policy.Parse("broken.yaml", []byte(strings.Replace(string(orig), "    street:", "    streeet:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range broken.CheckSchema(tables) {
		found = found || f.Severity == policy.SeverityError && f.Column == "streeet"
	}
	if !found {
		t.Fatal("a classified column missing from the database was not reported")
	}
}

// TestPolicyCheckedAgainstDB: serve checks the policy against
// policy_database at start and after a reload, as `policy check --db`
// does, and logs each finding as a warning without refusing to start.
func TestPolicyCheckedAgainstDB(t *testing.T) {
	file := samplePolicyWith(t, "  public.customers_gone:\n    email: {category: contact, transform: email, domain: email}\n")
	cfg := policyConfig(t, file)
	cfg.PolicyDatabase = dbKunden
	p := startProxy(t, cfg)
	if !waitLog(p, 0, "public.customers_gone: the policy classifies this table but the database has no such table") {
		t.Fatal("the start-up check did not report the missing table")
	}
	if !waitLog(p, 0, "public.customers.city: unclassified") {
		t.Fatal("the start-up check did not report an unclassified column")
	}
	for _, e := range p.logs.All() {
		if e.Message == "policy check" && e.Level.String() != "warn" {
			t.Fatalf("finding logged at %s, want warn", e.Level)
		}
	}
	// Reloaded with the table gone from the policy: checked again, and the
	// finding is not repeated.
	before := len(p.logs.All())
	orig, err := os.ReadFile(samplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	if !waitLog(p, before, "policy checked against the database") {
		t.Fatal("the reloaded policy was not checked")
	}
	if hasLog(p, before, "customers_gone") {
		t.Fatal("the reloaded policy's check repeated a finding of the old one")
	}
}

// TestPolicyDiffDB: `policy diff --db` compares every column of the
// database, so a role's new rule for unclassified columns shows on the
// columns it reaches (customers.city), not only on classified ones.
func TestPolicyDiffDB(t *testing.T) {
	kunden(t)
	dir := t.TempDir()
	cf := filepath.Join(dir, "pgpseudo.yaml")
	conf := binaryConfig(freeAddr(t), "policy: "+samplePolicy+"\npolicy_database: "+dbKunden+"\n")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(samplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(orig), "special: block}\n    unclassified: allow\n  developer:", "special: block}\n    unclassified: block\n  developer:", 1)
	if edited == string(orig) {
		t.Fatal("test edit did not apply")
	}
	newFile := filepath.Join(dir, "new.yaml")
	if err := os.WriteFile(newFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		out, err := exec.Command(shared.binary(t), append([]string{"policy", "diff"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("policy diff %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	static := run(samplePolicy, newFile)
	if !strings.Contains(static, "role bi_analyst: unclassified: allow → block") || strings.Contains(static, "customers.city") {
		t.Fatalf("policy diff without --db:\n%s", static)
	}
	withDB := run("--config", cf, "--db", samplePolicy, newFile)
	for _, want := range []string{"role bi_analyst: public.customers.city: allow [unclassified] → block [unclassified]",
		"role bi_analyst: public.orders.amount: allow [unclassified] → block [unclassified]"} {
		if !strings.Contains(withDB, want) {
			t.Fatalf("policy diff --db lacks %q:\n%s", want, withDB)
		}
	}
	if strings.Contains(withDB, "role developer:") || strings.Contains(withDB, "role care_team:") {
		t.Fatalf("policy diff --db reports roles that did not change:\n%s", withDB)
	}
}

// TestDrillDownSurvivesRoleChange: a prepared statement with a drill-down
// parameter keeps working after a reload that renames the session's role
// (the statement is prepared again under the proxy's own name before the
// next Bind).
func TestDrillDownSurvivesRoleChange(t *testing.T) {
	customers := kunden(t)
	file, orig := editedPolicy(t, samplePolicy)
	p := policyProxy(t, file)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ctx := context.Background()
	var tok int64
	if err := c.QueryRow(ctx, "SELECT customer_id FROM customers WHERE created_at = $1", customers[0].CreatedAt).Scan(&tok); err != nil {
		t.Fatal(err)
	}
	byToken := func() string {
		var name string
		if err := c.QueryRow(ctx, "SELECT full_name FROM customers WHERE customer_id = $1", tok).Scan(&name); err != nil {
			t.Fatalf("drill-down by token: %v", err)
		}
		return name
	}
	before := byToken()
	renamed := strings.Replace(orig, "\n  bi_analyst:\n", "\n  analysts:\n", 1)
	if renamed == orig {
		t.Fatal("test edit did not apply")
	}
	if err := os.WriteFile(file, []byte(renamed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.srv.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := byToken(); got != before {
			t.Fatalf("after the role was renamed: %q, before %q", got, before)
		}
	}
	assertNoLeak(t, "drill-down after reload", before, customers)
}
