package ingest

import "sync"

// Budget bounds the decompressed bytes of requests being processed at once.
// Every receiver of one process shares a single Budget (OTLP, Zipkin and
// Jaeger alike), so that the bound holds for the process, not per port. It
// is safe for concurrent use.
type Budget struct {
	mu  sync.Mutex
	max int64
	cur int64 // guarded by mu
}

// NewBudget returns a budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// Reserve claims n bytes, or reports false when that would exceed the
// budget. A request larger than the whole budget still passes when nothing
// else is in flight, so that it can make progress. It returns the bytes in
// flight afterwards.
func (b *Budget) Reserve(n int64) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur > 0 && b.cur+n > b.max {
		return b.cur, false
	}
	b.cur += n
	return b.cur, true
}

// Release returns n bytes claimed by Reserve, and the bytes in flight
// afterwards.
func (b *Budget) Release(n int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur -= n
	return b.cur
}
