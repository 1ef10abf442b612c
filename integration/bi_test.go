package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// TestBIOrderByPseudonymised: a restricted role may order its result by a
// pseudonymised column, as Metabase does with every grouped column. The
// rows come back by the column's keyed digest, NULLs where the client
// asked for them: never in clear-value order, the same order in every
// session of the role, so that pages (LIMIT/OFFSET) follow each other.
func TestBIOrderByPseudonymised(t *testing.T) {
	customers := kunden(t)
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbKunden, dropRelations("bi_contacts"),
		"CREATE TABLE bi_contacts (id int PRIMARY KEY, email text, zip text)",
		"INSERT INTO bi_contacts SELECT customer_id, CASE WHEN customer_id % 7 = 0 THEN NULL ELSE email END, postal_code FROM customers",
		"GRANT SELECT ON bi_contacts TO bi_jane"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropAfter(t, "bi_contacts") })
	file := samplePolicyWith(t, "  public.bi_contacts:\n    email: {category: contact, transform: email, domain: email}\n")
	p := policyProxy(t, file)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	other := connect(t, p.dsn(userBI, samplePass, dbKunden))
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))

	const byEmail = `SELECT zip, email FROM bi_contacts ORDER BY email`
	all := rawRows(t, c, byEmail)
	assertNoLeak(t, "ORDER BY email", all, customers)
	rows := lines(all)
	var total, withNull int
	if err := direct.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE email IS NULL) FROM bi_contacts").Scan(&total, &withNull); err != nil {
		t.Fatal(err)
	}
	if len(rows) != total || withNull == 0 || total-withNull < 20 {
		t.Fatalf("%d rows, want %d (%d of them NULL)", len(rows), total, withNull)
	}
	nonNull := total - withNull
	// NULLs last (ascending), first when asked for.
	for i, r := range rows {
		if strings.HasSuffix(r, "|NULL") != (i >= nonNull) {
			t.Fatalf("row %d of %d: %q, want the %d NULL e-mails last", i, len(rows), r, withNull)
		}
	}
	if first := lines(rawRows(t, c, `SELECT zip, email FROM bi_contacts ORDER BY email NULLS FIRST LIMIT 1`))[0]; !strings.HasSuffix(first, "|NULL") {
		t.Errorf("NULLS FIRST: the first row is %q", first)
	}
	// Not the clear order, ascending or descending, nor the clear order
	// of the postal codes printed.
	zips := func(rs []string) []string {
		out := make([]string, 0, len(rs))
		for _, r := range rs {
			out = append(out, strings.SplitN(r, "|", 2)[0])
		}
		return out
	}
	got := zips(rows[:nonNull])
	for _, q := range []string{
		`SELECT zip FROM bi_contacts WHERE email IS NOT NULL ORDER BY email`,
		`SELECT zip FROM bi_contacts WHERE email IS NOT NULL ORDER BY email DESC`,
		`SELECT zip FROM bi_contacts WHERE email IS NOT NULL ORDER BY zip`,
	} {
		clear := lines(rawRows(t, direct, q))
		same := 0
		for i := range clear {
			if clear[i] == got[i] {
				same++
			}
		}
		if same > nonNull/4 {
			t.Errorf("ORDER BY email through the proxy follows %q at %d of %d rows", q, same, len(clear))
		}
	}
	// The same order in another session, in the same query with a LIMIT,
	// and page after page; DESC reverses it.
	if again := rawRows(t, other, byEmail); again != all {
		t.Error("another session of the role gets another order")
	}
	var paged strings.Builder
	for off := 0; off < total; off += 7 {
		paged.WriteString(rawRows(t, other, byEmail+" LIMIT 7 OFFSET "+strconv.Itoa(off)))
	}
	if paged.String() != all {
		t.Error("pages of ORDER BY email … LIMIT/OFFSET do not follow each other")
	}
	desc := lines(rawRows(t, c, `SELECT zip, email FROM bi_contacts ORDER BY email DESC NULLS LAST`))
	if !slices.Equal(zips(desc[:nonNull]), reversed(got)) {
		t.Error("ORDER BY email DESC is not the reverse order")
	}
	// Metabase's grouped query, and a key that is not in the select list.
	for _, q := range []string{
		`SELECT "public"."bi_contacts"."email" AS "email", count(*) AS "count" FROM "public"."bi_contacts" GROUP BY "public"."bi_contacts"."email" ORDER BY "public"."bi_contacts"."email" ASC LIMIT 100`,
		`SELECT zip FROM bi_contacts ORDER BY email LIMIT 5`,
		`DECLARE c CURSOR WITH HOLD FOR SELECT * FROM customers ORDER BY email`,
	} {
		wantAllowed(t, c, q, "ORDER BY a pseudonymised column")
	}
	wantAllRefused(t, c, "ordering by clear values",
		`SELECT zip FROM bi_contacts ORDER BY lower(email)`,
		`SELECT zip FROM (SELECT zip FROM bi_contacts ORDER BY email LIMIT 5) s`,
		`SELECT zip FROM bi_contacts ORDER BY email COLLATE "C"`,
		`SELECT email FROM bi_contacts UNION ALL SELECT 'a@example.com' ORDER BY 1`,
		`SELECT customer_id FROM customers ORDER BY religion`,
		`SELECT birth_date FROM customers ORDER BY birth_date`,
		`SELECT DISTINCT ON (customer_id) customer_id, amount FROM orders ORDER BY customer_id, ordered_at`,
	)
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// TestBIViews: a view the policy does not classify works for a restricted
// role. Its bare columns take the decision of the base column the
// server's plan shows them to be: the same tokens as from the table, the
// blocked column as NULL. A computed column over protected data is
// refused, and a materialized view, whose plan shows only the view, stays
// unknown.
func TestBIViews(t *testing.T) {
	customers := kunden(t)
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbKunden, dropRelations("bi_v_simple", "bi_v_nested", "bi_v_mv", "bi_v_union"),
		"CREATE VIEW bi_v_simple AS SELECT customer_id, full_name, email, city, religion, lower(email) AS lmail FROM customers",
		"CREATE VIEW bi_v_nested AS SELECT s.customer_id AS id, s.email AS mail FROM bi_v_simple s WHERE s.city <> 'Atlantis'",
		"CREATE VIEW bi_v_union AS SELECT email AS v FROM customers UNION ALL SELECT 'x@example.com'",
		"CREATE MATERIALIZED VIEW bi_v_mv AS SELECT customer_id, email FROM customers",
		"CREATE VIEW bi_v_barrier WITH (security_barrier) AS SELECT customer_id, email, city FROM customers WHERE city <> 'Atlantis'",
		"CREATE VIEW bi_v_grouped AS SELECT email, count(*) AS n FROM customers GROUP BY email",
		"GRANT SELECT ON bi_v_simple, bi_v_nested, bi_v_mv, bi_v_union, bi_v_barrier, bi_v_grouped TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dropAfter(t, "bi_v_nested", "bi_v_simple", "bi_v_mv", "bi_v_union", "bi_v_barrier", "bi_v_grouped")
	})
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	const cols = "customer_id, full_name, email, city, religion"
	viaTable := rawRows(t, c, "SELECT "+cols+" FROM customers ORDER BY customer_id")
	for _, q := range []string{
		"SELECT " + cols + " FROM bi_v_simple ORDER BY customer_id",
		"SELECT v." + strings.ReplaceAll(cols, ", ", ", v.") + " FROM bi_v_simple v JOIN customers c USING (customer_id) ORDER BY c.customer_id",
	} {
		got := rawRows(t, c, q)
		assertNoLeak(t, q, got, customers)
		if got != viaTable {
			t.Errorf("%s: tokens through the view differ from the table's:\n%s\nwant\n%s", q, firstLines(got, 3), firstLines(viaTable, 3))
		}
		if strings.Count(got, "tk1_") < 2*len(customers) || !strings.Contains(got, "|NULL\n") {
			t.Errorf("%s: view columns are not tokenized, or religion not withheld:\n%s", q, firstLines(got, 3))
		}
	}
	// A nested view, joined on its token domain.
	nested := rawRows(t, c, "SELECT n.mail, count(o.*) FROM bi_v_nested n JOIN orders o ON o.customer_id = n.id GROUP BY n.mail ORDER BY n.mail")
	direct := rawRows(t, c, "SELECT c.email, count(o.*) FROM customers c JOIN orders o ON o.customer_id = c.customer_id GROUP BY c.email ORDER BY c.email")
	if nested != direct || nested == "" {
		t.Errorf("a nested view joined on customer_id:\n%s\nwant\n%s", firstLines(nested, 3), firstLines(direct, 3))
	}
	assertNoLeak(t, "nested view", nested, customers)
	// Views the planner keeps as subqueries (security_barrier, grouping):
	// their columns are the view's, by the catalog's names.
	barrier := rawRows(t, c, "SELECT b.customer_id, b.email, b.city FROM bi_v_barrier b ORDER BY b.customer_id")
	if want := rawRows(t, c, "SELECT customer_id, email, city FROM customers ORDER BY customer_id"); barrier != want {
		t.Errorf("a security_barrier view:\n%s\nwant\n%s", firstLines(barrier, 3), firstLines(want, 3))
	}
	grouped := rawRows(t, c, "SELECT email, n FROM bi_v_grouped")
	if want := rawRows(t, c, "SELECT email, count(*) AS n FROM customers GROUP BY email"); grouped != want {
		t.Errorf("a grouping view:\n%s\nwant\n%s", firstLines(grouped, 3), firstLines(want, 3))
	}
	assertNoLeak(t, "subquery views", barrier+grouped, customers)
	// A materialized view holds a copy from its last refresh: the policy
	// must classify it, or its columns leave as NULL.
	if got := rawRows(t, c, "SELECT customer_id, email FROM bi_v_mv LIMIT 3"); got != "NULL|NULL\nNULL|NULL\nNULL|NULL\n" {
		t.Errorf("an unclassified materialized view's columns: %q, want NULLs", got)
	}
	wantAllRefused(t, c, "views over protected data",
		"SELECT lmail FROM bi_v_simple",
		"SELECT * FROM bi_v_simple",
		"SELECT v FROM bi_v_union",
		"SELECT lower(email) FROM bi_v_mv",
		"SELECT count(*) FROM bi_v_mv WHERE customer_id = 7",
		"SELECT count(*) FROM bi_v_simple WHERE religion = 'x'",
		"SELECT count(*) FROM bi_v_nested WHERE mail LIKE 'a%'",
		"SELECT upper(email) FROM bi_v_barrier",
		"SELECT x.a FROM bi_v_barrier AS x(a, b) WHERE x.b LIKE 'a%'",
	)
}

