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
	"github.com/pgpseudo/pgpseudo/crypto"
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

// schemaQuery lists the columns with their own type and type modifier;
// ReadSchema resolves domains to their base type, as RowDescription does:
// transforms are checked against the type the proxy sees in results.
const schemaQuery = `
SELECT n.nspname, c.relname, a.attname, a.atttypid, a.atttypmod, pg_catalog.format_type(a.atttypid, a.atttypmod),
       COALESCE((SELECT array_agg(i.indexrelid::regclass::text ORDER BY i.indexrelid) FROM pg_catalog.pg_index i
                 WHERE i.indrelid = c.oid AND i.indisunique AND a.attnum = ANY (i.indkey)), '{}')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid)
ORDER BY n.nspname, c.relname, a.attnum`

// domainQuery lists every domain's base type and type modifier.
const domainQuery = `SELECT oid, typbasetype, typtypmod FROM pg_catalog.pg_type WHERE typtype = 'd'`

// foreignKeyQuery lists foreign keys column pair by column pair.
const foreignKeyQuery = `
SELECT n.nspname, c.relname, k.conname, a.attname, rn.nspname, rc.relname, ra.attname
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(attnum, refnum)
JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum
JOIN pg_catalog.pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = u.refnum
WHERE k.contype = 'f' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1, 2, 3`

// ReadSchema lists the database's tables (without partitions and
// inheritance children), their columns with the unique indexes each is in
// and their foreign keys, for policy.CheckSchema.
func ReadSchema(ctx context.Context, conn *pgx.Conn) ([]policy.DBTable, error) {
	type domain struct {
		base   uint32
		typmod int32
	}
	domains := map[uint32]domain{}
	rows, err := conn.Query(ctx, domainQuery)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var d domain
		if err := rows.Scan(&oid, &d.base, &d.typmod); err != nil {
			return nil, err
		}
		domains[oid] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	if rows, err = conn.Query(ctx, schemaQuery); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	var out []policy.DBTable
	for rows.Next() {
		var tn policy.TableName
		var c policy.DBColumn
		var typmod int32
		if err := rows.Scan(&tn.Schema, &tn.Table, &c.Name, &c.TypeOID, &typmod, &c.TypeName, &c.UniqueIn); err != nil {
			return nil, err
		}
		// A domain (of a domain…) is its base type; the innermost type
		// modifier given is the one values are held to.
		for depth := 0; depth < 64; depth++ {
			d, ok := domains[c.TypeOID]
			if !ok {
				break
			}
			if typmod < 0 {
				typmod = d.typmod
			}
			c.TypeOID = d.base
		}
		if (c.TypeOID == crypto.OIDVarchar || c.TypeOID == crypto.OIDBPChar) && typmod > 4 {
			c.MaxLen = int(typmod - 4)
		}
		if len(out) == 0 || out[len(out)-1].Name != tn {
			out = append(out, policy.DBTable{Name: tn})
		}
		out[len(out)-1].Columns = append(out[len(out)-1].Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	fks, err := readForeignKeys(ctx, conn)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].ForeignKeys = fks[out[i].Name]
	}
	return out, nil
}

// querier is a connection or a pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readForeignKeys reads every foreign key by referencing table.
func readForeignKeys(ctx context.Context, q querier) (policy.ForeignKeys, error) {
	rows, err := q.Query(ctx, foreignKeyQuery)
	if err != nil {
		return nil, fmt.Errorf("read foreign keys: %w", err)
	}
	defer rows.Close()
	out := policy.ForeignKeys{}
	for rows.Next() {
		var fk policy.DBForeignKey
		var tn policy.TableName
		var col, refCol string
		if err := rows.Scan(&tn.Schema, &tn.Table, &fk.Name, &col, &fk.RefTable.Schema, &fk.RefTable.Table, &refCol); err != nil {
			return nil, fmt.Errorf("read foreign keys: %w", err)
		}
		fks := out[tn]
		if n := len(fks); n > 0 && fks[n-1].Name == fk.Name {
			fks[n-1].Columns = append(fks[n-1].Columns, col)
			fks[n-1].RefColumns = append(fks[n-1].RefColumns, refCol)
			continue
		}
		fk.Columns, fk.RefColumns = []string{col}, []string{refCol}
		out[tn] = append(fks, fk)
	}
	return out, rows.Err()
}
