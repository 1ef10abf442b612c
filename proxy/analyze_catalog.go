package proxy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgpseudo/pgpseudo/policy/analyze"
)

// analyzeCatalog answers the SQL analysis' catalog questions for one
// database through the lookup role, with a short-lived cache.
type analyzeCatalog struct {
	cat      *catalog
	database string

	mu    sync.Mutex
	rels  map[string]relEntry
	funcs map[string]funcEntry
}

type relEntry struct {
	rel     *analyze.Relation
	found   bool
	fetched time.Time
}

type funcEntry struct {
	builtin bool
	fetched time.Time
}

// analyzeCatalogs hands out one analyzeCatalog per database.
type analyzeCatalogs struct {
	cat *catalog
	mu  sync.Mutex
	dbs map[string]*analyzeCatalog
}

func (a *analyzeCatalogs) forDatabase(db string) *analyzeCatalog {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dbs == nil {
		a.dbs = map[string]*analyzeCatalog{}
	}
	c := a.dbs[db]
	if c == nil {
		c = &analyzeCatalog{cat: a.cat, database: db, rels: map[string]relEntry{}, funcs: map[string]funcEntry{}}
		a.dbs[db] = c
	}
	return c
}

// effectivePath is the schemas searched for an unqualified name:
// pg_catalog first unless the path places it, "$user" left out.
func effectivePath(schema string, searchPath []string) []string {
	if schema != "" {
		return []string{schema}
	}
	var out []string
	if !slices.Contains(searchPath, "pg_catalog") {
		out = append(out, "pg_catalog")
	}
	for _, s := range searchPath {
		if s != "$user" && s != "" {
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

// Relation implements analyze.Catalog.
func (a *analyzeCatalog) Relation(ctx context.Context, schema, name string, searchPath []string) (*analyze.Relation, bool, error) {
	path := effectivePath(schema, searchPath)
	key := strings.Join(path, "\x00") + "\x01" + name
	a.mu.Lock()
	e, ok := a.rels[key]
	a.mu.Unlock()
	if ok && time.Since(e.fetched) < a.cat.ttl {
		return e.rel, e.found, nil
	}
	pool, err := a.cat.conns(ctx, a.database)
	if err != nil {
		return nil, false, err
	}
	var (
		rel     analyze.Relation
		oid     uint32
		kind    string
		viewSQL *string
	)
	// View definitions are read under an empty search_path so every name
	// outside pg_catalog comes back schema-qualified.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('search_path', '', true)"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, relationQuery, name, path).Scan(&oid, &rel.Name.Schema, &rel.Name.Table, &kind, &viewSQL)
	})
	found := true
	switch {
	case err == pgx.ErrNoRows:
		found = false
	case err != nil:
		return nil, false, fmt.Errorf("catalog lookup of %q: %w", name, err)
	default:
		rel.Kind = kind[0]
		if viewSQL != nil {
			rel.ViewSQL = *viewSQL
		}
		rows, err := pool.Query(ctx, columnsQuery, oid)
		if err != nil {
			return nil, false, fmt.Errorf("catalog lookup of %q: %w", name, err)
		}
		rel.Columns, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, false, fmt.Errorf("catalog lookup of %q: %w", name, err)
		}
		if ri, err := a.cat.relation(ctx, a.database, oid); err == nil && ri.Root != rel.Name {
			rel.Root = ri.Root
		} else if err != nil {
			return nil, false, err
		}
	}
	var out *analyze.Relation
	if found {
		out = &rel
	}
	a.mu.Lock()
	a.rels[key] = relEntry{rel: out, found: found, fetched: time.Now()}
	a.mu.Unlock()
	return out, found, nil
}

const builtinFunctionQuery = `
SELECT coalesce(bool_and(n.nspname = 'pg_catalog') AND bool_or(n.nspname = 'pg_catalog'), false)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = $1 AND n.nspname = ANY($2::text[])`

// IsBuiltinFunction implements analyze.Catalog.
func (a *analyzeCatalog) IsBuiltinFunction(ctx context.Context, schema, name string, searchPath []string) (bool, error) {
	if schema != "" && schema != "pg_catalog" {
		return false, nil
	}
	path := effectivePath(schema, searchPath)
	key := strings.Join(path, "\x00") + "\x01" + name
	a.mu.Lock()
	e, ok := a.funcs[key]
	a.mu.Unlock()
	if ok && time.Since(e.fetched) < a.cat.ttl {
		return e.builtin, nil
	}
	pool, err := a.cat.conns(ctx, a.database)
	if err != nil {
		return false, err
	}
	var builtin bool
	if err := pool.QueryRow(ctx, builtinFunctionQuery, name, path).Scan(&builtin); err != nil {
		return false, fmt.Errorf("catalog lookup of function %q: %w", name, err)
	}
	a.mu.Lock()
	a.funcs[key] = funcEntry{builtin: builtin, fetched: time.Now()}
	a.mu.Unlock()
	return builtin, nil
}

var _ analyze.Catalog = (*analyzeCatalog)(nil)
