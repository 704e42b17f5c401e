// Package analysis is clew's per-trace and per-selection analysis: the span
// tree of a trace built robustly from whatever arrived (missing parents,
// parent cycles, duplicate span IDs, clock skew), self time, the critical
// path, "why is this trace slow" against a cohort of similar traces, the
// critical path aggregated over many traces, attribute ranking between two
// selections of spans and instrumentation quality per service.
//
// It is pure logic over span.Batch and span.Span: no I/O, no HTTP, no
// store. Callers (internal/api's analysis endpoints, the detection
// packages) fetch the traces and pass them in. Nothing here keeps a reference to a batch after the
// call returns except a Tree, which points into the spans it was built from.
package analysis

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// Tree is the span tree of one trace. Nodes are indexes into Spans (the
// slice the tree was built from, not copied). Every span is a node except
// exact duplicates (same span ID, parent, name, start and end as an earlier
// span), which are left out and listed in Duplicates.
//
// The tree tolerates what real traces contain:
//   - a span whose parent is not in the trace (its parent never arrived, or
//     was sampled out) becomes an extra root, listed in Orphans;
//   - parent links that form a cycle (including a span that is its own
//     parent) are cut at the cycle's earliest span, which becomes a root,
//     listed in CycleBreaks;
//   - a span ID used by several different spans: the earliest of them in
//     Spans owns the ID (children attach to it), the others are nodes under
//     their own parents, listed in Duplicates;
//   - a child that starts before its parent or ends after it (clock skew, or
//     asynchronous work): its interval is clipped to its parent's for self
//     time and the critical path, and it is listed in Skewed.
//
// Building is iterative (no recursion, whatever the depth) and O(n log n).
// A Tree is immutable once built and safe for concurrent reads.
type Tree struct {
	// Spans are the spans the tree was built from, in their original order.
	Spans []span.Span

	parent   []int32 // parent node, -1 for a root, -2 for a left-out duplicate
	childOff []int32 // children of i are child[childOff[i]:childOff[i+1]]
	child    []int32 // by start time, then index
	start    []uint64
	end      []uint64 // the span's interval clipped to its parent's (after the parent's own clipping)
	self     []uint64 // clipped duration not covered by the union of the children's clipped intervals
	order    []int32  // every node, parents before children
	roots    []int32  // by start time
	root     int32

	// Orphans are the spans whose parent span ID is set but not in the
	// trace; each is a root of the tree.
	Orphans []int
	// CycleBreaks are the spans whose parent link was cut to break a cycle
	// of parent links; each is a root of the tree.
	CycleBreaks []int
	// Duplicates are the spans whose span ID an earlier span already has.
	Duplicates []int
	// Skewed are the children that start before their parent or end after
	// it, with by how much.
	Skewed []Skew
}

// Skew describes a child span outside its parent's interval.
type Skew struct {
	// Span is the child, Parent its parent (indexes into Tree.Spans).
	Span, Parent int
	// Before is how long the child starts before its parent, After how
	// long it ends after its parent (zero when it does not).
	Before, After time.Duration
}

// BuildTree builds the span tree of one trace's spans. b may hold spans of
// several traces only if the caller wants them treated as one; the store
// returns one trace per batch.
func BuildTree(b *span.Batch) *Tree {
	if b == nil {
		return NewTree(nil)
	}
	return NewTree(b.Spans)
}

// maxNodes bounds the spans a tree indexes (int32 node numbers); spans
// beyond it are ignored. No trace the store returns comes close.
const maxNodes = math.MaxInt32 - 1

