package loadgen

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/clew-dev/clew/internal/span"
)

// maxRequestBytes bounds one encoded request below the 4 MiB default
// message limit of gRPC servers; a request is cut early when its spans
// grow past it.
const maxRequestBytes = 3 << 20

// Request is one encoded OTLP ExportTraceServiceRequest.
type Request struct {
	// Seq numbers requests from 0 in generation order.
	Seq int64
	// Body is the protobuf-encoded request.
	Body []byte
	// Spans is the number of spans in Body.
	Spans int
	// Traces lists the traces whose first span is in Body. A trace larger
	// than a request continues in the following requests.
	Traces []TraceRef
}

// TraceRef identifies one generated trace.
type TraceRef struct {
	// ID is the trace ID.
	ID span.TraceID
	// Index numbers traces from 0 in generation order.
	Index int64
	// Spans is the number of spans in the whole trace.
	Spans int
	// Needle is true for the single trace carrying the needle attribute.
	Needle bool
}

// Query is a search the benchmark runs against the generated data: a service
// and one attribute condition "key=value".
type Query struct {
	Service string `json:"service"`
	Attr    string `json:"attr"`
	TraceID string `json:"traceID,omitempty"`
}

// shape decides what traces look like. Implementations fill a traceBuf with
// the structure, names, attributes and self times of one trace; the generator
// then assigns identifiers and timestamps.
type shape interface {
	// trace fills t with trace number idx. The needle trace must carry the
	// needle attribute on a span of the service returned in t.needleService.
	trace(t *traceBuf, r *rand.Rand, idx int64, needle bool)
	// spansPerTrace is the average trace size, used to space trace start
	// times.
	spansPerTrace() float64
	// needleAttr and broad describe the benchmark queries.
	needleAttr() (key, value string)
	broad() Query
}

// traceBuf is the reusable scratch space of one trace.
type traceBuf struct {
	spans    []span.Span
	parent   []int   // index of the parent span, -1 for the root
	self     []int64 // time spent in the span outside its children, ns
	gap      []int64 // delay between the parent's cursor and this span, ns
	parallel []bool  // children of this span run concurrently
	dur      []int64
	agg      []int64
	cursor   []int64
	attrs    []span.Attr  // arena for span attributes
	prevID   span.TraceID // the previous trace, for links
	prevRoot span.SpanID  // the root span of the previous trace

	needleService string
}

func (t *traceBuf) reset() {
	t.spans = t.spans[:0]
	t.parent = t.parent[:0]
	t.self = t.self[:0]
	t.gap = t.gap[:0]
	t.parallel = t.parallel[:0]
	t.attrs = t.attrs[:0]
	t.needleService = ""
}

// add appends a span and returns its index. Parents must be added before
// their children.
func (t *traceBuf) add(s span.Span, parent int, self, gap int64, parallel bool) int {
	t.spans = append(t.spans, s)
	t.parent = append(t.parent, parent)
	t.self = append(t.self, self)
	t.gap = append(t.gap, gap)
	t.parallel = append(t.parallel, parallel)
	return len(t.spans) - 1
}

// attrStart and attrEnd bracket the attributes of one span in the arena:
// start := t.attrStart(); t.attrs = append(t.attrs, ...); s.Attrs =
// t.attrEnd(start).
func (t *traceBuf) attrStart() int { return len(t.attrs) }

func (t *traceBuf) attrEnd(start int) []span.Attr {
	return t.attrs[start:len(t.attrs):len(t.attrs)]
}

