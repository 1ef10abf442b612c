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
	if err := shared.stack.PG.Exec(ctx, dbKunden,
		`CREATE SCHEMA IF NOT EXISTS shadow`,
		`CREATE TABLE IF NOT EXISTS shadow.customers (email text)`,
		`GRANT USAGE ON SCHEMA shadow TO `+userBI,
		`GRANT SELECT ON shadow.customers TO `+userBI); err != nil {
		t.Fatal(err)
	}
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
