package integration

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestBIAnalystSelectStar: as bi_analyst through psql (simple protocol),
// lib/pq (text) and pgx (extended, binary), SELECT * FROM customers returns
// tokens in classified columns and NULL in religion, and nothing the
// client receives contains a seeded personal value.
func TestBIAnalystSelectStar(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()

	t.Run("psql", func(t *testing.T) {
		out, errOut, err := runTool(t, time.Minute, "psql", libpqEnv(p.port, userBI, samplePass, dbKunden), "-X", "-A", "-F", "|", "-c", "SELECT * FROM customers ORDER BY created_at")
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, errOut)
		}
		assertNoLeak(t, "psql stdout", out, customers)
		assertNoLeak(t, "psql stderr", errOut, customers)
		if !strings.Contains(out, "tk1_") || !strings.Contains(errOut, "religion") {
			t.Fatalf("no tokens or no withheld-column notice:\n%.500s\n%s", out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != sampleSize+2 { // header + rows + "(N rows)"
			t.Fatalf("%d lines, want %d", len(lines), sampleSize+2)
		}
		for _, l := range lines[1 : len(lines)-1] {
			f := strings.Split(l, "|")
			if f[9] != "" { // religion
				t.Fatalf("religion not withheld: %q", l)
			}
			if !strings.HasPrefix(f[1], "tk1_") || !strings.Contains(f[2], "@") || !strings.HasPrefix(f[8], "******") || len(f[8]) != 10 { // mask: fixed length, last 4 of 22
				t.Fatalf("unexpected row %q", l)
			}
		}
	})
	t.Run("lib/pq", func(t *testing.T) {
		db, err := sql.Open("postgres", p.dsn(userBI, samplePass, dbKunden))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query("SELECT * FROM customers")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var all strings.Builder
		n := 0
		for rows.Next() {
			vals := make([]sql.RawBytes, 12)
			ptrs := make([]any, 12)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			if vals[9] != nil {
				t.Fatalf("religion = %q, want NULL", vals[9])
			}
			for _, v := range vals {
				all.Write(v)
				all.WriteByte('|')
			}
			n++
		}
		if rows.Err() != nil || n != sampleSize {
			t.Fatalf("%d rows, %v", n, rows.Err())
		}
		assertNoLeak(t, "lib/pq rows", all.String(), customers)
	})
	t.Run("pgx binary", func(t *testing.T) {
		c := connect(t, p.dsn(userBI, samplePass, dbKunden))
		rows, err := c.Query(ctx, "SELECT * FROM customers", pgx.QueryExecModeCacheDescribe)
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		n := 0
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("decoding a rewritten row: %v", err)
			}
			if vals[9] != nil {
				t.Fatalf("religion = %v, want NULL", vals[9])
			}
			for _, raw := range rows.RawValues() {
				all.Write(raw)
			}
			for _, v := range vals {
				fmt.Fprint(&all, v)
				all.WriteByte('|')
			}
			n++
		}
		if rows.Err() != nil || n != sampleSize {
			t.Fatalf("%d rows, %v", n, rows.Err())
		}
		assertNoLeak(t, "pgx rows", all.String(), customers)
	})
	t.Run("join keeps its row count", func(t *testing.T) {
		const q = "SELECT c.customer_id, o.order_id FROM customers c JOIN orders o ON o.customer_id = c.customer_id"
		direct := connect(t, directDSN(userBI, samplePass, dbKunden))
		via := connect(t, p.dsn(userBI, samplePass, dbKunden))
		count := func(c *pgx.Conn) (int, map[int32]bool) {
			rows, err := c.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			ids := map[int32]bool{}
			n := 0
			for rows.Next() {
				var id int32
				var oid int64
				if err := rows.Scan(&id, &oid); err != nil {
					t.Fatal(err)
				}
				ids[id] = true
				n++
			}
			return n, ids
		}
		dn, dids := count(direct)
		vn, vids := count(via)
		if dn == 0 || dn != vn || len(dids) != len(vids) {
			t.Fatalf("join rows: direct %d (%d customers), proxy %d (%d customers)", dn, len(dids), vn, len(vids))
		}
		for id := range vids {
			if dids[id] {
				t.Fatalf("customer_id %d came through in clear", id)
			}
		}
		// Tokens of orders.customer_id match tokens of customers.customer_id
		// (same token domain).
		var tokens []int32
		rows, _ := via.Query(ctx, "SELECT customer_id FROM customers")
		custTok := map[int32]bool{}
		for rows.Next() {
			var id int32
			rows.Scan(&id)
			custTok[id] = true
		}
		rows, _ = via.Query(ctx, "SELECT customer_id FROM orders")
		for rows.Next() {
			var id int32
			rows.Scan(&id)
			tokens = append(tokens, id)
		}
		for _, id := range tokens {
			if !custTok[id] {
				t.Fatalf("orders.customer_id token %d matches no customers.customer_id token", id)
			}
		}
	})
}