// layout assigns start and end times so that every child lies inside its
// parent: sequential children follow one another, parallel children start
// together.
func (t *traceBuf) layout(start uint64) {
	n := len(t.spans)
	t.dur = slices.Grow(t.dur[:0], n)[:n]
	t.agg = slices.Grow(t.agg[:0], n)[:n]
	t.cursor = slices.Grow(t.cursor[:0], n)[:n]
	clear(t.agg)
	for i := n - 1; i >= 0; i-- {
		t.dur[i] = t.self[i] + t.agg[i]
		if p := t.parent[i]; p >= 0 {
			if t.parallel[p] {
				t.agg[p] = max(t.agg[p], t.dur[i]+t.gap[i])
			} else {
				t.agg[p] += t.dur[i] + t.gap[i]
			}
		}
	}
	for i := range n {
		s := &t.spans[i]
		if p := t.parent[i]; p < 0 {
			s.StartUnixNano = start
		} else if t.parallel[p] {
			s.StartUnixNano = t.spans[p].StartUnixNano + uint64(t.self[p]/2+t.gap[i])
		} else {
			s.StartUnixNano = uint64(t.cursor[p] + t.gap[i])
			t.cursor[p] = int64(s.StartUnixNano) + t.dur[i]
		}
		s.EndUnixNano = s.StartUnixNano + uint64(t.dur[i])
		t.cursor[i] = int64(s.StartUnixNano) + t.self[i]/2
	}
}

// lognormal draws a duration in ns with the given median and shape.
func lognormal(r *rand.Rand, median float64, sigma float64) int64 {
	v := median * math.Exp(sigma*r.NormFloat64())
	return max(1000, int64(v))
}

// generator turns a shape into a deterministic stream of encoded requests.
// It is used by one goroutine.
type generator struct {
	cfg   Config
	shape shape
	r     *rand.Rand
	tb    traceBuf
	enc   encoder

	start   uint64 // start time of trace 0, unix ns
	spacing int64  // ns between trace starts

	needleIdx     int64
	needleService string // set once the needle trace is generated

	// The pending request.
	groups     []*group
	byKey      map[groupKey]*group
	free       []*group
	pendSpans  int
	pendBytes  int
	pendTraces []TraceRef
	ranks      map[any]int

	seq      int64
	spans    int64 // spans generated so far
	traceIdx int64
}

type groupKey struct {
	res   *span.Resource
	scope *span.Scope
}

// newGenerator returns a generator for a validated cfg.
func newGenerator(cfg Config) (*generator, error) {
	var sh shape
	switch cfg.Shape {
	case ShapeBench:
		sh = newBenchShape(cfg)
	case ShapeRealistic:
		sh = newRealisticShape(cfg)
	default:
		return nil, fmt.Errorf("unknown shape %q (want %s or %s)", cfg.Shape, ShapeBench, ShapeRealistic)
	}
	g := &generator{
		cfg:   cfg,
		shape: sh,
		r:     rand.New(rand.NewPCG(cfg.Seed, 0x636c6577)),
		byKey: make(map[groupKey]*group),
		ranks: make(map[any]int),
		start: uint64(cfg.Start.UnixNano()),
	}
	// Space trace starts so that timestamps advance at the target rate, or
	// at a nominal 200k spans/s when sending as fast as possible.
	rate := cfg.Rate
	if rate <= 0 {
		rate = 200_000
	}
	g.spacing = max(1, int64(1e9*sh.spansPerTrace()/rate))

	// The needle trace is chosen by the seed among the traces that will
	// surely be generated.
	traces := int64(1000)
	switch {
	case cfg.Spans > 0:
		traces = int64(float64(cfg.Spans) / sh.spansPerTrace())
	case cfg.Rate > 0 && cfg.Duration > 0:
		traces = int64(cfg.Rate * cfg.Duration.Seconds() / sh.spansPerTrace())
	}
	if cfg.Shape != ShapeBench {
		traces /= 2 // trace sizes vary; stay well inside the run
	}
	traces = max(1, min(traces, 1<<40))
	nr := rand.New(rand.NewPCG(cfg.Seed, 0x6e65656c))
	g.needleIdx = nr.Int64N(traces)
	return g, nil
}