// NewTree builds the span tree of spans (see Tree). The tree points into
// spans; the caller must not modify them while the tree is in use.
func NewTree(spans []span.Span) *Tree {
	if len(spans) > maxNodes {
		spans = spans[:maxNodes]
	}
	n := len(spans)
	t := &Tree{Spans: spans, root: -1}
	t.parent = make([]int32, n)
	if n == 0 {
		t.childOff = []int32{0}
		return t
	}

	// Index span IDs; the first span with an ID owns it.
	ids := make(map[span.SpanID]int32, n)
	for i := range spans {
		s := &spans[i]
		if s.SpanID.IsZero() {
			continue // cannot be referenced
		}
		j, dup := ids[s.SpanID]
		if !dup {
			ids[s.SpanID] = int32(i)
			continue
		}
		t.Duplicates = append(t.Duplicates, i)
		o := &spans[j]
		if o.ParentSpanID == s.ParentSpanID && o.StartUnixNano == s.StartUnixNano &&
			o.EndUnixNano == s.EndUnixNano && o.Name == s.Name {
			t.parent[i] = -2 // the same span twice: leave it out
		}
	}

	// Resolve parent links.
	for i := range spans {
		if t.parent[i] == -2 {
			continue
		}
		p := spans[i].ParentSpanID
		if p.IsZero() {
			t.parent[i] = -1
			continue
		}
		j, ok := ids[p]
		switch {
		case !ok:
			t.parent[i] = -1
			t.Orphans = append(t.Orphans, i)
		case int(j) == i:
			t.parent[i] = -1
			t.CycleBreaks = append(t.CycleBreaks, i)
		default:
			t.parent[i] = j
		}
	}
	t.breakCycles()

	// Children lists (CSR), each sorted by start time.
	t.childOff = make([]int32, n+1)
	for i := range n {
		if p := t.parent[i]; p >= 0 {
			t.childOff[p+1]++
		}
	}
	for i := range n {
		t.childOff[i+1] += t.childOff[i]
	}
	t.child = make([]int32, t.childOff[n])
	fill := slices.Clone(t.childOff[:n])
	for i := range n {
		if p := t.parent[i]; p >= 0 {
			t.child[fill[p]] = int32(i)
			fill[p]++
		}
	}
	byStart := func(a, b int32) int {
		if c := cmp.Compare(spans[a].StartUnixNano, spans[b].StartUnixNano); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	for i := range n {
		if kids := t.child[t.childOff[i]:t.childOff[i+1]]; len(kids) > 1 {
			slices.SortFunc(kids, byStart)
		}
	}
	for i := range n {
		if t.parent[i] == -1 {
			t.roots = append(t.roots, int32(i))
		}
	}
	slices.SortFunc(t.roots, byStart)
	t.root = t.pickRoot()

	// Clip intervals top-down (breadth first from the roots) and note skew.
	t.start = make([]uint64, n)
	t.end = make([]uint64, n)
	t.order = make([]int32, 0, n)
	for _, r := range t.roots {
		s := &spans[r]
		t.start[r] = s.StartUnixNano
		t.end[r] = max(s.EndUnixNano, s.StartUnixNano)
		t.order = append(t.order, r)
	}
	for k := 0; k < len(t.order); k++ {
		p := t.order[k]
		ps, pe := t.start[p], t.end[p]
		for _, c := range t.children32(p) {
			s := &spans[c]
			st, en := s.StartUnixNano, max(s.EndUnixNano, s.StartUnixNano)
			if st < ps || en > pe {
				sk := Skew{Span: int(c), Parent: int(p)}
				if st < ps {
					sk.Before = durNs(ps - st)
				}
				if en > pe {
					sk.After = durNs(en - pe)
				}
				t.Skewed = append(t.Skewed, sk)
			}
			st = min(max(st, ps), pe)
			en = min(max(en, st), pe)
			t.start[c], t.end[c] = st, en
			t.order = append(t.order, c)
		}
	}

	// Self time: the clipped interval minus the union of the children's.
	// Children are sorted by start and clipping is monotone, so one sweep
	// per node computes the union.
	t.self = make([]uint64, n)
	for _, i := range t.order {
		covered := uint64(0)
		var cs, ce uint64
		open := false
		for _, c := range t.children32(i) {
			s, e := t.start[c], t.end[c]
			if e <= s {
				continue
			}
			if !open {
				cs, ce, open = s, e, true
				continue
			}
			if s > ce {
				covered += ce - cs
				cs, ce = s, e
			} else if e > ce {
				ce = e
			}
		}
		if open {
			covered += ce - cs
		}
		t.self[i] = t.end[i] - t.start[i] - min(covered, t.end[i]-t.start[i])
	}
	return t
}

// breakCycles cuts every cycle of parent links at its earliest span. Each
// node is walked once: a walk up the parent chain stops at a root, at a
// node already settled, or at a node of the current walk (a cycle).
func (t *Tree) breakCycles() {
	n := len(t.parent)
	state := make([]uint8, n) // 0 new, 1 on the current walk, 2 settled
	var path []int32
	for i := range n {
		if state[i] != 0 || t.parent[i] < 0 {
			continue
		}
		path = path[:0]
		j := int32(i)
		for j >= 0 && state[j] == 0 {
			state[j] = 1
			path = append(path, j)
			j = t.parent[j]
		}
		if j >= 0 && state[j] == 1 {
			// path[k:] from j is a cycle: cut it at its earliest span.
			k := slices.Index(path, j)
			cut := path[k]
			for _, c := range path[k+1:] {
				a, b := &t.Spans[c], &t.Spans[cut]
				if a.StartUnixNano < b.StartUnixNano || a.StartUnixNano == b.StartUnixNano && c < cut {
					cut = c
				}
			}
			t.parent[cut] = -1
			t.CycleBreaks = append(t.CycleBreaks, int(cut))
		}
		for _, p := range path {
			state[p] = 2
		}
	}
	slices.Sort(t.CycleBreaks)
}

// pickRoot chooses the trace's root: the earliest span without a parent
// span ID (the longest, when several start together); failing that, the
// earliest root of any kind (an orphan or a cycle break).
func (t *Tree) pickRoot() int32 {
	best := int32(-1)
	for _, r := range t.roots {
		if !t.Spans[r].ParentSpanID.IsZero() {
			continue
		}
		if best < 0 || t.Spans[r].StartUnixNano == t.Spans[best].StartUnixNano && t.Spans[r].Duration() > t.Spans[best].Duration() {
			best = r
		}
	}
	if best < 0 && len(t.roots) > 0 {
		best = t.roots[0]
	}
	return best
}

func durNs(ns uint64) time.Duration {
	if ns > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ns)
}

