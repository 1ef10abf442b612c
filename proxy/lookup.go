package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lookupConns are the low-privilege auth_user's connections, one small
// pool per database: SCRAM verifiers and role memberships are read in
// auth_database, catalog facts in each database clients use (OIDs are per
// database).
type lookupConns struct {
	cfg      *Config
	tls      *tls.Config
	password string

	mu    sync.Mutex
	pools map[string]*pgxpool.Pool
}

func newLookupConns(cfg *Config, upTLS *tls.Config) (*lookupConns, error) {
	pw, err := os.ReadFile(cfg.Auth.AuthPasswordFile)
	if err != nil {
		return nil, fmt.Errorf("auth.auth_password_file: %w", err)
	}
	return &lookupConns{cfg: cfg, tls: upTLS, password: strings.TrimRight(string(pw), "\r\n"), pools: map[string]*pgxpool.Pool{}}, nil
}

// pool returns the pool for database, creating it on first use.
func (l *lookupConns) pool(_ context.Context, database string) (*pgxpool.Pool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p := l.pools[database]; p != nil {
		return p, nil
	}
	host, port, _ := net.SplitHostPort(l.cfg.Upstream.Address)
	pc, err := pgxpool.ParseConfig(fmt.Sprintf("host=%s port=%s sslmode=disable pool_max_conns=4", quoteDSN(host), quoteDSN(port)))
	if err != nil {
		return nil, fmt.Errorf("lookup connection: %w", err)
	}
	cc := pc.ConnConfig
	cc.User = l.cfg.Auth.AuthUser
	cc.Password = l.password
	cc.Database = database
	cc.TLSConfig = l.tls
	cc.Fallbacks = nil
	cc.ConnectTimeout = l.cfg.Upstream.ConnectTimeout
	cc.RuntimeParams = map[string]string{"application_name": "pgpseudo lookup"}
	p, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("lookup connection: %w", err)
	}
	l.pools[database] = p
	return p, nil
}

func (l *lookupConns) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.pools {
		p.Close()
	}
	l.pools = map[string]*pgxpool.Pool{}
}

func quoteDSN(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

const membershipQuery = `SELECT r.rolname FROM pg_catalog.pg_roles r
WHERE pg_catalog.pg_has_role($1, r.oid, 'MEMBER') AND r.rolname <> $1`

// memberships returns the roles user belongs to, directly or inherited.
func (l *lookupConns) memberships(ctx context.Context, user string) ([]string, error) {
	p, err := l.pool(ctx, l.cfg.Auth.AuthDatabase)
	if err != nil {
		return nil, err
	}
	rows, err := p.Query(ctx, membershipQuery, user)
	if err != nil {
		return nil, fmt.Errorf("role membership lookup: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
