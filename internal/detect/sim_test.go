package detect

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil"
)

// sim is a small shop, simulated span by span, for the detector's tests:
//
//	gateway GET /checkout → checkout PlaceOrder → SELECT orders (postgresql)
//	                                             → payment POST /charges → POST /v1/charges (uninstrumented provider)
//	gateway GET /browse   → catalog ListProducts → SELECT products (postgresql), once (N+1: once per product)
//
// Its faults are switched per minute; its spans go to a real store and real
// span metrics, on a fake clock.
type sim struct {
	r   *rand.Rand
	ids uint64
	res map[string]*span.Resource

	// Faults.
	extra        map[string]time.Duration // "checkout", "payment", "provider", "catalog": added self time
	providerErr  float64                  // the provider fails this share of calls (payment retries up to 3 times)
	nPlusOne     bool
	canary       string        // a second checkout version taking a third of the orders
	canaryExtra  time.Duration // its added time, in a new inner query
	canaryErr    float64       // and its failures, with a new message
	dropPayments bool          // payment's spans start new traces
	canaryAll    bool          // the new version takes every order (a rolling update done)
	stableExtra  time.Duration // added time of the stable checkout version only
	// A host stall: traces starting in [stallFrom, stallTo) wait a second
	// in the gateway's calls, and with stallAll in every service.
	stallFrom, stallTo time.Time
	stallAll           bool
	rate               int // traces per minute
}

func newSim(seed uint64) *sim {
	s := &sim{r: rand.New(rand.NewPCG(seed, 99)), res: map[string]*span.Resource{}, extra: map[string]time.Duration{}, rate: 240}
	for _, r := range [][2]string{{"gateway", "1.0.0"}, {"checkout", "1.4.2"}, {"payment", "2.1.7"}, {"catalog", "3.0.4"}, {"checkout", "2.0.0"}} {
		s.res[r[0]+"@"+r[1]] = &span.Resource{Attrs: []span.Attr{testutil.Str("service.name", r[0]), testutil.Str("service.version", r[1]),
			testutil.Str("deployment.environment.name", "test")}}
	}
	return s
}

func (s *sim) ln(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*s.r.NormFloat64()))
}

func (s *sim) sid() span.SpanID {
	s.ids++
	var id span.SpanID
	for i := range 8 {
		id[7-i] = byte(s.ids >> (8 * i))
	}
	return id
}

func (s *sim) tid() span.TraceID {
	s.ids++
	var id span.TraceID
	for i := range 8 {
		id[15-i] = byte(s.ids >> (8 * i))
	}
	id[0] = 0x7
	return id
}

// builder appends the spans of one trace.
type builder struct {
	s     *sim
	tid   span.TraceID
	spans []span.Span
}

// open starts a span and returns its index; close sets its end.
func (b *builder) open(parent int, res, name string, kind span.Kind, at time.Time, attrs ...span.Attr) int {
	sp := span.Span{TraceID: b.tid, SpanID: b.s.sid(), Name: name, Kind: kind, StartUnixNano: uint64(at.UnixNano()),
		Resource: b.s.res[res], Attrs: attrs}
	if parent >= 0 {
		sp.ParentSpanID = b.spans[parent].SpanID
	}
	b.spans = append(b.spans, sp)
	return len(b.spans) - 1
}

func (b *builder) close(i int, at time.Time, failed bool) {
	b.spans[i].EndUnixNano = uint64(at.UnixNano())
	if failed {
		b.spans[i].StatusCode = span.StatusError
		b.spans[i].StatusMessage = "failed"
	}
}

func dbAttrs(q string) []span.Attr {
	return []span.Attr{testutil.Str("db.system.name", "postgresql"), testutil.Str("db.query.text", q)}
}

