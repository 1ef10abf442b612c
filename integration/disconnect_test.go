package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// superConn is a superuser connection to the test cluster over its local
// socket, closed when the test ends.
func superConn(t *testing.T) *pgx.Conn {
	t.Helper()
	su, err := shared.stack.PG.SuperConnect(context.Background(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })
	return su
}

// backendGone waits up to d until no server process runs a statement
// containing marker.
func backendGone(t *testing.T, marker string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	su := superConn(t)
	deadline := time.Now().Add(d)
	for {
		var n int
		if err := su.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()", marker).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			var state, query, app string
			_ = su.QueryRow(ctx, "SELECT state, query, application_name FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid() LIMIT 1", marker).Scan(&state, &query, &app)
			t.Fatalf("%d server processes still run %s %s after the client left (%s, %s: %.200s)", n, marker, d, app, state, query)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cutAfter is a writer that drops the client's connection once it has
// received n bytes of COPY data.
type cutAfter struct {
	c    *pgx.Conn
	n, m int
}

func (w *cutAfter) Write(p []byte) (int, error) {
	w.m += len(p)
	if w.m >= w.n {
		w.c.PgConn().Conn().Close()
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}

// TestClientDisconnects: a client that drops its connection mid-result,
// mid-COPY or while a statement that sends nothing runs leaves no server
// process behind (the proxy cancels the statement and closes the upstream
// connection) and no proxy goroutine.
func TestClientDisconnects(t *testing.T) {
	kunden(t)
	plain := startProxy(t, nil)
	restricted := policyProxy(t, samplePolicy)
	connect(t, plain.dsn(userAlice, passAlice, dbApp)).Close(context.Background())
	connect(t, restricted.dsn(userBI, samplePass, dbKunden)).Close(context.Background())
	base := proxyGoroutines()
	ctx := context.Background()
	// silent leaves while a statement that sends nothing runs.
	silent := func(c *pgx.Conn, marker string) error {
		go func() {
			time.Sleep(500 * time.Millisecond)
			c.PgConn().Conn().Close()
		}()
		if _, err := c.Exec(ctx, "SELECT pg_sleep(120) /* "+marker+" */"); err == nil {
			return errors.New("pg_sleep returned")
		}
		return nil
	}

	for i, tc := range []struct {
		name, dsn string
		run       func(c *pgx.Conn, marker string) error
	}{
		{"mid-result", plain.dsn(userAlice, passAlice, dbApp), func(c *pgx.Conn, marker string) error {
			rows, err := c.Query(ctx, "SELECT g, repeat('x', 200) /* "+marker+" */ FROM generate_series(1, 20000000) g")
			if err != nil {
				return err
			}
			for n := 0; n < 1000 && rows.Next(); n++ {
			}
			c.PgConn().Conn().Close()
			return nil
		}},
		{"mid-result, restricted", restricted.dsn(userBI, samplePass, dbKunden), func(c *pgx.Conn, marker string) error {
			rows, err := c.Query(ctx, "SELECT c.full_name, g /* "+marker+" */ FROM customers c CROSS JOIN generate_series(1, 5000) g")
			if err != nil {
				return err
			}
			for n := 0; n < 1000 && rows.Next(); n++ {
			}
			c.PgConn().Conn().Close()
			return rows.Err()
		}},
		{"mid-COPY", plain.dsn(userAlice, passAlice, dbApp), func(c *pgx.Conn, marker string) error {
			_, err := c.PgConn().CopyTo(ctx, &cutAfter{c: c, n: 1 << 20},
				"COPY (SELECT g, repeat('x', 200) /* "+marker+" */ FROM generate_series(1, 20000000) g) TO STDOUT")
			if err == nil {
				return errors.New("COPY finished although the client left")
			}
			return nil
		}},
		{"mid-COPY, restricted", restricted.dsn(userBI, samplePass, dbKunden), func(c *pgx.Conn, marker string) error {
			_, err := c.PgConn().CopyTo(ctx, &cutAfter{c: c, n: 1 << 16},
				"COPY (SELECT c.full_name, g /* "+marker+" */ FROM customers c CROSS JOIN generate_series(1, 5000) g) TO STDOUT")
			if err == nil {
				return errors.New("COPY finished although the client left")
			}
			return nil
		}},
		{"silent statement", plain.dsn(userAlice, passAlice, dbApp), silent},
		{"silent statement, restricted", restricted.dsn(userBI, samplePass, dbKunden), silent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("disconnect_marker_%d_%d", i, time.Now().UnixNano())
			c, err := pgx.Connect(ctx, tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.run(c, marker); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				t.Logf("client side: %v", err)
			}
			backendGone(t, marker, 15*time.Second)
		})
	}
	goroutinesBackTo(t, base, 10*time.Second)
	// The database dropped no connection: clients that left (with
	// Terminate, or by closing the socket) are not reported as if it had.
	for _, p := range []*runningProxy{plain, restricted} {
		if n := p.logs.FilterMessage("the database closed the connection unexpectedly").Len(); n > 0 {
			t.Errorf("%d sessions reported a lost database connection", n)
		}
	}
}
