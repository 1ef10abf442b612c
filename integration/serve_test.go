package integration

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestServeBinarySIGTERM runs the real binary: SIGTERM stops new logins,
// lets an open session finish, and the process exits 0 once it has.
func TestServeBinarySIGTERM(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pgpseudo")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pgpseudo/pgpseudo/cmd/pgpseudo").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	conf := binaryConfig(addr, "limits: {shutdown_timeout: 30s}\n")
	cf := filepath.Join(dir, "pgpseudo.yaml")
	os.WriteFile(cf, []byte(conf), 0o600)
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
	var (
		c   *pgx.Conn
		err error
	)
	for i := 0; i < 100; i++ {
		if c, err = pgx.Connect(ctx, dsn(port, userAlice, passAlice, dbApp)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, logs.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	var n int
	if err := c.QueryRow(ctx, "SELECT 5").Scan(&n); err != nil || n != 5 {
		t.Fatalf("open session after SIGTERM: %v", err)
	}
	if nc, err := pgx.Connect(ctx, dsn(port, userAlice, passAlice, dbApp)); err == nil {
		nc.Close(ctx)
		t.Fatal("new connection accepted after SIGTERM")
	}
	c.Close(ctx)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit after its last session ended\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") || strings.Contains(logs.String(), "SELECT") {
		t.Fatalf("unexpected process log:\n%s", logs.String())
	}
}