// Len returns the number of spans (Tree.Spans), including left-out
// duplicates.
func (t *Tree) Len() int { return len(t.Spans) }

// Root returns the trace's root span index, or -1 for an empty trace: the
// earliest span without a parent (the longest when several start together);
// when none has arrived, the earliest orphan or cycle break.
func (t *Tree) Root() int { return int(t.root) }

// Roots returns every root (spans without a parent in the tree), by start
// time. The caller must not modify the slice.
func (t *Tree) Roots() []int32 { return t.roots }

// Parent returns the parent of span i, or -1 for a root or a left-out
// duplicate.
func (t *Tree) Parent(i int) int { return int(max(t.parent[i], -1)) }

// InTree reports whether span i is a node (false for an exact duplicate).
func (t *Tree) InTree(i int) bool { return t.parent[i] != -2 }

// Children returns the children of span i by start time. The caller must
// not modify the slice.
func (t *Tree) Children(i int) []int32 { return t.children32(int32(i)) }

func (t *Tree) children32(i int32) []int32 { return t.child[t.childOff[i]:t.childOff[i+1]] }

// Order returns every node, each parent before its children (breadth first
// from the roots). The caller must not modify the slice.
func (t *Tree) Order() []int32 { return t.order }

// Interval returns span i's interval clipped to its ancestors' in Unix
// nanoseconds (a root's own interval; end never precedes start).
func (t *Tree) Interval(i int) (start, end uint64) { return t.start[i], t.end[i] }

// SelfTime returns span i's self time: its clipped interval minus the time
// covered by at least one child's clipped interval. (Self times add up to a
// root's duration when no siblings overlap; concurrent children each keep
// their own.)
func (t *Tree) SelfTime(i int) time.Duration { return durNs(t.self[i]) }

// Service returns span i's service.name ("" when absent).
func (t *Tree) Service(i int) string { return t.Spans[i].Resource.ServiceName() }

// Op returns span i's (service, operation) key.
func (t *Tree) Op(i int) OpKey { return OpKey{Service: t.Service(i), Operation: t.Spans[i].Name} }

// Duration returns the duration of the trace: from the earliest start to
// the latest end of any span.
func (t *Tree) Duration() time.Duration {
	if len(t.Spans) == 0 {
		return 0
	}
	lo, hi := t.Spans[0].StartUnixNano, t.Spans[0].EndUnixNano
	for i := range t.Spans {
		lo = min(lo, t.Spans[i].StartUnixNano)
		hi = max(hi, t.Spans[i].EndUnixNano)
	}
	return durNs(hi - min(lo, hi))
}

// Depth returns the number of ancestors of span i.
func (t *Tree) Depth(i int) int {
	d := 0
	for p := t.parent[i]; p >= 0; p = t.parent[p] {
		d++
	}
	return d
}

// OpKey names an operation: a span name within a service.
type OpKey struct {
	Service   string
	Operation string
}

func (k OpKey) String() string { return k.Service + " " + k.Operation }
