package integration

import (
	"context"
	"slices"
	"sort"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestOrderRevealsNothing: rows grouped or de-duplicated on a
// pseudonymised column do not come back in the order of the clear values,
// even when the server is made to group by sorting (enable_hashagg off);
// the order is the proxy's keyed digest, the same on every run, so
// pagination works.
func TestOrderRevealsNothing(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))

	// The clear e-mail behind each token: the same rows in the same
	// (unclassified) order, through the proxy and directly.
	const byUnclassified = "SELECT email FROM customers ORDER BY created_at, postal_code, city, newsletter"
	tokens := firstColumn(t, c, byUnclassified)
	emails := firstColumn(t, direct, byUnclassified)
	emailOf := map[string]string{}
	for i, tok := range tokens {
		emailOf[tok] = emails[i]
	}
	if len(emailOf) != len(customers) || len(emails) != len(customers) {
		t.Fatalf("%d tokens for %d customers", len(emailOf), len(customers))
	}

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
			first := orderOf(t, c, q, mode, emailOf)
			if len(first) < 20 {
				t.Fatalf("%s: %d rows", q, len(first))
			}
			if sort.StringsAreSorted(first) || slices.IsSortedFunc(first, func(a, b string) int { return -cmpStr(a, b) }) {
				t.Errorf("%s (%v): rows come back in clear-value order", q, mode)
			}
			if again := orderOf(t, c, q, mode, emailOf); !slices.Equal(first, again) {
				t.Errorf("%s (%v): the order changed between two runs", q, mode)
			}
		}
	}
}

// firstColumn returns the first column of q's rows as text.
func firstColumn(t *testing.T, c *pgx.Conn, q string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), q, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if rows.Err() != nil {
		t.Fatalf("%s: %v", q, rows.Err())
	}
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// orderOf runs q and returns the clear e-mails behind the tokens of its
// first column, in row order.
func orderOf(t *testing.T, c *pgx.Conn, q string, mode pgx.QueryExecMode, emailOf map[string]string) []string {
	t.Helper()
	rows, err := c.Query(context.Background(), q, mode)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := v[0].(string)
		e, ok := emailOf[tok]
		if !ok {
			t.Fatalf("%s: %q is not a known token", q, tok)
		}
		out = append(out, e)
	}
	if rows.Err() != nil {
		t.Fatalf("%s: %v", q, rows.Err())
	}
	return out
}
