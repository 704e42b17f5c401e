package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// snapshot returns every source a query must read, newest last, and a
// function that releases them.
func (db *DB) snapshot() ([]source, func()) {
	db.mu.Lock()
	blocks := slices.Clone(db.blocks)
	for _, b := range blocks {
		b.acquire()
	}
	srcs := make([]source, 0, len(blocks)+len(db.flushing)+1)
	for _, b := range blocks {
		srcs = append(srcs, b)
	}
	for _, h := range db.flushing {
		srcs = append(srcs, h)
	}
	srcs = append(srcs, db.head)
	db.mu.Unlock()
	return srcs, func() { releaseAll(blocks) }
}

// FindTrace returns every span of the trace from head and blocks, in start
// order, with exact duplicates (a span sent twice) removed. It reports
// false when no source has the trace.
func (db *DB) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("trace_by_id").Observe(time.Since(start).Seconds()) }()
	if err := db.enter(ctx); err != nil {
		return nil, false, fmt.Errorf("find trace %s: %w", id, err)
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	srcs, release := db.snapshot()
	defer release()
	b := &span.Batch{}
	found := false
	for _, s := range srcs {
		ok, err := s.FindTrace(ctx, id, b)
		if err != nil {
			return nil, false, fmt.Errorf("find trace %s: %w", id, err)
		}
		found = found || ok
	}
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("find trace %s: %w", id, err)
	}
	if !found {
		return nil, false, nil
	}
	storage.SortTrace(b)
	return b, true, nil
}

// Services lists the service names of every source, sorted.
func (db *DB) Services(ctx context.Context) ([]string, error) {
	return db.union(ctx, "services", func(s source) ([]string, error) { return s.Services(ctx) })
}

// SpanNames lists span names, of one service or ("" ) all, sorted.
func (db *DB) SpanNames(ctx context.Context, service string) ([]string, error) {
	return db.union(ctx, "span_names", func(s source) ([]string, error) { return s.SpanNames(ctx, service) })
}

// AttrKeys lists attribute keys of a scope, sorted.
func (db *DB) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	return db.union(ctx, "attr_keys", func(s source) ([]string, error) { return s.AttrKeys(ctx, scope) })
}

func (db *DB) union(ctx context.Context, kind string, f func(source) ([]string, error)) ([]string, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues(kind).Observe(time.Since(start).Seconds()) }()
	if err := db.enter(ctx); err != nil {
		return nil, err
	}
	srcs, release := db.snapshot()
	defer release()
	seen := map[string]struct{}{}
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		names, err := f(s)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			seen[n] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// AttrValues lists up to limit distinct values of an attribute, sorted by
// their string form.
func (db *DB) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("attr_values").Observe(time.Since(start).Seconds()) }()
	if err := db.enter(ctx); err != nil {
		return nil, err
	}
	srcs, release := db.snapshot()
	defer release()
	type vk struct {
		t span.ValueType
		s string
	}
	seen := map[vk]span.Value{}
	for i := len(srcs) - 1; i >= 0 && len(seen) < limit; i-- { // newest first
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		vals, err := srcs[i].AttrValues(ctx, scope, key, limit)
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			if len(seen) >= limit {
				break
			}
			seen[vk{v.Type, v.AsString()}] = v
		}
	}
	out := make([]span.Value, 0, len(seen))
	for _, v := range seen {
		out = append(out, v)
	}
	slices.SortFunc(out, storage.CompareValues)
	return out, nil
}
