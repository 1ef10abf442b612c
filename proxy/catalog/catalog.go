// Package catalog is pgpseudo's one view of each upstream database's
// catalog, read through the low-privilege lookup role: relations by OID
// and by name, functions, view definitions and the server's keywords,
// cached per database and catalog generation (docs/security.md, "Caches").
package catalog

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgpseudo/pgpseudo/internal/lru"
	"github.com/pgpseudo/pgpseudo/policy"
	"github.com/pgpseudo/pgpseudo/policy/analyze"
	"github.com/pgpseudo/pgpseudo/policy/plancheck"
	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// Attr is what pgpseudo knows of one table column.
type Attr struct {
	Name    string
	TypeOID uint32
	TypMod  int32
	NotNull bool
}

// Relation is a relation as the policy sees it: partitions and
// inheritance children are reported under their root table.
type Relation struct {
	// Root is the name the policy matches: the relation itself, or the
	// top-most parent of a partition or inheritance child.
	Root policy.TableName
	// Name is the relation's own name.
	Name policy.TableName
	// Kind is pg_class.relkind of the relation itself (r, p, v, m, f, …).
	Kind  byte
	Attrs map[int16]Attr
	// Order is the user columns' attnums in order.
	Order []int16
	// Indexes are the relation's own indexes: key columns in order, ""
	// for an expression.
	Indexes map[string][]string
}

// Catalog is pgpseudo's one view of each database's catalog, read through
// the lookup role: relations by OID (planning result columns) and by name
// (analysis, server-side check), function names, view definitions and the
// server's keywords. Every entry belongs to a generation: a database's
// generation changes when the proxy sees DDL through any session, and in
// any case every TTL, so a cached fact — and every cached verdict keyed by
// the generation — is never older than that. OIDs are only unique within
// a database, so everything is per database.
type Catalog struct {
	ttl   time.Duration
	conns func(ctx context.Context, database string) (*pgxpool.Pool, error)
	now   func() time.Time

	mu     sync.Mutex
	epochs map[string]uint64 // per database: bumped on DDL seen
	all    uint64            // bumped for every database at once
	// entries caches every fact by (database, generation, kind, key).
	entries *lru.Cache[catKey, any]
	// kw caches the server's keyword list per server version.
	kw map[string]sqlinfo.Keywords
}

// lookupTimeout bounds one catalog lookup.
const lookupTimeout = 30 * time.Second

type catKey struct {
	db   string
	gen  uint64
	kind byte
	key  string
}

// New returns an empty catalog reading through conns; facts expire after
// ttl.
func New(conns func(ctx context.Context, database string) (*pgxpool.Pool, error), ttl time.Duration) *Catalog {
	return &Catalog{ttl: ttl, conns: conns, now: time.Now, epochs: map[string]uint64{},
		entries: lru.New[catKey, any](20000, 64<<20, catEntrySize), kw: map[string]sqlinfo.Keywords{}}
}

// CacheStats reports the cache of catalog facts, for metrics.
func (c *Catalog) CacheStats() lru.Stats { return c.entries.Stats() }

// catEntrySize estimates an entry's bytes for the cache bound.
func catEntrySize(k catKey, v any) int64 {
	n := int64(len(k.db) + len(k.key) + 64)
	switch x := v.(type) {
	case *Relation:
		if x != nil {
			n += int64(len(x.Attrs)+len(x.Indexes)) * 64
		}
	case *analyze.Relation: // nil: no such relation
		if x != nil {
			n += int64(len(x.ViewSQL)) + int64(len(x.Columns))*32
		}
	case policy.ForeignKeys:
		for _, fks := range x {
			n += int64(len(fks)) * 128
		}
	case *plancheck.Views:
		if x != nil {
			n += int64(len(x.Syntax.Subqueries)+len(x.Syntax.CTEs)+len(x.Syntax.Renamed)+len(x.Columns)) * 64
			for _, cols := range x.Columns {
				n += int64(len(cols)) * 32
			}
		}
	}
	return n
}

// Generation is database's current generation: every cached fact and
// verdict about database belongs to one.
func (c *Catalog) Generation(db string) uint64 {
	c.mu.Lock()
	e := c.epochs[db] + c.all
	c.mu.Unlock()
	bucket := uint64(c.now().UnixNano() / int64(max(c.ttl, time.Second)))
	return e<<40 | bucket&(1<<40-1)
}

// Changed records DDL seen in database: everything cached for it is stale.
func (c *Catalog) Changed(db string) {
	c.mu.Lock()
	c.epochs[db]++
	c.mu.Unlock()
}

