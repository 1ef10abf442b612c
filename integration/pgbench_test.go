package integration

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"
)

var failedRe = regexp.MustCompile(`number of failed transactions: (\d+)`)

// TestPgbench: pgbench -i, then the select-only and the default TPC-B-like
// workloads with 8 clients through the proxy, with no failed transaction.
func TestPgbench(t *testing.T) {
	p := startProxy(t, nil)
	db := fmt.Sprintf("bench_%d", time.Now().UnixNano())
	if err := shared.stack.PG.Exec(context.Background(), "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", db, userAlice)); err != nil {
		t.Fatal(err)
	}
	env := libpqEnv(p.port, userAlice, passAlice, db)
	if _, errOut, err := runTool(t, 5*time.Minute, "pgbench", env, "-i", "-s", "2", "-q"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, errOut)
	}
	for _, args := range [][]string{{"-c", "8", "-j", "2", "-T", "10", "-S"}, {"-c", "8", "-j", "2", "-T", "10"}} {
		out, errOut, err := runTool(t, 2*time.Minute, "pgbench", env, args...)
		if err != nil {
			t.Fatalf("pgbench %v: %v\n%s\n%s", args, err, out, errOut)
		}
		m := failedRe.FindStringSubmatch(out)
		if m == nil || m[1] != "0" {
			t.Fatalf("pgbench %v: failed transactions not zero:\n%s", args, out)
		}
		t.Logf("pgbench %v:\n%s", args, out)
	}
}
