package overrides

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync"
)

// TraceSpanCounter counts the spans of recent traces, per tenant, in
// bounded memory, so that the ingest path can drop the spans of a trace
// beyond the tenant's max_spans_per_trace.
//
// It holds at most capacity trace IDs, in 64 shards; each shard keeps two
// generations of counts (a map being filled and the previous one) and,
// when the current one reaches its half of the shard, drops the previous
// generation and starts a new one, moving a trace that is seen again into
// the current generation. This is an approximate LRU: a trace seen within
// about the last capacity/2 distinct traces (exactly: within the last
// capacity/128 of its shard) is counted exactly, and an older
// one may have been forgotten and start again from zero. The count is
// therefore never too high: the approximation can let a very long-lived
// or very spread-out trace go over its limit, never drop the spans of a
// trace below it (but for two traces folded to one key, see traceKey).
// Memory is about 36 bytes per trace ID of capacity (measured by
// TestTraceSpanCounterMemory).
//
// A tenant without a limit is not tracked (no memory, no lock); a limit
// set by a reload counts from then on.
type TraceSpanCounter struct {
	o      *Overrides
	shards [traceShards]traceShard
}

const traceShards = 64

// traceKey is a trace ID folded to 64 bits with its tenant's number: half
// the map slot of the ID itself, and fewer cache misses on the ingest
// path. Trace IDs are random, so two recent traces share a key with a
// probability of about n²/2⁶⁵ for n traces held (1e-9 at the default
// capacity); they would then share one count.
type traceKey uint64

func keyOf(id [16]byte, tenant uint32) traceKey {
	return traceKey(binary.LittleEndian.Uint64(id[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(id[8:]), 29) ^ uint64(tenant)*0x9e3779b97f4a7c15)
}

type traceShard struct {
	mu        sync.Mutex
	cur, prev map[traceKey]int32
	half      int
	_         [40]byte // keep shards' locks on separate cache lines
}

// DefaultTraceCapacity is the capacity NewTraceSpanCounter uses for 0:
// about 9 MiB, some 130,000 recent traces counted exactly.
const DefaultTraceCapacity = 1 << 18

// NewTraceSpanCounter returns a counter of up to capacity trace IDs
// (DefaultTraceCapacity if capacity <= 0) applying o's limits.
func NewTraceSpanCounter(o *Overrides, capacity int) *TraceSpanCounter {
	if capacity <= 0 {
		capacity = DefaultTraceCapacity
	}
	half := max(capacity/traceShards/2, 1)
	c := &TraceSpanCounter{o: o}
	for i := range c.shards {
		// Not sized ahead: a process whose tenants set no limit pays nothing.
		c.shards[i] = traceShard{cur: map[traceKey]int32{}, prev: map[traceKey]int32{}, half: half}
	}
	return c
}

// Add counts n more spans of the trace and returns how many of them are
// within the tenant's max_spans_per_trace (all n without a limit); the
// caller keeps that many and drops the rest, which are counted as hits of
// MaxSpansPerTrace.
func (c *TraceSpanCounter) Add(tenant string, traceID [16]byte, n int) (allowed int) {
	if n <= 0 {
		return 0
	}
	limit := min(c.o.For(tenant).MaxSpansPerTrace, math.MaxInt32)
	if limit <= 0 {
		return n
	}
	st := c.o.state(tenant)
	k := keyOf(traceID, st.idx)
	sh := &c.shards[binary.LittleEndian.Uint64(traceID[8:])%traceShards]
	sh.mu.Lock()
	have, ok := sh.cur[k]
	if !ok {
		if have, ok = sh.prev[k]; ok {
			delete(sh.prev, k)
		}
		if len(sh.cur) >= sh.half {
			sh.prev, sh.cur = sh.cur, sh.prev
			clear(sh.cur)
		}
	}
	allowed = max(min(n, limit-int(have)), 0)
	sh.cur[k] = have + int32(allowed)
	sh.mu.Unlock()
	if dropped := n - allowed; dropped > 0 {
		st.hit(MaxSpansPerTrace, dropped)
	}
	return allowed
}
