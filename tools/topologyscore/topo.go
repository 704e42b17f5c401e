package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// topology is one synthetic system: services in layers, the first holding
// the entry operations, each operation calling operations of the next
// layer down and, sometimes, a database.
type topology struct {
	Services []*service
	Entries  []*operation
	Depth    int
	FanOut   int
}

type service struct {
	Name  string
	Layer int
	Ops   []*operation
	res   *span.Resource
}

type operation struct {
	Svc  *service
	Name string
	// Self is the median of the operation's own time, split around its
	// calls; Sigma the spread of the log-normal it is drawn from.
	Self  time.Duration
	Sigma float64
	Calls []*operation
	// DB is set when the operation queries a database once per call.
	DB      string
	DBTime  time.Duration
	PerMin  float64 // entry operations: requests per minute
	calledP float64 // probability that a caller's call happens (1 or less)
}

// genTopology draws a topology from r: 4-20 services over 2-5 layers,
// fan-outs of 1-4, 1-6 operations per service (one service with many
// more, sometimes), entry rates of 1-10 requests per minute (higher when
// highRate).
func genTopology(r *rand.Rand, highRate bool) *topology {
	depth := 2 + r.IntN(4)
	nsvc := max(depth, 4+r.IntN(17))
	fan := 1 + r.IntN(4)
	t := &topology{Depth: depth, FanOut: fan}
	layers := make([][]*service, depth)
	for i := range nsvc {
		l := i
		if i >= depth {
			l = 1 + r.IntN(depth-1)
		}
		s := &service{Name: svcName(i, l), Layer: l}
		s.res = &span.Resource{Attrs: []span.Attr{str("service.name", s.Name), str("service.version", "1.0."+fmt.Sprint(i)),
			str("deployment.environment.name", "eval")}}
		layers[l] = append(layers[l], s)
		t.Services = append(t.Services, s)
	}
	many := r.IntN(3) == 0 // one service with many operations
	for li, ls := range layers {
		for si, s := range ls {
			nops := 1 + r.IntN(6)
			if li == 0 {
				nops = 2 + r.IntN(3)
			}
			if many && li == len(layers)-1 && si == 0 {
				nops = 12 + r.IntN(20)
			}
			for k := range nops {
				op := &operation{Svc: s, Name: opName(r, k), Self: time.Duration(3+r.IntN(25)) * time.Millisecond, Sigma: 0.2 + 0.2*r.Float64(), calledP: 1}
				if r.IntN(3) == 0 {
					op.DB = fmt.Sprintf("SELECT * FROM t%d WHERE id = $1", k)
					op.DBTime = time.Duration(1+r.IntN(8)) * time.Millisecond
				}
				if r.IntN(4) == 0 {
					op.calledP = 0.5
				}
				s.Ops = append(s.Ops, op)
			}
		}
	}
	// Calls: each operation of layer l calls up to fan operations of layer
	// l+1; every service of layer l+1 is called by some operation.
	for l := 0; l+1 < depth; l++ {
		var next []*operation
		for _, s := range layers[l+1] {
			next = append(next, s.Ops...)
		}
		var from []*operation
		for _, s := range layers[l] {
			from = append(from, s.Ops...)
		}
		for _, op := range from {
			n := 1 + r.IntN(fan)
			if l > 0 && r.IntN(3) == 0 {
				n = 0 // a leaf before the bottom layer
			}
			for range n {
				op.Calls = appendOnce(op.Calls, next[r.IntN(len(next))])
			}
		}
		for _, s := range layers[l+1] {
			for _, callee := range s.Ops {
				if !calledBy(from, callee) && r.IntN(2) == 0 {
					caller := from[r.IntN(len(from))]
					caller.Calls = appendOnce(caller.Calls, callee)
				}
			}
			if !calledService(from, s) {
				caller := from[r.IntN(len(from))]
				caller.Calls = appendOnce(caller.Calls, s.Ops[0])
			}
		}
	}
	for _, op := range layers[0][0].Ops {
		op.PerMin = float64(1 + r.IntN(10))
		if highRate {
			op.PerMin = float64(20 + r.IntN(60))
		}
		t.Entries = append(t.Entries, op)
	}
	// Services of layer 0 but the first are entry points too.
	for _, s := range layers[0][1:] {
		for _, op := range s.Ops {
			op.PerMin = float64(1 + r.IntN(10))
			t.Entries = append(t.Entries, op)
		}
	}
	return t
}

