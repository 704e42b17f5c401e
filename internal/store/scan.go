package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// spanScanner is the span scan of the head and of blocks.
type spanScanner interface {
	ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error
}

var (
	_ spanScanner = (*head)(nil)
	_ spanScanner = (*diskBlock)(nil)
)

// ScanSpans streams every stored span that matches q (q must be compiled)
// to fn, reading only the columns cols asks for (see storage.Columns),
// without materialising traces. Sources (blocks, sealed heads, the head)
// are scanned in parallel, so fn may be called concurrently; within one
// source spans come in storage order. A span stored twice (sent twice and
// not yet compacted) is yielded twice. The span and everything it
// references are valid only during the call: fn must copy what it keeps.
// fn returns false to stop the scan early; ScanSpans then returns nil.
func (db *DB) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
	start := time.Now()
	defer func() { db.m.queryDuration.WithLabelValues("scan_spans").Observe(time.Since(start).Seconds()) }()
	if err := db.enter(ctx); err != nil {
		return fmt.Errorf("scan spans: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, db.cfg.QueryTimeout)
	defer cancel()
	srcs, release := db.snapshot()
	defer release()

	var mu sync.Mutex
	stopped := false
	stop := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return stopped
	}
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, s := range srcs {
		lo, hi := s.timeRange()
		if lo > hi || (q.End != 0 && lo > q.End) || (q.Start != 0 && hi < q.Start) {
			continue
		}
		sc, ok := s.(spanScanner)
		if !ok {
			return fmt.Errorf("BUG: source %T cannot scan spans", s)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			if stop() {
				return
			}
			n := 0
			errs[i] = sc.ScanSpans(ctx, q, cols, func(sp *span.Span) bool {
				if n++; n%1024 == 0 && stop() {
					return false
				}
				if !fn(sp) {
					mu.Lock()
					stopped = true
					mu.Unlock()
					return false
				}
				return true
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("scan spans: %w", err)
		}
	}
	return nil
}

func (h *head) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
	defer h.runlock(h.lockRead())
	return h.b.ScanSpans(ctx, q, cols, fn)
}
