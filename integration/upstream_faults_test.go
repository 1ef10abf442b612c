package integration

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sqlstate is the SQLSTATE of err, or "" when it carries none.
func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// backendPID is the database process serving c.
func backendPID(t *testing.T, c *pgx.Conn) int {
	t.Helper()
	var pid int
	if err := c.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

// running starts sql on c and returns where its error will arrive.
func running(c *pgx.Conn, sql string) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := c.Exec(ctx, sql)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the statement is on the server
	return done
}

// within waits up to d for an error from done.
func within(t *testing.T, what string, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s: no answer after %s (the client hangs)", what, d)
		return nil
	}
}

// loginWorks waits up to d for a login through dsn that answers a query.
func loginWorks(t *testing.T, dsn string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			var n int
			err = c.QueryRow(ctx, "SELECT 1").Scan(&n)
			c.Close(ctx)
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no working login %s after the database came back: %v", d, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestUpstreamRestartsMidSession: the database crashes (a backend is
// killed: the server restarts every session), restarts in fast mode, and
// stops for a while. Each affected client gets an ErrorResponse — the
// server's 57P0x, or the proxy's 08006 when the server said nothing —
// instead of a hang; restricted and unrestricted sessions alike. The proxy
// keeps listening, refuses logins with 08006 while the database is down,
// and serves new sessions once it is back, leaving no goroutine behind.
func TestUpstreamRestartsMidSession(t *testing.T) {
	kunden(t)
	plain := startProxy(t, nil)
	restricted := policyProxy(t, samplePolicy)
	dsnA := plain.dsn(userAlice, passAlice, dbApp)
	dsnB := restricted.dsn(userBI, samplePass, dbKunden)
	loginWorks(t, dsnA, time.Second)
	loginWorks(t, dsnB, time.Second)
	adm := startAdmin(t, restricted)
	base := proxyGoroutines()
	pg := shared.stack.PG

	t.Run("backend killed", func(t *testing.T) {
		a, b := connect(t, dsnA), connect(t, dsnB)
		pid := backendPID(t, a)
		busy := running(a, "SELECT pg_sleep(30)")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := within(t, "killed backend", busy, 15*time.Second); sqlstate(err) != "08006" {
			t.Fatalf("the client of the killed backend: %v, want 08006", err)
		}
		// The server restarts every other session: b is told so.
		err := within(t, "idle session", running(b, "SELECT full_name FROM customers LIMIT 1"), 15*time.Second)
		if code := sqlstate(err); !strings.HasPrefix(code, "57P") && code != "08006" {
			t.Fatalf("the restricted session after the crash: %v", err)
		}
		loginWorks(t, dsnA, 60*time.Second)
		loginWorks(t, dsnB, 30*time.Second)
	})

	t.Run("fast restart", func(t *testing.T) {
		a, b := connect(t, dsnA), connect(t, dsnB)
		busy := running(b, "SELECT pg_sleep(30)")
		restarted := make(chan error, 1)
		go func() { restarted <- pg.Restart() }()
		if err := within(t, "restricted session mid-query", busy, 30*time.Second); sqlstate(err) != "57P01" {
			t.Fatalf("restricted session mid-query: %v, want 57P01", err)
		}
		if err := <-restarted; err != nil {
			t.Fatal(err)
		}
		err := within(t, "idle session", running(a, "SELECT 1"), 15*time.Second)
		if code := sqlstate(err); code != "57P01" && code != "08006" {
			t.Fatalf("idle session after the restart: %v", err)
		}
		loginWorks(t, dsnA, 30*time.Second)
		loginWorks(t, dsnB, 30*time.Second)
	})

	t.Run("stopped for a while", func(t *testing.T) {
		if err := pg.Stop(); err != nil {
			t.Fatal(err)
		}
		stopped := true
		defer func() {
			if stopped {
				_ = pg.Start()
			}
		}()
		for name, dsn := range map[string]string{"plain": dsnA, "restricted": dsnB} {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, err := pgx.Connect(ctx, dsn)
			cancel()
			if code := sqlstate(err); code != "08006" || time.Since(start) > 15*time.Second {
				t.Fatalf("%s login with the database down: %v after %s, want 08006", name, err, time.Since(start))
			}
		}
		waitReady(t, adm, false, "fail upstream", 15*time.Second)
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
		stopped = false
		loginWorks(t, dsnA, 30*time.Second)
		loginWorks(t, dsnB, 30*time.Second)
		waitReady(t, adm, true, "ok upstream", 15*time.Second)
	})

	goroutinesBackTo(t, base, 10*time.Second)
}

// waitReady waits up to d for /readyz to answer ready (200) or not (503)
// with a body containing want.
func waitReady(t *testing.T, a *adminEndpoint, ready bool, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, body := a.get(t, "/readyz", false)
		if (code == 200) == ready && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after %s: %d %q, want ready=%v with %q", d, code, body, ready, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