// checkout is one order; it returns whether it failed.
func (s *sim) checkout(at time.Time) []span.Span {
	b := &builder{s: s, tid: s.tid()}
	t := at
	gw := b.open(-1, "gateway@1.0.0", "GET /checkout", span.KindServer, t)
	t = t.Add(s.ln(time.Millisecond, 0.3))
	gc := b.open(gw, "gateway@1.0.0", "PlaceOrder", span.KindClient, t)
	t = t.Add(200*time.Microsecond + s.stall(at))
	ver := "1.4.2"
	if s.canary != "" && (s.canaryAll || s.r.IntN(3) == 0) {
		ver = s.canary
	}
	ck := b.open(gc, "checkout@"+ver, "PlaceOrder", span.KindServer, t)
	t = t.Add(s.ln(2*time.Millisecond, 0.3) + s.extra["checkout"] + s.stallEverywhere(at))
	if ver == "1.4.2" {
		t = t.Add(s.stableExtra)
	}
	q := b.open(ck, "checkout@"+ver, "SELECT orders", span.KindClient, t, dbAttrs("SELECT * FROM orders WHERE id = $1")...)
	t = t.Add(s.ln(3*time.Millisecond, 0.5) + s.stallEverywhere(at))
	b.close(q, t, false)
	failed := false
	if ver != "1.4.2" && (s.canaryExtra > 0 || s.canaryErr > 0) {
		p := b.open(ck, "checkout@"+ver, "applyPromotions", span.KindInternal, t)
		pq := b.open(p, "checkout@"+ver, "SELECT promotions", span.KindClient, t, dbAttrs("SELECT * FROM promotions")...)
		t = t.Add(s.ln(max(s.canaryExtra, time.Millisecond), 0.3))
		b.close(pq, t, false)
		failed = s.r.Float64() < s.canaryErr
		b.close(p, t, failed)
		if failed {
			b.spans[p].StatusMessage = "promotions: rule set is nil"
		}
	}
	if !failed {
		pc := b.open(ck, "checkout@"+ver, "POST /charges", span.KindClient, t)
		t = t.Add(300 * time.Microsecond)
		parent := pc
		if s.dropPayments {
			parent = -1
		}
		ps := b.open(parent, "payment@2.1.7", "POST /charges", span.KindServer, t)
		t = t.Add(s.ln(time.Millisecond, 0.3) + s.extra["payment"] + s.stallEverywhere(at))
		var perr bool
		for attempt := range 3 {
			pv := b.open(ps, "payment@2.1.7", "POST /v1/charges", span.KindClient, t, testutil.Str("url.template", "/v1/charges"))
			if s.r.Float64() < s.providerErr || s.r.Float64() < 0.003 {
				t = t.Add(s.ln(30*time.Millisecond, 0.3))
				b.close(pv, t, true)
				perr = true
				if attempt < 2 {
					continue
				}
				break
			}
			t = t.Add(s.ln(80*time.Millisecond, 0.4) + s.extra["provider"] + s.stallEverywhere(at))
			b.close(pv, t, false)
			perr = false
			break
		}
		t = t.Add(200 * time.Microsecond)
		b.close(ps, t, perr)
		t = t.Add(300 * time.Microsecond)
		b.close(pc, t, perr)
		failed = perr
	}
	t = t.Add(s.ln(500*time.Microsecond, 0.3))
	b.close(ck, t, failed)
	t = t.Add(200 * time.Microsecond)
	b.close(gc, t, failed)
	b.close(gw, t.Add(300*time.Microsecond), failed)
	if s.dropPayments {
		// payment's spans start a trace of their own.
		nt := s.tid()
		for i := range b.spans {
			if b.spans[i].Resource == s.res["payment@2.1.7"] {
				b.spans[i].TraceID = nt
			}
		}
	}
	return b.spans
}

func (s *sim) browse(at time.Time) []span.Span {
	b := &builder{s: s, tid: s.tid()}
	t := at
	gw := b.open(-1, "gateway@1.0.0", "GET /browse", span.KindServer, t)
	t = t.Add(s.ln(time.Millisecond, 0.3))
	gc := b.open(gw, "gateway@1.0.0", "ListProducts", span.KindClient, t)
	t = t.Add(200*time.Microsecond + s.stall(at))
	cs := b.open(gc, "catalog@3.0.4", "ListProducts", span.KindServer, t)
	t = t.Add(s.ln(time.Millisecond, 0.3) + s.extra["catalog"] + s.stallEverywhere(at))
	n := 1
	if s.nPlusOne {
		n = 12
	}
	for range n {
		q := b.open(cs, "catalog@3.0.4", "SELECT products", span.KindClient, t, dbAttrs("SELECT * FROM products")...)
		if s.nPlusOne {
			t = t.Add(s.ln(1500*time.Microsecond, 0.5))
		} else {
			t = t.Add(s.ln(6*time.Millisecond, 0.5) + s.stallEverywhere(at))
		}
		b.close(q, t, false)
	}
	t = t.Add(s.ln(500*time.Microsecond, 0.3))
	b.close(cs, t, false)
	b.close(gc, t.Add(200*time.Microsecond), false)
	b.close(gw, t.Add(400*time.Microsecond), false)
	return b.spans
}

func (s *sim) stall(at time.Time) time.Duration {
	if !at.Before(s.stallFrom) && at.Before(s.stallTo) {
		return time.Second
	}
	return 0
}

func (s *sim) stallEverywhere(at time.Time) time.Duration {
	if s.stallAll {
		return s.stall(at)
	}
	return 0
}

// minute returns the traces starting in the minute from at.
func (s *sim) minute(at time.Time) *span.Batch {
	b := &span.Batch{}
	n := s.rate
	for i := range n {
		t := at.Add(time.Duration(float64(i) / float64(n) * float64(time.Minute)))
		if s.r.IntN(2) == 0 {
			b.Spans = append(b.Spans, s.checkout(t)...)
		} else {
			b.Spans = append(b.Spans, s.browse(t)...)
		}
	}
	seen := map[*span.Resource]bool{}
	for i := range b.Spans {
		if r := b.Spans[i].Resource; !seen[r] {
			seen[r] = true
			b.Resources = append(b.Resources, r)
		}
	}
	return b
}

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
	b := e.sim.minute(m)
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
