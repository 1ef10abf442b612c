// Package stack starts the real parts pgpseudo is tested against: a
// throwaway PostgreSQL cluster (SCRAM and TLS on) and a Vault dev server.
// Go tests use it directly; integration/stack.sh uses it through stackctl.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Options select what to start.
type Options struct {
	// Dir holds everything; a new temporary directory when empty.
	Dir string
	// NoVault skips the Vault dev server.
	NoVault bool
	// Detach lets the processes outlive this one.
	Detach bool
}

// Stack is a running test stack.
type Stack struct {
	Dir   string
	Certs *Certs
	PG    *Postgres
	Vault *Vault
	owned bool
}

// Start starts PostgreSQL and, unless NoVault, Vault.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	s := &Stack{Dir: o.Dir}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "pgpseudo-stack-"); err != nil {
			return nil, err
		}
		s.owned = true
	} else if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	// The cluster owner (postgres) must be able to reach its data dir.
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if s.Certs, err = makeCerts(s.Dir); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	if s.PG, err = startPostgres(ctx, s.Dir, s.Certs); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !o.NoVault {
		if s.Vault, err = startVault(ctx, s.Dir, o.Detach); err != nil {
			return nil, fmt.Errorf("vault: %w", err)
		}
	}
	return s, nil
}

// Stop stops what runs and removes a temporary directory.
func (s *Stack) Stop() error {
	var errs []error
	if s.Vault != nil {
		errs = append(errs, s.Vault.Stop())
	}
	if s.PG != nil {
		errs = append(errs, s.PG.Stop())
	}
	if s.owned {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	return errors.Join(errs...)
}

// Env returns the variables a person or a client uses to reach the stack
// directly: libpq's PG* and Vault's VAULT_*.
func (s *Stack) Env() map[string]string {
	env := map[string]string{
		"PGHOST":                 "127.0.0.1",
		"PGPORT":                 fmt.Sprint(s.PG.Port),
		"PGUSER":                 "postgres",
		"PGPASSWORD":             s.PG.Password,
		"PGDATABASE":             "postgres",
		"PGSSLMODE":              "verify-full",
		"PGSSLROOTCERT":          s.Certs.CAFile,
		"PGPSEUDO_PG_SOCK":       s.PG.SockDir,
		"PGPSEUDO_PG_BIN":        s.PG.BinDir,
		"PGPSEUDO_AUTH_USER":     s.PG.AuthUser,
		"PGPSEUDO_AUTH_PASSWORD": s.PG.AuthPassword,
		"PGPSEUDO_STACK_DIR":     s.Dir,
		"PGPSEUDO_CA":            s.Certs.CAFile,
		"PGPSEUDO_PROXY_CERT":    s.Certs.ProxyCertFile,
		"PGPSEUDO_PROXY_KEY":     s.Certs.ProxyKey,
	}
	if s.Vault != nil {
		env["VAULT_ADDR"] = s.Vault.Addr
		env["VAULT_CACERT"] = s.Vault.CAFile
		env["VAULT_TOKEN"] = s.Vault.RootToken
		env["PGPSEUDO_VAULT_PID"] = fmt.Sprint(s.Vault.pid)
	}
	return env
}

// EnvLines renders Env as sorted shell `export` lines.
func (s *Stack) EnvLines() string {
	env := s.Env()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "export %s='%s'\n", k, env[k])
	}
	return b.String()
}

// RepoRoot finds the pgpseudo module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/pgpseudo/pgpseudo\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the pgpseudo repository")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomSecret() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
