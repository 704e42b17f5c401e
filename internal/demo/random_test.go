package demo

import "testing"

// TestSeed: one seed gives one stream per source, another seed another.
func TestSeed(t *testing.T) {
	draw := func(seed uint64) (d, s [5]uint64) {
		seedRandom(seed)
		for i := range d {
			d[i], s[i] = driverRand.Uint64(), shopRand.Uint64()
		}
		return d, s
	}
	d1, s1 := draw(42)
	d2, s2 := draw(42)
	d3, _ := draw(43)
	if d1 != d2 || s1 != s2 {
		t.Error("the same seed gave different streams")
	}
	if d1 == d3 || d1 == s1 {
		t.Error("different seeds, or the two sources, gave the same stream")
	}
}
