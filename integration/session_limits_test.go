package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestSessionLimits: a session may hold limits.max_prepared_statements
// prepared statements (a Parse beyond fails with 54000 and the session
// goes on; closing one makes room), and limits.max_pending_requests
// requests awaiting replies (a client that pipelines beyond without
// reading is ended with FATAL 54000). Other sessions are unaffected.
func TestSessionLimits(t *testing.T) {
	ctx := context.Background()
	cfg := policyConfig(t, samplePolicy)
	cfg.Limits.MaxPreparedStatements = 3
	cfg.Limits.MaxPendingRequests = 50
	p := startProxy(t, cfg)

	for _, user := range []string{userBI, userCare} { // two roles
		t.Run("prepared statements "+user, func(t *testing.T) {
			c := connect(t, p.dsn(user, samplePass, dbKunden))
			for i := 1; i <= 3; i++ {
				if _, err := c.Prepare(ctx, fmt.Sprintf("s%d", i), "SELECT count(*) FROM customers"); err != nil {
					t.Fatalf("statement %d: %v", i, err)
				}
			}
			_, err := c.Prepare(ctx, "s4", "SELECT count(*) FROM customers")
			if sqlstate(err) != "54000" || !strings.Contains(err.Error(), "max_prepared_statements") {
				t.Fatalf("a fourth statement: %v, want 54000", err)
			}
			// Re-preparing a name in use, the unnamed statement and
			// closing one all still work.
			var n int64
			if err := c.QueryRow(ctx, "SELECT count(*) FROM customers", pgx.QueryExecModeDescribeExec).Scan(&n); err != nil || n == 0 {
				t.Fatalf("the unnamed statement at the limit: %d %v", n, err)
			}
			if err := c.Deallocate(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Prepare(ctx, "s4", "SELECT count(*) FROM customers"); err != nil {
				t.Fatalf("after closing one: %v", err)
			}
		})
	}

	t.Run("portals", func(t *testing.T) {
		// Named portals live until the transaction ends (red team round
		// 38): the same limit bounds them.
		ws, err := dialWire(t, p.dsn(userBI, samplePass, dbKunden))
		if err != nil {
			t.Fatal(err)
		}
		frames := simpleFrames("BEGIN")
		frames = append(frames, msgFrame('P', []byte{0}, []byte("SELECT count(*) FROM customers\x00"), []byte{0, 0})...)
		for i := 1; i <= 4; i++ {
			frames = append(frames, msgFrame('B', []byte(fmt.Sprintf("p%d\x00\x00", i)), []byte{0, 0, 0, 0, 0, 0})...)
			frames = append(frames, msgFrame('S')...)
		}
		if _, err := ws.exchange(frames); err != nil {
			t.Fatal(err)
		}
		// The refused Bind aborts the transaction: what follows gets 25P02.
		if len(ws.errors) == 0 || ws.errors[0].Code != "54000" || !strings.Contains(ws.errors[0].Message, "named portals") {
			t.Fatalf("errors %v, want 54000 for the fourth portal first", errorTexts(ws.errors))
		}
	})
	t.Run("prepared bytes", func(t *testing.T) {
		cfg := policyConfig(t, samplePolicy)
		cfg.Limits.MaxPreparedBytes = 8 << 10
		c := connect(t, startProxy(t, cfg).dsn(userBI, samplePass, dbKunden))
		pad := strings.Repeat("x", 3000)
		var err error
		n := 0
		for ; n < 5 && err == nil; n++ {
			_, err = c.Prepare(ctx, fmt.Sprintf("big%d", n), "SELECT count(*) FROM customers /* "+pad+" */")
		}
		if sqlstate(err) != "54000" || !strings.Contains(err.Error(), "max_prepared_bytes") || n < 3 {
			t.Fatalf("statement %d: %v, want 54000 once about 8 KiB are held", n, err)
		}
		if err := c.Deallocate(ctx, "big0"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Prepare(ctx, "small", "SELECT 1"); err != nil {
			t.Fatalf("after closing one: %v", err)
		}
	})
	t.Run("pending requests", func(t *testing.T) {
		ws, err := dialWire(t, p.dsn(userBI, samplePass, dbKunden))
		if err != nil {
			t.Fatal(err)
		}
		other := connect(t, p.dsn(userBI, samplePass, dbKunden))
		// Requests without a Sync and without reading: each awaits its
		// reply in the proxy.
		for range 60 {
			ws.fe.Send(&pgproto3.Parse{Query: "SELECT 1"})
			ws.fe.Send(&pgproto3.Bind{})
			ws.fe.Send(&pgproto3.Execute{})
		}
		ws.fe.Send(&pgproto3.Sync{})
		if err := ws.fe.Flush(); err != nil {
			t.Fatal(err)
		}
		ws.conn.SetDeadline(time.Now().Add(20 * time.Second))
		for {
			m, err := ws.fe.Receive()
			if err != nil {
				t.Fatalf("the session ended without saying why: %v", err)
			}
			if e, ok := m.(*pgproto3.ErrorResponse); ok {
				if e.Severity != "FATAL" || e.Code != "54000" || !strings.Contains(e.Message, "max_pending_requests") {
					t.Fatalf("got %+v, want FATAL 54000", e)
				}
				break
			}
		}
		var n int
		if err := other.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("another session: %d %v", n, err)
		}
	})
}

// TestRefusedLoginsLeaveNoBackend: logins refused after the proxy has
// logged in upstream (no policy role matches; a restricted role asks for
// a locked setting) close that upstream connection at once: no database
// backend is left for the garbage collector (red team round 37).
func TestRefusedLoginsLeaveNoBackend(t *testing.T) {
	kunden(t)
	ctx := context.Background()
	p := policyProxy(t, samplePolicy)
	for range 10 {
		if _, err := pgx.Connect(ctx, p.dsn(userNobody, samplePass, dbKunden)); err == nil {
			t.Fatal("a user no role matches logged in")
		}
		if _, err := pgx.Connect(ctx, p.dsn(userBI, samplePass, dbKunden, "client_encoding=LATIN1")); err == nil {
			t.Fatal("a restricted role logged in with a locked setting")
		}
	}
	su := superConn(t)
	deadline := time.Now().Add(3 * time.Second)
	for {
		var n int
		if err := su.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($1)", []string{userNobody, userBI}).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends of refused logins still open", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
