package integration

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPreparedStatementRechecked: a statement prepared while what it names
// was harmless is checked again when it is bound after that changed. The
// server plans a prepared statement anew after DDL (a table replaced by a
// view over e-mails) and after a search_path change (its names resolve
// again), so the verdict made at Parse would no longer describe what
// runs: without the check at Bind, the upper-cased e-mails came back in
// clear.
func TestPreparedStatementRechecked(t *testing.T) {
	secrets := sampleSecrets(kunden(t))
	ctx := context.Background()
	admin := func(stmts ...string) {
		t.Helper()
		if err := shared.stack.PG.Exec(ctx, dbKunden, stmts...); err != nil {
			t.Fatal(err)
		}
	}
	admin(dropRelations("t_prep"), "CREATE TABLE t_prep (v text)", "INSERT INTO t_prep VALUES ('clean')", "GRANT SELECT ON t_prep TO PUBLIC",
		"CREATE SCHEMA IF NOT EXISTS prep_shadow", "CREATE OR REPLACE VIEW prep_shadow.t_prep AS SELECT email AS v FROM public.customers",
		"GRANT USAGE ON SCHEMA prep_shadow TO PUBLIC", "GRANT SELECT ON prep_shadow.t_prep TO PUBLIC")
	t.Cleanup(func() { admin("DROP SCHEMA prep_shadow CASCADE", dropRelations("t_prep")) })
	// alice's role sees everything: she runs the DDL through the proxy.
	p := policyProxy(t, everythingPolicy(t))

	run := func(c *pgx.Conn, name string) (string, error) {
		var got []string
		rows, err := c.Query(ctx, name)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var v *string
			if err := rows.Scan(&v); err != nil {
				return "", err
			}
			if v != nil {
				got = append(got, *v)
			}
		}
		return strings.Join(got, "\n"), rows.Err()
	}
	wantRefusedNow := func(c *pgx.Conn, name, why string) {
		t.Helper()
		got, err := run(c, name)
		secrets.check(t, why, got, "")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" {
			t.Fatalf("%s: %q, %v; want 42501", why, got, err)
		}
		if _, err := run(c, "SELECT 1"); err != nil {
			t.Fatalf("%s: the session after the refusal: %v", why, err)
		}
	}

	// DDL through the proxy, then a Bind of the statement prepared before.
	// prepareClean makes t_prep a clean table again and prepares, in a
	// new session, a statement over it that runs.
	prepareClean := func() *pgx.Conn {
		t.Helper()
		admin(dropRelations("t_prep"), "CREATE TABLE t_prep (v text)", "INSERT INTO t_prep VALUES ('clean')", "GRANT SELECT ON t_prep TO PUBLIC")
		p.srv.CatalogChanged(dbKunden)
		conn := connect(t, p.dsn(userBI, samplePass, dbKunden))
		if _, err := conn.Prepare(ctx, "up", "SELECT upper(v) FROM t_prep"); err != nil {
			t.Fatal(err)
		}
		if got, err := run(conn, "up"); err != nil || got != "CLEAN" {
			t.Fatalf("before: %q, %v", got, err)
		}
		return conn
	}
	c := prepareClean()
	owner := connect(t, p.dsn(userAlice, passAlice, dbKunden))
	for _, q := range []string{"DROP TABLE t_prep", "CREATE VIEW t_prep AS SELECT email AS v FROM customers", "GRANT SELECT ON t_prep TO PUBLIC"} {
		if _, err := owner.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	wantRefusedNow(c, "up", "a statement prepared before DDL through the proxy")

	// DDL run directly on the database, once the proxy is told (SIGHUP,
	// or catalog_ttl later).
	c2 := prepareClean()
	admin(dropRelations("t_prep"), "CREATE VIEW t_prep AS SELECT email AS v FROM customers", "GRANT SELECT ON t_prep TO PUBLIC")
	p.srv.CatalogChanged(dbKunden)
	wantRefusedNow(c2, "up", "a statement prepared before direct DDL")

	// A new search_path: the server resolves the prepared names again.
	c3 := prepareClean()
	if _, err := c3.Exec(ctx, "SET search_path = prep_shadow, public"); err != nil {
		t.Fatal(err)
	}
	wantRefusedNow(c3, "up", "a statement prepared before a search_path change")
	// Prepared again under the new path, it is refused at once; back on
	// the old path the first statement runs as before.
	if _, err := c3.Exec(ctx, "SET search_path = public"); err != nil {
		t.Fatal(err)
	}
	if got, err := run(c3, "up"); err != nil || got != "CLEAN" {
		t.Fatalf("back on the old path: %q, %v", got, err)
	}
}