// TestPreparedRewrittenEveryTime: a statement described once and executed
// 100 times by pgx is rewritten every time.
func TestPreparedRewrittenEveryTime(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	if _, err := c.Prepare(ctx, "by_id", "SELECT full_name, email, iban, religion FROM customers WHERE created_at = $1"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		cust := customers[i%len(customers)]
		var name, email, iban string
		var religion *string
		if err := c.QueryRow(ctx, "by_id", cust.CreatedAt).Scan(&name, &email, &iban, &religion); err != nil {
			t.Fatalf("execution %d: %v", i, err)
		}
		got := name + "|" + email + "|" + iban
		assertNoLeak(t, "prepared execution", got, customers)
		if religion != nil || !strings.HasPrefix(name, "tk1_") {
			t.Fatalf("execution %d not rewritten: %q religion=%v", i, got, religion)
		}
	}
	// Execute without any Describe (lib/pq's unnamed statements use
	// Parse/Bind/Execute): the proxy asks for the description itself.
	db, err := sql.Open("postgres", p.dsn(userBI, samplePass, dbKunden))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var name string
	if err := db.QueryRow("SELECT full_name FROM customers WHERE created_at = $1", customers[0].CreatedAt).Scan(&name); err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, "lib/pq extended", name, customers)
}

// TestUnmatchedUserRefused: a user no role matches is refused at login with
// a message naming the user.
func TestUnmatchedUserRefused(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	_, err := pgx.Connect(context.Background(), p.dsn(userNobody, samplePass, dbKunden))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, `"mallory"`) {
		t.Fatalf("login of an unmatched user: %v", err)
	}
}

// TestSuperuserMatchesOnlyGrantedRoles: PostgreSQL reports every role as
// held by a superuser; member_of follows actual grants, so a superuser
// granted nothing is matched by no member_of role (here: not care_team,
// which sees special-category data) and is refused like any unmatched user.
func TestSuperuserMatchesOnlyGrantedRoles(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	const su = "root_sam"
	if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("DROP ROLE IF EXISTS %s", su), fmt.Sprintf("CREATE ROLE %s SUPERUSER LOGIN PASSWORD '%s'", su, samplePass)); err != nil {
		t.Fatal(err)
	}
	p := policyProxy(t, samplePolicy)
	_, err := pgx.Connect(ctx, p.dsn(su, samplePass, dbKunden))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, `"`+su+`"`) {
		t.Fatalf("login of a superuser no role names: %v", err)
	}
	// Granted clinicians, the superuser is care_team like any member.
	if err := shared.stack.PG.Exec(ctx, "postgres", "GRANT clinicians TO "+su); err != nil {
		t.Fatal(err)
	}
	c := connect(t, p.dsn(su, samplePass, dbKunden))
	var religion string
	if err := c.QueryRow(ctx, "SELECT religion FROM customers LIMIT 1").Scan(&religion); err != nil || religion == "" {
		t.Fatalf("care_team member: %q, %v", religion, err)
	}
}

// TestCareTeamSeesClear: a role allowed special-category data with a legal
// basis sees religion and names in clear.
func TestCareTeamSeesClear(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userCare, samplePass, dbKunden))
	var name, religion, iban string
	if err := c.QueryRow(context.Background(), "SELECT full_name, religion, iban FROM customers WHERE customer_id = $1", customers[3].ID).Scan(&name, &religion, &iban); err != nil {
		t.Fatal(err)
	}
	if name != customers[3].FullName || religion != customers[3].Religion || iban == customers[3].IBAN || !strings.HasSuffix(iban, customers[3].IBAN[len(customers[3].IBAN)-4:]) {
		t.Fatalf("care_team got %q %q %q", name, religion, iban)
	}
}

// TestComputedColumnsWithheld: computed columns over protected table data
// never leave for restricted roles: the SQL analysis refuses the statement,
// or (second line) the response side withholds the computed column
// (numeric ones too, which could carry a raw key); computed columns that
// read no table data, like count(*), still come through.
func TestComputedColumnsWithheld(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ids := map[string]bool{}
	for _, cu := range customers {
		ids[fmt.Sprint(cu.ID)] = true
	}
	for _, q := range []string{
		"SELECT customer_id + 0 FROM customers",
		"SELECT (SELECT customer_id FROM customers ORDER BY 1 LIMIT 1)",
		"SELECT customer_id FROM customers UNION ALL SELECT 0",
		"SELECT x FROM (SELECT customer_id * 1 AS x FROM customers) s",
		"SELECT length(full_name), extract(year FROM birth_date) FROM customers",
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			rows, err := c.Query(ctx, q, mode)
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42501" {
				continue // refused by the analysis before it ran
			}
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			n := 0
			for rows.Next() {
				for _, v := range rows.RawValues() {
					if v != nil && ids[string(v)] {
						t.Fatalf("%s (%v): raw customer_id %s came through", q, mode, v)
					}
					if v != nil && mode == pgx.QueryExecModeSimpleProtocol {
						t.Fatalf("%s: computed value %q not withheld", q, v)
					}
				}
				n++
			}
			if errors.As(rows.Err(), &pe) && pe.Code == "42501" && n == 0 {
				continue // refused by the analysis before it ran
			}
			if rows.Err() != nil || n == 0 {
				t.Fatalf("%s: %d rows, %v", q, n, rows.Err())
			}
		}
	}
	var n int64
	if err := c.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil || n != sampleSize {
		t.Fatalf("count(*) = %d, %v", n, err)
	}
}
