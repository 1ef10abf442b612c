package integration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPreparedStatementRechecked: a statement prepared while what it names
// was harmless is checked again when it is bound after that changed. The
// server plans a prepared statement anew after DDL (a table replaced by a
// view over e-mails) and after a search_path change (its names resolve
// again), so the verdict made at Parse would no longer describe what
// runs: without the check at Bind, the upper-cased e-mails came back in
// clear.
func TestPreparedStatementRechecked(t *testing.T) {
	secrets := sampleSecrets(kunden(t))
	ctx := context.Background()
	admin := func(stmts ...string) {
		t.Helper()
		if err := shared.stack.PG.Exec(ctx, dbKunden, stmts...); err != nil {
			t.Fatal(err)
		}
	}
	admin(dropRelations("t_prep"), "CREATE TABLE t_prep (v text)", "INSERT INTO t_prep VALUES ('clean')", "GRANT SELECT ON t_prep TO PUBLIC",
		"CREATE SCHEMA IF NOT EXISTS prep_shadow", "CREATE OR REPLACE VIEW prep_shadow.t_prep AS SELECT email AS v FROM public.customers",
		"GRANT USAGE ON SCHEMA prep_shadow TO PUBLIC", "GRANT SELECT ON prep_shadow.t_prep TO PUBLIC")
	t.Cleanup(func() { admin("DROP SCHEMA prep_shadow CASCADE", dropRelations("t_prep")) })
	// alice's role sees everything: she runs the DDL through the proxy.
	p := policyProxy(t, everythingPolicy(t))

	run := func(c *pgx.Conn, name string) (string, error) {
		var got []string
		rows, err := c.Query(ctx, name)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var v *string
			if err := rows.Scan(&v); err != nil {
				return "", err
			}
			if v != nil {
				got = append(got, *v)
			}
		}
		return strings.Join(got, "\n"), rows.Err()
	}
	wantRefusedNow := func(c *pgx.Conn, name, why string) {
		t.Helper()
		got, err := run(c, name)
		secrets.check(t, why, got, "")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Fatalf("%s: %q, %v; want 42501", why, got, err)
		}
		if _, err := run(c, "SELECT 1"); err != nil {
			t.Fatalf("%s: the session after the refusal: %v", why, err)
		}
	}

	// DDL through the proxy, then a Bind of the statement prepared before.
	// prepareClean makes t_prep a clean table again and prepares, in a
	// new session, a statement over it that runs.
	prepareClean := func() *pgx.Conn {
		t.Helper()
		admin(dropRelations("t_prep"), "CREATE TABLE t_prep (v text)", "INSERT INTO t_prep VALUES ('clean')", "GRANT SELECT ON t_prep TO PUBLIC")
		p.srv.CatalogChanged(dbKunden)
		conn := connect(t, p.dsn(userBI, samplePass, dbKunden))
		if _, err := conn.Prepare(ctx, "up", "SELECT upper(v) FROM t_prep"); err != nil {
			t.Fatal(err)
		}
		if got, err := run(conn, "up"); err != nil || got != "CLEAN" {
			t.Fatalf("before: %q, %v", got, err)
		}
		return conn
	}
	c := prepareClean()
	owner := connect(t, p.dsn(userAlice, passAlice, dbKunden))
	for _, q := range []string{"DROP TABLE t_prep", "CREATE VIEW t_prep AS SELECT email AS v FROM customers", "GRANT SELECT ON t_prep TO PUBLIC"} {
		if _, err := owner.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	wantRefusedNow(c, "up", "a statement prepared before DDL through the proxy")

	// DDL run directly on the database, once the proxy is told (SIGHUP,
	// or catalog_ttl later).
	c2 := prepareClean()
	admin(dropRelations("t_prep"), "CREATE VIEW t_prep AS SELECT email AS v FROM customers", "GRANT SELECT ON t_prep TO PUBLIC")
	p.srv.CatalogChanged(dbKunden)
	wantRefusedNow(c2, "up", "a statement prepared before direct DDL")

	// A new search_path: the server resolves the prepared names again.
	c3 := prepareClean()
	if _, err := c3.Exec(ctx, "SET search_path = prep_shadow, public"); err != nil {
		t.Fatal(err)
	}
	wantRefusedNow(c3, "up", "a statement prepared before a search_path change")
	// Prepared again under the new path, it is refused at once; back on
	// the old path the first statement runs as before.
	if _, err := c3.Exec(ctx, "SET search_path = public"); err != nil {
		t.Fatal(err)
	}
	if got, err := run(c3, "up"); err != nil || got != "CLEAN" {
		t.Fatalf("back on the old path: %q, %v", got, err)
	}
}