// dropAfter drops a test's tables and views, which other tests (dumps of
// the whole database) must not meet.
func dropAfter(t *testing.T, names ...string) {
	if err := shared.stack.PG.Exec(context.Background(), dbKunden, dropRelations(names...)); err != nil {
		t.Errorf("drop %v: %v", names, err)
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestBIDateStyle: a generalised date reads and writes the session's
// DateStyle (psql users in Germany set German): the year comes back in
// that style, never NULL and never the clear date, also through COPY and
// after the style changes between the Describe and the Execute of a
// portal.
func TestBIDateStyle(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	ctx := context.Background()
	const q = "SELECT birth_date FROM customers ORDER BY created_at"
	for _, style := range []string{"German", "SQL, DMY", "SQL, MDY", "Postgres, DMY", "Postgres, MDY", "ISO, DMY"} {
		for _, conn := range []*pgx.Conn{c, direct} {
			if _, err := conn.Exec(ctx, "SET datestyle = '"+style+"'"); err != nil {
				t.Fatal(err)
			}
		}
		got := rawRows(t, c, q)
		want := rawRows(t, direct, "SELECT date_trunc('year', birth_date)::date FROM customers ORDER BY created_at")
		clear := lines(rawRows(t, direct, q))
		if got != want {
			t.Errorf("DateStyle %s: years\n%s\nwant\n%s", style, firstLines(got, 3), firstLines(want, 3))
		}
		for i, g := range lines(got) {
			if g == clear[i] && !strings.Contains(clear[i], "01") {
				t.Fatalf("DateStyle %s: the clear birth date %q leaked", style, g)
			}
		}
		assertNoLeak(t, "DateStyle "+style, got, customers)
		var copied bytes.Buffer
		if _, err := c.PgConn().CopyTo(ctx, &copied, "COPY ("+q+") TO STDOUT"); err != nil {
			t.Fatal(err)
		}
		if copied.String() != strings.ReplaceAll(want, "NULL", `\N`) {
			t.Errorf("DateStyle %s: COPY\n%s\nwant\n%s", style, firstLines(copied.String(), 3), firstLines(want, 3))
		}
	}
	// A portal described in one style and executed in another.
	if _, err := c.Exec(ctx, "SET datestyle = 'Postgres, MDY'"); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DECLARE d CURSOR FOR "+q); err != nil {
		t.Fatal(err)
	}
	first := rawRows(t, tx.Conn(), "FETCH 1 FROM d")
	if _, err := tx.Exec(ctx, "SET datestyle = 'German'"); err != nil {
		t.Fatal(err)
	}
	second := rawRows(t, tx.Conn(), "FETCH 1 FROM d")
	if !strings.HasPrefix(first, "01-01-") || !strings.HasPrefix(second, "01.01.") {
		t.Errorf("a cursor across a DateStyle change: %q then %q, want years", first, second)
	}
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// TestBICopyOptions: COPY's HEADER (text and csv) passes the column names
// as they are, and FORCE_QUOTE works: the columns it names come quoted,
// rewritten values too.
func TestBICopyOptions(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	ctx := context.Background()
	copyOut := func(conn *pgx.Conn, q string) []string {
		var b bytes.Buffer
		if _, err := conn.PgConn().CopyTo(ctx, &b, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return lines(b.String())
	}
	const sel = "SELECT city, email AS \"E-Mail\", customer_id FROM customers ORDER BY created_at"
	for _, tt := range []struct {
		opts string
		// quoted: the e-mail field (second) must be quoted.
		quoted bool
	}{
		{"FORMAT text, HEADER", false},
		{"FORMAT csv, HEADER true", false},
		{"FORMAT csv, HEADER, FORCE_QUOTE *", true},
		{"FORMAT csv, FORCE_QUOTE (\"E-Mail\")", true},
		{"FORMAT csv, HEADER on, FORCE_QUOTE (city)", false},
	} {
		q := "COPY (" + sel + ") TO STDOUT WITH (" + tt.opts + ")"
		got, want := copyOut(c, q), copyOut(direct, q)
		assertNoLeak(t, q, strings.Join(got, "\n"), customers)
		if len(got) != len(want) {
			t.Fatalf("%s: %d lines, want %d", q, len(got), len(want))
		}
		header := strings.Contains(tt.opts, "HEADER")
		if header && got[0] != want[0] {
			t.Errorf("%s: header %q, want %q", q, got[0], want[0])
		}
		sep := ","
		if strings.Contains(tt.opts, "text") {
			sep = "\t"
		}
		for i := range got {
			if i == 0 && header {
				continue
			}
			g, w := strings.Split(got[i], sep), strings.Split(want[i], sep)
			if len(g) != 3 || g[0] != w[0] {
				t.Fatalf("%s: line %q, want the city of %q", q, got[i], want[i])
			}
			email := strings.Trim(g[1], `"`)
			if !strings.HasPrefix(email, "tk1_") || tt.quoted != strings.HasPrefix(g[1], `"`) {
				t.Fatalf("%s: e-mail field %q (quoted: want %v)", q, g[1], tt.quoted)
			}
		}
	}
	wantAllRefused(t, c, "COPY options read otherwise than the server might",
		`COPY customers TO STDOUT WITH (FORMAT csv, HEADER yes)`,
		`COPY customers TO STDOUT WITH (FORMAT csv, ENCODING 'SJIS')`,
	)
}

// TestBILiftedFunctions: the casts and prefixes BI tools wrap columns in
// (Tableau's CAST(… AS TEXT) in a cursor, Metabase's substring(…, 1,
// 1234) when it samples a column) are computed by the proxy on the token,
// in both protocols: the result is the function of the token, typed as
// the function's result, never of the clear value.
func TestBILiftedFunctions(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ctx := context.Background()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		q := `SELECT substring("email", 1, 1234) AS "substring1234", CAST(customer_id AS TEXT) AS id, left(full_name, 6), email::varchar(9), substr(email, 5, 3), email, customer_id, substring(religion, 1, 2)` +
			" FROM customers ORDER BY created_at LIMIT 20"
		rows, err := c.Query(ctx, q, mode)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		var got strings.Builder
		n := 0
		for rows.Next() {
			n++
			v := rows.RawValues()
			for _, x := range v {
				got.Write(x)
				got.WriteByte('|')
			}
			sub, id, left, vc, mid, email, cid := string(v[0]), string(v[1]), string(v[2]), string(v[3]), string(v[4]), string(v[5]), string(v[6])
			if rows.FieldDescriptions()[6].Format == 1 {
				cid = strconv.Itoa(int(int32(binary.BigEndian.Uint32(v[6]))))
			}
			if sub != email || !strings.HasPrefix(email, "tk1_") {
				t.Fatalf("%v: substring(email, 1, 1234) = %q, email %q", mode, sub, email)
			}
			if id != cid || left != "tk1_1_" || vc != email[:9] || mid != email[4:7] || v[7] != nil {
				t.Fatalf("%v: id %q (token %q), left %q, varchar(9) %q, substr %q (of %q), religion %q", mode, id, cid, left, vc, mid, email, v[7])
			}
		}
		if err := rows.Err(); err != nil || n != 20 {
			t.Fatalf("%v: %d rows, %v", mode, n, err)
		}
		for i, f := range rows.FieldDescriptions()[:5] {
			if f.DataTypeOID != 25 && !(i == 3 && f.DataTypeOID == 1043) {
				t.Errorf("%v: column %s has type %d, want text", mode, f.Name, f.DataTypeOID)
			}
		}
		if name := rows.FieldDescriptions()[0].Name; name != "substring1234" {
			t.Errorf("%v: the first column is called %q", mode, name)
		}
		assertNoLeak(t, "lifted functions", got.String(), customers)
	}
	// In binary: a text column's binary form is its text; an integer's
	// cast is withheld (NULL, never a constant of the wrong type).
	rows, err := c.Query(ctx, "SELECT substring(email, 1, 9), CAST(customer_id AS TEXT) FROM customers LIMIT 3", pgx.QueryResultFormats{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		v := rows.RawValues()
		if !strings.HasPrefix(string(v[0]), "tk1_") || len(v[0]) != 9 || v[1] != nil {
			t.Errorf("binary lifted columns: %q, %q", v[0], v[1])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Tableau's dimension: grouped by the cast, which groups as the column.
	grouped := rawRows(t, c, `SELECT CAST("customers"."email" AS TEXT) AS "email", count(*) AS "n" FROM "public"."customers" "customers" GROUP BY 1`)
	if plain := rawRows(t, c, `SELECT email, count(*) AS n FROM customers GROUP BY email`); grouped != plain || strings.Count(grouped, "tk1_") != len(customers) {
		t.Errorf("GROUP BY a cast to TEXT:\n%s\nwant the groups of GROUP BY email:\n%s", firstLines(grouped, 3), firstLines(plain, 3))
	}
	// Tableau: a cursor over casts, fetched in pages.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DECLARE "SQL_CUR0x5a1" CURSOR WITH HOLD FOR SELECT CAST("customers"."email" AS TEXT) AS "email", CAST("customers"."city" AS TEXT) AS "city" FROM "public"."customers" "customers"`); err != nil {
		t.Fatal(err)
	}
	page := rawRows(t, tx.Conn(), `FETCH 2048 IN "SQL_CUR0x5a1"`)
	if strings.Count(page, "tk1_") != len(customers) {
		t.Errorf("the cursor's e-mails are not tokens:\n%s", firstLines(page, 3))
	}
	assertNoLeak(t, "Tableau cursor", page, customers)
	if _, err := tx.Exec(ctx, `CLOSE "SQL_CUR0x5a1"`); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	wantAllRefused(t, c, "functions the proxy does not compute on the token",
		"SELECT lower(email) FROM customers",
		"SELECT substring(email, 1, 3), count(*) FROM customers GROUP BY 1",
		"SELECT email::varchar(3), count(*) FROM customers GROUP BY 1",
		"SELECT CAST(email AS TEXT), count(*) FROM customers GROUP BY CAST(email AS TEXT)",
		"SELECT email::varchar(3) FROM customers ORDER BY 1",
		"SELECT count(*) FROM customers WHERE left(email, 1) = 'a'",
		"SELECT avg(length(email)) FROM customers",
		"DECLARE c CURSOR FOR SELECT substring(email, 1, 3) FROM customers",
	)
}

// TestBIDrillDown: a BI user clicks a token and the tool filters on it.
// For a reversible token domain the proxy decodes the literal and filters
// on the clear value upstream: the filter finds the rows with that token,
// in both protocols, in joins and IN lists, while everything that comes
// back is still tokens; a literal of a non-reversible domain is refused
// with a message that says why; EXPLAIN, which would print the clear
// value, is refused; an error after a decoded value has no position.
func TestBIDrillDown(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ctx := context.Background()
	all := lines(rawRows(t, c, "SELECT customer_id, city, postal_code FROM customers ORDER BY created_at"))
	byToken := map[string]string{}
	for _, r := range all {
		tok, _, _ := strings.Cut(r, "|")
		byToken[tok] = r
	}
	orders := map[string]string{}
	for _, r := range lines(rawRows(t, c, "SELECT customer_id, count(*) FROM orders GROUP BY customer_id")) {
		tok, n, _ := strings.Cut(r, "|")
		orders[tok] = n
	}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		for _, r := range all[:5] {
			tok, _, _ := strings.Cut(r, "|")
			var got strings.Builder
			rows, err := c.Query(ctx, "SELECT customer_id, city, postal_code FROM customers WHERE customer_id = "+tok, mode)
			if err != nil {
				t.Fatalf("%v: drill-down on %s: %v", mode, tok, err)
			}
			for rows.Next() {
				var id int32
				var city, zip string
				if err := rows.Scan(&id, &city, &zip); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&got, "%d|%s|%s\n", id, city, zip)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if got.String() != r+"\n" {
				t.Errorf("%v: WHERE customer_id = %s gave %q, want %q", mode, tok, got.String(), r)
			}
			assertNoLeak(t, "drill-down", got.String(), customers)
			var n string
			if err := c.QueryRow(ctx, "SELECT count(*)::text FROM orders o JOIN customers c ON c.customer_id = o.customer_id WHERE c.customer_id = '"+tok+"'", mode).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if want := orders[tok]; n != want && !(want == "" && n == "0") {
				t.Errorf("%v: orders of %s: %s, want %s", mode, tok, n, want)
			}
		}
	}
	t1, _, _ := strings.Cut(all[0], "|")
	t2, _, _ := strings.Cut(all[1], "|")
	// Through Bind parameters: pgx's prepared and described modes, and a
	// Parse bound in the same pipeline before the server confirmed it.
	tok1, _ := strconv.Atoi(t1)
	tok2, _ := strconv.Atoi(t2)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		var id int32
		var city, zip string
		if err := c.QueryRow(ctx, "SELECT customer_id, city, postal_code FROM customers WHERE customer_id = $1", mode, int32(tok1)).Scan(&id, &city, &zip); err != nil {
			t.Fatalf("%v: drill-down through $1: %v", mode, err)
		}
		if got := fmt.Sprintf("%d|%s|%s", id, city, zip); got != all[0] {
			t.Errorf("%v: customer_id = $1 (%d) gave %q, want %q", mode, tok1, got, all[0])
		}
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM customers WHERE customer_id IN ($1, $2)", mode, int32(tok1), int64(tok2)).Scan(&n); err != nil || n != 2 {
			t.Errorf("%v: IN ($1, $2): %d, %v", mode, n, err)
		}
	}
	pipe := c.PgConn().StartPipeline(ctx)
	pipe.SendPrepare("dd1", "SELECT city FROM customers WHERE customer_id = $1", nil)
	pipe.SendQueryPrepared("dd1", [][]byte{[]byte(t2)}, nil, nil)
	if err := pipe.Sync(); err != nil {
		t.Fatal(err)
	}
	var piped string
	for {
		res, err := pipe.GetResults()
		if err != nil {
			t.Fatal(err)
		}
		if res == nil {
			break
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			for rr.NextRow() {
				piped += string(rr.Values()[0])
			}
			if _, err := rr.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := res.(*pgconn.PipelineSync); ok {
			break
		}
	}
	if err := pipe.Close(); err != nil {
		t.Fatal(err)
	}
	if want := strings.Split(all[1], "|")[1]; piped != want {
		t.Errorf("a Bind pipelined after its Parse: %q, want %q", piped, want)
	}
	in := rawRows(t, c, "SELECT customer_id, city, postal_code FROM customers WHERE customer_id IN ("+t1+", "+t2+") ORDER BY customer_id")
	if len(lines(in)) != 2 || !strings.Contains(in, byToken[t1]) || !strings.Contains(in, byToken[t2]) {
		t.Errorf("IN (%s, %s): %q", t1, t2, in)
	}
	// A value that is no customer's token finds nothing.
	for v := 1; v < 50; v++ {
		if _, taken := byToken[strconv.Itoa(v)]; !taken {
			if got := rawRows(t, c, "SELECT customer_id FROM customers WHERE customer_id = "+strconv.Itoa(v)); got != "" {
				t.Errorf("customer_id = %d found %q", v, got)
			}
			break
		}
	}
	// An error after a decoded value: no position, no value.
	_, err := c.Exec(ctx, "SELECT customer_id FROM customers WHERE customer_id = "+t1+" AND 1/0 = 1", pgx.QueryExecModeSimpleProtocol)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position != 0 {
		t.Errorf("an error after a drill-down value: %+v", err)
	}
	assertNoLeak(t, "drill-down error", fmt.Sprint(err), customers)
	// The same at a Parse the server rejects (a constant that cannot be
	// cast is folded at parse time): the position counted in the text the
	// proxy rewrote, so it told the clear value's length (red team round
	// 44: 292 for a one-digit customer_id, 293 for two digits).
	ws, err := dialWire(t, p.dsn(userBI, samplePass, dbKunden))
	if err != nil {
		t.Fatal(err)
	}
	parse := msgFrame('P', []byte("a\x00SELECT 1 FROM customers WHERE customer_id = "+t1+" AND 'abc'::int = 1\x00"), []byte{0, 0})
	if ended, err := ws.exchange(parse); ended || err != nil || len(ws.errors) != 1 {
		t.Fatalf("Parse with a drill-down value and a bad constant: ended %v, %v, errors %v", ended, err, errorTexts(ws.errors))
	}
	if e := ws.errors[0]; e.Position != 0 || e.InternalPosition != 0 {
		t.Errorf("an error at the Parse of a drill-down value has position %d (internal %d): %s", e.Position, e.InternalPosition, e.Message)
	}
	assertNoLeak(t, "drill-down Parse error", ws.received.String(), customers)
	wantAllRefused(t, c, "drill-down that cannot be decoded, or would show the clear value",
		"SELECT count(*) FROM customers WHERE email = 'tk1_1_abc@x.invalid'",
		"SELECT count(*) FROM customers WHERE full_name IN ('tk1_1_abc')",
		"EXPLAIN SELECT * FROM customers WHERE customer_id = "+t1,
		"PREPARE dd AS SELECT * FROM customers WHERE customer_id = "+t1,
		"SELECT count(*) FROM customers WHERE customer_id = "+t1+" + 0",
		"SELECT count(*) FROM customers WHERE customer_id NOT IN ("+t1+")",
		"SELECT count(*) FROM customers WHERE customer_id < "+t1,
	)
	// A parameter the proxy decodes may not be used anywhere else.
	for _, q := range []string{
		"SELECT $1::int, city FROM customers WHERE customer_id = $1",
		"SELECT city FROM customers WHERE customer_id = $1 AND postal_code::int > $1",
	} {
		_, err := c.Exec(ctx, q, int32(tok1))
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Errorf("%s: %v, want a refusal", q, err)
		}
	}
}

// TestBIMetabaseTableSync: Metabase lists a database's tables with their
// row estimates from pg_stat_user_tables; a restricted role may read a
// table's name and estimate there (count(*) counts the same), while the
// columns that say what statements did leave as NULL and cannot be
// filtered on.
func TestBIMetabaseTableSync(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	got := rawRows(t, c, `SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('public')) ORDER BY "schema" ASC, "name" ASC`)
	if !strings.Contains(got, "public|customers|") {
		t.Errorf("Metabase's table list:\n%s", got)
	}
	if stats := rawRows(t, c, "SELECT relname, n_dead_tup, seq_scan, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'customers'"); stats != "customers|NULL|NULL|NULL\n" {
		t.Errorf("activity columns of pg_stat_user_tables: %q, want NULLs", stats)
	}
	wantAllRefused(t, c, "activity statistics",
		"SELECT count(*) FROM pg_stat_user_tables WHERE seq_scan > 0",
		"SELECT relname FROM pg_stat_user_tables ORDER BY n_tup_upd",
		"SELECT * FROM pg_stat_activity",
		"SELECT * FROM pg_stats",
	)
}

// TestBIDateStyleChangedInBatch: PostgreSQL reports a new DateStyle only
// at the next ReadyForQuery, while the rows of the same batch already
// follow it. Read in the old order (SQL, MDY for SQL, DMY), 05/12 would
// be taken for May and a month transform would show the day: dates of a
// batch after a SET leave as NULL instead, and set_config of DateStyle
// is refused.
func TestBIDateStyleChangedInBatch(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	if err := shared.stack.PG.Exec(ctx, dbKunden, dropRelations("bi_dates"),
		"CREATE TABLE bi_dates (d date, tz timestamptz)",
		"INSERT INTO bi_dates SELECT make_date(1990, m, dd), make_timestamptz(1990, m, dd, 10, 0, 0, 'UTC') FROM generate_series(1, 12) m, generate_series(1, 12) dd WHERE m <> dd",
		"GRANT SELECT ON bi_dates TO bi_jane"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropAfter(t, "bi_dates") })
	file := samplePolicyWith(t, "  public.bi_dates:\n    d: {category: identity, transform: month}\n    tz: {category: identity, transform: month}\n")
	p := policyProxy(t, file)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	if _, err := c.Exec(ctx, "SET datestyle = 'SQL, MDY'"); err != nil {
		t.Fatal(err)
	}
	got := pipelinedValues(t, c, "SET datestyle = 'SQL, DMY'", "SELECT d FROM bi_dates")
	if len(got) > 0 {
		t.Errorf("dates of a batch that changed DateStyle left as %q…, want NULL", got[:min(3, len(got))])
	}
	// SET LOCAL, reported at its batch's end, undone by the COMMIT of the
	// next batch before its rows.
	for _, q := range []string{"BEGIN", "SET LOCAL datestyle = 'SQL, MDY'"} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got = pipelinedValues(t, c, "COMMIT", "SELECT d FROM bi_dates")
	if len(got) > 0 {
		t.Errorf("dates after a COMMIT that undid SET LOCAL left as %q…, want NULL", got[:min(3, len(got))])
	}
	// Once the server has reported the style, months come back right.
	direct := connect(t, directDSN(userBI, samplePass, dbKunden))
	if _, err := direct.Exec(ctx, "SET datestyle = 'SQL, DMY'"); err != nil {
		t.Fatal(err)
	}
	rows, want := lines(rawRows(t, c, "SELECT d FROM bi_dates")), lines(rawRows(t, direct, "SELECT date_trunc('month', d)::date FROM bi_dates"))
	slices.Sort(rows)
	slices.Sort(want)
	if !slices.Equal(rows, want) {
		t.Errorf("months after the SET:\n%q\nwant\n%q", rows[:min(3, len(rows))], want[:min(3, len(want))])
	}
	// A timestamptz is generalised in UTC: no TimeZone moves it across a
	// month's start (round 29 read the day and hour from the offset at
	// which the month changed); in a style that names zones by
	// abbreviation it is withheld.
	if _, err := c.Exec(ctx, "SET datestyle = 'ISO, MDY'"); err != nil {
		t.Fatal(err)
	}
	utc := lines(rawRows(t, direct, "SELECT to_char(date_trunc('month', tz AT TIME ZONE 'UTC'), 'YYYY-MM-DD') || ' 00:00:00+00' FROM bi_dates"))
	slices.Sort(utc)
	for _, zone := range []string{"UTC", "Etc/GMT+12", "Etc/GMT-14", "XXX+50", "XXX-99", "XXX+107", "XXX-167",
		// Round 30: a daylight-saving rule 107 hours off from a given
		// minute on; rows the proxy could not read would stand out.
		"AAA0BBB-107,J35/10:00,J365/23:59"} {
		if _, err := c.Exec(ctx, "SET timezone = '"+zone+"'"); err != nil {
			t.Fatal(err)
		}
		got := lines(rawRows(t, c, "SELECT tz FROM bi_dates"))
		slices.Sort(got)
		if !slices.Equal(got, utc) {
			t.Errorf("TimeZone %s: months %q…, want the UTC ones %q…", zone, got[:3], utc[:3])
		}
	}
	if _, err := c.Exec(ctx, "SET datestyle = 'SQL, DMY'"); err != nil {
		t.Fatal(err)
	}
	if got := rawRows(t, c, "SELECT tz FROM bi_dates LIMIT 1"); got != "NULL\n" {
		t.Errorf("a zone-named timestamptz: %q, want NULL", got)
	}
	wantAllRefused(t, c, "DateStyle changed inside a query",
		"SELECT set_config('DateStyle', 'SQL, MDY', false), d FROM bi_dates")
}

// pipelinedValues sends qs as one pipeline (each as Parse, Bind, Execute),
// then Sync, and returns the non-NULL values of the first column of every
// row received.
func pipelinedValues(t *testing.T, c *pgx.Conn, qs ...string) []string {
	t.Helper()
	pl := c.PgConn().StartPipeline(context.Background())
	for _, q := range qs {
		pl.SendQueryParams(q, nil, nil, nil, nil)
	}
	if err := pl.Sync(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		res, err := pl.GetResults()
		if err != nil {
			t.Fatal(err)
		}
		if rr, ok := res.(*pgconn.ResultReader); ok {
			for rr.NextRow() {
				if v := rr.Values()[0]; v != nil {
					got = append(got, string(v))
				}
			}
			if _, err := rr.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := res.(*pgconn.PipelineSync); ok {
			break
		}
	}
	if err := pl.Close(); err != nil {
		t.Fatal(err)
	}
	return got
}
