// Package shopsim simulates a small instrumented shop, span by span, with
// switchable faults: the shared traffic of the tests of anomaly detection
// and of the endpoints that serve it. Test support only.
package shopsim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/testutil"
)

// Shop is a small shop, simulated span by span, for the tests of the
// detector and of the endpoints over it:
//
//	gateway GET /checkout → checkout PlaceOrder → SELECT orders (postgresql)
//	                                             → payment POST /charges → POST /v1/charges (uninstrumented provider)
//	gateway GET /browse   → catalog ListProducts → SELECT products (postgresql), once (N+1: once per product)
//
// Its faults (the exported fields) are switched between minutes; Minute
// returns the traces of one minute. It is deterministic for a seed.
type Shop struct {
	r   *rand.Rand
	ids uint64
	res map[string]*span.Resource

	// Faults.
	Extra        map[string]time.Duration // "checkout", "payment", "provider", "catalog": added self time
	ProviderErr  float64                  // the provider fails this share of calls (payment retries up to 3 times)
	NPlusOne     bool
	Canary       string        // a second checkout version taking a third of the orders
	CanaryExtra  time.Duration // its added time, in a new inner query
	CanaryErr    float64       // and its failures, with a new message
	DropPayments bool          // payment's spans start new traces
	CanaryAll    bool          // the new version takes every order (a rolling update done)
	StableExtra  time.Duration // added time of the stable checkout version only
	// A host stall: traces starting in [stallFrom, stallTo) wait a second
	// in the gateway's calls, and with stallAll in every service.
	StallFrom, StallTo time.Time
	StallAll           bool
	Rate               int // traces per minute
}

// New returns a shop without faults, at 240 traces a minute.
func New(seed uint64) *Shop {
	s := &Shop{r: rand.New(rand.NewPCG(seed, 99)), res: map[string]*span.Resource{}, Extra: map[string]time.Duration{}, Rate: 240}
	for _, r := range [][2]string{{"gateway", "1.0.0"}, {"checkout", "1.4.2"}, {"payment", "2.1.7"}, {"catalog", "3.0.4"}, {"checkout", "2.0.0"}} {
		s.res[r[0]+"@"+r[1]] = &span.Resource{Attrs: []span.Attr{testutil.Str("service.name", r[0]), testutil.Str("service.version", r[1]),
			testutil.Str("deployment.environment.name", "test")}}
	}
	return s
}

func (s *Shop) ln(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*s.r.NormFloat64()))
}

func (s *Shop) sid() span.SpanID {
	s.ids++
	var id span.SpanID
	for i := range 8 {
		id[7-i] = byte(s.ids >> (8 * i))
	}
	return id
}

