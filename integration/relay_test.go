package integration

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestRelayAsyncMessages: notices, notifications and ParameterStatus pass
// through, as do COPY FROM STDIN and COPY TO STDOUT in text and binary.
func TestRelayAsyncMessages(t *testing.T) {
	p := startProxy(t, nil)
	ctx := context.Background()
	c, notices := connectNoticing(t, p.dsn(userAlice, passAlice, dbApp))

	t.Run("notice", func(t *testing.T) {
		if _, err := c.Exec(ctx, "DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$"); err != nil {
			t.Fatal(err)
		}
		if len(*notices) != 1 || (*notices)[0].Message != "hello from plpgsql" {
			t.Fatalf("notices = %+v", *notices)
		}
	})
	t.Run("notification", func(t *testing.T) {
		if _, err := c.Exec(ctx, "LISTEN relay_test"); err != nil {
			t.Fatal(err)
		}
		other := connect(t, p.dsn(userAlice, passAlice, dbApp))
		if _, err := other.Exec(ctx, "NOTIFY relay_test, 'payload-1'"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := c.WaitForNotification(wctx)
		if err != nil || n.Channel != "relay_test" || n.Payload != "payload-1" {
			t.Fatalf("notification %+v, %v", n, err)
		}
	})
	t.Run("ParameterStatus", func(t *testing.T) {
		if _, err := c.Exec(ctx, "SET application_name = 'renamed'"); err != nil {
			t.Fatal(err)
		}
		if got := c.PgConn().ParameterStatus("application_name"); got != "renamed" {
			t.Fatalf("application_name ParameterStatus = %q", got)
		}
	})
	t.Run("COPY", func(t *testing.T) {
		direct := connect(t, directDSN(userAlice, passAlice, dbApp))
		if _, err := direct.Exec(ctx, "DROP TABLE IF EXISTS copy_in; CREATE TABLE copy_in (id int, v text, b bytea)"); err != nil {
			t.Fatal(err)
		}
		rows := make([][]any, 20000)
		for i := range rows {
			rows[i] = []any{i, fmt.Sprintf("value\t%d\n\\", i), []byte{byte(i), 0, 255}}
		}
		n, err := c.CopyFrom(ctx, pgx.Identifier{"copy_in"}, []string{"id", "v", "b"}, pgx.CopyFromRows(rows))
		if err != nil || n != int64(len(rows)) {
			t.Fatalf("COPY FROM STDIN (binary) through the proxy: %d rows, %v", n, err)
		}
		for _, q := range []string{
			"COPY copy_in TO STDOUT",
			"COPY copy_in TO STDOUT (FORMAT csv, HEADER)",
			"COPY copy_in TO STDOUT (FORMAT binary)",
			"COPY (SELECT * FROM copy_in WHERE id % 7 = 0) TO STDOUT",
		} {
			var d, v bytes.Buffer
			if _, err := direct.PgConn().CopyTo(ctx, &d, q); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PgConn().CopyTo(ctx, &v, q); err != nil {
				t.Fatal(err)
			}
			if d.Len() < 1000 || !bytes.Equal(d.Bytes(), v.Bytes()) {
				t.Fatalf("%s: direct %d bytes, proxy %d bytes", q, d.Len(), v.Len())
			}
		}
		// A failed COPY FROM (client CopyFail) keeps the session usable.
		_, err = c.CopyFrom(ctx, pgx.Identifier{"copy_in"}, []string{"id"}, pgx.CopyFromFunc(func() ([]any, error) {
			return nil, fmt.Errorf("client gives up")
		}))
		if err == nil {
			t.Fatal("CopyFail did not fail the COPY")
		}
		var x int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM copy_in").Scan(&x); err != nil || x != len(rows) {
			t.Fatalf("after CopyFail: %d, %v", x, err)
		}
	})
}
