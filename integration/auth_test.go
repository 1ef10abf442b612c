package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestPsqlLogin: psql with libpq's defaults (sslmode=require,
// channel_binding=prefer) logs in through the proxy as a SCRAM user, and
// the upstream session belongs to that same user.
func TestPsqlLogin(t *testing.T) {
	p := startProxy(t, nil)
	for _, cb := range []string{"prefer", "require", "disable"} {
		t.Run("channel_binding="+cb, func(t *testing.T) {
			env := append(libpqEnv(p.port, userAlice, passAlice, dbApp), "PGCHANNELBINDING="+cb)
			out, errOut, err := runTool(t, time.Minute, "psql", env, "-XAtc",
				"SELECT current_user, session_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
			if err != nil {
				t.Fatalf("psql: %v\n%s", err, errOut)
			}
			if got := strings.TrimSpace(out); got != "alice|alice|t" {
				t.Fatalf("psql printed %q, want alice|alice|t (upstream TLS as alice)", got)
			}
		})
	}
}

// TestLoginRefusals: wrong passwords and unknown users are refused like a
// direct connection refuses them.
func TestLoginRefusals(t *testing.T) {
	p := startProxy(t, nil)
	ctx := context.Background()
	code := func(dsn string) string {
		c, err := pgx.Connect(ctx, dsn)
		if err == nil {
			c.Close(ctx)
			return "ok"
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return pe.Code
		}
		return err.Error()
	}
	tests := []struct {
		name, user, pass string
	}{
		{"wrong password", userAlice, "not-the-password"},
		{"unknown user", "nobody_here", "whatever"},
		{"lookup role itself with a wrong password", shared.stack.PG.AuthUser, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			direct := code(directDSN(tt.user, tt.pass, dbApp))
			viaProxy := code(p.dsn(tt.user, tt.pass, dbApp))
			if viaProxy != "28P01" || direct != viaProxy {
				t.Fatalf("proxy gave %s, direct gave %s; want 28P01 from both", viaProxy, direct)
			}
		})
	}
	// psql shows the same message as a direct connection would.
	_, errOut, err := runTool(t, time.Minute, "psql", libpqEnv(p.port, userAlice, "wrong", dbApp), "-XAtc", "SELECT 1")
	if err == nil || !strings.Contains(errOut, `password authentication failed for user "alice"`) {
		t.Fatalf("psql with a wrong password: err=%v stderr=%s", err, errOut)
	}
	// Refusals are logged without the password.
	for _, e := range p.logs.All() {
		if strings.Contains(e.Message+strings.Join(fieldsOf(e.ContextMap()), " "), "not-the-password") {
			t.Fatalf("log line contains the password: %v", e.Message)
		}
	}
}

func fieldsOf(m map[string]any) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, strings.TrimSpace(strings.ReplaceAll(stringify(v), "\n", " ")))
	}
	return out
}

func stringify(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// TestTLSRequired: with client TLS configured a plaintext client is refused.
func TestTLSRequired(t *testing.T) {
	p := startProxy(t, nil)
	_, err := pgx.Connect(context.Background(), p.dsn(userAlice, passAlice, dbApp)+" sslmode=disable")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" {
		t.Fatalf("plaintext login: %v, want SQLSTATE 28000", err)
	}
}

// TestPassthroughLogin: passthrough relays the upstream's SCRAM exchange; it
// works when the client does not bind the channel.
func TestPassthroughLogin(t *testing.T) {
	cfg := proxyConfig()
	cfg.Auth.Mode = "passthrough"
	p := startProxy(t, cfg)
	c := connect(t, p.dsn(userAlice, passAlice, dbApp, "channel_binding=disable"))
	var u string
	if err := c.QueryRow(context.Background(), "SELECT current_user").Scan(&u); err != nil || u != userAlice {
		t.Fatalf("current_user = %q, %v", u, err)
	}
	// The documented limit: channel binding across a TLS-terminating
	// passthrough proxy cannot work.
	_, err := pgx.Connect(context.Background(), p.dsn(userAlice, passAlice, dbApp, "channel_binding=require"))
	if err == nil {
		t.Fatal("channel_binding=require through passthrough unexpectedly succeeded")
	}
}