// ChangedAll makes everything cached for every database stale.
func (c *Catalog) ChangedAll() {
	c.mu.Lock()
	c.all++
	c.mu.Unlock()
}

// cached returns a fact of the current generation, fetching it on a miss.
// Fetch errors are not cached.
func cached[T any](ctx context.Context, c *Catalog, db string, kind byte, key string, fetch func(context.Context, *pgxpool.Pool) (T, error)) (T, error) {
	k := catKey{db: db, gen: c.Generation(db), kind: kind, key: key}
	if v, ok := c.entries.Get(k); ok {
		return v.(T), nil
	}
	var zero T
	// Only a miss waits for the server; its wait is bounded here rather
	// than by every caller.
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	pool, err := c.conns(ctx, db)
	if err != nil {
		return zero, err
	}
	v, err := fetch(ctx, pool)
	if err != nil {
		return zero, err
	}
	c.entries.Put(k, v)
	return v, nil
}

// IsDDL reports command tags after which cached catalog facts may be
// wrong.
func IsDDL(tag string) bool {
	for _, p := range []string{"CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "SECURITY LABEL", "IMPORT FOREIGN SCHEMA",
		"REFRESH MATERIALIZED VIEW", "REASSIGN OWNED", "DROP OWNED"} {
		if strings.HasPrefix(tag, p) {
			return true
		}
	}
	return false
}

const rootQuery = `
WITH RECURSIVE up(oid, depth) AS (
  SELECT $1::oid, 0
  UNION ALL
  SELECT i.inhparent, up.depth + 1 FROM up JOIN pg_catalog.pg_inherits i ON i.inhrelid = up.oid WHERE up.depth < 64
)
SELECT n.nspname, c.relname, (SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1::oid)::text,
       (SELECT n2.nspname FROM pg_catalog.pg_class c2 JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace WHERE c2.oid = $1::oid),
       (SELECT relname FROM pg_catalog.pg_class WHERE oid = $1::oid)
FROM up JOIN pg_catalog.pg_class c ON c.oid = up.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY up.depth DESC, c.oid LIMIT 1`

const indexQuery = `
SELECT i.relname::text, ARRAY(
  SELECT coalesce(a.attname::text, '')
  FROM unnest((x.indkey::int2[])[0:x.indnkeyatts - 1]) WITH ORDINALITY k(num, ord)
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
  ORDER BY k.ord)
FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = $1::oid`

const attrQuery = `
SELECT attnum, attname, atttypid, atttypmod, attnotnull FROM pg_catalog.pg_attribute
WHERE attrelid = $1::oid AND NOT attisdropped ORDER BY attnum`

