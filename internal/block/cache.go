package block

import (
	"container/list"
	"sync"
)

// Cache is an LRU of decoded column pages and trace index pages, shared by
// any number of Readers. It is safe for concurrent use. Cached values are
// immutable once stored.
type Cache struct {
	mu       sync.Mutex
	maxBytes int64
	size     int64
	ll       *list.List
	items    map[cacheKey]*list.Element
	hits     int64
	misses   int64
}

type cacheKey struct {
	dir string
	// kind 0: decoded group column, 1: trace page, 2: value page,
	// 3: one key's attributes (attrList, projections of span scans),
	// kindNarrow and kindKeyCol: search columns (searchcols.go)
	kind uint8
	idx  int32
	col  int8
	key  uint32 // kinds 3 and kindKeyCol: attribute key id
}

type cacheEntry struct {
	key  cacheKey
	val  any
	size int64
}

// NewCache returns a cache holding at most maxBytes of decoded data.
func NewCache(maxBytes int64) *Cache {
	return &Cache{maxBytes: maxBytes, ll: list.New(), items: make(map[cacheKey]*list.Element)}
}

func (c *Cache) get(k cacheKey) (any, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		c.hits++
		return e.Value.(*cacheEntry).val, true
	}
	c.misses++
	return nil, false
}

func (c *Cache) put(k cacheKey, v any, size int64) {
	if c == nil || size > c.maxBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&cacheEntry{key: k, val: v, size: size})
	c.size += size
	for c.size > c.maxBytes {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.items, ce.key)
		c.size -= ce.size
	}
}

// Size returns the bytes currently held.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
