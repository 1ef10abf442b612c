package catalog

import (
	"context"
	"fmt"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

const keywordsQuery = `SELECT word, catcode FROM pg_catalog.pg_get_keywords()`

// Keywords returns the server's keyword list, read once per server version
// through the lookup connection of database.
func (c *Catalog) Keywords(ctx context.Context, database, version string) (sqlinfo.Keywords, error) {
	c.mu.Lock()
	kw := c.kw[version]
	c.mu.Unlock()
	if kw != nil {
		return kw, nil
	}
	pool, err := c.conns(ctx, database)
	if err != nil {
		return nil, err
	}
	rows, err := pool.Query(ctx, keywordsQuery)
	if err != nil {
		return nil, fmt.Errorf("read the server's keywords: %w", err)
	}
	defer rows.Close()
	kw = sqlinfo.Keywords{}
	for rows.Next() {
		var word, cat string
		if err := rows.Scan(&word, &cat); err != nil {
			return nil, fmt.Errorf("read the server's keywords: %w", err)
		}
		if cat != "" {
			kw[word] = cat[0]
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the server's keywords: %w", err)
	}
	c.mu.Lock()
	c.kw[version] = kw
	c.mu.Unlock()
	return kw, nil
}
