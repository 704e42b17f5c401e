package analysis

import (
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// callKey identifies repeated calls: the same operation and, for database
// spans, the same query text (or, for HTTP client spans, the same URL
// template).
type callKey struct {
	Op     OpKey
	Detail string
}

func (k callKey) String() string {
	if k.Detail == "" {
		return k.Op.String()
	}
	return k.Op.String() + " (" + k.Detail + ")"
}

// maxDetail bounds the query text kept in a key.
const maxDetail = 256

func keyOf(t *Tree, i int) callKey {
	s := &t.Spans[i]
	d := attrString(s.Attrs, "db.query.text")
	if d == "" {
		d = attrString(s.Attrs, "db.statement")
	}
	if d == "" && s.Kind == span.KindClient {
		d = attrString(s.Attrs, "url.template")
	}
	if len(d) > maxDetail {
		d = d[:maxDetail]
	}
	return callKey{Op: t.Op(i), Detail: d}
}

// patKey is a pattern under a parent operation: a child call, or a pair of
// child calls (B set).
type patKey struct {
	Parent OpKey
	A, B   callKey
}

// group is the children of one parent with one call key, by start time.
type group struct {
	key  callKey
	kids []int32
	// seq is the length of the longest chain of members that each start
	// once the ones before have ended (1 for one member).
	seq int
	// lo, hi envelope the members' clipped intervals.
	lo, hi uint64
	// sum is the members' clipped durations added up, max the longest.
	sum, max uint64
}

// groups splits the children of span p by call key, keeping the order of
// first appearance.
func groups(t *Tree, p int) []group {
	kids := t.Children(p)
	if len(kids) == 0 {
		return nil
	}
	idx := make(map[callKey]int, 4)
	var out []group
	for _, c := range kids {
		k := keyOf(t, int(c))
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, group{key: k, lo: t.start[c], hi: t.end[c]})
		}
		out[j].kids = append(out[j].kids, c)
	}
	for j := range out {
		g := &out[j]
		var lastEnd uint64
		for n, c := range g.kids {
			s, e := t.start[c], t.end[c]
			g.lo, g.hi = min(g.lo, s), max(g.hi, e)
			g.sum += e - s
			g.max = max(g.max, e-s)
			if n == 0 || s >= lastEnd {
				g.seq++
			}
			lastEnd = max(lastEnd, e)
		}
	}
	return out
}

// remote reports whether span i calls out of its service: a client or
// producer span.
func remote(t *Tree, i int) bool {
	k := t.Spans[i].Kind
	return k == span.KindClient || k == span.KindProducer
}

func isDB(s *span.Span) bool {
	return hasPrefixKey(s.Attrs, "db.")
}

// profile is what Explain compares between a trace and its cohort.
type profile struct {
	t      *Tree
	dur    time.Duration
	path   []PathSegment
	cpSelf map[OpKey]time.Duration
	counts map[OpKey]int
	// parents counts the spans of each operation that have children.
	parents map[OpKey]int
	// repeats is the longest sequential run of a child call under one
	// parent of an operation.
	repeats map[patKey]int
	// sameOverlap: under parents of an operation with at least two calls
	// of one key, whether some of them ran concurrently.
	sameOverlap map[patKey]bool
	// pairOverlap: under parents of an operation calling both A and B
	// (remote calls), whether their envelopes overlapped.
	pairOverlap map[patKey]bool
	// retries counts attempts after the first per retried call key.
	retries map[callKey]int
	errored bool
	// groups keeps each parent's child groups when the profile is the
	// explained trace's, which Explain's passes read again.
	groups map[int32][]group
}

// maxKeysPerParent bounds the pairs of different child calls compared
// under one parent.
const maxKeysPerParent = 16

