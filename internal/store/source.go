package store

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// source is what a query reads: the growing head, a sealed head being
// written, or a block on disk. Implementations are safe for concurrent use.
type source interface {
	// Search reports each matching trace once; blocks report them in
	// trace ID order.
	Search(ctx context.Context, q *search.Query, fn func(storage.Hit) bool) error
	// MatchTrace reports whether one trace has a matching span, with its hit.
	MatchTrace(ctx context.Context, q *search.Query, id span.TraceID) (storage.Hit, bool, error)
	FindTrace(ctx context.Context, id span.TraceID, dst *span.Batch) (bool, error)
	Services(ctx context.Context) ([]string, error)
	SpanNames(ctx context.Context, service string) ([]string, error)
	AttrKeys(ctx context.Context, scope search.Scope) ([]string, error)
	AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error)
	// timeRange returns the span start times covered, for pruning.
	timeRange() (min, max uint64)
}

// head is a block.Builder behind a read-write lock. The builder's query
// methods run under the read lock; Append takes the write lock.
type head struct {
	mu sync.RWMutex
	// b is guarded by mu until the head is sealed; after that it is
	// immutable and read without the lock.
	b      *block.Builder
	sealed atomic.Bool
	// full is set once the head reached its span or byte budget.
	full atomic.Bool
	// firstAppend is the unix-nano time of the first append, 0 when empty.
	firstAppend atomic.Int64
	// seg is the write-ahead log segment index this head starts at; every
	// record in a lower segment is in an older head or a block.
	seg int
}

func newHead(seg int) *head { return &head{b: block.NewBuilder(), seg: seg} }

func (h *head) runlock(locked bool) {
	if locked {
		h.mu.RUnlock()
	}
}

// lockRead takes the read lock unless the head is sealed, and returns
// whether it did.
func (h *head) lockRead() bool {
	if h.sealed.Load() {
		return false
	}
	h.mu.RLock()
	return true
}

func (h *head) Search(ctx context.Context, q *search.Query, fn func(storage.Hit) bool) error {
	defer h.runlock(h.lockRead())
	return h.b.Search(ctx, q, fn)
}

func (h *head) MatchTrace(ctx context.Context, q *search.Query, id span.TraceID) (storage.Hit, bool, error) {
	defer h.runlock(h.lockRead())
	return h.b.MatchTrace(ctx, q, id)
}

func (h *head) FindTrace(ctx context.Context, id span.TraceID, dst *span.Batch) (bool, error) {
	defer h.runlock(h.lockRead())
	return h.b.FindTrace(ctx, id, dst)
}

func (h *head) Services(ctx context.Context) ([]string, error) {
	defer h.runlock(h.lockRead())
	return h.b.Services(ctx)
}

func (h *head) SpanNames(ctx context.Context, service string) ([]string, error) {
	defer h.runlock(h.lockRead())
	return h.b.SpanNames(ctx, service)
}

func (h *head) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	defer h.runlock(h.lockRead())
	return h.b.AttrKeys(ctx, scope)
}

func (h *head) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	defer h.runlock(h.lockRead())
	return h.b.AttrValues(ctx, scope, key, limit)
}

func (h *head) timeRange() (uint64, uint64) {
	defer h.runlock(h.lockRead())
	if h.b.Len() == 0 {
		return 1, 0 // empty: min > max prunes every query
	}
	return h.b.TimeRange()
}

// diskBlock is an open block reader with a reference count, so that a
// block removed by compaction or retention is closed, and its objects
// deleted, only once the last query that took it has finished.
type diskBlock struct {
	*block.Reader
	meta block.Meta
	refs atomic.Int64 // 1 while the block is live, +1 per query using it
	// onFree, set before the live reference is dropped, runs after the
	// reader is closed (it deletes the block's objects).
	onFree func()
}

func (d *diskBlock) timeRange() (uint64, uint64) { return d.meta.MinTime, d.meta.MaxTime }

func (d *diskBlock) acquire() { d.refs.Add(1) }

func (d *diskBlock) release() {
	if d.refs.Add(-1) == 0 {
		_ = d.Reader.Close()
		if d.onFree != nil {
			d.onFree()
		}
	}
}
