// Package detecttest runs a real store, real span metrics and a real
// detector on one fake clock, fed by the simulated shop of
// internal/testutil/shopsim: the fixture of the tests of the endpoints and
// clients over the detector. Test support only.
package detecttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil/shopsim"
)

// T0 is the simulated start of every history: a whole hour.
var T0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// settle is how long after a quarter's end the clock stands when it is
// evaluated: the detector's propagation scan waits for late spans.
const settle = 12 * time.Second

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// DB is what the fixture needs of the store.
type DB interface {
	storage.Reader
	Append(ctx context.Context, rec []byte, b *span.Batch) error
}

// Env is a store, span metrics and a detector on one fake clock.
type Env struct {
	t     testing.TB
	Clock *Clock
	DB    DB
	SM    *spanmetrics.Metrics
	Det   *detect.Detector
	Shop  *shopsim.Shop
}

// New returns an environment whose clock stands at T0 and whose shop is
// seeded with seed.
func New(t testing.TB, seed uint64, cfg detect.Config) *Env {
	t.Helper()
	clk := &Clock{t: T0}
	db := storetest.OpenStore(t)
	sm, err := spanmetrics.Open(spanmetrics.DefaultConfig(), spanmetrics.Options{Dir: t.TempDir(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	det := detect.New(cfg, sm, db, detect.Options{Now: clk.Now})
	t.Cleanup(func() { det.Close() })
	return &Env{t: t, Clock: clk, DB: db, SM: sm, Det: det, Shop: shopsim.New(seed)}
}

// Feed stores and observes the traces of the minute starting at m, in four
// slices of 15 seconds (a trace with its root's slice), evaluating after
// each when eval is set.
func (e *Env) Feed(m time.Time, eval bool) {
	e.t.Helper()
	b := e.Shop.Minute(m)
	roots := map[span.TraceID]time.Time{}
	for i := range b.Spans {
		if sp := &b.Spans[i]; sp.ParentSpanID.IsZero() {
			roots[sp.TraceID] = time.Unix(0, int64(sp.StartUnixNano))
		}
	}
	for q := range 4 {
		lo, hi := m.Add(time.Duration(q)*15*time.Second), m.Add(time.Duration(q+1)*15*time.Second)
		part := &span.Batch{Resources: b.Resources}
		for _, sp := range b.Spans {
			st, ok := roots[sp.TraceID]
			if !ok {
				st = time.Unix(0, int64(sp.StartUnixNano))
			}
			if !st.Before(lo) && st.Before(hi) {
				part.Spans = append(part.Spans, sp)
			}
		}
		e.Clock.Set(hi.Add(settle))
		if len(part.Spans) > 0 {
			if err := e.DB.Append(context.Background(), otlp.MarshalProto(nil, part), part); err != nil {
				e.t.Fatal(err)
			}
			e.SM.Observe(part)
		}
		if eval {
			if err := e.Det.Evaluate(context.Background()); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// Run feeds minutes [from, to) after T0, evaluating during those from
// evalFrom on.
func (e *Env) Run(from, to, evalFrom int) {
	e.t.Helper()
	for i := from; i < to; i++ {
		e.Feed(T0.Add(time.Duration(i)*time.Minute), i >= evalFrom)
	}
}
