package block

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/clew-dev/clew/internal/span"
)

// randGen produces adversarial random batches for oracle tests: many services,
// names, kinds, statuses, every value type, events, links, traces split over
// batches and duplicate spans.
type randGen struct {
	rnd    *rand.Rand
	traces []span.TraceID
}

func newRandGen(seed uint64) *randGen {
	return &randGen{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

var (
	randKeys    = []string{"http.method", "http.status_code", "user.id", "url", "flag", "ratio", "blob", "list", "obj", "empty", "service.name", "host.name", "k0", "k1", "k2"}
	randStrings = []string{"", "GET", "POST", "200", "404", "true", "1.5", "abc", "abd", "zzz", "/api/users/1", "x y", "12", "-3"}
)

func (g *randGen) value(depth int) span.Value {
	r := g.rnd
	switch r.IntN(10) {
	case 0, 1, 2:
		return span.StringValue(randStrings[r.IntN(len(randStrings))])
	case 3:
		return span.BoolValue(r.IntN(2) == 0)
	case 4:
		vals := []int64{0, 1, 12, 200, 404, -3, math.MaxInt64, math.MinInt64, 1 << 33}
		return span.IntValue(vals[r.IntN(len(vals))])
	case 5:
		vals := []float64{0, 1.5, -2.25, 12, math.Inf(1), math.NaN(), 1e300}
		v := span.DoubleValue(vals[r.IntN(len(vals))])
		if r.IntN(5) == 0 {
			v.Num = 0x7ff8000000000001 // a NaN with payload bits
		}
		return v
	case 6:
		return span.BytesValue([]byte{byte(r.IntN(256)), 0, 0xff})
	case 7:
		if depth > 2 {
			return span.Value{}
		}
		n := r.IntN(3)
		var arr []span.Value
		for i := 0; i < n; i++ {
			arr = append(arr, g.value(depth+1))
		}
		return span.Value{Type: span.TypeArray, Array: arr}
	case 8:
		if depth > 2 {
			return span.IntValue(int64(r.IntN(5)))
		}
		return span.Value{Type: span.TypeMap, Map: g.attrs(r.IntN(3), depth+1)}
	}
	return span.Value{}
}

func (g *randGen) attrs(n, depth int) []span.Attr {
	if n == 0 {
		return nil
	}
	out := make([]span.Attr, n)
	for i := range out {
		out[i] = span.Attr{Key: randKeys[g.rnd.IntN(len(randKeys))], Value: g.value(depth)}
	}
	return out
}

func (g *randGen) traceID() span.TraceID {
	if len(g.traces) > 0 && g.rnd.IntN(4) == 0 {
		return g.traces[g.rnd.IntN(len(g.traces))]
	}
	var id span.TraceID
	for i := range id {
		id[i] = byte(g.rnd.IntN(256))
	}
	if g.rnd.IntN(5) == 0 {
		clear(id[:8]) // 64-bit ids
	}
	id[15] |= 1
	g.traces = append(g.traces, id)
	return id
}

func (g *randGen) batch(nspans int) *span.Batch {
	r := g.rnd
	b := &span.Batch{}
	nres := 1 + r.IntN(3)
	for i := 0; i < nres; i++ {
		res := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue(fmt.Sprintf("svc-%d", r.IntN(6)))}}}
		if r.IntN(4) == 0 {
			res.Attrs = nil // no service
		}
		res.Attrs = append(res.Attrs, g.attrs(r.IntN(3), 0)...)
		if r.IntN(3) == 0 {
			res.SchemaURL = "https://schema/1"
			res.DroppedAttrs = uint32(r.IntN(3))
		}
		b.Resources = append(b.Resources, res)
		sc := &span.Scope{Name: fmt.Sprintf("lib-%d", r.IntN(3)), Version: "1.0", Attrs: g.attrs(r.IntN(2), 0)}
		if r.IntN(3) == 0 {
			sc.SchemaURL = "s"
			sc.DroppedAttrs = 1
		}
		b.Scopes = append(b.Scopes, sc)
	}
	var tid span.TraceID
	var prev []span.SpanID
	base := uint64(1_700_000_000_000_000_000) + uint64(r.IntN(1_000_000))*1000
	for i := 0; i < nspans; i++ {
		if i == 0 || r.IntN(4) == 0 {
			tid = g.traceID()
			prev = prev[:0]
		}
		ri := r.IntN(nres)
		s := span.Span{
			TraceID:       tid,
			Name:          fmt.Sprintf("op-%d", r.IntN(8)),
			Kind:          span.Kind(r.IntN(6)),
			StatusCode:    span.StatusCode(r.IntN(3)),
			StartUnixNano: base + uint64(r.IntN(5_000_000)),
			Attrs:         g.attrs(r.IntN(5), 0),
			Resource:      b.Resources[ri],
			Scope:         b.Scopes[ri],
		}
		for j := range s.SpanID {
			s.SpanID[j] = byte(r.IntN(256))
		}
		s.EndUnixNano = s.StartUnixNano + uint64(r.IntN(3_000_000))
		switch r.IntN(20) {
		case 0:
			s.EndUnixNano = s.StartUnixNano - 5 // negative duration
		case 1:
			s.EndUnixNano = s.StartUnixNano
		}
		if len(prev) > 0 && r.IntN(4) != 0 {
			s.ParentSpanID = prev[r.IntN(len(prev))]
		} else if r.IntN(5) == 0 {
			s.ParentSpanID = span.SpanID{1, 2, 3, 4, 5, 6, 7, 8}
		}
		prev = append(prev, s.SpanID)
		if r.IntN(4) == 0 {
			s.StatusMessage = randStrings[r.IntN(len(randStrings))]
		}
		if r.IntN(5) == 0 {
			s.TraceState = "a=b"
			s.Flags = uint32(r.IntN(300))
			s.DroppedAttrs, s.DroppedEvents, s.DroppedLinks = 1, 2, uint32(r.IntN(5))
		}
		for e := r.IntN(4) - 1; e > 0; e-- {
			s.Events = append(s.Events, span.Event{TimeUnixNano: s.StartUnixNano + uint64(r.IntN(1000)), Name: randStrings[r.IntN(len(randStrings))], Attrs: g.attrs(r.IntN(3), 0), DroppedAttrs: uint32(r.IntN(2))})
		}
		for e := r.IntN(4) - 2; e > 0; e-- {
			s.Links = append(s.Links, span.Link{TraceID: g.traceID(), SpanID: span.SpanID{9, 9}, TraceState: "x", Flags: uint32(r.IntN(2)), Attrs: g.attrs(r.IntN(3), 0), DroppedAttrs: uint32(r.IntN(2))})
		}
		b.Spans = append(b.Spans, s)
		if r.IntN(30) == 0 { // exact duplicate in the same batch
			b.Spans = append(b.Spans, s)
		}
	}
	return b
}