func appendOnce(ops []*operation, op *operation) []*operation {
	for _, o := range ops {
		if o == op {
			return ops
		}
	}
	return append(ops, op)
}

func calledBy(from []*operation, callee *operation) bool {
	for _, op := range from {
		for _, c := range op.Calls {
			if c == callee {
				return true
			}
		}
	}
	return false
}

func calledService(from []*operation, s *service) bool {
	for _, op := range from {
		for _, c := range op.Calls {
			if c.Svc == s {
				return true
			}
		}
	}
	return false
}

var svcWords = []string{"gateway", "orders", "users", "catalog", "payment", "shipping", "cart", "search", "pricing", "stock",
	"auth", "mail", "reviews", "ads", "ledger", "fraud", "media", "geo", "rates", "audit"}

func svcName(i, layer int) string { return fmt.Sprintf("%s-%d", svcWords[i%len(svcWords)], layer) }

var opWords = []string{"Get", "List", "Create", "Update", "Delete", "Find", "Check", "Sync"}

func opName(r *rand.Rand, k int) string {
	return fmt.Sprintf("%s%s%d", opWords[r.IntN(len(opWords))], []string{"Item", "User", "Order", "Quote", "Batch"}[r.IntN(5)], k)
}

func str(k, v string) span.Attr { return span.Attr{Key: k, Value: span.StringValue(v)} }

// fault is what one case injects.
type fault struct {
	Kind    string // FaultCPU, FaultDelay, FaultError, FaultHost, FaultNone
	Service string
	Factor  float64       // cpu, host: self time multiplied by it
	Delay   time.Duration // delay: added to each call into the service (and host: to every call)
	ErrP    float64       // error: share of the service's spans that fail
	Start   time.Time
}

// Fault kinds.
const (
	FaultCPU   = "cpu"
	FaultDelay = "delay"
	FaultError = "error"
	FaultHost  = "host"
	FaultNone  = "none"
)

// gen builds traces of one topology, with a fault from its start on.
type gen struct {
	t   *topology
	r   *rand.Rand
	ids uint64
	f   fault
}

func (g *gen) ln(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*g.r.NormFloat64()))
}

func (g *gen) active(at time.Time) bool { return g.f.Kind != FaultNone && !at.Before(g.f.Start) }

func (g *gen) newID() uint64 { g.ids++; return g.ids }

type tb struct {
	g     *gen
	tid   span.TraceID
	spans []span.Span
	at    time.Time // the trace's start: the fault applies from it on
}

func (b *tb) open(parent int, res *span.Resource, name string, kind span.Kind, at time.Time, attrs ...span.Attr) int {
	var sid span.SpanID
	id := b.g.newID()
	for i := range 8 {
		sid[7-i] = byte(id >> (8 * i))
	}
	sp := span.Span{TraceID: b.tid, SpanID: sid, Name: name, Kind: kind, StartUnixNano: uint64(at.UnixNano()), Resource: res, Attrs: attrs}
	if parent >= 0 {
		sp.ParentSpanID = b.spans[parent].SpanID
	}
	b.spans = append(b.spans, sp)
	return len(b.spans) - 1
}

func (b *tb) close(i int, at time.Time, failed bool, msg string) {
	b.spans[i].EndUnixNano = uint64(at.UnixNano())
	if failed {
		b.spans[i].StatusCode = span.StatusError
		b.spans[i].StatusMessage = msg
	}
}

