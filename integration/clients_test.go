package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pgTool builds a command for one of PostgreSQL's client programs with a
// clean libpq environment: only what the test passes counts.
func pgTool(ctx context.Context, name string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(shared.stack.PG.BinDir, name), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + shared.stack.Dir, "PGCONNECT_TIMEOUT=20"}, env...)
	return cmd
}

// libpqEnv is the environment that points libpq at port as user, with
// libpq's defaults otherwise (channel_binding=prefer) and TLS required.
func libpqEnv(port, user, password, database string) []string {
	return []string{
		"PGHOST=127.0.0.1", "PGPORT=" + port, "PGUSER=" + user, "PGPASSWORD=" + password,
		"PGDATABASE=" + database, "PGSSLMODE=require",
	}
}

// runTool runs a client program and returns stdout and stderr.
func runTool(t testing.TB, timeout time.Duration, name string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := pgTool(ctx, name, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}
