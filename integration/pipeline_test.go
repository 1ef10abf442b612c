package integration

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPipelinedBatchWithRefusal: a pgx batch (pipelined Parse/Bind/
// Describe/Execute with one Sync) through the policy proxy: when one query
// is refused the whole batch fails with the refusal, like a server error in
// an implicit transaction; the replies stay in order, later batches and
// queries work, and rows are rewritten.
func TestPipelinedBatchWithRefusal(t *testing.T) {
	customers := kunden(t)
	p := policyProxy(t, samplePolicy)
	ctx := context.Background()
	c := connect(t, p.dsn(userBI, samplePass, dbKunden))

	ok := &pgx.Batch{}
	ok.Queue("SELECT full_name FROM customers WHERE city = $1", "Berlin")
	ok.Queue("SELECT count(*) FROM orders")
	ok.Queue("SELECT email, iban FROM customers LIMIT 5")
	br := c.SendBatch(ctx, ok)
	var all strings.Builder
	for i := 0; i < 3; i++ {
		rows, err := br.Query()
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		for rows.Next() {
			for _, v := range rows.RawValues() {
				all.Write(v)
				all.WriteByte('|')
			}
		}
		if rows.Err() != nil {
			t.Fatalf("query %d: %v", i, rows.Err())
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoLeak(t, "batch", all.String(), customers)

	bad := &pgx.Batch{}
	bad.Queue("SELECT count(*) FROM orders")
	bad.Queue("SELECT full_name FROM customers WHERE religion = $1", "evangelisch")
	bad.Queue("SELECT count(*) FROM customers")
	err := c.SendBatch(ctx, bad).Close()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(pe.Message, "religion") {
		t.Fatalf("batch with a refused query: %v", err)
	}
	// The session is in sync afterwards.
	for i := 0; i < 3; i++ {
		var n int64
		if err := c.QueryRow(ctx, "SELECT count(*) FROM customers").Scan(&n); err != nil || n != sampleSize {
			t.Fatalf("after the refused batch: %d, %v", n, err)
		}
	}
}
