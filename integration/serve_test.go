package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpseudo/pgpseudo/audit"
)

// TestSIGTERMUnderLoad runs the real binary with its admin listener and
// audit log, under load from several clients. SIGTERM stops new logins
// at once and turns /readyz to not ready while /healthz stays up; a
// session that finishes its work meanwhile ends normally; sessions still
// open at the drain timeout are told 57P01; the process exits 0 and its
// audit log ends with a signed final checkpoint.
func TestSIGTERMUnderLoad(t *testing.T) {
	bin := shared.binary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	ac := auditConfig(t, filepath.Join(dir, "audit.jsonl"))
	adm := adminConfig(t)
	conf := binaryConfig(addr, fmt.Sprintf(`limits: {shutdown_timeout: 3s}
audit: {path: %s, signing_key_file: %s}
admin: {listen: %s, cert_file: %s, key_file: %s, token_file: %s}
`, ac.Path, ac.SigningKeyFile, adm.Listen, adm.CertFile, adm.KeyFile, adm.TokenFile))
	cf := filepath.Join(dir, "pgpseudo.yaml")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cf)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	_, port, _ := net.SplitHostPort(addr)
	ctx := context.Background()
	dsnA := dsn(port, userAlice, passAlice, dbApp)
	a := newAdminEndpoint(t, adm)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := pgx.Connect(ctx, dsnA); err == nil {
			c.Close(ctx)
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("connect: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := a.get(t, "/readyz", false); code != 200 {
		t.Fatalf("/readyz before SIGTERM: %d %s", code, body)
	}

	// Load: four clients querying in a loop until their session ends.
	const clients = 4
	var (
		wg      sync.WaitGroup
		queries atomic.Int64
		ends    = make(chan error, clients)
	)
	for range clients {
		c := connect(t, dsnA)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var n int
				if err := c.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 1000)").Scan(&n); err != nil {
					ends <- err
					return
				}
				queries.Add(1)
			}
		}()
	}
	finishing := connect(t, dsnA)
	for queries.Load() < 100 {
		time.Sleep(10 * time.Millisecond)
	}
	if v := metricValue(a.metrics(t), "pgpseudo_sessions_open", `role="none"`); v != clients+1 {
		t.Fatalf("sessions open %v, want %d", v, clients+1)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if nc, err := pgx.Connect(ctx, dsnA); err == nil {
		nc.Close(ctx)
		t.Fatal("new connection accepted after SIGTERM")
	}
	// (A readiness result is reused for a second.)
	for deadline := time.Now().Add(3 * time.Second); ; {
		code, body := a.get(t, "/readyz", false)
		if code == 503 && strings.Contains(body, "fail accepting") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz while draining: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := a.get(t, "/healthz", false); code != 200 {
		t.Fatalf("/healthz while draining: %d", code)
	}
	var n int
	if err := finishing.QueryRow(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
		t.Fatalf("open session after SIGTERM: %v", err)
	}
	finishing.Close(ctx)
	before := queries.Load()

	wg.Wait() // the drain timeout ends the busy sessions
	close(ends)
	for err := range ends {
		if sqlstate(err) != "57P01" {
			t.Errorf("a busy session at the drain timeout: %v, want 57P01", err)
		}
	}
	if queries.Load() == before {
		t.Error("the busy sessions stopped being served during the drain")
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit after the drain timeout\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") || strings.Contains(logs.String(), "SELECT") {
		t.Fatalf("unexpected process log:\n%s", logs.String())
	}
	res, err := audit.Verify(ctx, auditPublicKeys(t, ac), []string{ac.Path}, audit.VerifyOptions{})
	if err != nil || !res.Closed || res.Unsigned != 0 {
		t.Fatalf("audit log after SIGTERM: %+v %v", res, err)
	}
	var ends57 int
	for _, r := range readAudit(t, ac.Path) {
		if r.Type == audit.TypeConnectionEnd {
			ends57++
		}
	}
	if ends57 < clients+1 {
		t.Fatalf("%d connection_end records, want at least %d", ends57, clients+1)
	}
}