// loadGen produces the benchmark load: traces of 10 spans over 2–4 services
// with ~8 span attributes of mixed cardinality and resource attributes
// service.name, host.name and service.version.
type loadGen struct {
	rnd       *rand.Rand
	resources []*span.Resource
	scopes    []*span.Scope
	now       uint64
}

func newLoadGen(seed uint64) *loadGen {
	g := &loadGen{rnd: rand.New(rand.NewPCG(seed, 7)), now: 1_700_000_000_000_000_000}
	for s := 0; s < 12; s++ {
		for h := 0; h < 4; h++ {
			g.resources = append(g.resources, &span.Resource{Attrs: []span.Attr{
				{Key: "service.name", Value: span.StringValue(fmt.Sprintf("service-%02d", s))},
				{Key: "host.name", Value: span.StringValue(fmt.Sprintf("ip-10-0-%d-%d.ec2.internal", s, h))},
				{Key: "service.version", Value: span.StringValue("1.4.2")},
			}})
		}
	}
	g.scopes = []*span.Scope{{Name: "io.opentelemetry.http", Version: "1.30.0"}, {Name: "io.opentelemetry.db", Version: "1.30.0"}}
	return g
}

var (
	loadMethods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	loadRoutes  = []string{"/api/users/%d", "/api/orders/%d/items", "/api/cart/%d", "/api/products/%d", "/health"}
	loadOps     = []string{"HTTP GET", "HTTP POST", "SELECT orders", "redis GET", "grpc.Check", "render", "auth.verify", "queue.publish"}
	loadStatus  = []int64{200, 200, 200, 200, 201, 204, 404, 500}
)

