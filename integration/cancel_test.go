package integration

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// TestCancelPsql: Ctrl-C in psql (libpq's cancel request over a new
// connection) cancels pg_sleep(30) through the proxy.
func TestCancelPsql(t *testing.T) {
	p := startProxy(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := pgTool(ctx, "psql", libpqEnv(p.port, userAlice, passAlice, dbApp), "-X", "-c", "SELECT pg_sleep(30)")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForQuery(t, "SELECT pg_sleep(30)")
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(errb.String(), "canceling statement due to user request") {
		t.Fatalf("psql after Ctrl-C: %v\n%s", err, errb.String())
	}
	t.Logf("cancelled %v after the signal", time.Since(start))
}

// TestCancelPgx: cancelling a pgx context with pgx's cancel-request
// handler, and pgconn's explicit CancelRequest, send a CancelRequest through
// the proxy; the statement ends with SQLSTATE 57014.
func TestCancelPgx(t *testing.T) {
	p := startProxy(t, nil)
	cfg, err := pgx.ParseConfig(p.dsn(userAlice, passAlice, dbApp))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 20 * time.Second}
	}
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waitForQuery(t, "SELECT pg_sleep(30) /* pgx ctx */")
			cancel()
		}()
		_, err := c.Exec(ctx, "SELECT pg_sleep(30) /* pgx ctx */")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("Exec after cancel: %v, want SQLSTATE 57014", err)
		}
	})
	t.Run("CancelRequest", func(t *testing.T) {
		go func() {
			waitForQuery(t, "SELECT pg_sleep(30) /* pgconn */")
			if err := c.PgConn().CancelRequest(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		_, err := c.Exec(context.Background(), "SELECT pg_sleep(30) /* pgconn */")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("Exec after CancelRequest: %v, want SQLSTATE 57014", err)
		}
	})
}

// waitForQuery waits until a backend runs query, so the cancel cannot race
// ahead of it.
func waitForQuery(t *testing.T, query string) {
	t.Helper()
	ctx := context.Background()
	c, err := shared.stack.PG.SuperConnect(ctx, "postgres")
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close(ctx)
	for i := 0; i < 300; i++ {
		var n int
		if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", query).Scan(&n); err != nil {
			t.Error(err)
			return
		}
		if n > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("query never started")
}

// TestUnknownCancelKeyIgnored: a CancelRequest with a key the proxy did not
// issue is dropped, never relayed.
func TestUnknownCancelKeyIgnored(t *testing.T) {
	p := startProxy(t, nil)
	c := connect(t, p.dsn(userAlice, passAlice, dbApp))
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(context.Background(), "SELECT pg_sleep(1) /* unknown-key */")
		done <- err
	}()
	waitForQuery(t, "SELECT pg_sleep(1) /* unknown-key */")
	// The real upstream key is never known to clients; try the proxy's pid
	// with a wrong secret.
	pid := c.PgConn().PID()
	sendRaw(t, p.addr, cancelPacket(pid, []byte{1, 2, 3, 4}))
	if err := <-done; err != nil {
		t.Fatalf("statement was cancelled by an unknown key: %v", err)
	}
	if p.logs.FilterMessage("cancel request with an unknown key ignored").Len() == 0 {
		t.Fatal("unknown cancel key not logged")
	}
}