func (s *Shop) tid() span.TraceID {
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
	s     *Shop
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

// Checkout returns the spans of one order starting at at.
func (s *Shop) Checkout(at time.Time) []span.Span {
	b := &builder{s: s, tid: s.tid()}
	t := at
	gw := b.open(-1, "gateway@1.0.0", "GET /checkout", span.KindServer, t)
	t = t.Add(s.ln(time.Millisecond, 0.3))
	gc := b.open(gw, "gateway@1.0.0", "PlaceOrder", span.KindClient, t)
	t = t.Add(200*time.Microsecond + s.stall(at))
	ver := "1.4.2"
	if s.Canary != "" && (s.CanaryAll || s.r.IntN(3) == 0) {
		ver = s.Canary
	}
	ck := b.open(gc, "checkout@"+ver, "PlaceOrder", span.KindServer, t)
	t = t.Add(s.ln(2*time.Millisecond, 0.3) + s.Extra["checkout"] + s.stallEverywhere(at))
	if ver == "1.4.2" {
		t = t.Add(s.StableExtra)
	}
	q := b.open(ck, "checkout@"+ver, "SELECT orders", span.KindClient, t, dbAttrs("SELECT * FROM orders WHERE id = $1")...)
	t = t.Add(s.ln(3*time.Millisecond, 0.5) + s.stallEverywhere(at))
	b.close(q, t, false)
	failed := false
	if ver != "1.4.2" && (s.CanaryExtra > 0 || s.CanaryErr > 0) {
		p := b.open(ck, "checkout@"+ver, "applyPromotions", span.KindInternal, t)
		pq := b.open(p, "checkout@"+ver, "SELECT promotions", span.KindClient, t, dbAttrs("SELECT * FROM promotions")...)
		t = t.Add(s.ln(max(s.CanaryExtra, time.Millisecond), 0.3))
		b.close(pq, t, false)
		failed = s.r.Float64() < s.CanaryErr
		b.close(p, t, failed)
		if failed {
			b.spans[p].StatusMessage = "promotions: rule set is nil"
		}
	}
	if !failed {
		pc := b.open(ck, "checkout@"+ver, "POST /charges", span.KindClient, t)
		t = t.Add(300 * time.Microsecond)
		parent := pc
		if s.DropPayments {
			parent = -1
		}
		ps := b.open(parent, "payment@2.1.7", "POST /charges", span.KindServer, t)
		t = t.Add(s.ln(time.Millisecond, 0.3) + s.Extra["payment"] + s.stallEverywhere(at))
		var perr bool
		for attempt := range 3 {
			pv := b.open(ps, "payment@2.1.7", "POST /v1/charges", span.KindClient, t, testutil.Str("url.template", "/v1/charges"))
			if s.r.Float64() < s.ProviderErr || s.r.Float64() < 0.003 {
				t = t.Add(s.ln(30*time.Millisecond, 0.3))
				b.close(pv, t, true)
				perr = true
				if attempt < 2 {
					continue
				}
				break
			}
			t = t.Add(s.ln(80*time.Millisecond, 0.4) + s.Extra["provider"] + s.stallEverywhere(at))
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
	if s.DropPayments {
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

// Browse returns the spans of one catalog listing starting at at.
func (s *Shop) Browse(at time.Time) []span.Span {
	b := &builder{s: s, tid: s.tid()}
	t := at
	gw := b.open(-1, "gateway@1.0.0", "GET /browse", span.KindServer, t)
	t = t.Add(s.ln(time.Millisecond, 0.3))
	gc := b.open(gw, "gateway@1.0.0", "ListProducts", span.KindClient, t)
	t = t.Add(200*time.Microsecond + s.stall(at))
	cs := b.open(gc, "catalog@3.0.4", "ListProducts", span.KindServer, t)
	t = t.Add(s.ln(time.Millisecond, 0.3) + s.Extra["catalog"] + s.stallEverywhere(at))
	n := 1
	if s.NPlusOne {
		n = 12
	}
	for range n {
		q := b.open(cs, "catalog@3.0.4", "SELECT products", span.KindClient, t, dbAttrs("SELECT * FROM products")...)
		if s.NPlusOne {
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

func (s *Shop) stall(at time.Time) time.Duration {
	if !at.Before(s.StallFrom) && at.Before(s.StallTo) {
		return time.Second
	}
	return 0
}

func (s *Shop) stallEverywhere(at time.Time) time.Duration {
	if s.StallAll {
		return s.stall(at)
	}
	return 0
}

// Minute returns the traces starting in the minute from at.
func (s *Shop) Minute(at time.Time) *span.Batch {
	b := &span.Batch{}
	n := s.Rate
	for i := range n {
		t := at.Add(time.Duration(float64(i) / float64(n) * float64(time.Minute)))
		if s.r.IntN(2) == 0 {
			b.Spans = append(b.Spans, s.Checkout(t)...)
		} else {
			b.Spans = append(b.Spans, s.Browse(t)...)
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

// Heal switches every fault off, keeping the random stream and the IDs
// (Rate, CanaryAll, StableExtra and the host stall stay as set).
func (s *Shop) Heal() {
	s.Extra = map[string]time.Duration{}
	s.ProviderErr, s.NPlusOne, s.Canary, s.CanaryExtra, s.CanaryErr, s.DropPayments = 0, false, "", 0, 0, false
}
