package store

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Search finds the traces with at least one span matching q (q must be
// compiled) across head and blocks and returns the page of up to limit
// (default 20) traces after the cursor, with the exact number of distinct
// matching traces.
//
// Every source overlapping q's time range is read, all in parallel, each
// reporting its matches in trace ID order; a k-way merge joins the
// reports of one trace (its Start the minimum, its End the maximum over
// the sources where it matched), counts the traces and keeps the page in
// a bounded heap. Memory is bounded by the number of sources and the page,
// whatever the number of matches (a head's matches are sorted in memory:
// at most the head's traces).
func (db *DB) Search(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("search").Observe(time.Since(start).Seconds()) }()
	if err := db.enter(ctx); err != nil {
		return storage.SearchResult{}, fmt.Errorf("search: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	srcs, release := db.snapshot()
	defer release()
	if limit <= 0 {
		limit = 20
	}
	top := newTopK(limit+1, false)
	total := 0
	err := mergeSources(ctx, overlapping(srcs, q), q, func(h storage.Hit) {
		total++
		if after == nil || after.After(h) {
			top.offer(h, -1)
		}
	})
	if err != nil {
		return storage.SearchResult{}, fmt.Errorf("search: %w", err)
	}
	res := top.page(limit)
	res.Total = total
	return res, nil
}

// overlapping returns the sources whose span start times overlap q's time
// range.
func overlapping(srcs []source, q *search.Query) []source {
	out := srcs[:0:0]
	for _, s := range srcs {
		lo, hi := s.timeRange()
		if lo > hi || (q.End != 0 && lo > q.End) || (q.Start != 0 && hi < q.Start) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// hitBatch is how many hits a source hands to the merge at once.
const hitBatch = 256

// hitStream is one source's matches in trace ID order, handed over in
// batches by the goroutine that searches the source.
type hitStream struct {
	ch   chan []storage.Hit
	free chan []storage.Hit
	buf  []storage.Hit
	i    int
	cur  storage.Hit
	seen bool  // cur holds a hit
	err  error // set before ch is closed
}

func (st *hitStream) batch() []storage.Hit {
	select {
	case b := <-st.free:
		return b[:0]
	default:
		return make([]storage.Hit, 0, hitBatch)
	}
}

// produce searches s and sends its hits, in trace ID order, until done or
// ctx is cancelled; it closes st.ch.
func (st *hitStream) produce(ctx context.Context, s source, q *search.Query) {
	defer close(st.ch)
	b := st.batch()
	send := func() bool {
		select {
		case st.ch <- b:
			b = st.batch()
			return true
		case <-ctx.Done():
			return false
		}
	}
	if h, ok := s.(*head); ok {
		// A head reports its matches in arrival order: sort them. They are
		// at most the head's traces.
		var all []storage.Hit
		st.err = h.Search(ctx, q, func(h storage.Hit) bool {
			all = append(all, h)
			return true
		})
		if st.err != nil {
			return
		}
		slices.SortFunc(all, cmpHitID)
		for len(all) > 0 {
			n := copy(b[:cap(b)], all)
			b, all = b[:n], all[n:]
			if !send() {
				return
			}
		}
		return
	}
	st.err = s.Search(ctx, q, func(h storage.Hit) bool {
		b = append(b, h)
		if len(b) == cap(b) {
			return send()
		}
		return true
	})
	if st.err == nil && len(b) > 0 {
		send()
	}
}

// next advances to the stream's next hit and reports whether there was one.
func (st *hitStream) next() bool {
	if st.i >= len(st.buf) {
		if st.buf != nil {
			select {
			case st.free <- st.buf:
			default:
			}
		}
		b, ok := <-st.ch
		if !ok {
			st.buf = nil
			return false
		}
		st.buf, st.i = b, 0
	}
	prev := st.cur.TraceID
	st.cur = st.buf[st.i]
	st.i++
	if st.seen && bytes.Compare(prev[:], st.cur.TraceID[:]) >= 0 && st.err == nil {
		st.err = errors.New("BUG: a source reported hits out of trace ID order")
	}
	st.seen = true
	return true
}

// mergeSources searches every source in parallel and calls emit once per
// distinct matching trace, in trace ID order, with the trace's hits merged
// across sources.
func mergeSources(parent context.Context, srcs []source, q *search.Query, emit func(storage.Hit)) error {
	ctx, cancel := context.WithCancel(parent)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	streams := make([]*hitStream, len(srcs))
	for i, s := range srcs {
		st := &hitStream{ch: make(chan []storage.Hit, 2), free: make(chan []storage.Hit, 4)}
		streams[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			st.produce(ctx, s, q)
		}()
	}
	// A min-heap of the streams by their current hit's trace ID.
	h := make([]*hitStream, 0, len(streams))
	less := func(i, j int) bool { return bytes.Compare(h[i].cur.TraceID[:], h[j].cur.TraceID[:]) < 0 }
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(r, l) {
				m = r
			}
			if !less(m, i) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for _, st := range streams {
		if st.next() {
			h = append(h, st)
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	advance := func() {
		if h[0].next() {
			down(0)
			return
		}
		h[0] = h[len(h)-1]
		h = h[:len(h)-1]
		down(0)
	}
	n := 0
	for len(h) > 0 {
		if n++; n%4096 == 0 && ctx.Err() != nil {
			break
		}
		m := h[0].cur
		advance()
		for len(h) > 0 && h[0].cur.TraceID == m.TraceID {
			m.Start = min(m.Start, h[0].cur.Start)
			m.End = max(m.End, h[0].cur.End)
			advance()
		}
		emit(m)
	}
	cancel()
	wg.Wait()
	var errs []error
	for _, st := range streams {
		if st.err != nil && !errors.Is(st.err, context.Canceled) {
			errs = append(errs, st.err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return parent.Err()
}

func cmpHitID(a, b storage.Hit) int { return bytes.Compare(a.TraceID[:], b.TraceID[:]) }

// topK keeps the k first hits in result order: a heap whose root is the
// worst hit kept. A merging topK indexes its entries by trace ID, so that
// a trace reported again (by another source) is merged into its entry;
// Search offers each trace once, merged already, and needs no index.
type topK struct {
	k   int
	e   []topEntry
	pos map[span.TraceID]int // nil unless merging
}

type topEntry struct {
	hit storage.Hit
	// src and more are the sources (page search) whose reports are
	// merged in; src is -1 for none.
	src  int
	more []int
}

// from reports whether source i's report is merged into e.
func (e *topEntry) from(i int) bool { return e.src == i || slices.Contains(e.more, i) }

func newTopK(k int, merging bool) *topK {
	t := &topK{k: k, e: make([]topEntry, 0, min(k, 1024))}
	if merging {
		t.pos = make(map[span.TraceID]int, min(k, 1024))
	}
	return t
}

func (t *topK) full() bool { return len(t.e) >= t.k }

// worst returns the worst hit kept; call it only when t is full.
func (t *topK) worst() storage.Hit { return t.e[0].hit }

// worse orders the heap: entry i is worse than entry j.
func (t *topK) worse(i, j int) bool { return storage.Less(t.e[j].hit, t.e[i].hit) }

func (t *topK) swap(i, j int) {
	t.e[i], t.e[j] = t.e[j], t.e[i]
	if t.pos != nil {
		t.pos[t.e[i].hit.TraceID] = i
		t.pos[t.e[j].hit.TraceID] = j
	}
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.worse(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *topK) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(t.e) {
			return
		}
		m := l
		if r := l + 1; r < len(t.e) && t.worse(r, l) {
			m = r
		}
		if !t.worse(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

// offer adds h, reported by source src (-1: none to record), when it is
// among the k first seen so far; a trace already kept takes the earliest
// start and latest end of both reports. It returns the hit it dropped (h,
// or the one h pushed out), if any.
func (t *topK) offer(h storage.Hit, src int) (storage.Hit, bool) {
	if t.pos == nil && len(t.e) >= t.k && !storage.Less(h, t.e[0].hit) {
		return h, true // the common case of a long search: not among the k first
	}
	if i, ok := t.pos[h.TraceID]; ok {
		e := &t.e[i]
		e.hit.Start = min(e.hit.Start, h.Start)
		e.hit.End = max(e.hit.End, h.End)
		if src >= 0 && !e.from(src) {
			e.more = append(e.more, src)
		}
		t.down(i) // an earlier start only makes it worse
		return storage.Hit{}, false
	}
	if len(t.e) < t.k {
		t.e = append(t.e, topEntry{hit: h, src: src})
		if t.pos != nil {
			t.pos[h.TraceID] = len(t.e) - 1
		}
		t.up(len(t.e) - 1)
		return storage.Hit{}, false
	}
	if !storage.Less(h, t.e[0].hit) {
		return h, true
	}
	out := t.e[0].hit
	t.e[0] = topEntry{hit: h, src: src}
	if t.pos != nil {
		delete(t.pos, out.TraceID)
		t.pos[h.TraceID] = 0
	}
	t.down(0)
	return out, true
}

// sorted returns the entries in result order.
func (t *topK) sorted() []topEntry {
	out := slices.Clone(t.e)
	slices.SortFunc(out, func(a, b topEntry) int {
		if storage.Less(a.hit, b.hit) {
			return -1
		}
		if storage.Less(b.hit, a.hit) {
			return 1
		}
		return 0
	})
	return out
}

// page returns the first limit hits (t keeps limit+1) and the cursor after
// them when more follow.
func (t *topK) page(limit int) storage.SearchResult {
	es := t.sorted()
	res := storage.SearchResult{Hits: make([]storage.Hit, 0, min(len(es), limit))}
	for _, e := range es[:min(len(es), limit)] {
		res.Hits = append(res.Hits, e.hit)
	}
	if len(es) > limit {
		last := res.Hits[limit-1]
		res.Next = &storage.Cursor{Start: last.Start, TraceID: last.TraceID}
	}
	return res
}

// maxPageCandidates bounds the candidates a SearchPage pass keeps (64 per
// trace asked, at most 1<<16 unless the page itself is larger: about
// 100 bytes each); past it, SearchPage falls back to Search.
func maxPageCandidates(limit int) int {
	return max(limit+1, min(64*(limit+1), 1<<16))
}

// SearchPage returns the same page as Search (the hits, newest first, and
// the cursor after them) without counting every match: it reads the
// sources newest first (by their latest span start), two at a time, and
// skips those that can no longer hold a trace of the page, because the
// page is full and they end before its last trace started or, after a
// cursor, they start after the cursor. Total is then a lower bound: the
// page, plus one when more follow (TotalIsLowerBound).
//
// A trace reported by several sources starts at its earliest matching
// span over all of them. A pass keeps limit+1 candidates at most (each
// with the start the sources read so far give it, never earlier than its
// real one), then looks each up (MatchTrace: bloom filter, trace index) in
// the sources it was not reported by that hold spans starting before it.
// When corrected starts move a candidate behind the best trace the pass
// left out, the pass is repeated with four times the candidates (and the
// corrections kept). Memory is bounded by the candidates, whatever the
// number of matches. Hits' Start is exact; their End covers the sources
// read and looked up (Search's End covers every source).
func (db *DB) SearchPage(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("search_page").Observe(time.Since(start).Seconds()) }()
	if err := db.enter(ctx); err != nil {
		return storage.SearchResult{}, fmt.Errorf("search: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	srcs, release := db.snapshot()
	defer release()
	if limit <= 0 {
		limit = 20
	}
	res, ok, err := searchPage(ctx, overlapping(srcs, q), q, limit, after)
	if err != nil {
		return storage.SearchResult{}, fmt.Errorf("search: %w", err)
	}
	if !ok {
		return db.Search(ctx, q, limit, after)
	}
	return res, nil
}

// searchPage is SearchPage over srcs; it reports false when the page
// needed more than maxPageCandidates candidates.
func searchPage(ctx context.Context, srcs []source, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, bool, error) {
	// Newest first; the snapshot lists sources oldest first, so a stable
	// sort keeps the newer of two with the same latest start first.
	srcs = slices.Clone(srcs)
	slices.Reverse(srcs)
	slices.SortStableFunc(srcs, func(a, b source) int {
		_, ha := a.timeRange()
		_, hb := b.timeRange()
		return cmp.Compare(hb, ha)
	})
	exact := map[span.TraceID]storage.Hit{}
	for k := limit + 1; k <= maxPageCandidates(limit); k *= 4 {
		top, left, err := pagePass(ctx, srcs, q, k, after, exact)
		if err != nil {
			return storage.SearchResult{}, false, err
		}
		if err := verifyPage(ctx, srcs, q, top, exact); err != nil {
			return storage.SearchResult{}, false, err
		}
		for i := range top.e {
			top.e[i].hit = exact[top.e[i].hit.TraceID]
		}
		es := top.sorted()
		// Every trace the pass left out starts no later than left (and is
		// not before it); the page is certain when its last trace (the
		// limit+1-th, which decides the cursor) comes before left.
		if left != nil && (len(es) <= limit || !storage.Less(es[limit].hit, *left)) {
			continue
		}
		top.e = es[:min(len(es), limit+1)]
		res := top.page(limit)
		res.Total = len(res.Hits)
		if res.Next != nil {
			res.Total++
			res.TotalIsLowerBound = true
		}
		return res, true, nil
	}
	return storage.SearchResult{}, false, nil
}

// pageWorkers is how many sources SearchPage reads at once (a variable
// for tests).
var pageWorkers = 2

// pagePass reads the sources (newest first) that can still hold one of
// the first k traces after the cursor and returns the k first hits it saw,
// traces in exact taking their verified hit. A source being read is
// abandoned as soon as the k hits kept all start after its latest span.
// left is the first, in result order, of the hits it dropped and of the
// latest starts of the sources it skipped or abandoned (nil when none):
// every trace not returned comes after left or is left.
func pagePass(ctx context.Context, srcs []source, q *search.Query, k int, after *storage.Cursor, exact map[span.TraceID]storage.Hit) (*topK, *storage.Hit, error) {
	var mu sync.Mutex // guards the variables below
	top := newTopK(k, true)
	var left storage.Hit
	dropped := false
	drop := func(h storage.Hit) {
		if !dropped || storage.Less(h, left) {
			left, dropped = h, true
		}
	}
	next := 0
	// reading holds the sources being read, with the cancel of each.
	type read struct {
		i      int
		hi     uint64
		ctx    context.Context
		cancel context.CancelFunc
		done   bool // abandoned
	}
	var reading []*read
	// prune abandons the sources being read that end before the page's
	// worst start.
	prune := func() {
		if !top.full() {
			return
		}
		w := top.worst().Start
		for _, r := range reading {
			if !r.done && r.hi < w {
				r.done = true
				r.cancel()
				drop(storage.Hit{Start: r.hi}) // its traces start at hi or earlier
			}
		}
	}
	// take returns the next source that can hold a trace of the page.
	take := func() *read {
		for ; next < len(srcs); next++ {
			lo, hi := srcs[next].timeRange()
			if after != nil && lo > after.Start {
				continue // its traces start after the cursor's: earlier pages
			}
			if top.full() && hi < top.worst().Start {
				drop(storage.Hit{Start: hi})
				continue
			}
			r := &read{i: next, hi: hi}
			r.ctx, r.cancel = context.WithCancel(ctx)
			next++
			reading = append(reading, r)
			return r
		}
		return nil
	}
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for range min(pageWorkers, len(srcs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				rd := take()
				mu.Unlock()
				if rd == nil {
					return
				}
				// floor is a stale copy of the page's worst start: a hit
				// starting earlier cannot enter it. The best of those is
				// kept in best.
				var floor uint64
				var best storage.Hit
				below := false
				n := 0
				err := srcs[rd.i].Search(rd.ctx, q, func(h storage.Hit) bool {
					if v, ok := exact[h.TraceID]; ok {
						h = v
					}
					if after != nil && !after.After(h) {
						return true
					}
					if n++; n%256 == 0 {
						mu.Lock()
						if top.full() {
							floor = top.worst().Start
						}
						done := rd.done
						mu.Unlock()
						if done {
							return false
						}
					}
					if h.Start < floor {
						if !below || storage.Less(h, best) {
							best, below = h, true
						}
						return true
					}
					mu.Lock()
					if d, ok := top.offer(h, rd.i); ok {
						drop(d)
					}
					prune()
					done := rd.done
					mu.Unlock()
					return !done
				})
				rd.cancel()
				mu.Lock()
				if below {
					drop(best)
				}
				abandoned := rd.done
				mu.Unlock()
				if err != nil && !(abandoned && errors.Is(err, context.Canceled) && ctx.Err() == nil) {
					errs[rd.i] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	if !dropped {
		return top, nil, ctx.Err()
	}
	return top, &left, ctx.Err()
}

// verifyPage records in exact the hit of every candidate not yet there:
// the candidate is looked up in each source it was not reported by that
// holds spans starting before it.
func verifyPage(ctx context.Context, srcs []source, q *search.Query, top *topK, exact map[span.TraceID]storage.Hit) error {
	for _, e := range top.e {
		id := e.hit.TraceID
		if _, ok := exact[id]; ok {
			continue
		}
		h := e.hit
		for i, s := range srcs {
			if e.from(i) {
				continue
			}
			if lo, _ := s.timeRange(); lo >= h.Start {
				continue // cannot hold an earlier span
			}
			o, ok, err := s.MatchTrace(ctx, q, id)
			if err != nil {
				return err
			}
			if ok {
				h.Start = min(h.Start, o.Start)
				h.End = max(h.End, o.End)
			}
		}
		exact[id] = h
	}
	return nil
}
