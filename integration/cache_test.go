package integration

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// everythingPolicy is the sample policy plus a role that sees everything
// for alice.
func everythingPolicy(t *testing.T) string {
	return writeTemp(t, "policy.yaml", readFile(t, samplePolicy)+`
  everything:
    match: {users: [alice]}
    actions: {identity: allow, contact: allow, location: allow, financial: allow, key: allow, online: allow, employment: allow, special: allow}
    unclassified: allow
    legal_basis: "test"
`)
}

// wantRefused fails unless q is refused with 42501 for c.
func wantRefused(t *testing.T, c *pgx.Conn, q, why string) {
	t.Helper()
	_, err := c.Exec(context.Background(), q, pgx.QueryExecModeSimpleProtocol)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("%s: %q was not refused: %v", why, q, err)
	}
}

// wantAllRefused is wantRefused for each of qs.
func wantAllRefused(t *testing.T, c *pgx.Conn, why string, qs ...string) {
	t.Helper()
	for _, q := range qs {
		wantRefused(t, c, q, why)
	}
}

// wantAllAllowed is wantAllowed for each of qs.
func wantAllAllowed(t *testing.T, c *pgx.Conn, why string, qs ...string) {
	t.Helper()
	for _, q := range qs {
		wantAllowed(t, c, q, why)
	}
}

// wantAllowed fails unless q runs for c; no seeded customer value may
// appear in what it returns.
func wantAllowed(t *testing.T, c *pgx.Conn, q, why string) {
	t.Helper()
	rows, err := c.Query(context.Background(), q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("%s: %q: %v", why, q, err)
	}
	var got strings.Builder
	for rows.Next() {
		for _, raw := range rows.RawValues() {
			got.Write(raw)
			got.WriteByte('|')
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %q: %v", why, q, err)
	}
	assertNoLeak(t, why, got.String(), kunden(t))
}

// dropRelations drops the named tables or views of schema public,
// whichever they are.
func dropRelations(names ...string) string {
	return `DO $$DECLARE r record; BEGIN
  FOR r IN SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY ('{` + strings.Join(names, ",") + `}') LOOP
    EXECUTE format('DROP %s %I CASCADE', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.relname);
  END LOOP; END$$`
}

// TestCachesFollowDatabaseAndDDL: a statement's verdict, and the catalog
// facts behind it, are never reused in another database, for another
// user, under another policy, or after the objects it names changed —
// through the proxy (at once) or directly on the database (within
// limits.catalog_ttl).
func TestCachesFollowDatabaseAndDDL(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	admin := func(db string, stmts ...string) {
		t.Helper()
		if err := shared.stack.PG.Exec(ctx, db, stmts...); err != nil {
			t.Fatal(err)
		}
	}
	admin("postgres", "DROP DATABASE IF EXISTS kunden_b", "CREATE DATABASE kunden_b", "DROP ROLE IF EXISTS bi_joe",
		"CREATE ROLE bi_joe LOGIN PASSWORD '"+samplePass+"'")
	admin("kunden_b", "CREATE TABLE x (v text)", "INSERT INTO x VALUES ('clean')", "GRANT SELECT ON x TO bi_jane")
	admin(dbKunden, dropRelations("x", "t_ddl", "t_direct"), "CREATE VIEW x AS SELECT email AS v FROM customers", "GRANT SELECT ON x TO bi_jane",
		"CREATE TABLE t_ddl (v text)", "INSERT INTO t_ddl VALUES ('a')",
		"GRANT SELECT ON t_ddl TO bi_jane", "GRANT SELECT ON customers TO alice", "ALTER TABLE t_ddl OWNER TO alice",
		"GRANT CREATE ON SCHEMA public TO alice",
		"CREATE TABLE t_direct (v text)", "GRANT SELECT ON t_direct TO bi_jane",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO bi_joe",
		"CREATE SCHEMA IF NOT EXISTS bi_joe", "CREATE OR REPLACE VIEW bi_joe.orders AS SELECT customer_id, religion AS status FROM public.customers",
		"GRANT USAGE ON SCHEMA bi_joe TO bi_joe", "GRANT SELECT ON bi_joe.orders TO bi_joe")
	defer admin(dbKunden, dropRelations("x", "t_ddl", "t_direct"), "DROP SCHEMA bi_joe CASCADE",
		"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM bi_joe", "REVOKE CREATE ON SCHEMA public FROM alice")

	pol := everythingPolicy(t)
	cfg := proxyConfig()
	cfg.Policy, cfg.Keys = pol, proxyKeys()
	cfg.Limits.CatalogTTL = time.Second
	p := startProxy(t, cfg)
	const upper = "SELECT upper(v) FROM x"

	t.Run("another database", func(t *testing.T) {
		b := connect(t, p.dsn(userBI, samplePass, "kunden_b"))
		wantAllowed(t, b, upper, "a clean table in kunden_b")
		k := connect(t, p.dsn(userBI, samplePass, dbKunden))
		wantRefused(t, k, upper, "the same text over a view of e-mails in kunden")
	})
	t.Run("DDL through the proxy", func(t *testing.T) {
		bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
		wantAllowed(t, bi, "SELECT upper(v) FROM t_ddl", "a clean table")
		owner := connect(t, p.dsn(userAlice, passAlice, dbKunden))
		for _, q := range []string{"DROP TABLE t_ddl", "CREATE VIEW t_ddl AS SELECT email AS v FROM customers", "GRANT SELECT ON t_ddl TO bi_jane"} {
			if _, err := owner.Exec(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		wantRefused(t, bi, "SELECT upper(v) FROM t_ddl", "the same text after the table became a view of e-mails")
	})
	t.Run("DDL directly on the database", func(t *testing.T) {
		bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
		wantAllowed(t, bi, "SELECT upper(v) FROM t_direct", "a clean table")
		admin(dbKunden, "DROP TABLE t_direct", "CREATE VIEW t_direct AS SELECT email AS v FROM customers", "GRANT SELECT ON t_direct TO bi_jane")
		time.Sleep(cfg.Limits.CatalogTTL + 200*time.Millisecond)
		wantRefused(t, bi, "SELECT upper(v) FROM t_direct", "the same text once the catalog TTL has passed")
	})
	t.Run("another user of the same role", func(t *testing.T) {
		jane := connect(t, p.dsn(userBI, samplePass, dbKunden))
		wantAllowed(t, jane, "SELECT upper(status) FROM orders", "public.orders for bi_jane")
		joe := connect(t, p.dsn("bi_joe", samplePass, dbKunden))
		wantRefused(t, joe, "SELECT upper(status) FROM orders", "bi_joe's own schema comes first")
	})
	t.Run("a reloaded policy", func(t *testing.T) {
		bi := connect(t, p.dsn(userBI, samplePass, dbKunden))
		wantAllowed(t, bi, "SELECT upper(city) FROM customers", "city is unclassified")
		stricter := strings.Replace(readFile(t, pol), "    religion:    {category: special}", "    religion:    {category: special}\n    city:        {category: special}", 1)
		if !strings.Contains(stricter, "city:        {category: special}") {
			t.Fatal("policy edit failed")
		}
		if err := os.WriteFile(pol, []byte(stricter), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := p.srv.ReloadPolicy(); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, bi, "SELECT upper(city) FROM customers", "city is special-category data after the reload")
	})
}