// batch returns a batch of ntraces traces of 10 spans each.
func (g *loadGen) batch(ntraces int) *span.Batch {
	r := g.rnd
	b := &span.Batch{Resources: g.resources, Scopes: g.scopes}
	for t := 0; t < ntraces; t++ {
		var tid span.TraceID
		for i := 0; i < 16; i += 8 {
			v := r.Uint64()
			for j := 0; j < 8; j++ {
				tid[i+j] = byte(v >> (8 * j))
			}
		}
		g.now += uint64(r.IntN(2_000_000))
		start := g.now
		nsvc := 2 + r.IntN(3)
		svc0 := r.IntN(12)
		user := fmt.Sprintf("user-%d", r.IntN(50000))
		order := r.IntN(10_000_000)
		var ids [10]span.SpanID
		var hosts [12]int
		for i := range hosts {
			hosts[i] = r.IntN(4)
		}
		for i := 0; i < 10; i++ {
			v := r.Uint64()
			for j := 0; j < 8; j++ {
				ids[i][j] = byte(v >> (8 * j))
			}
			svc := (svc0 + i*nsvc/10) % 12
			res := g.resources[svc*4+hosts[svc]]
			op := r.IntN(len(loadOps))
			st := start + uint64(i)*uint64(50_000+r.IntN(200_000))
			d := uint64(100_000 + r.IntN(20_000_000))
			route := loadRoutes[r.IntN(len(loadRoutes))]
			s := span.Span{
				TraceID: tid, SpanID: ids[i], Name: loadOps[op],
				Kind: span.Kind(1 + r.IntN(3)), StartUnixNano: st, EndUnixNano: st + d,
				Resource: res, Scope: g.scopes[op%2], Flags: 1,
				Attrs: []span.Attr{
					{Key: "http.method", Value: span.StringValue(loadMethods[r.IntN(len(loadMethods))])},
					{Key: "http.status_code", Value: span.IntValue(loadStatus[r.IntN(len(loadStatus))])},
					{Key: "url", Value: span.StringValue("https://shop.example.com" + fmt.Sprintf(route, order))},
					{Key: "user.id", Value: span.StringValue(user)},
					{Key: "http.route", Value: span.StringValue(route)},
					{Key: "net.peer.name", Value: span.StringValue(fmt.Sprintf("10.0.%d.%d", svc, hosts[svc]))},
					{Key: "retry", Value: span.BoolValue(r.IntN(20) == 0)},
					{Key: "region", Value: span.StringValue([]string{"eu-west-1", "us-east-1"}[r.IntN(2)])},
				},
			}
			if i > 0 {
				s.ParentSpanID = ids[r.IntN(i)]
			}
			if s.Attrs[1].Value.Int() >= 500 {
				s.StatusCode = span.StatusError
				s.StatusMessage = "internal error"
			}
			b.Spans = append(b.Spans, s)
		}
	}
	return b
}

// benchShapeGen mirrors the end-to-end bench shape (internal/loadgen
// shape_bench.go): traces of 10 spans over the services frontend, checkout,
// payment and inventory (3 hosts each, 4 resource attributes), one scope,
// eight span attributes including the high-cardinality user.id and url.path.
// Trace needleIdx carries user.id="needle-user-42" on its payment span.
type benchShapeGen struct {
	rnd       *rand.Rand
	resources [4][3]*span.Resource
	scope     *span.Scope
	now       uint64
	traceNo   int
	needleIdx int
	seed      uint64
}

var benchShapeServices = [4]string{"frontend", "checkout", "payment", "inventory"}

// benchShapeTree: parent, service, kind, names (root picks by method), median self ms.
var benchShapeTree = [10]struct {
	parent, svc int
	kind        span.Kind
	names       []string
	median      float64
}{
	{-1, 0, span.KindServer, []string{"GET /api/orders/{id}", "POST /api/orders", "PUT /api/orders/{id}"}, 1.5},
	{0, 0, span.KindInternal, []string{"render page"}, 4},
	{0, 0, span.KindClient, []string{"POST /checkout"}, 0.3},
	{2, 1, span.KindServer, []string{"PlaceOrder"}, 2},
	{3, 1, span.KindInternal, []string{"validate cart"}, 1.2},
	{3, 1, span.KindClient, []string{"POST /charge"}, 0.3},
	{5, 2, span.KindServer, []string{"Charge"}, 6},
	{6, 2, span.KindInternal, []string{"fraud check"}, 10},
	{0, 0, span.KindClient, []string{"GET /stock"}, 0.3},
	{8, 3, span.KindServer, []string{"GetStock"}, 3},
}

