package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestSideChannels: for a restricted role, error and notice detail, hint,
// where and internal-query fields are scrubbed, LISTEN is refused, and
// replication connections are refused for everyone.
func TestSideChannels(t *testing.T) {
	customers := kunden(t)
	ctx := context.Background()
	secret := customers[7].Email
	if err := shared.stack.PG.Exec(ctx, dbKunden,
		`CREATE OR REPLACE FUNCTION public.raise_detail() RETURNS int LANGUAGE plpgsql AS $$
		 BEGIN
		   RAISE NOTICE 'notice' USING DETAIL = '`+secret+`', HINT = '`+secret+`';
		   RAISE EXCEPTION 'failure' USING DETAIL = '`+secret+`', HINT = '`+secret+`';
		 END $$`,
		`GRANT EXECUTE ON FUNCTION public.raise_detail() TO `+userBI); err != nil {
		t.Fatal(err)
	}
	pol := writeTemp(t, "policy.yaml", readFile(t, samplePolicy)+"functions:\n  allow: [public.raise_detail]\n")
	p := policyProxy(t, pol)
	c, notices := connectNoticing(t, p.dsn(userBI, samplePass, dbKunden))
	_, err := c.Exec(ctx, "SELECT public.raise_detail()")
	var pe *pgconn.PgError
	// An error while the server reads rows is withheld whole (it could
	// quote values and tell which row is read first): generic 22000.
	if !errors.As(err, &pe) || pe.Code != "22000" || !strings.Contains(pe.Message, "withheld") {
		t.Fatalf("raise_detail: %v", err)
	}
	if pe.Detail != "" || pe.Hint != "" || pe.Where != "" || pe.InternalQuery != "" {
		t.Fatalf("error fields not scrubbed: %+v", pe)
	}
	// Notices raised while rows are read are dropped whole (one per row
	// read, they would count the rows read before the server stopped).
	if len(*notices) != 0 {
		t.Fatalf("notices raised during execution reached a restricted role: %+v", *notices)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatal("the error text carries the value")
	}
	if _, err := c.Exec(ctx, "LISTEN channel"); !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("LISTEN for a restricted role: %v", err)
	}
	// Replication connections stream rows outside the result protocol.
	rc, err := pgconn.Connect(ctx, p.dsn(userBI, samplePass, dbKunden, "replication=database"))
	if err == nil {
		rc.Close(ctx)
		t.Fatal("replication connection accepted")
	}
	if !errors.As(err, &pe) || pe.Code != "0A000" {
		t.Fatalf("replication connection: %v", err)
	}
}

// TestRefusedNeverReachesUpstream: a refused statement is answered by the
// proxy (42501 naming column, role and rule) and the database never sees
// it, in the simple and the extended protocol; the session stays usable.
func TestRefusedNeverReachesUpstream(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	for i, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		marker := fmt.Sprintf("refused_marker_%d_%d", i, time.Now().UnixNano())
		_, err := c.Exec(ctx, "SELECT count(*) FROM customers WHERE religion = '"+marker+"'", mode)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "customers.religion") ||
			!strings.Contains(pe.Message, "bi_analyst") || !strings.Contains(pe.Message, "rule:") {
			t.Fatalf("%v: %v", mode, err)
		}
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM customers", mode).Scan(&n); err != nil || n != sampleSize {
			t.Fatalf("%v: session after a refusal: %d, %v", mode, n, err)
		}
		log, err := os.ReadFile(shared.stack.PG.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(log), marker) {
			t.Fatalf("%v: the refused statement reached the database", mode)
		}
	}
}

// TestUnrestrictedRoleUnchanged: a role that may see everything gets
// notifications and full error fields even with a policy in force.
func TestUnrestrictedRoleUnchanged(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	pol := everythingPolicy(t)
	if err := shared.stack.PG.Exec(ctx, dbKunden, "GRANT SELECT ON customers TO "+userAlice); err != nil {
		t.Fatal(err)
	}
	p := policyProxy(t, pol)
	c := connect(t, p.dsn(userAlice, passAlice, dbKunden))
	if _, err := c.Exec(ctx, "LISTEN unrestricted"); err != nil {
		t.Fatal(err)
	}
	other := connect(t, p.dsn(userAlice, passAlice, dbKunden))
	if _, err := other.Exec(ctx, "NOTIFY unrestricted, 'hello'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n, err := c.WaitForNotification(wctx); err != nil || n.Payload != "hello" {
		t.Fatalf("notification: %+v, %v", n, err)
	}
	var n int64
	var name string
	if err := c.QueryRow(ctx, "SELECT count(*), max(full_name) FROM customers").Scan(&n, &name); err != nil || n != sampleSize || name == "" {
		t.Fatalf("computed columns for an unrestricted role: %d %q %v", n, name, err)
	}
	_, err := c.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'x' USING DETAIL = 'kept detail'; END $$")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Detail != "kept detail" {
		t.Fatalf("error detail for an unrestricted role: %v", err)
	}
}
