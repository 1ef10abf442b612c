package lru

import "testing"

func TestBoundedByEntriesAndBytes(t *testing.T) {
	c := New[string, string](3, 10, func(k, v string) int64 { return int64(len(k) + len(v)) })
	c.Put("a", "1")
	c.Put("b", "2")
	c.Put("c", "3")
	if _, ok := c.Get("a"); !ok {
		t.Fatal("a evicted early")
	}
	c.Put("d", "4") // evicts b, the least recently used
	if _, ok := c.Get("b"); ok {
		t.Error("b not evicted")
	}
	if c.Len() != 3 || c.Bytes() != 6 {
		t.Errorf("len %d bytes %d", c.Len(), c.Bytes())
	}
	c.Put("e", "xxxxxxx") // 8 bytes: evicts until the total fits
	if c.Bytes() > 10 {
		t.Errorf("bytes %d over budget", c.Bytes())
	}
	c.Put("huge", "yyyyyyyyyyyy")
	if _, ok := c.Get("huge"); ok {
		t.Error("a value over the whole budget was kept")
	}
	c.Put("e", "z") // replace shrinks
	if v, _ := c.Get("e"); v != "z" {
		t.Errorf("replace: %q", v)
	}
}

func TestStatsCount(t *testing.T) {
	c := New[string, int](2, 0, nil)
	c.Put("a", 1)
	c.Put("b", 2)
	c.Get("a")
	c.Get("x")
	c.Put("c", 3) // evicts b
	c.Get("b")
	want := Stats{Entries: 2, Bytes: 2, Hits: 1, Misses: 2, Evictions: 1}
	if got := c.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}
