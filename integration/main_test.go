// Package integration runs pgpseudo end to end against a real PostgreSQL
// cluster (SCRAM and TLS on), a real Vault dev server and real clients.
package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/pgpseudo/pgpseudo/configs/sample"

	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// env is the shared stack of this test binary.
type testEnv struct {
	stack        *stack.Stack
	authPassFile string

	// Every proxy's process log and every audit log of the run, for the
	// whole-run leak check in TestMain.
	mu         sync.Mutex
	procLogs   []*observer.ObservedLogs
	auditTexts []string

	// The pgpseudo binary, built once for the tests that run it.
	binOnce sync.Once
	bin     string
	binErr  error
}

// binary returns the pgpseudo binary, building it on first use.
func (e *testEnv) binary(t testing.TB) string {
	t.Helper()
	e.binOnce.Do(func() {
		e.bin = filepath.Join(e.stack.Dir, "pgpseudo")
		if out, err := exec.Command("go", "build", "-o", e.bin, "github.com/pgpseudo/pgpseudo/cmd/pgpseudo").CombinedOutput(); err != nil {
			e.binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if e.binErr != nil {
		t.Fatal(e.binErr)
	}
	return e.bin
}

// remember keeps a proxy's process log and the contents of its audit log
// (and rotated or side files) for the whole-run leak check; it is called
// when the proxy has stopped, before the test's files are removed.
func (e *testEnv) remember(logs *observer.ObservedLogs, auditFile string) {
	var texts []string
	if auditFile != "" && auditFile != "-" {
		matches, _ := filepath.Glob(strings.TrimSuffix(auditFile, filepath.Ext(auditFile)) + "*")
		for _, m := range matches {
			if b, err := os.ReadFile(m); err == nil {
				texts = append(texts, string(b))
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.procLogs = append(e.procLogs, logs)
	e.auditTexts = append(e.auditTexts, texts...)
}

var shared *testEnv // set once in TestMain, read-only afterwards

// Test users. Their passwords only exist here and in the throwaway cluster.
const (
	userAlice = "alice"
	passAlice = "alice-Pa55word"
	dbApp     = "appdb"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// PGPSEUDO_TEST_NO_VAULT=1 is for quick local runs of proxy-only tests;
	// tests that need Vault fail without it.
	s, err := stack.Start(ctx, stack.Options{NoVault: os.Getenv("PGPSEUDO_TEST_NO_VAULT") == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration: cannot start the test stack:", err)
		return 1
	}
	defer s.Stop()
	pw := filepath.Join(s.Dir, "auth_user.pw")
	if err := os.WriteFile(pw, []byte(s.PG.AuthPassword+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := seed(ctx, s); err != nil {
		fmt.Fprintln(os.Stderr, "integration: seeding:", err)
		return 1
	}
	shared = &testEnv{stack: s, authPassFile: pw}
	code := m.Run()
	if code == 0 && !wholeRunLeakCheck() {
		code = 1
	}
	return code
}

// wholeRunLeakCheck scans every process log and audit log of the run for
// the sample's personal values; it reports and returns false on a leak.
func wholeRunLeakCheck() bool {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var texts []string
	for _, l := range shared.procLogs {
		var b strings.Builder
		for _, e := range l.All() {
			b.WriteString(e.Message + " " + strings.Join(fieldsOf(e.ContextMap()), " ") + "\n")
		}
		texts = append(texts, b.String())
	}
	texts = append(texts, shared.auditTexts...)
	ok := true
	values := sample.Diagnoses()
	for _, c := range sample.Customers(sampleSize, sampleSeed) {
		values = append(values, c.PersonalValues()...)
	}
	for _, v := range values {
		for _, text := range texts {
			if strings.Contains(text, v) {
				fmt.Fprintf(os.Stderr, "integration: whole-run leak check: personal value %q is in a process or audit log\n", v)
				ok = false
			}
		}
	}
	if ok {
		fmt.Printf("integration: whole-run leak check: %d process logs, %d audit logs, no seeded personal value\n", len(shared.procLogs), len(shared.auditTexts))
	}
	return ok
}

// seed creates the test users and the application database.
func seed(ctx context.Context, s *stack.Stack) error {
	if err := s.PG.Exec(ctx, "postgres",
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, userAlice, passAlice),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, dbApp, userAlice),
	); err != nil {
		return err
	}
	return nil
}
