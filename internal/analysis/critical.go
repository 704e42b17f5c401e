package analysis

import (
	"cmp"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// PathSegment is one stretch of the critical path: a span that was doing
// the work itself (none of its children on the path was running) from Start
// to End. A span may have several segments (before, between and after the
// children it waited on).
type PathSegment struct {
	// Index is the span's index in Tree.Spans, Span the span itself.
	Index int
	Span  *span.Span
	// Start and End bound the segment in Unix nanoseconds.
	Start, End uint64
	// Self is End - Start: the span's own time on the critical path in
	// this segment.
	Self time.Duration
}

// CriticalPath returns the critical path of the trace from its root (see
// Root), in time order; nil for an empty trace.
//
// The definition is Jaeger's and Grafana's: walk back from the end of the
// root; at each point the span on the path is the last-finishing child that
// ended before that point (the child that blocked its parent); descend into
// it, and when it is done continue in the parent from the child's start.
// Children are taken with their intervals clipped to their parent's, so a
// child that ends after its parent (asynchronous work, clock skew) blocks it
// only until the parent's end, and one entirely outside its parent is
// ignored. The segments' Self times add up to the root's duration.
func (t *Tree) CriticalPath() []PathSegment {
	if t.root < 0 {
		return nil
	}
	return t.CriticalPathOf(int(t.root))
}

// CriticalPathOf returns the critical path of the subtree under span i, in
// time order (see CriticalPath).
func (t *Tree) CriticalPathOf(i int) []PathSegment {
	if i < 0 || i >= len(t.Spans) || t.parent[i] == -2 {
		return nil
	}
	type frame struct {
		node   int32
		at     uint64 // the point the walk back has reached in node
		lo, hi int32  // node's children, by clipped end descending, in scratch[lo:hi]
	}
	// Each node is visited at most once, so the children lists copied into
	// scratch never exceed the number of spans.
	scratch := make([]int32, 0, 64)
	push := func(stack []frame, n int32) []frame {
		lo := int32(len(scratch))
		scratch = append(scratch, t.children32(n)...)
		kids := scratch[lo:]
		slices.SortFunc(kids, func(a, b int32) int {
			if c := cmp.Compare(t.end[b], t.end[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		return append(stack, frame{node: n, at: t.end[n], lo: lo, hi: int32(len(scratch))})
	}
	var segs []PathSegment
	add := func(n int32, s, e uint64) {
		if e > s {
			segs = append(segs, PathSegment{Index: int(n), Span: &t.Spans[n], Start: s, End: e, Self: durNs(e - s)})
		}
	}
	stack := push(nil, int32(i))
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		next := int32(-1)
		for f.lo < f.hi {
			c := scratch[f.lo]
			f.lo++
			if t.end[c] <= f.at && t.end[c] > t.start[c] {
				next = c
				break
			}
		}
		if next < 0 {
			add(f.node, t.start[f.node], f.at)
			stack = stack[:len(stack)-1]
			continue
		}
		add(f.node, t.end[next], f.at)
		f.at = t.start[next]
		stack = push(stack, next)
	}
	slices.Reverse(segs)
	return segs
}

// SelfTimes returns the self time on the critical path (CriticalPath) per
// (service, operation).
func (t *Tree) SelfTimes() map[OpKey]time.Duration {
	return PathSelfTimes(t, t.CriticalPath())
}

// PathSelfTimes sums the segments of a critical path of t per (service,
// operation).
func PathSelfTimes(t *Tree, path []PathSegment) map[OpKey]time.Duration {
	out := make(map[OpKey]time.Duration)
	for _, s := range path {
		out[t.Op(s.Index)] += s.Self
	}
	return out
}

// PathSelfBySpan sums the segments of a critical path per span index.
func PathSelfBySpan(path []PathSegment) map[int]time.Duration {
	out := make(map[int]time.Duration)
	for _, s := range path {
		out[s.Index] += s.Self
	}
	return out
}