// Relation returns facts about table oid in database.
func (c *Catalog) Relation(ctx context.Context, database string, oid uint32) (*Relation, error) {
	return cached(ctx, c, database, 'o', strconv.FormatUint(uint64(oid), 10), func(ctx context.Context, pool *pgxpool.Pool) (*Relation, error) {
		r := &Relation{Attrs: map[int16]Attr{}}
		var kind string
		if err := pool.QueryRow(ctx, rootQuery, oid).Scan(&r.Root.Schema, &r.Root.Table, &kind, &r.Name.Schema, &r.Name.Table); err != nil {
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
			var a Attr
			if err := rows.Scan(&num, &a.Name, &a.TypeOID, &a.TypMod, &a.NotNull); err != nil {
				return nil, err
			}
			r.Attrs[num] = a
			if num > 0 {
				r.Order = append(r.Order, num)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		idx, err := pool.Query(ctx, indexQuery, oid)
		if err != nil {
			return nil, fmt.Errorf("catalog lookup of the indexes of relation %d: %w", oid, err)
		}
		defer idx.Close()
		r.Indexes = map[string][]string{}
		for idx.Next() {
			var name string
			var keys []string
			if err := idx.Scan(&name, &keys); err != nil {
				return nil, err
			}
			r.Indexes[name] = keys
		}
		return r, idx.Err()
	})
}

// EffectivePath is the schemas searched for an unqualified name:
// pg_catalog first unless the path places it, "$user" as the user's own
// schema, empty names left out.
func EffectivePath(schema string, searchPath []string, user string) []string {
	if schema != "" {
		return []string{schema}
	}
	var out []string
	if !slices.Contains(searchPath, "pg_catalog") {
		out = append(out, "pg_catalog")
	}
	for _, s := range searchPath {
		switch s {
		case "":
		case "$user":
			out = append(out, user)
		default:
			out = append(out, s)
		}
	}
	return out
}

const relationQuery = `
SELECT c.oid, n.nspname, c.relname, c.relkind::text,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND n.nspname = ANY($2::text[])
ORDER BY pg_catalog.array_position($2::text[], n.nspname::text) LIMIT 1`

const columnsQuery = `SELECT attname FROM pg_catalog.pg_attribute
WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum`

// analysisView answers the SQL analysis' catalog questions for one
// session (its database and user) from the catalog.
type analysisView struct {
	cat            *Catalog
	database, user string
}

// ForAnalysis is the catalog as the static analysis of user's statements
// in database sees it.
func (c *Catalog) ForAnalysis(database, user string) analyze.Catalog {
	return analysisView{cat: c, database: database, user: user}
}

// Relation implements analyze.Catalog.
func (a analysisView) Relation(ctx context.Context, schema, name string, searchPath []string) (*analyze.Relation, bool, error) {
	path := EffectivePath(schema, searchPath, a.user)
	rel, err := cached(ctx, a.cat, a.database, 'r', strings.Join(path, "\x00")+"\x01"+name, func(ctx context.Context, pool *pgxpool.Pool) (*analyze.Relation, error) {
		var (
			rel     analyze.Relation
			oid     uint32
			kind    string
			viewSQL *string
		)
		// View definitions are read under an empty search_path so every
		// name outside pg_catalog comes back schema-qualified.
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', '', true)"); err != nil {
				return err
			}
			return tx.QueryRow(ctx, relationQuery, name, path).Scan(&oid, &rel.Name.Schema, &rel.Name.Table, &kind, &viewSQL)
		})
		switch {
		case err == pgx.ErrNoRows:
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("catalog lookup of %q: %w", name, err)
		}
		rel.Kind = kind[0]
		if viewSQL != nil {
			rel.ViewSQL = *viewSQL
		}
		rows, err := pool.Query(ctx, columnsQuery, oid)
		if err != nil {
			return nil, fmt.Errorf("catalog lookup of %q: %w", name, err)
		}
		if rel.Columns, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, fmt.Errorf("catalog lookup of %q: %w", name, err)
		}
		ri, err := a.cat.Relation(ctx, a.database, oid)
		if err != nil {
			return nil, err
		}
		if ri.Root != rel.Name {
			rel.Root = ri.Root
		}
		return &rel, nil
	})
	return rel, rel != nil, err
}

const builtinFunctionQuery = `
SELECT coalesce(bool_and(n.nspname = 'pg_catalog') AND bool_or(n.nspname = 'pg_catalog'), false)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = $1 AND n.nspname = ANY($2::text[])`

// IsBuiltinFunction implements analyze.Catalog.
func (a analysisView) IsBuiltinFunction(ctx context.Context, schema, name string, searchPath []string) (bool, error) {
	if schema != "" && schema != "pg_catalog" {
		return false, nil
	}
	path := EffectivePath(schema, searchPath, a.user)
	return cached(ctx, a.cat, a.database, 'f', strings.Join(path, "\x00")+"\x01"+name, func(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
		var builtin bool
		if err := pool.QueryRow(ctx, builtinFunctionQuery, name, path).Scan(&builtin); err != nil {
			return false, fmt.Errorf("catalog lookup of function %q: %w", name, err)
		}
		return builtin, nil
	})
}

var _ analyze.Catalog = analysisView{}

const oidQuery = `
SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2`

// planView describes, for the server-side check of one session, the
// relations a plan scans, by the schema and name the server printed.
type planView struct {
	cat      *Catalog
	database string
	pol      *policy.Policy
	role     *policy.Role
}

// ForPlanCheck is the catalog as the server-side check of a statement in
// database under pol and role sees it.
func (c *Catalog) ForPlanCheck(database string, pol *policy.Policy, role *policy.Role) plancheck.Catalog {
	return planView{cat: c, database: database, pol: pol, role: role}
}

// relationNamed returns the relation schema.name.
func (c *Catalog) relationNamed(ctx context.Context, database, schema, name string) (*Relation, error) {
	oid, err := cached(ctx, c, database, 'n', schema+"\x00"+name, func(ctx context.Context, pool *pgxpool.Pool) (uint32, error) {
		var oid uint32
		if err := pool.QueryRow(ctx, oidQuery, schema, name).Scan(&oid); err != nil {
			return 0, fmt.Errorf("catalog lookup of %s.%s: %w", schema, name, err)
		}
		return oid, nil
	})
	if err != nil {
		return nil, err
	}
	return c.Relation(ctx, database, oid)
}

