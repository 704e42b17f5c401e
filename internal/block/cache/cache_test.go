package cache

import "testing"

func TestLRU(t *testing.T) {
	c := New(400)
	for i := range 4 {
		c.Put(Key{Dir: "a", Idx: int32(i)}, i, 100)
	}
	if c.Size() != 400 {
		t.Fatalf("size %d, want 400", c.Size())
	}
	if v, ok := c.Get(Key{Dir: "a", Idx: 0}); !ok || v.(int) != 0 {
		t.Fatalf("get 0: %v %v", v, ok)
	}
	c.Put(Key{Dir: "a", Idx: 4}, 4, 100) // evicts 1, the least recently used
	if _, ok := c.Get(Key{Dir: "a", Idx: 1}); ok {
		t.Error("1 still cached after eviction")
	}
	for _, i := range []int32{0, 2, 3, 4} {
		if _, ok := c.Get(Key{Dir: "a", Idx: i}); !ok {
			t.Errorf("%d evicted", i)
		}
	}
	if c.Size() != 400 {
		t.Fatalf("size %d, want 400", c.Size())
	}
	c.Put(Key{Dir: "b"}, "big", 101) // over a quarter of the bound
	if _, ok := c.Get(Key{Dir: "b"}); ok {
		t.Error("value over a quarter of the bound was stored")
	}
	if _, ok := c.Get(Key{Dir: "a", Idx: 0, Kind: 1}); ok {
		t.Error("keys differing in kind collide")
	}
}

func TestNil(t *testing.T) {
	var c *Cache
	c.Put(Key{}, 1, 1)
	if _, ok := c.Get(Key{}); ok {
		t.Error("nil cache returned a value")
	}
}
