// Package cache is the page cache of clew's block readers: an LRU of
// decoded column pages and trace index pages, bounded by bytes and shared
// by any number of block.Readers. It knows nothing of the block format:
// the reader names what it caches by a Key whose kinds it defines.
package cache

import (
	"container/list"
	"sync"
)

// Cache is an LRU of decoded pages, shared by any number of Readers. It is
// safe for concurrent use. Cached values are immutable once stored. A nil
// *Cache caches nothing.
type Cache struct {
	mu       sync.Mutex
	maxBytes int64
	size     int64
	ll       *list.List
	items    map[Key]*list.Element
	hits     int64
	misses   int64
}

// Key names one cached value. Its fields are the block reader's to
// assign; the cache only compares them.
type Key struct {
	Dir  string // the block directory
	Kind uint8  // what is cached (the block reader defines the kinds)
	Idx  int32  // the page or row group index
	Col  int8   // the column, for kinds of columns
	Attr uint32 // the attribute key id, for kinds of one key's attributes
}

type entry struct {
	key  Key
	val  any
	size int64
}

// New returns a cache holding at most maxBytes of decoded data.
func New(maxBytes int64) *Cache {
	return &Cache{maxBytes: maxBytes, ll: list.New(), items: make(map[Key]*list.Element)}
}

// Get returns the value stored under k, marking it recently used.
func (c *Cache) Get(k Key) (any, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		c.hits++
		return e.Value.(*entry).val, true
	}
	c.misses++
	return nil, false
}

// Put stores v, of about size bytes, under k unless k is already held,
// evicting the least recently used values beyond the cache's bound. A value
// larger than a quarter of the bound is not stored.
func (c *Cache) Put(k Key, v any, size int64) {
	if c == nil || size > c.maxBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[k] = c.ll.PushFront(&entry{key: k, val: v, size: size})
	c.size += size
	for c.size > c.maxBytes {
		e := c.ll.Back()
		ce := e.Value.(*entry)
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