// ColumnType returns the type OID of a column of the relation schema.name.
func (c *Catalog) ColumnType(ctx context.Context, database, schema, name, column string) (uint32, error) {
	ri, err := c.relationNamed(ctx, database, schema, name)
	if err != nil {
		return 0, err
	}
	for _, a := range ri.Attrs {
		if a.Name == column {
			return a.TypeOID, nil
		}
	}
	return 0, fmt.Errorf("catalog: %s.%s has no column %s", schema, name, column)
}

// Relation implements plancheck.Catalog.
func (k planView) Relation(ctx context.Context, schema, name string) (*plancheck.Relation, error) {
	ri, err := k.cat.relationNamed(ctx, k.database, schema, name)
	if err != nil {
		return nil, err
	}
	rel := &plancheck.Relation{Name: ri.Root, Indexes: ri.Indexes}
	for _, num := range ri.Order {
		a := ri.Attrs[num]
		d := Decision(k.pol, k.role, ri, a.Name)
		rel.Columns = append(rel.Columns, plancheck.Column{Name: a.Name, Decision: d, Domain: k.pol.TokenDomain(ri.Root, a.Name)})
	}
	for _, sys := range []string{"ctid", "xmin", "xmax", "cmin", "cmax"} {
		if d := SystemDecision(k.pol, k.role, ri.Root, sys); d.Action != policy.Allow {
			rel.Columns = append(rel.Columns, plancheck.Column{Name: sys, Domain: ri.Root.String() + "." + sys, Decision: d})
		}
	}
	return rel, nil
}

// Decision is the decision on a column of a relation: system catalogs
// describe the database and are allowed, except the few that hold table
// data or other sessions' statements.
func Decision(pol *policy.Policy, role *policy.Role, ri *Relation, column string) policy.Decision {
	if ri.Root.Schema == "pg_catalog" || ri.Root.Schema == "information_schema" {
		if sqlinfo.SensitiveCatalogColumn(ri.Root.Table, column) {
			return policy.Decision{Action: policy.Block, Column: column, Rule: fmt.Sprintf("%s holds table data or other sessions' statements", ri.Root)}
		}
		return policy.Decision{Action: policy.Allow, Column: column}
	}
	if ri.Kind == 'm' {
		return pol.DecideMatview(role, ri.Root, column)
	}
	return pol.Decide(role, ri.Root, column)
}

// SystemDecision is the decision on a system column of table root: where
// rows lie and when they were written (ctid, xmin, …) follow the clear
// keys of a table inserted in key order, so they count as blocked for a
// role that does not see the table in clear; tableoid only names it.
func SystemDecision(pol *policy.Policy, role *policy.Role, root policy.TableName, column string) policy.Decision {
	if column == "tableoid" || !pol.Protects(role, root) {
		return policy.Decision{Action: policy.Allow, Column: column}
	}
	return policy.Decision{Action: policy.Block, Column: column,
		Rule: "system columns of " + root.String() + " show where its rows lie, which follows their clear values"}
}

const viewsQuery = `
SELECT c.relname, pg_catalog.pg_get_viewdef(c.oid),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`

// ViewSyntax is what the database's views say about names a plan uses
// (their subquery aliases, CTE names and column alias lists), so a
// statement's own names cannot be mistaken for a view's in the plan.
func (c *Catalog) ViewSyntax(ctx context.Context, database string) (*plancheck.Views, error) {
	return cached(ctx, c, database, 'v', "", func(ctx context.Context, pool *pgxpool.Pool) (*plancheck.Views, error) {
		rows, err := pool.Query(ctx, viewsQuery)
		if err != nil {
			return nil, fmt.Errorf("read view definitions: %w", err)
		}
		v := &plancheck.Views{Columns: map[string][]string{}}
		var defs []string
		for rows.Next() {
			var name, def string
			var cols []string
			if err := rows.Scan(&name, &def, &cols); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read view definitions: %w", err)
			}
			defs = append(defs, def)
			if _, dup := v.Columns[name]; dup {
				v.Columns[name] = nil // the same name in two schemas: no certain names
			} else {
				v.Columns[name] = cols
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read view definitions: %w", err)
		}
		for name, cols := range v.Columns {
			if cols == nil {
				delete(v.Columns, name)
			}
		}
		v.Syntax = plancheck.ParseSyntax(defs...)
		return v, nil
	})
}

// ForeignKeys returns the database's foreign keys by referencing table,
// for the subsets of developers' dumps (policy.Role.SubsetFilter).
func (c *Catalog) ForeignKeys(ctx context.Context, database string) (policy.ForeignKeys, error) {
	return cached(ctx, c, database, 'f', "", func(ctx context.Context, pool *pgxpool.Pool) (policy.ForeignKeys, error) {
		return readForeignKeys(ctx, pool)
	})
}
