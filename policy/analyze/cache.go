package analyze

import (
	"container/list"
	"context"
	"strings"
	"sync"
)

// Cache memoises analyses per (generation, role, session state, SQL
// text), so repeated executions of a statement cost one map lookup. The
// caller bumps the generation whenever the policy is reloaded or its
// catalog cache is invalidated. Results are shared: do not modify them.
// A Cache is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // front: most recently used
	entries map[cacheKey]*list.Element
}

type cacheKey struct {
	generation       uint64
	role             string
	path, defaultPth string
	inTx             bool
	sql              string
}

type cacheEntry struct {
	key cacheKey
	res *Result
}

// NewCache returns a cache holding at most max results (least recently
// used ones are evicted).
func NewCache(max int) *Cache {
	if max < 1 {
		max = 1
	}
	return &Cache{max: max, order: list.New(), entries: map[cacheKey]*list.Element{}}
}

// Analyze returns the cached result for the statement or analyses it.
// Catalog failures are not cached.
func (c *Cache) Analyze(ctx context.Context, generation uint64, s *Session, cat Catalog, sql string) (*Result, error) {
	key := cacheKey{generation: generation, path: joinPath(s.SearchPath), defaultPth: joinPath(s.DefaultSearchPath),
		inTx: s.InTransaction, sql: sql}
	if s.Role != nil {
		key.role = s.Role.Name
	}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		res := e.Value.(*cacheEntry).res
		c.mu.Unlock()
		return res, nil
	}
	c.mu.Unlock()
	res, err := Analyze(ctx, s, cat, sql)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*cacheEntry).res, nil
	}
	c.entries[key] = c.order.PushFront(&cacheEntry{key: key, res: res})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
	return res, nil
}

// Len returns the number of cached results.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// joinPath joins schema names with NUL, which no name contains, and marks
// nil apart from empty.
func joinPath(p []string) string {
	if p == nil {
		return "\x01"
	}
	return strings.Join(p, "\x00")
}
