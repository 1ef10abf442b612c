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

// TestTiesBrokenByDigest: a query inside a statement that cuts, numbers
// or frames rows among ties (an inner LIMIT or OFFSET, row_number(), a
// ROWS frame) would do so in the order the server reads them, which is
// the order the rows were loaded in: ascending clear keys. The proxy adds
// its keyed digest as the last key of those orderings, so enumerating rows
// that way yields tokens in an order unrelated to the clear keys, the
// same on every run.
func TestTiesBrokenByDigest(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ranks := clearRanks(t, p)
	for _, q := range []string{
		"SELECT x.customer_id, g FROM generate_series(0, 59) g, LATERAL (SELECT customer_id FROM customers OFFSET g LIMIT 1) x ORDER BY g",
		"SELECT x.customer_id, g FROM generate_series(0, 59) g, LATERAL (SELECT customer_id FROM customers ORDER BY newsletter AND false OFFSET g LIMIT 1) x ORDER BY g",
		"SELECT customer_id, row_number() OVER () AS n FROM customers ORDER BY n",
		"SELECT customer_id, n FROM (SELECT customer_id, row_number() OVER (PARTITION BY city = city ORDER BY newsletter AND false) AS n FROM customers) s ORDER BY n",
		"SELECT customer_id, sum(1) OVER (ROWS UNBOUNDED PRECEDING) AS n FROM customers ORDER BY n",
		// Masked and generalised values leave in part and can be joined
		// on: they are hashed too (a digest without them is constant).
		"SELECT c.customer_id, s.n FROM customers c JOIN (SELECT iban AS i, row_number() OVER () AS n FROM customers) s ON c.iban = s.i ORDER BY s.n",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
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

// TestOrderHidesWithheldValues: the digest ordering hashes only values that
// leave one to one. Rows that differ only in a generalised birth date (the
// year leaves) or a blocked religion come back in the same order, so the
// order tells nothing about the part of the value that does not leave.
func TestOrderHidesWithheldValues(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	for _, pair := range []struct{ what, find string }{
		{"birth dates of one year", `SELECT a.postal_code, b.postal_code FROM customers a JOIN customers b
			ON extract(year FROM a.birth_date) = extract(year FROM b.birth_date) AND a.birth_date <> b.birth_date
			WHERE (SELECT count(*) FROM customers x WHERE x.postal_code = a.postal_code) = 1
			  AND (SELECT count(*) FROM customers x WHERE x.postal_code = b.postal_code) = 1 LIMIT 1`},
		{"religions", `SELECT a.postal_code, b.postal_code FROM customers a JOIN customers b ON a.religion <> b.religion
			WHERE (SELECT count(*) FROM customers x WHERE x.postal_code = a.postal_code) = 1
			  AND (SELECT count(*) FROM customers x WHERE x.postal_code = b.postal_code) = 1 LIMIT 1`},
	} {
		var pa, pb string
		if err := direct.QueryRow(ctx, pair.find).Scan(&pa, &pb); err != nil {
			t.Fatalf("%s: %v", pair.what, err)
		}
		col := "birth_date"
		if pair.what == "religions" {
			col = "religion"
		}
		order := func(pc string) []string {
			q := "SELECT " + col + ", g FROM customers c, generate_series(1, 30) g WHERE postal_code = '" + pc + "'"
			rows, err := c.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			defer rows.Close()
			var gs []string
			for rows.Next() {
				gs = append(gs, string(rows.RawValues()[1]))
			}
			return gs
		}
		if a, b := order(pa), order(pb); len(a) != 30 || !slices.Equal(a, b) {
			t.Errorf("%s: rows that differ only in what does not leave come back in different orders:\n%v\n%v", pair.what, a, b)
		}
	}
}

// TestSystemColumnsWithheld: a row's physical position (ctid) and writing
// transaction (xmin) follow the clear keys of a table loaded in key order,
// so for a protected table they leave as NULL; tableoid only names the
// table and stays.
func TestSystemColumnsWithheld(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeExec} {
		rows, err := c.Query(context.Background(), "SELECT ctid, xmin, tableoid, customer_id FROM customers", mode)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			v := rows.RawValues()
			if v[0] != nil || v[1] != nil {
				t.Fatalf("%v: ctid %q, xmin %q left a protected table", mode, v[0], v[1])
			}
			if v[2] == nil || v[3] == nil {
				t.Fatalf("%v: tableoid or the key token missing", mode)
			}
			n++
		}
		if rows.Err() != nil || n != sampleSize {
			t.Fatalf("%v: %d rows, %v", mode, n, rows.Err())
		}
	}
}
