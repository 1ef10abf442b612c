package integration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestDrillStatementAfterDeallocate: after the client's DEALLOCATE ALL, a
// Bind of a drill-down statement it prepared before fails as PostgreSQL
// fails it (26000 naming the client's statement), and every later reply
// answers its own request.
func TestDrillStatementAfterDeallocate(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))
	ctx := context.Background()
	var tok string
	if err := c.QueryRow(ctx, "SELECT customer_id::text FROM customers WHERE created_at = $1", customers[0].CreatedAt).Scan(&tok); err != nil {
		t.Fatal(err)
	}
	pc := c.PgConn()
	if _, err := pc.Prepare(ctx, "s1", "SELECT full_name FROM customers WHERE customer_id = $1", nil); err != nil {
		t.Fatal(err)
	}
	res := pc.ExecPrepared(ctx, "s1", [][]byte{[]byte(tok)}, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 {
		t.Fatalf("drill-down: %v, %d rows", res.Err, len(res.Rows))
	}
	for _, reset := range []string{"DEALLOCATE ALL", "DISCARD ALL"} {
		if _, err := pc.Exec(ctx, reset).ReadAll(); err != nil {
			t.Fatal(err)
		}
		res = pc.ExecPrepared(ctx, "s1", [][]byte{[]byte(tok)}, nil, nil).Read()
		var pe *pgconn.PgError
		if !errors.As(res.Err, &pe) || pe.Code != "26000" || !strings.Contains(pe.Message, `"s1"`) {
			t.Fatalf("after %s, a Bind of the old statement: %v, want 26000 naming s1", reset, res.Err)
		}
		for _, want := range []string{"42", "43"} {
			rs, err := pc.Exec(ctx, "SELECT "+want).ReadAll()
			if err != nil || len(rs) != 1 || len(rs[0].Rows) != 1 || string(rs[0].Rows[0][0]) != want {
				t.Fatalf("after %s, SELECT %s answered %v, %v", reset, want, rs, err)
			}
		}
		if _, err := pc.Prepare(ctx, "s1", "SELECT full_name FROM customers WHERE customer_id = $1", nil); err != nil {
			t.Fatal(err)
		}
	}
}
