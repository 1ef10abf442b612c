package integration

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestSearchPathFollowsTheServer: the analysis resolves names with the
// session's search_path as the server has it — a SET that the server rolled
// back with a failed implicit transaction does not count — so a shadow
// table of the same name cannot be used to probe a protected column.
func TestSearchPathFollowsTheServer(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	shadowCustomers(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	probe := "SELECT count(*) FROM customers WHERE email = 'anna@example.org'"
	refused := func() bool {
		var n int
		err := c.QueryRow(ctx, probe, pgx.QueryExecModeSimpleProtocol).Scan(&n)
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "42501"
	}
	if !refused() {
		t.Fatal("probing public.customers.email was not refused")
	}
	// The SET fails with its implicit transaction: search_path stays.
	if _, err := c.Exec(ctx, "SET search_path = shadow; SELECT 1/0", pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("division by zero succeeded")
	}
	if !refused() {
		t.Fatal("after a rolled-back SET search_path the probe was analysed against the shadow table")
	}
	// A SET that succeeds does change resolution.
	if _, err := c.Exec(ctx, "SET search_path = shadow", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	if refused() {
		t.Fatal("after SET search_path = shadow, customers should be shadow.customers (unclassified)")
	}
}

// TestSearchPathInTransactions: a restricted session may change its
// search_path inside a transaction block (pgJDBC's setSchema with
// autocommit off). The proxy follows what the server confirms: after a
// rollback, a rollback to a savepoint or a commit it lets no statement
// run on the path it believes until the server-side check has read the
// server's own, so names always resolve as the server resolves them — in
// both directions: a shadow table over protected data must not be taken
// for a clean one, nor the reverse.
func TestSearchPathInTransactions(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	shadowCustomers(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	// On public, this probes customers.email (refused); on shadow it
	// reads an unclassified table (allowed).
	const probe = "SELECT count(*) FROM customers WHERE email = 'anna@example.org'"
	exec := func(q string) {
		t.Helper()
		if _, err := c.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	check := func(wantRefused bool, why string) {
		t.Helper()
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
			var n int
			err := c.QueryRow(ctx, probe, mode).Scan(&n)
			var pe *pgconn.PgError
			if refused := errors.As(err, &pe) && pe.Code == "42501"; refused != wantRefused {
				t.Fatalf("%s (%v): refused %v, want %v (%v)", why, mode, refused, wantRefused, err)
			}
		}
	}
	check(true, "on public")
	exec("BEGIN")
	exec("SET search_path = shadow")
	check(false, "after SET search_path inside a transaction")
	exec("ROLLBACK")
	check(true, "after the rollback undid the SET")

	exec("BEGIN")
	exec("SET LOCAL search_path = shadow")
	check(false, "after SET LOCAL")
	exec("COMMIT")
	check(true, "after the transaction of a SET LOCAL ended")

	exec("BEGIN")
	exec("SELECT set_config('search_path', 'shadow', false)")
	exec("COMMIT")
	check(false, "after a committed set_config")

	// The other direction: on shadow, a SET to public is rolled back.
	exec("BEGIN")
	exec("SAVEPOINT s1")
	exec("SET search_path = public")
	check(true, "on public inside the savepoint")
	exec("ROLLBACK TO SAVEPOINT s1")
	check(false, "after the rollback to the savepoint restored shadow")
	exec("SET search_path = public")
	if _, err := c.Exec(ctx, "SELECT 1/0", pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("division by zero succeeded") // the transaction aborts
	}
	exec("ROLLBACK")
	check(false, "after the aborted transaction's rollback restored shadow")
	exec("RESET search_path")
	check(true, "after RESET")
}

// shadowCustomers creates shadow.customers, an unclassified table of the
// same name as the sample's, readable by the BI user.
func shadowCustomers(t *testing.T) {
	t.Helper()
	if err := shared.stack.PG.Exec(context.Background(), dbKunden,
		`CREATE SCHEMA IF NOT EXISTS shadow`,
		`CREATE TABLE IF NOT EXISTS shadow.customers (email text)`,
		`GRANT USAGE ON SCHEMA shadow TO `+userBI,
		`GRANT SELECT ON shadow.customers TO `+userBI); err != nil {
		t.Fatal(err)
	}
}
