package detect

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil/shopsim"
)

// sim is the shop the detector's tests feed (internal/testutil/shopsim);
// its spans go to a real store and real span metrics, on a fake clock.
type sim = shopsim.Shop

func newSim(seed uint64) *sim { return shopsim.New(seed) }

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is a store, span metrics and a detector on one fake clock.
type env struct {
	t   testing.TB
	clk *fakeClock
	db  *store.DB
	sm  *spanmetrics.Metrics
	det *Detector
	sim *sim
}

// t0 is the simulated start of every test's history.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, seed uint64, cfg Config) *env {
	t.Helper()
	clk := &fakeClock{t: t0}
	db := storetest.OpenStore(t)
	sm, err := spanmetrics.Open(spanmetrics.DefaultConfig(), spanmetrics.Options{Dir: t.TempDir(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	det := New(cfg, sm, db, Options{Now: clk.now})
	return &env{t: t, clk: clk, db: db, sm: sm, det: det, sim: newSim(seed)}
}

// feed stores and observes the traces of the minute starting at m, in
// four slices of 15 seconds, evaluating after each when eval is set.
func (e *env) feed(m time.Time, eval bool) {
	e.t.Helper()
	b := e.sim.Minute(m)
	// Split by start time into quarters so that evaluations see a minute
	// fill up as they would live.
	for q := range 4 {
		lo, hi := m.Add(time.Duration(q)*15*time.Second), m.Add(time.Duration(q+1)*15*time.Second)
		part := &span.Batch{Resources: b.Resources}
		for _, sp := range b.Spans {
			// A trace goes with its root's quarter.
			st := time.Unix(0, int64(sp.StartUnixNano))
			if !st.Before(lo) && st.Before(hi) || rootQuarter(b, sp, lo, hi) {
				part.Spans = append(part.Spans, sp)
			}
		}
		e.clk.set(hi.Add(propSettle + 2*time.Second))
		if len(part.Spans) > 0 {
			if err := e.db.Append(context.Background(), otlp.MarshalProto(nil, part), part); err != nil {
				e.t.Fatal(err)
			}
			e.sm.Observe(part)
		}
		if eval {
			if err := e.det.Evaluate(context.Background()); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// rootQuarter keeps a trace's late spans with its root's quarter.
func rootQuarter(b *span.Batch, sp span.Span, lo, hi time.Time) bool {
	st := time.Unix(0, int64(sp.StartUnixNano))
	if !st.Before(lo) && st.Before(hi) {
		return false
	}
	for i := range b.Spans {
		r := &b.Spans[i]
		if r.TraceID == sp.TraceID && r.ParentSpanID.IsZero() {
			rs := time.Unix(0, int64(r.StartUnixNano))
			return !rs.Before(lo) && rs.Before(hi)
		}
	}
	return false
}

// run feeds minutes [from, to) after t0, evaluating during those from
// evalFrom on.
func (e *env) run(from, to, evalFrom int) {
	e.t.Helper()
	for i := from; i < to; i++ {
		e.feed(t0.Add(time.Duration(i)*time.Minute), i >= evalFrom)
	}
}
