package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/clew-dev/clew/internal/search"
)

// SearchNative runs a native search (compiled) and answers in the shape of
// Search: each matching trace's summary and one spanset holding its spans
// that satisfy q (search.MatchSpan), at most spss of them. It serves
// Tempo's legacy tag search, which has clew's native semantics.
func (e *Engine) SearchNative(ctx context.Context, q *search.Query, limit, spss int) (*SearchResult, error) {
	if limit <= 0 {
		limit = 20
	}
	if spss <= 0 {
		spss = 3
	}
	r, err := e.src.SearchPage(ctx, q, limit, nil)
	if err != nil {
		return nil, err
	}
	res := &SearchResult{Traces: make([]Trace, len(r.Hits))}
	keep := make([]bool, len(r.Hits))
	errs := make([]error, len(r.Hits))
	sem := make(chan struct{}, e.cfg.Workers)
	var mu sync.Mutex
	var wg sync.WaitGroup
	p := &program{}
	for k, h := range r.Hits {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer func() {
				if r := recover(); r != nil {
					errs[k] = fmt.Errorf("BUG: summarizing trace %s: %v", h.TraceID, r)
				}
			}()
			b, ok, err := e.src.FindTrace(ctx, h.TraceID)
			if err != nil {
				errs[k] = err
				return
			}
			if !ok || len(b.Spans) == 0 {
				return // deleted by retention since the search
			}
			t := newTrace(h.TraceID, b.Spans)
			var ss spanset
			for i := range t.spans {
				if q.MatchSpan(&t.spans[i]) {
					ss.spans = append(ss.spans, int32(i))
				}
			}
			if len(ss.spans) == 0 {
				// Only the whole trace satisfies q through its time bounds;
				// show the root so that the spanset is never empty.
				ss.spans = []int32{int32(max(t.root, 0))}
			}
			res.Traces[k] = p.traceResult(t, []spanset{ss}, spss)
			keep[k] = true
			mu.Lock()
			res.Inspected++
			res.InspectedSpans += len(b.Spans)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := res.Traces[:0]
	for k := range res.Traces {
		if keep[k] {
			out = append(out, res.Traces[k])
		}
	}
	res.Traces = out
	return res, nil
}
