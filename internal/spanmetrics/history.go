package spanmetrics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// merge adds o into b (the same minute, or the same step).
func (b *minuteBucket) merge(o *minuteBucket) {
	b.calls += o.calls
	b.errors += o.errors
	b.durSum += o.durSum
	for i, c := range o.hist {
		b.hist[i] += c
	}
	b.ex.merge(&o.ex)
}

// merge combines two exemplar sets, o being the later one.
func (e *exemplarSet) merge(o *exemplarSet) {
	if o.n == 0 {
		return
	}
	if e.n == 0 || o.slow.Duration > e.slow.Duration {
		e.slow = o.slow
	}
	if o.hasErr {
		e.err, e.hasErr = o.err, true
	}
	e.recent = o.recent
	e.n = 1
}

// flush writes the minutes before now's (all of them when all is set) to
// disk and drops them from memory. A minute that cannot be written goes
// back to memory, to be tried again at the next tick.
func (m *Metrics) flush(now time.Time, all bool) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	nowMinute := now.Unix() / 60
	series := map[Key][]*minuteBucket{}
	edges := map[EdgeKey][]*minuteBucket{}
	take := func(o *openSet) []*minuteBucket {
		var out []*minuteBucket
		keep := o.list[:0]
		for _, b := range o.list {
			if all || b.minute < nowMinute {
				out = append(out, b)
				m.openBuckets--
			} else {
				keep = append(keep, b)
			}
		}
		clear(o.list[len(keep):])
		o.list = keep
		if o.last != nil && (all || o.last.minute < nowMinute) {
			o.last = nil
		}
		return out
	}
	m.mu.Lock()
	for k, hs := range m.series {
		if bs := take(&hs.open); len(bs) > 0 {
			series[k] = append(series[k], bs...)
		}
		if hs.refs == 0 && len(hs.open.list) == 0 {
			delete(m.series, k)
		}
	}
	for k, e := range m.edges {
		if bs := take(&e.open); len(bs) > 0 {
			edges[e.key] = append(edges[e.key], bs...)
		}
		if e.stale && len(e.open.list) == 0 {
			delete(m.edges, k)
		}
	}
	m.mu.Unlock()
	if len(series) == 0 && len(edges) == 0 {
		return nil
	}
	var failed []int64
	var firstErr error
	groups := groupByHour(series, edges)
	for _, h := range slices.Sorted(maps.Keys(groups)) {
		r := groups[h]
		if err := m.disk.appendFrame(h, encodeFrame(nil, h, r.series, r.edges)); err != nil {
			failed = append(failed, h)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	m.m.writeErrors.Inc()
	m.mu.Lock()
	for _, h := range failed {
		for _, r := range groups[h].series {
			if hs := m.series[r.key]; hs != nil {
				m.restore(&hs.open, r.buckets)
			} else {
				hs = &histSeries{key: r.key}
				m.restore(&hs.open, r.buckets)
				m.series[r.key] = hs
			}
		}
		for _, r := range groups[h].edges {
			e := m.edges[r.key]
			if e == nil {
				e = &edgeEntry{key: r.key, stale: true}
				m.edges[r.key] = e
			}
			m.restore(&e.open, r.buckets)
		}
	}
	m.mu.Unlock()
	return firstErr
}

func (m *Metrics) restore(o *openSet, bs []*minuteBucket) {
outer:
	for _, b := range bs {
		for _, x := range o.list {
			if x.minute == b.minute {
				x.merge(b)
				continue outer
			}
		}
		o.list = append(o.list, b)
		m.openBuckets++
	}
}

// acc aggregates minute buckets into steps.
type acc[K comparable] struct {
	origin, step int64 // seconds
	first, last  int64 // unix minutes included: [first, last)
	byKey        map[K]map[int64]*minuteBucket
}

func newAcc[K comparable](start, end time.Time, step time.Duration, origin int64) *acc[K] {
	return &acc[K]{
		origin: origin,
		step:   int64(step / time.Second),
		first:  floorDiv(start.Unix(), 60),
		last:   floorDiv(end.Unix()+59, 60),
		byKey:  map[K]map[int64]*minuteBucket{},
	}
}

func (a *acc[K]) in(minute int64) bool { return minute >= a.first && minute < a.last }

func (a *acc[K]) add(k K, b *minuteBucket) {
	if !a.in(b.minute) {
		return
	}
	steps := a.byKey[k]
	if steps == nil {
		steps = map[int64]*minuteBucket{}
		a.byKey[k] = steps
	}
	i := floorDiv(b.minute*60-a.origin, a.step)
	s := steps[i]
	if s == nil {
		s = &minuteBucket{minute: i}
		steps[i] = s
	}
	s.merge(b)
}

func (a *acc[K]) buckets(k K) []Bucket {
	steps := a.byKey[k]
	idx := slices.Sorted(maps.Keys(steps))
	out := make([]Bucket, 0, len(idx))
	for _, i := range idx {
		s := steps[i]
		b := s.bucket()
		b.Start = time.Unix(a.origin+i*a.step, 0).UTC()
		out = append(out, b)
	}
	return out
}

// CheckStep reports whether step is a step Range and Edges accept: a
// positive multiple of Resolution.
func CheckStep(step time.Duration) error {
	if step < Resolution || step%Resolution != 0 {
		return fmt.Errorf("step %s: want a positive multiple of %s", step, Resolution)
	}
	return nil
}

// Range returns the RED history of every series whose Key match accepts
// (nil accepts all), over the minutes that start in [start, end) (start is
// rounded down to the minute), in buckets of step (a positive multiple of
// Resolution) aligned to multiples of step since the Unix epoch. Minutes
// still in memory are included: a span observed a second ago counts.
// Series are sorted by service, operation, kind and version; buckets
// without calls are omitted, and so are series without any. match is
// called with internal locks held: keep it cheap and do not call back
// into m.
func (m *Metrics) Range(ctx context.Context, match func(Key) bool, start, end time.Time, step time.Duration) ([]Series, error) {
	if err := CheckStep(step); err != nil {
		return nil, err
	}
	a, err := m.rangeAcc(ctx, match, start, end, step, 0)
	if err != nil {
		return nil, err
	}
	keys := slices.SortedFunc(maps.Keys(a.byKey), CompareKey)
	out := make([]Series, 0, len(keys))
	for _, k := range keys {
		out = append(out, Series{Key: k, Buckets: a.buckets(k)})
	}
	return out, nil
}

// rangeAcc gathers the RED minutes of [start, end) into steps counted from
// origin (unix seconds).
func (m *Metrics) rangeAcc(ctx context.Context, match func(Key) bool, start, end time.Time, step time.Duration, origin int64) (*acc[Key], error) {
	if match == nil {
		match = func(Key) bool { return true }
	}
	a := newAcc[Key](start, end, step, origin)
	if !end.After(start) {
		return a, nil
	}
	m.flushMu.RLock()
	defer m.flushMu.RUnlock()
	m.mu.Lock()
	for k, hs := range m.series {
		if len(hs.open.list) == 0 || !match(k) {
			continue
		}
		for _, b := range hs.open.list {
			a.add(k, b)
		}
	}
	m.mu.Unlock()
	cache := map[Key]bool{}
	v := &frameVisitor{
		wantSeries: func(k Key) bool {
			ok, seen := cache[k]
			if !seen {
				ok = match(k)
				cache[k] = ok
			}
			return ok
		},
		onSeries: a.add,
	}
	return a, m.readDisk(ctx, a.first, a.last, v)
}

// readDisk feeds the frames of the hours holding minutes [first, last) to v.
func (m *Metrics) readDisk(ctx context.Context, first, last int64, v *frameVisitor) error {
	for _, h := range m.disk.hoursIn(floorDiv(first, 60), floorDiv(last-1, 60)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		frames, err := m.disk.read(h)
		if err != nil {
			return err
		}
		for _, f := range frames {
			if err := decodeFrame(f, h, v); err != nil {
				m.m.readErrors.Inc()
				m.log.Warn("skip undecodable span metrics frame", "hour", hourFile(h), "err", err)
			}
		}
	}
	return nil
}

// Edges returns the history of every service-graph edge over the minutes
// that start in [start, end), in buckets of step as Range does. Latency is
// the client-side duration (the server side when only the server span is
// known). Edges are sorted by client, server and connection type.
func (m *Metrics) Edges(ctx context.Context, start, end time.Time, step time.Duration) ([]EdgeSeries, error) {
	if err := CheckStep(step); err != nil {
		return nil, err
	}
	a, err := m.edgeAcc(ctx, start, end, step, 0)
	if err != nil {
		return nil, err
	}
	keys := slices.SortedFunc(maps.Keys(a.byKey), compareEdgeKey)
	out := make([]EdgeSeries, 0, len(keys))
	for _, k := range keys {
		out = append(out, EdgeSeries{Key: k, Buckets: a.buckets(k)})
	}
	return out, nil
}

func (m *Metrics) edgeAcc(ctx context.Context, start, end time.Time, step time.Duration, origin int64) (*acc[EdgeKey], error) {
	a := newAcc[EdgeKey](start, end, step, origin)
	if !end.After(start) {
		return a, nil
	}
	m.flushMu.RLock()
	defer m.flushMu.RUnlock()
	m.mu.Lock()
	for _, e := range m.edges {
		for _, b := range e.open.list {
			a.add(e.key, b)
		}
	}
	m.mu.Unlock()
	v := &frameVisitor{wantEdge: func(EdgeKey) bool { return true }, onEdge: a.add}
	return a, m.readDisk(ctx, a.first, a.last, v)
}