func newBenchShapeGen(seed uint64, needleIdx int) *benchShapeGen {
	g := &benchShapeGen{rnd: rand.New(rand.NewPCG(seed, 11)), now: 1_700_000_000_000_000_000, needleIdx: needleIdx, seed: seed,
		scope: &span.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.61.0"}}
	for s, name := range benchShapeServices {
		for h := range 3 {
			g.resources[s][h] = &span.Resource{Attrs: []span.Attr{
				{Key: "service.name", Value: span.StringValue(name)},
				{Key: "service.version", Value: span.StringValue("1.4.2")},
				{Key: "host.name", Value: span.StringValue(fmt.Sprintf("%s-%d", name, h+1))},
				{Key: "deployment.environment.name", Value: span.StringValue("production")},
			}}
		}
	}
	return g
}

// traceID returns the id of trace number n of a generator of the same
// seed (it replays the generator).
func (g *benchShapeGen) traceID(n int) span.TraceID {
	h := newBenchShapeGen(g.seed, -1)
	for {
		b := h.batch(1)
		if h.traceNo-1 == n {
			return b.Spans[0].TraceID
		}
	}
}

// batch returns ntraces traces of 10 spans.
func (g *benchShapeGen) batch(ntraces int) *span.Batch {
	r := g.rnd
	b := &span.Batch{Scopes: []*span.Scope{g.scope}}
	for s := range g.resources {
		b.Resources = append(b.Resources, g.resources[s][:]...)
	}
	methods := []string{"GET", "POST", "PUT"}
	routes := []string{"/api/orders/{id}", "/api/orders", "/api/orders/{id}"}
	errs := []string{"upstream timeout", "connection reset by peer", "card declined", "insufficient stock"}
	for range ntraces {
		var tid span.TraceID
		for i := 0; i < 16; i += 8 {
			v := r.Uint64()
			for j := range 8 {
				tid[i+j] = byte(v >> (8 * j))
			}
		}
		g.now += uint64(r.IntN(20_000))
		op := 0
		switch u := r.Float64(); {
		case u >= 0.92:
			op = 2
		case u >= 0.70:
			op = 1
		}
		path := "/api/orders"
		if op != 1 {
			path += "/" + strconv.Itoa(r.IntN(100000))
		}
		user := "user-" + strconv.Itoa(r.IntN(100001))
		var hosts [4]int
		for i := range hosts {
			hosts[i] = r.IntN(3)
		}
		cart := math.Round(r.Float64()*50000) / 100
		var ids [10]span.SpanID
		var starts, ends, cursor [10]uint64
		for i := range benchShapeTree {
			n := &benchShapeTree[i]
			v := r.Uint64()
			for j := range 8 {
				ids[i][j] = byte(v >> (8 * j))
			}
			name := n.names[0]
			if i == 0 {
				name = n.names[op]
			}
			self := uint64(max(1000, n.median*1e6*math.Exp(0.5*r.NormFloat64())))
			gap := uint64(20_000)
			if n.kind == span.KindServer {
				gap = 150_000 + uint64(r.Int64N(200_000))
			}
			if n.parent < 0 {
				starts[i] = g.now
			} else {
				starts[i] = cursor[n.parent] + gap
				cursor[n.parent] = starts[i] + self
			}
			cursor[i] = starts[i] + self/2
			ends[i] = starts[i] + self
			for p := n.parent; p >= 0; p = benchShapeTree[p].parent { // parents enclose children
				ends[p] = max(ends[p], ends[i]+gap)
			}
			status := int64(200)
			sp := span.Span{TraceID: tid, SpanID: ids[i], Name: name, Kind: n.kind, Resource: g.resources[n.svc][hosts[n.svc]], Scope: g.scope, Flags: 1}
			if n.parent >= 0 {
				sp.ParentSpanID = ids[n.parent]
			}
			if r.Float64() < 0.01 {
				status = 500
				sp.StatusCode = span.StatusError
				sp.StatusMessage = errs[r.IntN(len(errs))]
			} else if r.IntN(100) < 3 {
				status = 404
			}
			u := user
			if g.traceNo == g.needleIdx && i == 6 {
				u = "needle-user-42"
			}
			sp.Attrs = []span.Attr{
				{Key: "http.request.method", Value: span.StringValue(methods[op])},
				{Key: "http.response.status_code", Value: span.IntValue(status)},
				{Key: "url.path", Value: span.StringValue(path)},
				{Key: "user.id", Value: span.StringValue(u)},
				{Key: "http.route", Value: span.StringValue(routes[op])},
				{Key: "net.peer.port", Value: span.IntValue(int64(30000 + r.IntN(30000)))},
				{Key: "app.cache.hit", Value: span.BoolValue(r.IntN(4) == 0)},
				{Key: "app.cart.total", Value: span.DoubleValue(cart)},
			}
			b.Spans = append(b.Spans, sp)
		}
		base := len(b.Spans) - 10
		for i := range 10 {
			b.Spans[base+i].StartUnixNano = starts[i]
			b.Spans[base+i].EndUnixNano = ends[i]
		}
		g.traceNo++
	}
	return b
}
