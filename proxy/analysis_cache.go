package proxy

import (
	"sync"

	"github.com/pgpseudo/pgpseudo/policy/sqlinfo"
)

// analysisCache keeps parsed statements by (database, SQL text). It is
// bounded: when full it starts over, which keeps the hot set cheaply.
type analysisCache struct {
	mu    sync.Mutex
	max   int
	items map[string][]sqlinfo.Statement
}

func newAnalysisCache(max int) *analysisCache {
	return &analysisCache{max: max, items: map[string][]sqlinfo.Statement{}}
}

// get returns a cached result; callers must not modify it.
func (c *analysisCache) get(key string) ([]sqlinfo.Statement, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.items[key]
	return v, ok
}

func (c *analysisCache) put(key string, v []sqlinfo.Statement) {
	if len(key) > 64<<10 {
		return // huge statements are rarely repeated
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		c.items = make(map[string][]sqlinfo.Statement, c.max)
	}
	c.items[key] = v
}
