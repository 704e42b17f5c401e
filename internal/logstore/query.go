package logstore

import (
	"container/heap"
	"context"
	"slices"
	"sort"

	"github.com/clew-dev/clew/internal/logs"
)

// MaxLimit bounds a page.
const MaxLimit = 10_000

// topK keeps the limit newest matching records (by logs.Key).
type topK struct {
	limit int
	items []hit // a min-heap: the oldest kept first
}

type hit struct {
	key logs.Key
	rec logs.Record
}

func (t *topK) Len() int           { return len(t.items) }
func (t *topK) Less(i, j int) bool { return t.items[i].key.Less(t.items[j].key) }
func (t *topK) Swap(i, j int)      { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *topK) Push(x any)         { t.items = append(t.items, x.(hit)) }
func (t *topK) Pop() any {
	x := t.items[len(t.items)-1]
	t.items = t.items[:len(t.items)-1]
	return x
}

func (t *topK) full() bool { return len(t.items) >= t.limit }

// floor is the oldest time a record can have and still enter the page.
func (t *topK) floor() int64 {
	if !t.full() {
		return -1 << 63
	}
	return t.items[0].key.Time
}

// offer considers r (which matched) for the page. The limit+1-th newest
// is kept too, so that the page knows whether more follow.
func (t *topK) offer(r *logs.Record, after logs.Cursor) {
	if t.full() && r.Time < t.items[0].key.Time {
		return
	}
	k := logs.KeyOf(r)
	if !after.Before(k) {
		return
	}
	if !t.full() {
		heap.Push(t, hit{k, *r})
		return
	}
	if t.items[0].key.Less(k) {
		t.items[0] = hit{k, *r}
		heap.Fix(t, 0)
	}
}

// source is a head or a block, as a query sees it.
type source struct {
	maxTime int64
	h       *head
	b       *diskBlock
}

// SearchLogs returns up to limit records matching q that come after the
// cursor, newest first (logs.Reader). Sources are read newest first and a
// source, or a row group, older than the page's oldest record is skipped.
func (db *DB) SearchLogs(ctx context.Context, q *logs.Query, limit int, after logs.Cursor) (logs.Page, error) {
	limit = min(max(limit, 1), MaxLimit)
	db.mu.Lock()
	srcs := make([]source, 0, len(db.blocks)+len(db.flushing)+1)
	for _, h := range append(slices.Clone(db.flushing), db.head) {
		srcs = append(srcs, source{maxTime: 1<<63 - 1, h: h})
	}
	for _, b := range db.blocks {
		b.acquire()
		srcs = append(srcs, source{maxTime: b.meta.MaxTime, b: b})
	}
	db.mu.Unlock()
	defer func() {
		for _, s := range srcs {
			if s.b != nil {
				s.b.release()
			}
		}
	}()
	sort.SliceStable(srcs, func(i, j int) bool { return srcs[i].maxTime > srcs[j].maxTime })

	t := &topK{limit: limit + 1}
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return logs.Page{}, err
		}
		if s.maxTime < t.floor() {
			break // sorted by newest record: no later source can enter
		}
		var err error
		if s.h != nil {
			searchHead(s.h, q, t, after)
		} else {
			err = db.searchBlock(ctx, s.b, q, t, after)
		}
		if err != nil {
			return logs.Page{}, err
		}
	}
	hits := t.items
	slices.SortFunc(hits, func(a, b hit) int {
		switch {
		case b.key.Less(a.key):
			return -1
		case a.key.Less(b.key):
			return 1
		}
		return 0
	})
	var p logs.Page
	if len(hits) > limit {
		hits = hits[:limit]
		p.Next = logs.Cursor{Key: hits[limit-1].key, Set: true}
	}
	p.Records = make([]logs.Record, len(hits))
	for i := range hits {
		p.Records[i] = hits[i].rec
	}
	return p, nil
}

func searchHead(h *head, q *logs.Query, t *topK, after logs.Cursor) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if q.MinSeverity > h.maxSev || (q.Service != "" && !h.services[q.Service]) {
		return
	}
	if q.TraceID != nil {
		for _, i := range h.traces[*q.TraceID] {
			if r := &h.recs[i]; q.Match(r) {
				t.offer(r, after)
			}
		}
		return
	}
	for i := len(h.recs) - 1; i >= 0; i-- {
		if r := &h.recs[i]; q.Match(r) {
			t.offer(r, after)
		}
	}
}

func (db *DB) searchBlock(ctx context.Context, b *diskBlock, q *logs.Query, t *topK, after logs.Cursor) error {
	m := &b.meta
	if (q.End != 0 && m.MinTime >= q.End) || (q.Start != 0 && m.MaxTime < q.Start) || q.MinSeverity > m.MaxSeverity {
		return nil
	}
	if after.Set && m.MinTime > after.Time {
		return nil
	}
	if q.Service != "" {
		if _, ok := slices.BinarySearch(m.Services, q.Service); !ok {
			return nil
		}
	}
	groups := make([]int, 0, len(m.RowGroups))
	var rows map[int][]int // by group, when the trace index narrowed the scan
	if q.TraceID != nil {
		rs, err := b.traceRows(ctx, *q.TraceID)
		if err != nil {
			return err
		}
		rows = map[int][]int{}
		for _, r := range rs {
			g := r / rowGroupRows
			if len(rows[g]) == 0 {
				groups = append(groups, g)
			}
			rows[g] = append(rows[g], r%rowGroupRows)
		}
		slices.Reverse(groups)
	} else {
		for g := len(m.RowGroups) - 1; g >= 0; g-- {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		rg := &m.RowGroups[g]
		if rg.MaxTime < t.floor() {
			break // groups are in time order, newest first here
		}
		if (q.End != 0 && rg.MinTime >= q.End) || (q.Start != 0 && rg.MaxTime < q.Start) || q.MinSeverity > rg.MaxSeverity {
			continue
		}
		if after.Set && rg.MinTime > after.Time {
			continue
		}
		recs, err := b.readRowGroup(ctx, g)
		if err != nil {
			return err
		}
		if rows != nil {
			for _, i := range rows[g] {
				if q.Match(&recs[i]) {
					t.offer(&recs[i], after)
				}
			}
			continue
		}
		for i := len(recs) - 1; i >= 0; i-- {
			if q.Match(&recs[i]) {
				t.offer(&recs[i], after)
			}
		}
	}
	return nil
}

// LogResources returns the distinct resources of the heads and of the
// blocks overlapping [start, end) (logs.Reader).
func (db *DB) LogResources(ctx context.Context, start, end int64) ([][]logs.KV, error) {
	db.mu.Lock()
	heads := append(slices.Clone(db.flushing), db.head)
	blocks := slices.Clone(db.blocks)
	db.mu.Unlock()
	type key struct {
		p *logs.KV
		n int
	}
	seen := map[key]bool{}
	var out [][]logs.KV
	add := func(r []logs.KV) {
		k := key{n: len(r)}
		if len(r) > 0 {
			k.p = &r[0]
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	for _, h := range heads {
		h.mu.RLock()
		for i := range h.recs {
			if r := &h.recs[i]; (start == 0 || r.Time >= start) && (end == 0 || r.Time < end) {
				add(r.Resource)
			}
		}
		h.mu.RUnlock()
	}
	for _, b := range blocks {
		if (end != 0 && b.meta.MinTime >= end) || (start != 0 && b.meta.MaxTime < start) {
			continue
		}
		for _, r := range b.resources {
			add(r)
		}
	}
	return out, ctx.Err()
}