// generate produces requests until cfg.Spans spans (rounded up to whole
// traces) have been generated, or forever when cfg.Spans is 0, calling emit
// for each. It stops early when emit returns false. emit owns the request.
func (g *generator) generate(emit func(*Request) bool) {
	for g.cfg.Spans <= 0 || g.spans < g.cfg.Spans {
		if !g.nextTrace(emit) {
			return
		}
	}
	if g.pendSpans > 0 {
		emit(g.flush())
	}
}

// nextTrace generates one trace and packs it into requests.
func (g *generator) nextTrace(emit func(*Request) bool) bool {
	t := &g.tb
	t.reset()
	idx := g.traceIdx
	g.traceIdx++
	needle := idx == g.needleIdx
	g.shape.trace(t, g.r, idx, needle)
	if needle {
		g.needleService = t.needleService
	}

	var id span.TraceID
	binary.BigEndian.PutUint64(id[:8], g.r.Uint64())
	binary.BigEndian.PutUint64(id[8:], g.r.Uint64()|1)
	t.layout(g.start + uint64(idx*g.spacing))
	for i := range t.spans {
		s := &t.spans[i]
		s.TraceID = id
		binary.BigEndian.PutUint64(s.SpanID[:], g.r.Uint64()|1)
		if p := t.parent[i]; p >= 0 {
			s.ParentSpanID = t.spans[p].SpanID
		}
		// Events without a time are spread over the span.
		for k := range s.Events {
			if s.Events[k].TimeUnixNano == 0 {
				s.Events[k].TimeUnixNano = s.StartUnixNano + s.Duration()*uint64(k+1)/uint64(len(s.Events)+1)
			}
		}
	}
	t.prevID, t.prevRoot = id, t.spans[0].SpanID
	n := len(t.spans)
	g.spans += int64(n)

	// Keep traces whole within a request when they fit.
	if g.pendSpans > 0 && g.pendSpans+n > g.cfg.Batch {
		if !emit(g.flush()) {
			return false
		}
	}
	for i := range t.spans {
		if g.pendSpans >= g.cfg.Batch || g.pendBytes >= maxRequestBytes {
			if !emit(g.flush()) {
				return false
			}
		}
		if i == 0 {
			g.pendTraces = append(g.pendTraces, TraceRef{ID: id, Index: idx, Spans: n, Needle: needle})
		}
		s := &t.spans[i]
		grp := g.group(s.Resource, s.Scope)
		before := len(grp.spans)
		g.enc.b = grp.spans
		g.enc.span(fSSSpans, s)
		grp.spans = g.enc.b
		g.pendBytes += len(grp.spans) - before
		g.pendSpans++
	}
	return true
}

func (g *generator) rank(k any) int {
	r, ok := g.ranks[k]
	if !ok {
		r = len(g.ranks)
		g.ranks[k] = r
	}
	return r
}

func (g *generator) group(res *span.Resource, scope *span.Scope) *group {
	k := groupKey{res, scope}
	if grp, ok := g.byKey[k]; ok {
		return grp
	}
	var grp *group
	if n := len(g.free); n > 0 {
		grp, g.free = g.free[n-1], g.free[:n-1]
	} else {
		grp = new(group)
	}
	grp.res, grp.scope, grp.spans = res, scope, grp.spans[:0]
	grp.rank = g.rank(res)<<16 | g.rank(scope)
	g.byKey[k] = grp
	g.groups = append(g.groups, grp)
	return grp
}

// flush encodes the pending request and starts a new one.
func (g *generator) flush() *Request {
	slices.SortFunc(g.groups, func(a, b *group) int { return a.rank - b.rank })
	req := &Request{
		Seq:    g.seq,
		Body:   appendRequest(make([]byte, 0, g.pendBytes+g.pendBytes/4+1024), g.groups),
		Spans:  g.pendSpans,
		Traces: g.pendTraces,
	}
	g.seq++
	g.free = append(g.free, g.groups...)
	clear(g.groups)
	g.groups = g.groups[:0]
	clear(g.byKey)
	g.pendSpans, g.pendBytes, g.pendTraces = 0, 0, nil
	return req
}
