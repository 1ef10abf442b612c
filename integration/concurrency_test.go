package integration

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestManyConnections: 200 concurrent connections run 50 queries each with
// no error, and every goroutine they caused is gone after they disconnect.
func TestManyConnections(t *testing.T) {
	p := startProxy(t, nil)
	// Warm up: the auth lookup pool keeps its own goroutines.
	c := connect(t, p.dsn(userAlice, passAlice, dbApp))
	c.Close(context.Background())
	proxyBase := proxyGoroutines()

	const conns, queries = 200, 50
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			c, err := pgx.Connect(ctx, p.dsn(userAlice, passAlice, dbApp))
			if err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
				return
			}
			defer c.Close(ctx)
			for q := 0; q < queries; q++ {
				var got int
				if err := c.QueryRow(ctx, "SELECT $1::int * 2", i*1000+q).Scan(&got); err != nil || got != (i*1000+q)*2 {
					errs <- fmt.Errorf("conn %d query %d: got %d, %v", i, q, got, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Only the proxy's goroutines count: test clients have their own.
	n := proxyGoroutines()
	for i := 0; i < 100 && n > proxyBase; i++ {
		time.Sleep(100 * time.Millisecond)
		n = proxyGoroutines()
	}
	if n > proxyBase {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d proxy goroutines remain, %d before the connections:\n%s", n, proxyBase, buf[:runtime.Stack(buf, true)])
	}
}

// proxyGoroutines counts goroutines running code of the proxy package.
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