// TestDrillDownStatementNames: a statement with drill-down parameters
// lives on the server under a name only the proxy uses, so what the proxy
// believes about the client's names cannot make it decode a token for a
// statement that echoes its parameter (round 26: a Parse the server
// refused with 42P05, or skipped after an error, or a DEALLOCATE and an
// SQL PREPARE of the same name, left "SELECT $1" under the name the proxy
// took for the drill-down, and the clear ids came back).
func TestDrillDownStatementNames(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ctx := context.Background()
	var tok int32
	var zip string
	if err := c.QueryRow(ctx, "SELECT customer_id, postal_code FROM customers ORDER BY created_at LIMIT 1").Scan(&tok, &zip); err != nil {
		t.Fatal(err)
	}
	token := []byte(strconv.Itoa(int(tok)))
	const echo, drill = "SELECT $1::int8 AS v", "SELECT postal_code FROM customers WHERE customer_id = $1"
	pc := c.PgConn()
	// run sends one pipeline (steps, then Sync) and returns every value
	// it received and the errors.
	run := func(steps func(*pgconn.Pipeline)) (vals []string, errs []string) {
		t.Helper()
		pl := pc.StartPipeline(ctx)
		steps(pl)
		if err := pl.Sync(); err != nil {
			t.Fatal(err)
		}
		for {
			res, err := pl.GetResults()
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if res == nil {
				break
			}
			switch r := res.(type) {
			case *pgconn.ResultReader:
				for r.NextRow() {
					vals = append(vals, string(r.Values()[0]))
				}
				if _, err := r.Close(); err != nil {
					errs = append(errs, err.Error())
				}
			case *pgconn.StatementDescription, *pgconn.CloseComplete:
			case *pgconn.PipelineSync:
				if err := pl.Close(); err != nil {
					errs = append(errs, err.Error())
				}
				return vals, errs
			}
		}
		if err := pl.Close(); err != nil {
			errs = append(errs, err.Error())
		}
		return vals, errs
	}
	onlyTokensOrZip := func(why string, vals []string) {
		t.Helper()
		for _, v := range vals {
			if v != string(token) && v != zip {
				t.Errorf("%s: received %q: neither the token %s nor its postal code", why, v, token)
			}
		}
	}
	// (a) The client's name already holds the echo; a drill-down Parse of
	// the same name would fail on the server, but it lives elsewhere.
	run(func(pl *pgconn.Pipeline) { pl.SendPrepare("s1", echo, nil) })
	run(func(pl *pgconn.Pipeline) { pl.SendPrepare("s1", drill, nil) })
	vals, errs := run(func(pl *pgconn.Pipeline) { pl.SendQueryPrepared("s1", [][]byte{token}, nil, nil) })
	onlyTokensOrZip("a drill-down Parse over an existing name", vals)
	t.Logf("(a) %q %q", vals, errs)
	// (b) The drill-down Parse is skipped after an error in its batch.
	run(func(pl *pgconn.Pipeline) { pl.SendPrepare("s2", echo, nil) })
	run(func(pl *pgconn.Pipeline) {
		pl.SendPrepare("z", "SELECT 1/0", nil)
		pl.SendDeallocate("s2")
		pl.SendPrepare("s2", drill, nil)
	})
	vals, errs = run(func(pl *pgconn.Pipeline) { pl.SendQueryPrepared("s2", [][]byte{token}, nil, nil) })
	onlyTokensOrZip("a drill-down Parse the server skipped", vals)
	t.Logf("(b) %q %q", vals, errs)
	// (c) DEALLOCATE and an SQL PREPARE of the drill-down statement's name.
	run(func(pl *pgconn.Pipeline) { pl.SendPrepare("s3", drill, nil) })
	for _, q := range []string{"DEALLOCATE s3", "PREPARE s3(int8) AS SELECT order_id FROM orders WHERE order_id = $1"} {
		_, _ = pc.Exec(ctx, q).ReadAll()
	}
	vals, errs = run(func(pl *pgconn.Pipeline) { pl.SendQueryPrepared("s3", [][]byte{token}, nil, nil) })
	onlyTokensOrZip("an SQL PREPARE under the drill-down statement's name", vals)
	t.Logf("(c) %q %q", vals, errs)
	// The proxy's own statements are not the client's to bind: a Bind of
	// a reserved name finds nothing.
	vals, errs = run(func(pl *pgconn.Pipeline) {
		pl.SendQueryPrepared("pgpseudo_check_d_"+strings.Repeat("0", 32), [][]byte{token}, nil, nil)
	})
	if len(vals) != 0 || len(errs) == 0 {
		t.Errorf("a Bind of a reserved name: %q %q", vals, errs)
	}
	// And the drill-down itself, its name re-used and described, works.
	vals, _ = run(func(pl *pgconn.Pipeline) {
		pl.SendPrepare("s4", drill, nil)
		pl.SendQueryPrepared("s4", [][]byte{token}, nil, nil)
	})
	if len(vals) != 1 || vals[0] != zip {
		t.Errorf("drill-down through a named statement: %q, want %q", vals, zip)
	}
	vals, _ = run(func(pl *pgconn.Pipeline) {
		pl.SendPrepare("", "SELECT postal_code FROM customers WHERE customer_id IN ($1, $1)", nil)
		pl.SendQueryPrepared("", [][]byte{token}, nil, nil)
	})
	if len(vals) != 1 || vals[0] != zip {
		t.Errorf("$1 in two drill-down positions (decoded once): %q, want %q", vals, zip)
	}
}
