package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// procStatusBytes reads a size field of /proc/PID/status ("VmRSS",
// "VmHWM") in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(st)
	if m == nil {
		return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024, err
}

// TestSlowClientMemoryBounded runs the real binary and streams 10M rows
// (about 1.2 GB) to a client that stops reading for a while and then
// reads slowly. The proxy reads from the database only as fast as the
// client takes the rows: while the client pauses, the server waits to
// write (wait_event ClientWrite). The proxy's resident memory stays under
// 64 MiB throughout, and another session is served meanwhile.
func TestSlowClientMemoryBounded(t *testing.T) {
	bin := shared.binary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cf := filepath.Join(dir, "pgpseudo.yaml")
	if err := os.WriteFile(cf, []byte(binaryConfig(addr, "log: {level: warn}\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !waitListening(addr) {
		t.Fatal("the proxy did not start listening")
	}
	_, port, _ := net.SplitHostPort(addr)
	ctx := context.Background()
	slow := connect(t, dsn(port, userAlice, passAlice, dbApp))
	other := connect(t, dsn(port, userAlice, passAlice, dbApp))

	const rows, limit = 10_000_000, 64 << 20
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample the proxy's memory
		defer wg.Done()
		for {
			if r, err := procStatusBytes(cmd.Process.Pid, "VmRSS"); err == nil && r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var otherErr atomic.Value
	wg.Add(1)
	go func() { // another session, served meanwhile
		defer wg.Done()
		for {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var n int
			err := other.QueryRow(qctx, "SELECT 1").Scan(&n)
			cancel()
			if err != nil {
				otherErr.Store(err)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()

	marker := fmt.Sprintf("slow_client_%d", time.Now().UnixNano())
	res, err := slow.Query(ctx, "SELECT g, repeat('x', 100) /* "+marker+" */ FROM generate_series(1, $1::int) g", rows)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for n < 1000 && res.Next() {
		n++
	}
	time.Sleep(3 * time.Second) // the client stops reading
	if wait := serverWaitEvent(t, marker); wait != "ClientWrite" {
		t.Errorf("while the client pauses the server's wait event is %q, want ClientWrite (backpressure)", wait)
	}
	for res.Next() {
		n++
		if n%1_000_000 == 0 {
			time.Sleep(200 * time.Millisecond) // a slow reader
		}
	}
	if err := res.Err(); err != nil || n != rows {
		t.Fatalf("read %d rows: %v", n, err)
	}
	close(stop)
	wg.Wait()
	if e := otherErr.Load(); e != nil {
		t.Fatalf("the other session: %v", e)
	}
	t.Logf("proxy peak RSS while streaming %d rows: %.1f MiB", rows, float64(peak.Load())/(1<<20))
	if peak.Load() >= limit {
		t.Fatalf("proxy RSS reached %.1f MiB streaming to a slow client, want < 64 MiB", float64(peak.Load())/(1<<20))
	}
}

// serverWaitEvent is the wait event of the server process running a
// statement containing marker.
func serverWaitEvent(t *testing.T, marker string) string {
	t.Helper()
	ctx := context.Background()
	su := superConn(t)
	var ev *string
	if err := su.QueryRow(ctx, "SELECT wait_event FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()", marker).Scan(&ev); err != nil {
		if err == pgx.ErrNoRows {
			return "(no such process)"
		}
		t.Fatal(err)
	}
	if ev == nil {
		return "(none)"
	}
	return *ev
}
