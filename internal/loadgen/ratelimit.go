package loadgen

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket counted in spans, implemented as a virtual
// schedule: each request is given the time at which its spans are due, and
// the schedule advances by spans/rate. A sender that falls behind may catch
// up by at most slack, so a stall does not turn into a burst.
type bucket struct {
	perSpan float64 // ns per span
	slack   time.Duration

	mu   sync.Mutex
	next time.Time // guarded by mu; when the next request may start
}

func newBucket(rate float64) *bucket {
	return &bucket{perSpan: 1e9 / rate, slack: 100 * time.Millisecond}
}

// reserve returns when a request of n spans may be sent.
func (b *bucket) reserve(n int) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.next.IsZero() {
		b.next = now
	}
	if earliest := now.Add(-b.slack); b.next.Before(earliest) {
		b.next = earliest
	}
	at := b.next
	b.next = b.next.Add(time.Duration(float64(n) * b.perSpan))
	return at
}

// wait blocks until n spans may be sent. It returns false when ctx is done
// or stop closes first.
func (b *bucket) wait(ctx context.Context, stop <-chan struct{}, n int) bool {
	d := time.Until(b.reserve(n))
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
