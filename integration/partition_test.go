package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPartitionsAndWholeRows: partitions and inheritance children take their
// root table's classification, and a whole-row value takes the table's
// strictest action.
func TestPartitionsAndWholeRows(t *testing.T) {
	customers := kunden(t)
	ctx := context.Background()
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS events (customer_id int, email text, at date) PARTITION BY RANGE (at)`,
		`CREATE TABLE IF NOT EXISTS events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE TABLE IF NOT EXISTS archived_customers () INHERITS (customers)`,
		`TRUNCATE events`,
		`GRANT SELECT ON events, events_2024, archived_customers TO ` + userBI,
	}
	for _, c := range customers[:10] {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO events VALUES (%d, '%s', '2024-05-01')`, c.ID, c.Email))
	}
	if err := shared.stack.PG.Exec(ctx, dbKunden, stmts...); err != nil {
		t.Fatal(err)
	}
	// The policy classifies the parents only.
	orig := readFile(t, samplePolicy)
	pol := writeTemp(t, "policy.yaml", strings.Replace(orig, "  public.orders:", "  public.events:\n    email: {category: contact, transform: email, domain: email}\n  public.orders:", 1))
	p := policyProxy(t, pol)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	for _, q := range []string{"SELECT * FROM events_2024", "SELECT email FROM events", "SELECT * FROM ONLY customers", "SELECT full_name, email FROM archived_customers"} {
		res := c.PgConn().Exec(ctx, q)
		rs, err := res.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var all strings.Builder
		for _, r := range rs {
			for _, row := range r.Rows {
				for _, v := range row {
					all.Write(v)
					all.WriteByte('|')
				}
			}
		}
		assertNoLeak(t, q, all.String(), customers)
	}
	// Whole-row references carry every column: the analysis refuses them.
	var row *string
	err := c.QueryRow(ctx, "SELECT c FROM customers c LIMIT 1", pgx.QueryExecModeSimpleProtocol).Scan(&row)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "whole-row") {
		t.Fatalf("whole-row value: %v, %v (want a 42501 refusal)", row, err)
	}
}