// trace is one request to an entry operation starting at at.
func (g *gen) trace(entry *operation, at time.Time) []span.Span {
	id := g.newID()
	b := &tb{g: g, at: at}
	for i := range 8 {
		b.tid[15-i] = byte(id >> (8 * i))
	}
	b.tid[0] = 0x5
	g.serve(b, -1, entry, at)
	return b.spans
}

// selfTime is one piece of an operation's own time, scaled by a CPU or
// host fault.
func (g *gen) selfTime(b *tb, op *operation, d time.Duration) time.Duration {
	d = g.ln(d, op.Sigma)
	if g.active(b.at) && (g.f.Kind == FaultCPU && g.f.Service == op.Svc.Name || g.f.Kind == FaultHost) {
		d = time.Duration(float64(d) * g.f.Factor)
	}
	return d
}

// serve simulates the server span of op under parent (a client span, or
// -1 for a root) from at; it returns its end and whether it failed.
func (g *gen) serve(b *tb, parent int, op *operation, at time.Time) (time.Time, bool) {
	s := b.open(parent, op.Svc.res, op.Name, span.KindServer, at)
	pieces := len(op.Calls) + 1
	if op.DB != "" {
		pieces++
	}
	piece := op.Self / time.Duration(pieces)
	t := at.Add(g.selfTime(b, op, piece))
	failed, msg := false, ""
	if op.DB != "" {
		q := b.open(s, op.Svc.res, "SELECT", span.KindClient, t, str("db.system.name", "postgresql"), str("db.query.text", op.DB))
		t = t.Add(g.ln(op.DBTime, 0.3))
		b.close(q, t, false, "")
		t = t.Add(g.selfTime(b, op, piece))
	}
	for _, c := range op.Calls {
		if c.calledP < 1 && g.r.Float64() >= c.calledP {
			continue
		}
		cl := b.open(s, op.Svc.res, c.Name, span.KindClient, t, str("server.address", c.Svc.Name))
		wire := g.ln(400*time.Microsecond, 0.3)
		if g.active(b.at) && (g.f.Kind == FaultDelay && g.f.Service == c.Svc.Name || g.f.Kind == FaultHost) {
			wire += g.f.Delay
		}
		end, cf := g.serve(b, cl, c, t.Add(wire/2))
		t = end.Add(wire / 2)
		b.close(cl, t, cf, "upstream failed: "+c.Svc.Name)
		if cf {
			// The caller fails too: the error propagates up.
			failed, msg = true, "call to "+c.Svc.Name+" failed"
			break
		}
		t = t.Add(g.selfTime(b, op, piece))
	}
	if !failed && g.active(b.at) && g.f.Kind == FaultError && g.f.Service == op.Svc.Name && g.r.Float64() < g.f.ErrP {
		failed, msg = true, "java.lang.RuntimeException: injected"
	}
	if !failed && g.r.Float64() < 0.001 {
		failed, msg = true, "timeout"
	}
	t = t.Add(g.selfTime(b, op, piece/2+time.Microsecond))
	b.close(s, t, failed, msg)
	return t, failed
}

// minute returns the traces starting in the minute from at: each entry
// operation's requests, Poisson at its rate.
func (g *gen) minute(at time.Time) *span.Batch {
	b := &span.Batch{}
	seen := map[*span.Resource]bool{}
	for _, e := range g.t.Entries {
		n := poisson(g.r, e.PerMin)
		for range n {
			st := at.Add(time.Duration(g.r.Float64() * float64(time.Minute)))
			b.Spans = append(b.Spans, g.trace(e, st)...)
		}
	}
	for i := range b.Spans {
		if r := b.Spans[i].Resource; !seen[r] {
			seen[r] = true
			b.Resources = append(b.Resources, r)
		}
	}
	return b
}

func poisson(r *rand.Rand, lambda float64) int {
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
