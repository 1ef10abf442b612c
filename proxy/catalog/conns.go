package catalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/policy"
)

// Conns are the low-privilege auth_user's connections, one small
// pool per database: SCRAM verifiers and role memberships are read in
// auth_database, catalog facts in each database clients use (OIDs are per
// database).
type Conns struct {
	cfg      *config.Config
	tls      *tls.Config
	password string

	mu    sync.Mutex
	pools map[string]*pgxpool.Pool
}

// NewConns prepares the lookup connections; none is opened yet.
func NewConns(cfg *config.Config, upTLS *tls.Config) (*Conns, error) {
	pw, err := os.ReadFile(cfg.Auth.AuthPasswordFile)
	if err != nil {
		return nil, fmt.Errorf("auth.auth_password_file: %w", err)
	}
	return &Conns{cfg: cfg, tls: upTLS, password: strings.TrimRight(string(pw), "\r\n"), pools: map[string]*pgxpool.Pool{}}, nil
}

// Pool returns the pool for database, creating it on first use.
func (l *Conns) Pool(_ context.Context, database string) (*pgxpool.Pool, error) {
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

// Close closes every pool.
func (l *Conns) Close() {
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

// membershipQuery follows the grants in pg_auth_members, directly or
// through other roles. pg_has_role would do it in one call, but it reports
// every role as held by a superuser, so a superuser would match whichever
// member_of role comes first in the policy (docs/policy.md). UNION, not
// UNION ALL: a cycle of grants ends.
const membershipQuery = `WITH RECURSIVE held(oid) AS (
  SELECT m.roleid FROM pg_catalog.pg_auth_members m
  JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE u.rolname = $1
  UNION
  SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN held h ON m.member = h.oid
)
SELECT r.rolname FROM pg_catalog.pg_roles r JOIN held h ON r.oid = h.oid`

// Memberships returns the roles user belongs to, directly or inherited.
func (l *Conns) Memberships(ctx context.Context, user string) ([]string, error) {
	p, err := l.Pool(ctx, l.cfg.Auth.AuthDatabase)
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

// Connect opens one connection to database as the configured
// auth_user, with the upstream TLS settings (for `policy check --db`).
func Connect(ctx context.Context, cfg *config.Config, database string) (*pgx.Conn, error) {
	if cfg.Auth.AuthUser == "" {
		return nil, errors.New("auth.auth_user is not configured")
	}
	upTLS, err := cfg.UpstreamTLSConfig()
	if err != nil {
		return nil, err
	}
	l, err := NewConns(cfg, upTLS)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(cfg.Upstream.Address)
	cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s sslmode=disable", quoteDSN(host), quoteDSN(port)))
	if err != nil {
		return nil, err
	}
	cc.User, cc.Password, cc.Database, cc.TLSConfig, cc.Fallbacks = cfg.Auth.AuthUser, l.password, database, upTLS, nil
	cc.ConnectTimeout = cfg.Upstream.ConnectTimeout
	return pgx.ConnectConfig(ctx, cc)
}

// schemaQuery gives a domain column its base type (two levels of
// domains deep), as RowDescription does: transforms are checked against
// the type the proxy sees in results, not the domain's own OID.
const schemaQuery = `
SELECT n.nspname, c.relname, a.attname,
       CASE WHEN t.typtype = 'd' AND b.typtype = 'd' THEN b.typbasetype WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END,
       pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
ORDER BY n.nspname, c.relname, a.attnum`

// ReadSchema lists the database's tables (without partitions and
// inheritance children) and their columns, for policy.CheckSchema.
func ReadSchema(ctx context.Context, conn *pgx.Conn) ([]policy.DBTable, error) {
	rows, err := conn.Query(ctx, schemaQuery)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	var out []policy.DBTable
	for rows.Next() {
		var tn policy.TableName
		var c policy.DBColumn
		if err := rows.Scan(&tn.Schema, &tn.Table, &c.Name, &c.TypeOID, &c.TypeName); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != tn {
			out = append(out, policy.DBTable{Name: tn})
		}
		out[len(out)-1].Columns = append(out[len(out)-1].Columns, c)
	}
	return out, rows.Err()
}