func newProfile(t *Tree, keep bool) *profile {
	p := &profile{t: t, counts: map[OpKey]int{}, parents: map[OpKey]int{}, repeats: map[patKey]int{},
		sameOverlap: map[patKey]bool{}, pairOverlap: map[patKey]bool{}, retries: map[callKey]int{}}
	if r := t.Root(); r >= 0 {
		s, e := t.Interval(r)
		p.dur = durNs(e - s)
		p.path = t.CriticalPath()
		p.cpSelf = PathSelfTimes(t, p.path)
	}
	for _, i := range t.Order() {
		p.counts[t.Op(int(i))]++
		if t.Spans[i].StatusCode == span.StatusError {
			p.errored = true
		}
		if len(t.Children(int(i))) == 0 {
			continue
		}
		parent := t.Op(int(i))
		p.parents[parent]++
		gs := groups(t, int(i))
		if keep {
			if p.groups == nil {
				p.groups = map[int32][]group{}
			}
			p.groups[i] = gs
		}
		var remotes []int
		for j := range gs {
			g := &gs[j]
			k := patKey{Parent: parent, A: g.key}
			p.repeats[k] = max(p.repeats[k], g.seq)
			if len(g.kids) >= 2 {
				p.sameOverlap[k] = p.sameOverlap[k] || g.seq < len(g.kids)
			}
			if remote(t, int(g.kids[0])) && len(remotes) < maxKeysPerParent {
				remotes = append(remotes, j)
			}
			if rc := retryChain(t, g); len(rc) > 1 {
				p.retries[g.key] += len(rc) - 1
			}
		}
		for x := 0; x < len(remotes); x++ {
			for y := x + 1; y < len(remotes); y++ {
				a, b := &gs[remotes[x]], &gs[remotes[y]]
				k := pairKey(parent, a.key, b.key)
				p.pairOverlap[k] = p.pairOverlap[k] || a.lo < b.hi && b.lo < a.hi
			}
		}
	}
	return p
}

func pairKey(parent OpKey, a, b callKey) patKey {
	if b.String() < a.String() {
		a, b = b, a
	}
	return patKey{Parent: parent, A: a, B: b}
}

// retryChain returns the members of g that form a chain of retries: calls
// marked with http.request.resend_count, or repeated identical calls each
// after a failed one. It returns nil when g is not a retry chain.
func retryChain(t *Tree, g *group) []int32 {
	if len(g.kids) < 2 {
		if len(g.kids) == 1 {
			if n, ok := attrInt(t.Spans[g.kids[0]].Attrs, "http.request.resend_count"); ok && n > 0 {
				return g.kids // a retry whose earlier attempts are elsewhere
			}
		}
		return nil
	}
	marked := false
	for _, c := range g.kids {
		if n, ok := attrInt(t.Spans[c].Attrs, "http.request.resend_count"); ok && n > 0 {
			marked = true
			break
		}
	}
	if marked {
		return g.kids
	}
	// Identical calls after an error: start the chain at the first failed
	// call that has a later identical call starting after it ended.
	for n, c := range g.kids[:len(g.kids)-1] {
		if !failed(&t.Spans[c]) {
			continue
		}
		chain := []int32{c}
		last := c
		for _, d := range g.kids[n+1:] {
			if t.start[d] >= t.end[last] && failed(&t.Spans[last]) {
				chain = append(chain, d)
				last = d
			}
		}
		if len(chain) > 1 {
			return chain
		}
	}
	return nil
}

// inclusiveCP returns, per span, the critical-path time spent in its
// subtree.
func inclusiveCP(t *Tree, path []PathSegment) []time.Duration {
	out := make([]time.Duration, t.Len())
	for _, s := range path {
		out[s.Index] += s.Self
	}
	ord := t.Order()
	for k := len(ord) - 1; k >= 0; k-- {
		i := ord[k]
		if p := t.parent[i]; p >= 0 {
			out[p] += out[i]
		}
	}
	return out
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

func spanIDs(t *Tree, idx []int32, limit int) []span.SpanID {
	out := make([]span.SpanID, 0, min(len(idx), limit))
	for _, i := range idx {
		if len(out) == limit {
			break
		}
		out = append(out, t.Spans[i].SpanID)
	}
	return out
}

func sortedKeys[K comparable, V any](m map[K]V, less func(a, b K) int) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, less)
	return out
}
