package loadgen

import (
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/clew-dev/clew/internal/span"
)

// The bench shape is the fixed workload clew's figures are measured on:
// traces of exactly benchTraceSpans spans over four services, every span with
// eight attributes.
const benchTraceSpans = 10

// benchNode is one span position in the fixed bench trace tree.
type benchNode struct {
	parent int
	svc    int
	kind   span.Kind
	names  []string // operation names; the root picks one, others take names[0]
	median float64  // median self time, ms
}

var benchServices = [...]string{"frontend", "checkout", "payment", "inventory"}

const (
	svcFrontend = iota
	svcCheckout
	svcPayment
	svcInventory
)

// benchTree is the span tree of every bench trace. The frontend is the
// busiest service (four spans), then checkout (three), payment (two) and
// inventory (one). Index 6, a payment server span, carries the needle.
var benchTree = [benchTraceSpans]benchNode{
	{-1, svcFrontend, span.KindServer, []string{"GET /api/orders/{id}", "POST /api/orders", "PUT /api/orders/{id}"}, 1.5},
	{0, svcFrontend, span.KindInternal, []string{"render page"}, 4},
	{0, svcFrontend, span.KindClient, []string{"POST /checkout"}, 0.3},
	{2, svcCheckout, span.KindServer, []string{"PlaceOrder"}, 2},
	{3, svcCheckout, span.KindInternal, []string{"validate cart"}, 1.2},
	{3, svcCheckout, span.KindClient, []string{"POST /charge"}, 0.3},
	{5, svcPayment, span.KindServer, []string{"Charge"}, 6},
	{6, svcPayment, span.KindInternal, []string{"fraud check"}, 10},
	{0, svcFrontend, span.KindClient, []string{"GET /stock"}, 0.3},
	{8, svcInventory, span.KindServer, []string{"GetStock"}, 3},
}

const benchNeedleSpan = 6

var benchRootMethods = []string{"GET", "POST", "PUT"}

var benchRoutes = []string{"/api/orders/{id}", "/api/orders", "/api/orders/{id}"}

var benchErrors = []string{"upstream timeout", "connection reset by peer", "card declined", "insufficient stock"}

const benchHostsPerService = 3

type benchShape struct {
	errorRatio float64
	needleUser string
	resources  [][]*span.Resource // [service][host]
	scope      *span.Scope
}

func newBenchShape(cfg Config) *benchShape {
	s := &benchShape{
		errorRatio: cfg.ErrorRatio,
		needleUser: "needle-user-" + strconv.FormatUint(cfg.Seed, 10),
		scope:      &span.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.61.0"},
	}
	for _, name := range benchServices {
		var hosts []*span.Resource
		for h := range benchHostsPerService {
			hosts = append(hosts, &span.Resource{Attrs: []span.Attr{
				{Key: "service.name", Value: span.StringValue(name)},
				{Key: "service.version", Value: span.StringValue("1.4.2")},
				{Key: "host.name", Value: span.StringValue(name + "-" + strconv.Itoa(h+1))},
				{Key: "deployment.environment.name", Value: span.StringValue("production")},
			}})
		}
		s.resources = append(s.resources, hosts)
	}
	return s
}

func (s *benchShape) spansPerTrace() float64 { return benchTraceSpans }

func (s *benchShape) needleAttr() (string, string) { return "user.id", s.needleUser }

func (s *benchShape) broad() Query {
	return Query{Service: benchServices[svcFrontend], Attr: "http.request.method=GET"}
}

func (s *benchShape) trace(t *traceBuf, r *rand.Rand, idx int64, needle bool) {
	// The root operation sets the method of the whole trace: 70 % GET,
	// 22 % POST, 8 % PUT.
	op := 0
	switch u := r.Float64(); {
	case u >= 0.92:
		op = 2
	case u >= 0.70:
		op = 1
	}
	method := benchRootMethods[op]
	route := benchRoutes[op]
	orderID := strconv.Itoa(r.IntN(100000))
	path := "/api/orders"
	if op != 1 {
		path += "/" + orderID
	}
	user := "user-" + strconv.Itoa(r.IntN(100001))
	var hosts [len(benchServices)]int
	for i := range hosts {
		hosts[i] = r.IntN(benchHostsPerService)
	}
	cartTotal := math.Round(r.Float64()*50000) / 100

	for i := range benchTree {
		n := &benchTree[i]
		name := n.names[0]
		if i == 0 {
			name = n.names[op]
		}
		status := int64(200)
		sp := span.Span{
			Name:     name,
			Kind:     n.kind,
			Resource: s.resources[n.svc][hosts[n.svc]],
			Scope:    s.scope,
			Flags:    1,
		}
		if r.Float64() < s.errorRatio {
			status = 500
			sp.StatusCode = span.StatusError
			sp.StatusMessage = benchErrors[r.IntN(len(benchErrors))]
		} else if r.IntN(100) < 3 {
			status = 404
		}
		u := user
		if needle && i == benchNeedleSpan {
			u = s.needleUser
			t.needleService = benchServices[n.svc]
		}
		start := t.attrStart()
		t.attrs = append(t.attrs,
			span.Attr{Key: "http.request.method", Value: span.StringValue(method)},
			span.Attr{Key: "http.response.status_code", Value: span.IntValue(status)},
			span.Attr{Key: "url.path", Value: span.StringValue(path)},
			span.Attr{Key: "user.id", Value: span.StringValue(u)},
			span.Attr{Key: "http.route", Value: span.StringValue(route)},
			span.Attr{Key: "net.peer.port", Value: span.IntValue(int64(30000 + r.IntN(30000)))},
			span.Attr{Key: "app.cache.hit", Value: span.BoolValue(r.IntN(4) == 0)},
			span.Attr{Key: "app.cart.total", Value: span.DoubleValue(cartTotal)},
		)
		sp.Attrs = t.attrEnd(start)
		gap := int64(20_000) // 20 µs between sibling steps in one process
		if n.kind == span.KindServer {
			gap = 150_000 + r.Int64N(200_000) // network hop from the client
		}
		t.add(sp, n.parent, lognormal(r, n.median*1e6, 0.5), gap, false)
	}
}
