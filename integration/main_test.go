// Package integration runs pgpseudo end to end against a real PostgreSQL
// cluster (SCRAM and TLS on), a real Vault dev server and real clients.
package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgpseudo/pgpseudo/integration/stack"
)

// env is the shared stack of this test binary.
type testEnv struct {
	stack        *stack.Stack
	authPassFile string
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
	return m.Run()
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
