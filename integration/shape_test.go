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

// TestLiteralShapesShareVerdict: a restricted role's statements that
// differ only in their literals are checked on the server once, by their
// template, and each still runs with its own literals: the rows differ as
// the literals do, a constant that is not a value (ORDER BY 2) keeps its
// meaning, refusals stay refusals whatever the literal, protected columns
// still leave as tokens, and a statement inside a transaction block is
// decided as it is.
func TestLiteralShapesShareVerdict(t *testing.T) {
	customers := kunden(t)
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbKunden,
		"DROP TABLE IF EXISTS shape_prices",
		"CREATE TABLE shape_prices (id int PRIMARY KEY, price numeric, note text)",
		"INSERT INTO shape_prices SELECT g, g * 10 + 0.5, 'note ' || (100 - g) FROM generate_series(1, 50) g",
		"GRANT SELECT ON shape_prices TO "+userBI); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.stack.PG.Exec(ctx, dbKunden, "DROP TABLE IF EXISTS shape_prices") })
	p := startProxy(t, policyConfig(t, samplePolicy))
	a := startAdmin(t, p)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	checks := func() float64 {
		return metricValue(a.metrics(t), "pgpseudo_stage_duration_seconds_count", `stage="server_check"`)
	}
	simple := pgx.QueryExecModeSimpleProtocol

	// Warm the catalog (its first read may drop cached verdicts).
	var price string
	if err := c.QueryRow(ctx, "SELECT price FROM shape_prices WHERE id = 1", simple).Scan(&price); err != nil {
		t.Fatal(err)
	}
	before := checks()
	for id := 2; id <= 12; id++ {
		if err := c.QueryRow(ctx, fmt.Sprintf("SELECT price FROM shape_prices WHERE id = %d", id), simple).Scan(&price); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%d.5", id*10); price != want {
			t.Fatalf("id %d: price %s, want %s", id, price, want)
		}
	}
	if n := checks() - before; n > 1 {
		t.Errorf("11 texts of one shape took %v server-side checks, want at most 1", n)
	}

	// ORDER BY 1 and ORDER BY 3 are different statements.
	first := func(q string) string {
		var id int
		var note string
		if err := c.QueryRow(ctx, q, simple).Scan(&id, &note); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return fmt.Sprintf("%d %s", id, note)
	}
	byID := first("SELECT id, note FROM shape_prices WHERE id < 40 ORDER BY 1 LIMIT 1")
	byNote := first("SELECT id, note FROM shape_prices WHERE id < 45 ORDER BY 2 LIMIT 1")
	if byID != "1 note 99" || byNote != "44 note 56" {
		t.Errorf("ORDER BY 1: %q, ORDER BY 2: %q", byID, byNote)
	}

	// Refusals hold for every literal.
	for _, v := range []string{"none", "catholic", "x' OR 'a' = 'a"} {
		_, err := c.Exec(ctx, "SELECT count(*) FROM customers WHERE religion = '"+strings.ReplaceAll(v, "'", "''")+"'", simple)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("religion = %q: %v, want 42501", v, err)
		}
	}

	// A literal written against a keyword is not cut into a parameter
	// that would join it (red team round 42: DISTINCT.5 read as the name
	// distinct$1 in the template, which has no DISTINCT).
	for _, v := range []string{".5", ".7"} {
		_, err := c.Exec(ctx, "SELECT DISTINCT"+v+" AS a, religion, customer_id FROM customers c, (VALUES (1)) v(\"distinct$1\") LIMIT 10", simple)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("DISTINCT%s over religion: %v, want 42501", v, err)
		}
	}

	// Protected columns still leave rewritten, whatever the literal.
	var got []string
	for i := range 5 {
		rows, err := c.Query(ctx, fmt.Sprintf("SELECT email, full_name FROM customers WHERE customer_id = %d", customers[i].ID), simple)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var e, n string
			if err := rows.Scan(&e, &n); err != nil {
				t.Fatal(err)
			}
			got = append(got, e, n)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
	}
	assertNoLeak(t, "customers by literal key", strings.Join(got, "\n"), customers)

	// A statement the proxy rewrites (rows over a protected table come
	// back in digest order) shares its rewrite, each text with its own
	// literal in it.
	su, err := shared.stack.PG.SuperConnect(ctx, dbKunden)
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	var cities []string
	rows, err := su.Query(ctx, "SELECT city FROM (SELECT city, count(*) FROM customers GROUP BY city ORDER BY 2 DESC, 1 LIMIT 4) x")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var city string
		rows.Scan(&city)
		cities = append(cities, city)
	}
	if rows.Err() != nil || len(cities) != 4 {
		t.Fatalf("cities %v: %v", cities, rows.Err())
	}
	before = checks()
	var names []string
	for _, city := range cities {
		var want int
		if err := su.QueryRow(ctx, "SELECT count(*) FROM customers WHERE city = $1", city).Scan(&want); err != nil {
			t.Fatal(err)
		}
		rows, err := c.Query(ctx, "SELECT full_name, city FROM customers WHERE city = '"+strings.ReplaceAll(city, "'", "''")+"'", simple)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var name, got string
			if err := rows.Scan(&name, &got); err != nil {
				t.Fatal(err)
			}
			if got != city {
				t.Fatalf("city %q: a row of %q", city, got)
			}
			names = append(names, name)
			n++
		}
		if rows.Err() != nil || n != want {
			t.Fatalf("city %q: %d rows, want %d: %v", city, n, want, rows.Err())
		}
	}
	if n := checks() - before; n > 1 {
		t.Errorf("4 texts of one rewritten shape took %v server-side checks, want at most 1", n)
	}
	assertNoLeak(t, "names by city", strings.Join(names, "\n"), customers)

	// Inside a transaction block each text is decided as it is.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before = checks()
	for id := 20; id < 23; id++ {
		if err := tx.QueryRow(ctx, fmt.Sprintf("SELECT price FROM shape_prices WHERE id = %d", id), simple).Scan(&price); err != nil {
			t.Fatal(err)
		}
	}
	if n := checks() - before; n != 3 {
		t.Errorf("3 texts in a transaction block took %v server-side checks, want 3", n)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