// TestExpiredPasswordRefused: a role whose password expired (VALID UNTIL in
// the past) is refused as PostgreSQL refuses it, in both modes, including
// right after a login that was still valid (no cached verifier outlives
// the expiry).
func TestExpiredPasswordRefused(t *testing.T) {
	ctx := context.Background()
	const user = "expiring_eve"
	admin := func(stmts ...string) {
		t.Helper()
		if err := shared.stack.PG.Exec(ctx, "postgres", stmts...); err != nil {
			t.Fatal(err)
		}
	}
	admin("DROP ROLE IF EXISTS "+user, "CREATE ROLE "+user+" LOGIN PASSWORD '"+passAlice+"' VALID UNTIL 'infinity'",
		"GRANT CONNECT ON DATABASE "+dbApp+" TO "+user)
	t.Cleanup(func() { admin("REVOKE CONNECT ON DATABASE "+dbApp+" FROM "+user, "DROP ROLE IF EXISTS "+user) })
	passthrough := proxyConfig()
	passthrough.Auth.Mode = "passthrough"
	for _, mode := range []struct {
		name  string
		p     *runningProxy
		extra []string
	}{
		{"scram", startProxy(t, nil), nil},
		{"passthrough", startProxy(t, passthrough), []string{"channel_binding=disable"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			admin("ALTER ROLE " + user + " VALID UNTIL 'infinity'")
			c, err := pgx.Connect(ctx, mode.p.dsn(user, passAlice, dbApp, mode.extra...))
			if err != nil {
				t.Fatalf("a valid login: %v", err)
			}
			c.Close(ctx)
			admin("ALTER ROLE " + user + " VALID UNTIL '2000-01-01'")
			_, err = pgx.Connect(ctx, mode.p.dsn(user, passAlice, dbApp, mode.extra...))
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "28P01" {
				t.Fatalf("an expired password: %v, want SQLSTATE 28P01", err)
			}
			// Directly, PostgreSQL says the same.
			_, err = pgx.Connect(ctx, directDSN(user, passAlice, dbApp, mode.extra...))
			if !errors.As(err, &pe) || pe.Code != "28P01" {
				t.Fatalf("direct login with an expired password: %v", err)
			}
		})
	}
}

// TestUpstreamRefusalRelayed: when the database refuses a new connection
// (here the role's CONNECTION LIMIT; max_connections gives the same
// SQLSTATE), the client gets the server's 53300, and the proxy keeps
// serving others.
func TestUpstreamRefusalRelayed(t *testing.T) {
	ctx := context.Background()
	const user = "limited_lea"
	admin := func(stmts ...string) {
		t.Helper()
		if err := shared.stack.PG.Exec(ctx, "postgres", stmts...); err != nil {
			t.Fatal(err)
		}
	}
	admin("DROP ROLE IF EXISTS "+user, "CREATE ROLE "+user+" LOGIN PASSWORD '"+passAlice+"' CONNECTION LIMIT 1",
		"GRANT CONNECT ON DATABASE "+dbApp+" TO "+user)
	t.Cleanup(func() { admin("REVOKE CONNECT ON DATABASE "+dbApp+" FROM "+user, "DROP ROLE IF EXISTS "+user) })
	p := startProxy(t, nil)
	first := connect(t, p.dsn(user, passAlice, dbApp))
	defer first.Close(ctx)
	_, err := pgx.Connect(ctx, p.dsn(user, passAlice, dbApp))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("a connection the database refuses: %v, want SQLSTATE 53300", err)
	}
	other := connect(t, p.dsn(userAlice, passAlice, dbApp))
	var one int
	if err := other.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("another user after the refusal: %d %v", one, err)
	}
	if err := first.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the first session after the refusal: %v", err)
	}
}
