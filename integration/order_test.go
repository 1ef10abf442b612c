package integration

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestOrderRevealsNothing: rows grouped or de-duplicated on a
// pseudonymised column do not come back in the order of the clear values,
// even when the server is made to group by sorting (enable_hashagg off);
// the order is the proxy's keyed digest, the same on every run, so
// pagination works.
func TestOrderRevealsNothing(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ranks := clearRanks(t, p)
	for _, q := range []string{
		"SELECT email, count(*) FROM customers GROUP BY email",
		"SELECT email FROM customers GROUP BY email LIMIT 40",
		"SELECT DISTINCT email FROM customers",
		"SELECT DISTINCT ON (email) email, city FROM customers",
		"SELECT * FROM (SELECT email, count(*) AS n FROM customers GROUP BY email) s WHERE n > 0",
		"SELECT email, count(*) AS n FROM customers GROUP BY email ORDER BY n DESC",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
			if _, err := c.Exec(ctx, "SET enable_hashagg = off"); err != nil {
				t.Fatal(err)
			}
			first := rawFirstColumn(t, c, q, mode)
			checkUnordered(t, q, first, ranks)
			if again := rawFirstColumn(t, c, q, mode); !slices.Equal(first, again) {
				t.Errorf("%s (%v): the order changed between two runs", q, mode)
			}
		}
	}
}

// rawFirstColumn returns the first column of q's rows as the wire
// carried them.
func rawFirstColumn(t *testing.T, c *pgx.Conn, q string, mode pgx.QueryExecMode) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), q, mode)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		out = append(out, string(rows.RawValues()[0]))
	}
	if rows.Err() != nil {
		t.Fatalf("%s: %v", q, rows.Err())
	}
	return out
}
