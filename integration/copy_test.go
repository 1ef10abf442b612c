package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCopyAndCursorsNoLeak: COPY (SELECT …) and COPY table TO STDOUT in
// text, csv and binary, and DECLARE [BINARY] CURSOR + FETCH, leak no
// seeded personal value for bi_analyst, and still return every row.
func TestCopyAndCursorsNoLeak(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	for _, q := range []string{
		"COPY customers TO STDOUT",
		"COPY public.customers (customer_id, full_name, email, religion) TO stdout;",
		"COPY customers TO STDOUT (FORMAT csv, HEADER)",
		"COPY customers TO STDOUT (FORMAT binary)",
		"COPY (SELECT full_name, email, phone, iban, religion FROM customers ORDER BY created_at) TO STDOUT (FORMAT csv)",
		"COPY (SELECT * FROM customers) TO STDOUT (FORMAT binary)",
		"COPY (SELECT c.full_name, t.body FROM customers c JOIN support_tickets t USING (customer_id)) TO STDOUT",
		"COPY health_records TO STDOUT",
		"COPY health_records TO STDOUT (FORMAT csv)",
	} {
		var buf bytes.Buffer
		tag, err := c.PgConn().CopyTo(ctx, &buf, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		assertNoLeak(t, q, buf.String(), customers)
		if tag.RowsAffected() == 0 || buf.Len() == 0 {
			t.Fatalf("%s: no rows", q)
		}
		if !strings.Contains(q, "binary") && strings.Count(buf.String(), "\n") < int(tag.RowsAffected()) {
			t.Fatalf("%s: %d lines for %d rows", q, strings.Count(buf.String(), "\n"), tag.RowsAffected())
		}
	}
	// Unsupported COPY options withhold the data and fail the statement.
	var buf bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &buf, "COPY customers TO STDOUT (FORMAT csv, HEADER 'yes')"); err == nil || !strings.Contains(err.Error(), "42501") {
		t.Fatalf("HEADER 'yes': %v", err)
	}
	assertNoLeak(t, "HEADER 'yes'", buf.String(), customers)

	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, decl := range []string{"DECLARE cur CURSOR FOR SELECT * FROM customers", "DECLARE bcur BINARY CURSOR FOR SELECT * FROM customers"} {
		if _, err := tx.Exec(ctx, decl, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	for _, fetch := range []string{"FETCH 25 FROM cur", "FETCH ALL FROM cur", "FETCH ALL FROM bcur"} {
		res := c.PgConn().Exec(ctx, fetch)
		rs, err := res.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var all bytes.Buffer
		for _, r := range rs {
			for _, row := range r.Rows {
				for _, v := range row {
					all.Write(v)
					all.WriteByte('|')
				}
			}
		}
		if all.Len() == 0 {
			t.Fatalf("%s returned nothing", fetch)
		}
		assertNoLeak(t, fetch, all.String(), customers)
	}
}

// TestDeveloperPgDump: a developer's pg_dump -Fc and --inserts through the
// proxy restore into fresh databases with every foreign key and unique
// constraint; no seeded personal value is in the dumps; tokens in
// orders.customer_id still match customers.customer_id.
func TestDeveloperPgDump(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	dir := t.TempDir()
	env := libpqEnv(p.port, userDev, samplePass, dbKunden)
	directPort := fmt.Sprint(shared.stack.PG.Port)
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"custom", []string{"-Fc"}},
		{"inserts", []string{"--inserts"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			file := filepath.Join(dir, mode.name+".dump")
			if _, errOut, err := runTool(t, 5*time.Minute, "pg_dump", env, append(mode.args, "--no-owner", "--no-privileges", "-f", file)...); err != nil {
				t.Fatalf("pg_dump as developer through the proxy: %v\n%s", err, errOut)
			}
			dump, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			target := fmt.Sprintf("devcopy_%s_%d", mode.name, time.Now().UnixNano())
			if err := shared.stack.PG.Exec(ctx, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", target, userAlice)); err != nil {
				t.Fatal(err)
			}
			restoreEnv := libpqEnv(directPort, userAlice, passAlice, target)
			if mode.name == "custom" {
				// The archive is compressed: check its plain rendering too.
				plain, errOut, err := runTool(t, time.Minute, "pg_restore", nil, "-f", "-", file)
				if err != nil {
					t.Fatalf("pg_restore -f -: %v\n%s", err, errOut)
				}
				assertNoLeak(t, "dump", plain, customers)
				if _, errOut, err := runTool(t, 5*time.Minute, "pg_restore", restoreEnv, "--exit-on-error", "--no-owner", "-d", target, file); err != nil {
					t.Fatalf("pg_restore: %v\n%s", err, errOut)
				}
			} else {
				assertNoLeak(t, "dump", string(dump), customers)
				if _, errOut, err := runTool(t, 5*time.Minute, "psql", restoreEnv, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", file); err != nil {
					t.Fatalf("psql restore: %v\n%s", err, errOut)
				}
			}
			rc := connect(t, directDSN(userAlice, passAlice, target))
			var cons, orphans, rows int
			if err := rc.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE contype IN ('f', 'u', 'p') AND connamespace = 'public'::regnamespace`).Scan(&cons); err != nil {
				t.Fatal(err)
			}
			if cons < 10 { // 5 primary keys, 1 unique, 5 foreign keys
				t.Fatalf("%d constraints restored", cons)
			}
			if err := rc.QueryRow(ctx, `SELECT count(*) FROM orders o LEFT JOIN customers c USING (customer_id) WHERE c.customer_id IS NULL`).Scan(&orphans); err != nil || orphans != 0 {
				t.Fatalf("orders whose customer token matches no customer: %d, %v", orphans, err)
			}
			if err := rc.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&rows); err != nil || rows != sampleSize {
				t.Fatalf("restored %d customers, %v", rows, err)
			}
		})
	}
}
