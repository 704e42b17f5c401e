package detect

import (
	"fmt"
	"testing"
	"time"
)

// minuteOf builds one operation-minute: n calls of duration d each.
func minuteOf(n int, d time.Duration) *agg {
	a := &agg{Hist: newHist()}
	a.Hist[bucketOf(d)] += uint64(n)
	a.Calls, a.DurSum = uint64(n), time.Duration(n)*d
	return a
}

// baseOf builds a baseline spread over 20-60 ms, 200 calls.
func baseOf() *agg {
	a := &agg{Hist: newHist()}
	for i := range 200 {
		d := 20*time.Millisecond + time.Duration(i%40)*time.Millisecond
		a.Hist[bucketOf(d)]++
		a.Calls++
	}
	return a
}

func TestPooledHostMinute(t *testing.T) {
	const svcs, opsPer = 6, 3
	build := func(slow func(svc int) bool, calls int) []hostOp {
		var ops []hostOp
		for s := range svcs {
			for range opsPer {
				d := 30 * time.Millisecond
				if slow(s) {
					d = 400 * time.Millisecond
				}
				ops = append(ops, hostOp{fmt.Sprintf("svc-%d", s), minuteOf(calls, d), baseOf()})
			}
		}
		return ops
	}
	cases := []struct {
		name string
		ops  []hostOp
		host bool
	}{
		{"every service slower, 1 call per operation", build(func(int) bool { return true }, 1), true},
		{"every service slower, 3 calls per operation", build(func(int) bool { return true }, 3), true},
		{"nothing slower", build(func(int) bool { return false }, 3), false},
		{"one service slower", build(func(s int) bool { return s == 2 }, 3), false},
		{"a call path of four of six services slower", build(func(s int) bool { return s < 4 }, 3), false},
		{"too few services", build(func(int) bool { return true }, 3)[:3*opsPer], false},
		{"empty minute", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if host, slower, n := pooledHostMinute(c.ops); host != c.host {
				t.Errorf("host = %v (%d of %d services slower), want %v", host, slower, n, c.host)
			}
		})
	}
}
