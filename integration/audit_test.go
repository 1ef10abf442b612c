package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgpseudo/pgpseudo/audit"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// auditProxy starts a policy proxy that writes its audit log to path.
func auditProxy(t *testing.T, path string) *runningProxy {
	t.Helper()
	kunden(t)
	cfg := proxyConfig()
	cfg.Policy = samplePolicy
	cfg.Keys = proxyKeys()
	cfg.Audit = auditConfig(t, path)
	return startProxy(t, cfg)
}

// auditConfig is an audit section writing to path, its checkpoints signed
// by a new Ed25519 key file (its public key beside it, FILE.pub).
func auditConfig(t testing.TB, path string) audit.Config {
	t.Helper()
	key := filepath.Join(t.TempDir(), "audit-signing.pem")
	priv, pub, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key+".pub", pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return audit.Config{Path: path, SigningKeyFile: key}.WithDefaults()
}

// auditPublicKeys reads the public key of an auditConfig's signer.
func auditPublicKeys(t testing.TB, cfg audit.Config) audit.PublicKeys {
	t.Helper()
	keys, err := audit.LoadPublicKeys(cfg.SigningKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func readAudit(t *testing.T, paths ...string) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.ReadRecords(context.Background(), paths, func(r *audit.Record) error {
		out = append(out, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAuditScriptedSession: an allowed, a tokenized, a withheld and a
// refused query, a COPY and a pg_dump produce the expected records and
// decisions; the log verifies; neither it nor the process logs contain a
// seeded personal value or a bind parameter.
func TestAuditScriptedSession(t *testing.T) {
	customers := kunden(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.jsonl")
	p := auditProxy(t, logPath)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	secretParam := customers[5].Email // a bind parameter that must not be logged
	steps := []struct {
		sql     string
		args    []any
		refused bool
	}{
		{"SELECT city, postal_code FROM customers WHERE city <> 'Atlantis'", nil, false},
		{"SELECT full_name, email FROM customers", nil, false},
		{"SELECT religion FROM customers", nil, false},
		// Probing a pseudonymised column with a parameter: refused by the
		// SQL analysis before it runs.
		{"SELECT count(*) FROM customers WHERE email = $1", []any{secretParam}, true},
	}
	for _, st := range steps {
		rows, err := c.Query(ctx, st.sql, st.args...)
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		var pe *pgconn.PgError
		switch {
		case st.refused && (!errors.As(err, &pe) || pe.Code != "42501"):
			t.Fatalf("%s: %v, want a 42501 refusal", st.sql, err)
		case !st.refused && err != nil:
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY customers TO STDOUT (FORMAT csv, HEADER 'yes')"); err == nil {
		t.Fatal("refused COPY succeeded")
	}
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY customers (customer_id, full_name) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := runTool(t, 5*time.Minute, "pg_dump", libpqEnv(p.port, userDev, samplePass, dbKunden), "-Fc", "-f", filepath.Join(dir, "dev.dump")); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, errOut)
	}
	c.Close(ctx)
	// Wrong password: an authentication failure record.
	if _, err := pgx.Connect(ctx, p.dsn(userBI, "wrong", dbKunden)); err == nil {
		t.Fatal("wrong password accepted")
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p.srv.Shutdown(sctx) // closes the log with a final checkpoint

	recs := readAudit(t, logPath)
	decisions := map[string]audit.Decision{}
	var kinds []string
	var outcomes []audit.Outcome
	var starts, ends, authFails, policyLoads, devStatements int
	firstRelations := ""
	texts := map[string]string{} // fingerprint → normalised text, as read so far
	for _, r := range recs {
		if st := r.Statement; st != nil && st.Fingerprint != "" && texts[st.Fingerprint] == "" {
			t.Errorf("statement %d (fingerprint %s) has no statement_text before it", r.Seq, st.Fingerprint)
		}
		switch {
		case r.StatementText != nil:
			texts[r.StatementText.Fingerprint] = r.StatementText.Text
			if strings.ContainsAny(r.StatementText.Text, "'") {
				t.Errorf("statement text keeps a literal: %s", r.StatementText.Text)
			}
		case r.Statement != nil && r.Statement.Session.User == userBI:
			for _, d := range r.Statement.Columns {
				decisions[d.Column] = d.Decision
			}
			if len(kinds) == 0 {
				firstRelations = fmt.Sprint(r.Statement.Relations)
			}
			kinds = append(kinds, r.Statement.Kind)
			outcomes = append(outcomes, r.Statement.Outcome)
			if r.Statement.Session.Role != "bi_analyst" {
				t.Errorf("role %q", r.Statement.Session.Role)
			}
		case r.Statement != nil && r.Statement.Session.User == userDev:
			devStatements++
		case r.ConnectionStart != nil:
			starts++
		case r.ConnectionEnd != nil:
			ends++
		case r.AuthFailure != nil:
			authFails++
			if r.AuthFailure.Reason != "bad_password" {
				t.Errorf("auth failure reason %q", r.AuthFailure.Reason)
			}
		case r.PolicyLoad != nil:
			policyLoads++
		}
	}
	var all []string
	for _, v := range texts {
		all = append(all, v)
	}
	if !slices.Contains(all, "SELECT city, postal_code FROM customers WHERE city <> $1") ||
		!slices.Contains(all, "SELECT count(*) FROM customers WHERE email = $1") {
		t.Errorf("statement texts: %q", all)
	}
	// city and postal_code are unclassified: the allowed query's record
	// names its relation but lists no classified column.
	if decisions["city"] != "" || firstRelations != "[public.customers]" {
		t.Errorf("allowed query: decision %q, relations %s", decisions["city"], firstRelations)
	}
	want := map[string]audit.Decision{"full_name": audit.DecisionTokenized, "email": audit.DecisionTokenized,
		"religion": audit.DecisionBlocked, "customer_id": audit.DecisionTokenized}
	for col, d := range want {
		if decisions[col] != d {
			t.Errorf("decision for %s = %q, want %q (all: %v)", col, decisions[col], d, decisions)
		}
	}
	wantOutcomes := []audit.Outcome{audit.OutcomeOK, audit.OutcomeOK, audit.OutcomeOK, audit.OutcomeRefused, audit.OutcomeRefused, audit.OutcomeOK}
	if fmt.Sprint(outcomes) != fmt.Sprint(wantOutcomes) {
		t.Errorf("bi_analyst outcomes %v (kinds %v), want %v", outcomes, kinds, wantOutcomes)
	}
	if starts != 2 || ends != 2 || authFails != 1 || policyLoads != 1 || devStatements < 10 {
		t.Errorf("records: %d starts, %d ends, %d auth failures, %d policy loads, %d developer statements", starts, ends, authFails, policyLoads, devStatements)
	}

	// The log verifies with the signer's public key alone, against its
	// checkpoint file.
	res, err := audit.Verify(ctx, auditPublicKeys(t, p.cfg.Audit), []string{logPath}, audit.VerifyOptions{Checkpoints: p.cfg.Audit.CheckpointPath})
	if err != nil || !res.Closed || res.Records != uint64(len(recs)) || res.Unsigned != 0 {
		t.Fatalf("verify: %+v, %v", res, err)
	}

	// Leak check over the audit file and the process logs.
	raw, _ := os.ReadFile(logPath)
	var logs strings.Builder
	for _, e := range p.logs.All() {
		logs.WriteString(e.Message + " " + strings.Join(fieldsOf(e.ContextMap()), " ") + "\n")
	}
	for what, text := range map[string]string{"audit log": string(raw), "process log": logs.String()} {
		assertNoLeak(t, what, text, customers)
		if strings.Contains(text, secretParam) {
			t.Fatalf("%s contains a bind parameter", what)
		}
	}
}

// TestAuditSinkFailure: when the audit log's disk fills mid-session, the
// statement whose record cannot be written is not reported as successful,
// the next statements are refused, and every statement the client was told
// succeeded is in the log.
func TestAuditSinkFailure(t *testing.T) {
	kunden(t)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "small")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs for the full-disk test needs root: %v\n%s", err, out)
	}
	defer exec.Command("umount", "-l", mnt).Run()
	logPath := filepath.Join(mnt, "audit.jsonl")
	p := auditProxy(t, logPath)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	// Leave a few KiB free.
	filler, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1024)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	os.Truncate(filepath.Join(mnt, "filler"), mustSize(t, filepath.Join(mnt, "filler"))-6*1024)

	succeeded, refused := 0, 0
	for i := 0; i < 200 && refused < 3; i++ {
		var n int
		err := c.QueryRow(ctx, "SELECT count(*) FROM customers WHERE postal_code <> $1", fmt.Sprint(i)).Scan(&n)
		var pe *pgconn.PgError
		switch {
		case err == nil:
			if refused > 0 {
				t.Fatal("a statement succeeded after the audit log failed")
			}
			succeeded++
		case errors.As(err, &pe) && pe.Code == "58030":
			refused++
		default:
			t.Fatalf("statement %d: %v", i, err)
		}
	}
	if refused == 0 || succeeded == 0 {
		t.Fatalf("%d succeeded, %d refused: the disk never filled or nothing got through", succeeded, refused)
	}
	if !waitLog(p, 0, "audit log write failed") {
		t.Fatal("audit failure not logged")
	}
	okRecords := 0
	for _, r := range readAudit(t, logPath) {
		if r.Statement != nil && r.Statement.Outcome == audit.OutcomeOK && r.Statement.Session.User == userBI {
			okRecords++
		}
	}
	if okRecords < succeeded {
		t.Fatalf("client was told %d statements succeeded, the log has %d", succeeded, okRecords)
	}
	// Freeing the disk brings the log back without a restart.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := c.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log did not recover after the disk was freed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !waitLog(p, 0, "audit log writable again") {
		t.Fatal("recovery not logged")
	}
}

func mustSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestAuditDurations: a statement's recorded duration runs from when the
// proxy received it to its completion, also when its result's first
// message arrives only at the end (pg_sleep), in both protocols. The
// server sends the results of a multi-statement query together at its end,
// so there the records' durations add up to the query's.
func TestAuditDurations(t *testing.T) {
	kunden(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.jsonl")
	p := auditProxy(t, logPath)
	ctx := context.Background()
	c := connect(t, p.dsn(userCare, samplePass, dbKunden))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT pg_sleep(0.3)", []any{pgx.QueryExecModeSimpleProtocol}},
		{"SELECT pg_sleep($1)", []any{0.25}},
		{"SELECT pg_sleep(0.2); SELECT pg_sleep(0.1)", []any{pgx.QueryExecModeSimpleProtocol}},
	} {
		if _, err := c.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(ctx)
	var sleeps []time.Duration
	for _, r := range readAudit(t, logPath) {
		if r.Statement != nil && strings.EqualFold(r.Statement.Kind, "select") {
			sleeps = append(sleeps, r.Statement.Duration)
		}
	}
	if len(sleeps) < 4 {
		t.Fatalf("statement records: %v", sleeps)
	}
	got := sleeps[len(sleeps)-4:]
	// Lower bounds: each statement slept that long inside its record.
	if got[0] < 300*time.Millisecond || got[1] < 250*time.Millisecond || got[2]+got[3] < 300*time.Millisecond {
		t.Errorf("recorded durations %v, slept 300ms, 250ms and 200ms + 100ms", got)
	}
}

// TestAuditRefusalRules: a refused statement's record names what refused
// it, not only that the analysis did.
func TestAuditRefusalRules(t *testing.T) {
	kunden(t)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	p := auditProxy(t, logPath)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	want := []struct{ sql, rule, column string }{
		{"SELECT count(*) FROM customers WHERE religion = 'x'", "column_blocked", "religion"},
		{"SELECT count(*) FROM customers WHERE email = 'a@b'", "column_pseudonymised", "email"},
		{"SELECT query_to_xml('select 1', true, true, '')", "function", ""},
		{"DELETE FROM customers", "statement_kind", ""},
		{"SELECT * FROM pg_catalog.pg_stat_activity", "relation", ""},
	}
	for _, w := range want {
		if _, err := c.Exec(ctx, w.sql); err == nil {
			t.Fatalf("%s: not refused", w.sql)
		}
	}
	c.Close(ctx)
	var got []audit.Refusal
	for _, r := range readAudit(t, logPath) {
		if r.Statement != nil && r.Statement.Refusal != nil && r.Statement.Session.User == userBI {
			got = append(got, *r.Statement.Refusal)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("refusal records: %+v", got)
	}
	for i, w := range want {
		if got[i].Rule != w.rule || got[i].Column != w.column {
			t.Errorf("%s: refusal %+v, want rule %s column %q", w.sql, got[i], w.rule, w.column)
		}
	}
}

// TestAuditRelations: a statement's record names every relation it reads,
// also when its result columns name none (a count) or one side of a join,
// and every classified column it refers to.
func TestAuditRelations(t *testing.T) {
	kunden(t)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	p := auditProxy(t, logPath)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	want := map[string]string{
		"SELECT count(DISTINCT customer_id) FROM orders":                                               "[public.orders]",
		"SELECT c.full_name FROM customers c JOIN orders o ON o.customer_id = c.customer_id LIMIT 1":   "[public.customers public.orders]",
		"SELECT count(*) FROM payments WHERE customer_id IN (SELECT customer_id FROM support_tickets)": "[public.payments public.support_tickets]",
	}
	// ... and every classified column it refers to, returned or not.
	wantCols := map[string]string{
		"[public.orders]":                          "[public.orders.customer_id:tokenized(referred)]",
		"[public.customers public.orders]":         "[public.customers.customer_id:tokenized(referred) public.customers.full_name:tokenized public.orders.customer_id:tokenized(referred)]",
		"[public.payments public.support_tickets]": "[public.payments.customer_id:tokenized(referred) public.support_tickets.customer_id:tokenized(referred)]",
	}
	for q := range want {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			if _, err := c.Exec(ctx, q, mode); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	c.Close(ctx)
	seen := map[string][]string{}
	for _, r := range readAudit(t, logPath) {
		if st := r.Statement; st != nil && st.Session.User == userBI && st.Outcome == audit.OutcomeOK {
			rels := slices.Clone(st.Relations)
			slices.Sort(rels)
			seen[st.Fingerprint] = append(seen[st.Fingerprint], fmt.Sprint(rels))
			var cols []string
			for _, c := range st.Columns {
				col := c.Table + "." + c.Column + ":" + string(c.Decision)
				if c.Referred {
					col += "(referred)"
				}
				cols = append(cols, col)
			}
			slices.Sort(cols)
			if w := wantCols[fmt.Sprint(rels)]; fmt.Sprint(cols) != w {
				t.Errorf("%s: columns %v, want %s", st.Fingerprint, cols, w)
			}
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("records by fingerprint: %v", seen)
	}
	for fp, got := range seen {
		ok := false
		for _, w := range want {
			ok = ok || slices.Equal(got, []string{w, w})
		}
		if !ok {
			t.Errorf("%s: relations %v", fp, got)
		}
	}
}

// TestAuditUnrestrictedFamilies: the statements of a role that sees
// everything are described without a parse when they differ only in
// compared numbers. Each record still gets the fingerprint a parse gives,
// the one statement text shows no literal, and texts with strings or signs
// are described one by one.
func TestAuditUnrestrictedFamilies(t *testing.T) {
	customers := kunden(t)
	pol := everythingPolicy(t)
	cfg := policyConfig(t, pol)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Audit = auditConfig(t, logPath)
	p := startProxy(t, cfg)
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbKunden, "GRANT SELECT ON customers, orders TO "+userAlice); err != nil {
		t.Fatal(err)
	}
	c, err := pgconn.Connect(ctx, p.dsn(userAlice, passAlice, dbKunden))
	if err != nil {
		t.Fatal(err)
	}
	name := customers[3].FullName
	queries := []string{
		"SELECT count(*) FROM customers WHERE customer_id = 917231846",
		"SELECT count(*) FROM customers WHERE customer_id = 824453197",
		"SELECT count(*) FROM customers WHERE customer_id = 733129604.25",
		"SELECT count(*) FROM customers WHERE customer_id = -642871935",
		"SELECT count(*) FROM customers WHERE full_name = '" + strings.ReplaceAll(name, "'", "''") + "'",
		"SELECT count(*) FROM customers WHERE customer_id = 917231846; SELECT 1 FROM orders WHERE order_id > 551977382",
	}
	for _, q := range queries {
		if _, err := c.Exec(ctx, q).ReadAll(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c.Close(ctx)
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	p.srv.Shutdown(sctx)

	want := map[string]string{} // fingerprint → text, from a parse of each statement
	var wantFPs []string
	for _, q := range queries {
		stmts, err := sqlinfo.Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range stmts {
			want[st.Fingerprint] = sqlinfo.NormalizedText(st.Text)
			wantFPs = append(wantFPs, st.Fingerprint)
		}
	}
	texts := map[string]string{}
	var fps []string
	for _, r := range readAudit(t, logPath) {
		switch {
		case r.StatementText != nil:
			texts[r.StatementText.Fingerprint] = r.StatementText.Text
		case r.Statement != nil && r.Statement.Session.User == userAlice:
			if !r.Statement.Unanalysed || r.Statement.Kind != "select" {
				t.Errorf("record %d: kind %q, unanalysed %v", r.Seq, r.Statement.Kind, r.Statement.Unanalysed)
			}
			fps = append(fps, r.Statement.Fingerprint)
		}
	}
	if !slices.Equal(fps, wantFPs) {
		t.Errorf("fingerprints %q, want %q", fps, wantFPs)
	}
	if !maps.Equal(texts, want) {
		t.Errorf("statement texts %q, want %q", texts, want)
	}
	raw, _ := os.ReadFile(logPath)
	for _, lit := range []string{"917231846", "824453197", "733129604", "642871935", "551977382"} {
		if strings.Contains(string(raw), lit) {
			t.Errorf("the audit log contains the literal %s", lit)
		}
	}
	assertNoLeak(t, "audit log", string(raw), customers)
}
