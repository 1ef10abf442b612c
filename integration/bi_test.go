package integration

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// rawRows runs q and returns its rows as text, one line per row.
func rawRows(t *testing.T, c *pgx.Conn, q string) string {
	t.Helper()
	rows, err := c.Query(context.Background(), q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	var b strings.Builder
	for rows.Next() {
		for i, raw := range rows.RawValues() {
			if i > 0 {
				b.WriteByte('|')
			}
			if raw == nil {
				b.WriteString("NULL")
			}
			b.Write(raw)
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	return b.String()
}

// TestBIFilters: what BI tools send for "is empty / not empty" filters and
// for counting the matched side of a LEFT JOIN works for a restricted
// role, with the numbers the database has (null-ness and row counts show
// nothing a bare column does not), while the null-ness of a blocked
// column, which leaves as NULL, stays hidden.
func TestBIFilters(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	same := []string{
		`SELECT count(*) FILTER (WHERE "public"."customers"."phone" IS NULL) AS "empty", count(*) FILTER (WHERE "public"."customers"."phone" IS NOT NULL) AS "filled" FROM "public"."customers"`,
		`SELECT count(*) AS "count" FROM "public"."customers" WHERE ("public"."customers"."email" IS NOT NULL AND "public"."customers"."street" IS NULL)`,
		`SELECT c.city, count(o.*) AS orders, count(o.customer_id) AS with_customer FROM customers c LEFT JOIN orders o ON o.customer_id = c.customer_id GROUP BY c.city ORDER BY c.city`,
		`SELECT count(DISTINCT email) AS "distinct_email", count(email) AS "email" FROM customers`,
		`SELECT city, count(*) FILTER (WHERE phone IS NULL) FROM customers GROUP BY city ORDER BY city LIMIT 3`,
	}
	for _, q := range same {
		got, want := rawRows(t, c, q), rawRows(t, direct, q)
		if got != want {
			t.Errorf("%q through the proxy:\n%s\nwant (direct):\n%s", q, got, want)
		}
		assertNoLeak(t, q, got, customers)
	}
	// Rows filtered on null-ness come back tokenized.
	got := rawRows(t, c, `SELECT email, phone FROM customers WHERE phone IS NOT NULL ORDER BY created_at LIMIT 5`)
	if strings.Count(got, "tk1_") < 5 {
		t.Errorf("filtered rows are not tokenized:\n%s", got)
	}
	assertNoLeak(t, "IS NOT NULL rows", got, customers)
	wantAllRefused(t, c, "null-ness of a blocked column",
		`SELECT count(*) FROM customers WHERE religion IS NULL`,
		`SELECT count(religion) FROM customers`,
		`SELECT religion IS NULL FROM customers`,
		`SELECT count(*) FROM customers c WHERE c IS NOT NULL`,
		`SELECT count(DISTINCT c.*) FROM customers c`,
		`SELECT count(*) FROM customers WHERE (religion || '') IS NULL`,
		`SELECT count(*) FROM customers WHERE (SELECT religion) IS NULL`,
		`SELECT count(s.*) FROM customers c, LATERAL (SELECT c.religion WHERE c.religion IS NOT NULL) s`,
	)
}
