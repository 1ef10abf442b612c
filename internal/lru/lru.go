// Package lru is pgpseudo's one cache policy: a map bounded by its number
// of entries and by the bytes they hold, evicting the least recently used.
// Keys must include everything the cached value depends on; the cache
// never decides staleness itself.
package lru

import (
	"container/list"
	"sync"
)

// Cache is safe for concurrent use.
type Cache[K comparable, V any] struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int64
	size       func(K, V) int64
	bytes      int64
	order      *list.List // front: most recently used
	items      map[K]*list.Element
	// hits, misses and evictions count lookups and evictions since New,
	// for metrics.
	hits, misses, evictions uint64
}

type entry[K comparable, V any] struct {
	key   K
	val   V
	bytes int64
}

// New returns a cache holding at most maxEntries entries and maxBytes
// bytes as size counts them (size nil: every entry counts 1 byte).
func New[K comparable, V any](maxEntries int, maxBytes int64, size func(K, V) int64) *Cache[K, V] {
	if maxEntries < 1 {
		maxEntries = 1
	}
	if size == nil {
		size = func(K, V) int64 { return 1 }
	}
	return &Cache[K, V]{maxEntries: maxEntries, maxBytes: maxBytes, size: size, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.hits++
		c.order.MoveToFront(e)
		return e.Value.(*entry[K, V]).val, true
	}
	c.misses++
	var zero V
	return zero, false
}

// Put stores v for k. A value larger than the whole byte budget is not
// kept.
func (c *Cache[K, V]) Put(k K, v V) {
	n := c.size(k, v)
	if c.maxBytes > 0 && n > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		old := e.Value.(*entry[K, V])
		c.bytes += n - old.bytes
		old.val, old.bytes = v, n
		c.order.MoveToFront(e)
	} else {
		c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: v, bytes: n})
		c.bytes += n
	}
	for c.order.Len() > c.maxEntries || c.maxBytes > 0 && c.bytes > c.maxBytes {
		last := c.order.Back()
		le := last.Value.(*entry[K, V])
		c.order.Remove(last)
		delete(c.items, le.key)
		c.bytes -= le.bytes
		c.evictions++
	}
}

// Len returns the number of entries.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Bytes returns the bytes held.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Stats is a snapshot of a cache's size and counters.
type Stats struct {
	Entries                 int
	Bytes                   int64
	Hits, Misses, Evictions uint64
}

// Stats returns the cache's size and its counters since New.
func (c *Cache[K, V]) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Entries: c.order.Len(), Bytes: c.bytes, Hits: c.hits, Misses: c.misses, Evictions: c.evictions}
}
