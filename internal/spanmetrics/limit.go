package spanmetrics

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Other replaces a label value beyond its dimension's limit.
const Other = "__other__"

// limiter bounds the distinct values of one dimension among the live series.
// Each live series holds a reference on each of its values; a value whose
// last series is evicted frees its place. Guarded by Metrics.mu.
type limiter struct {
	max      int
	refs     map[string]int // value → live references
	overflow prometheus.Counter
}

func newLimiter(max int, overflow prometheus.Counter) *limiter {
	return &limiter{max: max, refs: make(map[string]int), overflow: overflow}
}

// admit reports the value a new series stores for v, without taking a
// reference: v itself (not copied) when it is held or there is room, else
// Other.
func (l *limiter) admit(v string) string {
	if _, ok := l.refs[v]; ok || len(l.refs) < l.max || v == Other {
		return v
	}
	l.overflow.Inc()
	return Other
}

// acquire takes a reference on v, which admit returned, and returns the
// copy the series keeps (request buffers are not retained).
func (l *limiter) acquire(v string) string {
	if n, ok := l.refs[v]; ok {
		l.refs[v] = n + 1
		return strings.Clone(v)
	}
	v = strings.Clone(v)
	l.refs[v] = 1
	return v
}

// release drops one reference on v.
func (l *limiter) release(v string) {
	n, ok := l.refs[v]
	if !ok {
		return
	}
	if n <= 1 {
		delete(l.refs, v)
		return
	}
	l.refs[v] = n - 1
}
