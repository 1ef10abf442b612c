package proxy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// attrInfo is what pgpseudo knows of one table column.
type attrInfo struct {
	Name    string
	TypeOID uint32
	TypMod  int32
	NotNull bool
}

// relInfo is a relation as the policy sees it: partitions and inheritance
// children are reported under their root table.
type relInfo struct {
	// Root is the name the policy matches: the relation itself, or the
	// top-most parent of a partition or inheritance child.
	Root policy.TableName
	// Kind is pg_class.relkind of the relation itself (r, p, v, m, f, …).
	Kind    byte
	Attrs   map[int16]attrInfo
	fetched time.Time
}

// catalog caches (table OID, attnum) → column facts per database; OIDs are
// only unique within a database. Entries are refreshed on a miss and when
// older than ttl.
type catalog struct {
	ttl   time.Duration
	conns func(ctx context.Context, database string) (*pgxpool.Pool, error)

	mu  sync.Mutex
	dbs map[string]map[uint32]*relInfo
	// system caches, per database, whether a bare pg_* name can only mean
	// a pg_catalog relation.
	system map[string]map[string]bool
	// kw caches the server's keyword list per server version.
	kw map[string]sqlinfo.Keywords
}

func newCatalog(conns func(ctx context.Context, database string) (*pgxpool.Pool, error)) *catalog {
	return &catalog{ttl: 5 * time.Minute, conns: conns, dbs: map[string]map[uint32]*relInfo{}, system: map[string]map[string]bool{},
		kw: map[string]sqlinfo.Keywords{}}
}

// relation returns facts about table oid in database.
func (c *catalog) relation(ctx context.Context, database string, oid uint32) (*relInfo, error) {
	c.mu.Lock()
	rels := c.dbs[database]
	if rels == nil {
		rels = map[uint32]*relInfo{}
		c.dbs[database] = rels
	}
	r := rels[oid]
	c.mu.Unlock()
	if r != nil && time.Since(r.fetched) < c.ttl {
		return r, nil
	}
	r, err := c.fetch(ctx, database, oid)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	rels[oid] = r
	c.mu.Unlock()
	return r, nil
}

const rootQuery = `
WITH RECURSIVE up(oid, depth) AS (
  SELECT $1::oid, 0
  UNION ALL
  SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.oid WHERE up.depth < 64
)
SELECT n.nspname, c.relname, (SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1::oid)::text
FROM up JOIN pg_catalog.pg_class c ON c.oid = up.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY up.depth DESC, c.oid LIMIT 1`

const attrQuery = `
SELECT attnum, attname, atttypid, atttypmod, attnotnull FROM pg_catalog.pg_attribute
WHERE attrelid = $1::oid AND NOT attisdropped`

func (c *catalog) fetch(ctx context.Context, database string, oid uint32) (*relInfo, error) {
	pool, err := c.conns(ctx, database)
	if err != nil {
		return nil, err
	}
	r := &relInfo{Attrs: map[int16]attrInfo{}, fetched: time.Now()}
	var kind string
	if err := pool.QueryRow(ctx, rootQuery, oid).Scan(&r.Root.Schema, &r.Root.Table, &kind); err != nil {
		return nil, fmt.Errorf("catalog lookup of relation %d: %w", oid, err)
	}
	if kind != "" {
		r.Kind = kind[0]
	}
	rows, err := pool.Query(ctx, attrQuery, oid)
	if err != nil {
		return nil, fmt.Errorf("catalog lookup of relation %d: %w", oid, err)
	}
	defer rows.Close()
	for rows.Next() {
		var num int16
		var a attrInfo
		if err := rows.Scan(&num, &a.Name, &a.TypeOID, &a.TypMod, &a.NotNull); err != nil {
			return nil, err
		}
		r.Attrs[num] = a
	}
	return r, rows.Err()
}

const systemNameQuery = `
SELECT coalesce(bool_and(n.nspname = 'pg_catalog') AND bool_or(n.nspname = 'pg_catalog'), false)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1`

// systemRelation reports whether the bare name resolves to a pg_catalog
// relation whatever the search_path: it exists there and nowhere else.
func (c *catalog) systemRelation(ctx context.Context, database, name string) (bool, error) {
	c.mu.Lock()
	known, ok := c.system[database][name]
	c.mu.Unlock()
	if ok {
		return known, nil
	}
	pool, err := c.conns(ctx, database)
	if err != nil {
		return false, err
	}
	var sys bool
	if err := pool.QueryRow(ctx, systemNameQuery, name).Scan(&sys); err != nil {
		return false, fmt.Errorf("catalog lookup of %q: %w", name, err)
	}
	c.mu.Lock()
	if c.system[database] == nil {
		c.system[database] = map[string]bool{}
	}
	c.system[database][name] = sys
	c.mu.Unlock()
	return sys, nil
}
