package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPasswordVerifiersWithheld: a restricted role the database lets read
// everything (pg_read_all_data) still gets no password verifier through
// the proxy: pg_authid.rolpassword and pg_shadow.passwd are withheld or
// refused, while the role names stay readable.
func TestPasswordVerifiersWithheld(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	const reader = "bi_reader"
	if err := shared.stack.PG.Exec(ctx, "postgres", "DROP ROLE IF EXISTS "+reader,
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", reader, samplePass), "GRANT pg_read_all_data TO "+reader); err != nil {
		t.Fatal(err)
	}
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(reader, samplePass, dbKunden))
	var names int
	if err := c.QueryRow(ctx, "SELECT count(rolname) FROM pg_authid").Scan(&names); err != nil || names == 0 {
		t.Fatalf("role names: %d, %v", names, err)
	}
	for _, q := range []string{
		"SELECT rolname, rolpassword FROM pg_authid",
		"SELECT usename, passwd FROM pg_shadow",
		"SELECT * FROM pg_authid",
		"SELECT length(rolpassword) FROM pg_authid",
	} {
		rows, err := c.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
		var got strings.Builder
		if err == nil {
			for rows.Next() {
				vals, _ := rows.Values()
				fmt.Fprintln(&got, vals...)
			}
			err = rows.Err()
		}
		if strings.Contains(got.String(), "SCRAM-SHA-256$") {
			t.Fatalf("%s: a password verifier reached the client", q)
		}
		if strings.HasPrefix(q, "SELECT length") && err == nil {
			t.Fatalf("%s: computed on a verifier and allowed:\n%s", q, got.String())
		}
	}
}
