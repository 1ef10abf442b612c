package integration

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestManyConnections: 1,000 connections are open at once through one
// proxy (limits.max_connections: 1000, the default) and each runs
// queries with no error; the 1,001st is refused with 53300 and a clear
// message while they are open; every goroutine they caused is gone after
// they disconnect.
func TestManyConnections(t *testing.T) {
	raiseFileLimit(t, 8192) // two sockets per connection in this process, plus the clients'
	cfg := proxyConfig()
	cfg.Limits.MaxConnections = 1000
	p := startProxy(t, cfg)
	// Warm up: the auth lookup pool keeps its own goroutines.
	c := connect(t, p.dsn(userAlice, passAlice, dbApp))
	c.Close(context.Background())
	proxyBase := proxyGoroutines()

	const conns, queries, opening = 1000, 5, 32
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	open := make([]*pgx.Conn, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	slots := make(chan struct{}, opening) // logins in flight at once
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			c, err := pgx.Connect(ctx, p.dsn(userAlice, passAlice, dbApp))
			<-slots
			if err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
				return
			}
			open[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range open {
			if c != nil {
				c.Close(context.Background())
			}
		}
	}()
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed to open; first: %v", len(errs), conns, <-errs)
	}
	_, err := pgx.Connect(ctx, p.dsn(userAlice, passAlice, dbApp))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" || !strings.Contains(pe.Message, "too many clients") {
		t.Fatalf("connection %d: %v, want 53300", conns+1, err)
	}
	for i, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range queries {
				var got int
				if err := c.QueryRow(ctx, "SELECT $1::int * 2", i*1000+q).Scan(&got); err != nil || got != (i*1000+q)*2 {
					errs <- fmt.Errorf("conn %d query %d: got %d, %v", i, q, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range open {
		c.Close(context.Background())
		open[i] = nil
	}
	goroutinesBackTo(t, proxyBase, 30*time.Second)
}

// goroutinesBackTo waits up to d for the proxy's goroutines to be at most
// base again, and fails with every goroutine's stack if they are not.
// Only the proxy's goroutines count: test clients have their own.
func goroutinesBackTo(t *testing.T, base int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	n := proxyGoroutines()
	for n > base && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = proxyGoroutines()
	}
	if n > base {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d proxy goroutines remain, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// raiseFileLimit raises this process's open-file limit to at least n
// (root may raise the hard limit too); it fails the test when it cannot.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	rl.Cur, rl.Max = n, max(rl.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("raising the open-file limit to %d: %v", n, err)
	}
}

func proxyGoroutines() int {
	buf := make([]byte, 8<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "github.com/pgpseudo/pgpseudo/proxy.") {
			n++
		}
	}
	return n
}

// TestGracefulShutdown: Shutdown stops new logins but lets an open session
// finish its work.
func TestGracefulShutdown(t *testing.T) {
	p := startProxy(t, nil)
	ctx := context.Background()
	c := connect(t, p.dsn(userAlice, passAlice, dbApp))
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		done <- p.srv.Shutdown(sctx)
	}()
	time.Sleep(200 * time.Millisecond)
	if nc, err := pgx.Connect(ctx, p.dsn(userAlice, passAlice, dbApp)); err == nil {
		nc.Close(ctx)
		t.Fatal("a new connection was accepted during shutdown")
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("open session during shutdown: %d, %v", n, err)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a session was open", err)
	default:
	}
	c.Close(ctx)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownTellsClients: sessions still open when the shutdown timeout
// passes are ended with FATAL 57P01, as PostgreSQL ends them, not cut off.
func TestShutdownTellsClients(t *testing.T) {
	kunden(t)
	p := policyProxy(t, samplePolicy)
	// Two sessions of two roles, both idle.
	var sessions []*wireSession
	for _, dsn := range []string{p.dsn(userBI, samplePass, dbKunden), p.dsn(userCare, samplePass, dbKunden)} {
		ws, err := dialWire(t, dsn)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, ws)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.srv.Shutdown(sctx); err == nil {
		t.Fatal("Shutdown returned nil with sessions open past its deadline")
	}
	for i, ws := range sessions {
		ws.conn.SetDeadline(time.Now().Add(5 * time.Second))
		m, err := ws.fe.Receive()
		if err != nil {
			t.Fatalf("session %d: no message before the connection closed: %v", i, err)
		}
		e, ok := m.(*pgproto3.ErrorResponse)
		if !ok || e.Severity != "FATAL" || e.Code != "57P01" {
			t.Fatalf("session %d: got %#v, want FATAL 57P01", i, m)
		}
	}
}
