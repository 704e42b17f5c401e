package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/span"
)

// The realistic shape mimics a microservice fleet: many services and
// operations, trees of varying depth and fan-out, 5 to 30 attributes per span
// with cardinalities from a handful of values to unique IDs, exception events
// on errors, occasional links, and about one trace in a thousand with 1,000
// to 10,000 spans.

var realisticNames = []string{
	"frontend", "api-gateway", "mobile-bff", "auth", "users", "cart", "checkout",
	"payment", "fraud", "inventory", "catalog", "search", "recommendation",
	"pricing", "shipping", "notification", "email", "ledger", "reviews", "ads",
}

var (
	nouns      = []string{"orders", "items", "users", "sessions", "carts", "payments", "products", "reviews", "shipments", "invoices", "accounts", "coupons", "addresses", "tokens", "quotes"}
	subNouns   = []string{"status", "history", "lines", "events", "summary"}
	methods    = []string{"GET", "GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH"}
	verbs      = []string{"Get", "List", "Create", "Update", "Delete", "Check", "Reserve", "Compute", "Sync", "Validate"}
	languages  = []string{"go", "java", "python", "nodejs", "dotnet"}
	regions    = []string{"us-east-1", "us-west-2", "eu-west-1", "ap-south-1"}
	zones      = []string{"a", "b", "c"}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
		"okhttp/4.12.0", "Go-http-client/2.0", "python-requests/2.32.3", "curl/8.8.0",
	}
	tiers      = []string{"free", "free", "free", "pro", "pro", "enterprise"}
	currencies = []string{"USD", "USD", "EUR", "GBP", "JPY", "CAD"}
	locales    = []string{"en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "es-ES", "pt-BR"}
	buildSHAs  = []string{"3f9a1c2", "b71e044", "9c0d5aa", "e2f8b13", "47ad9e0"}
	dbQueries  = []string{
		"SELECT * FROM %s WHERE id = $1", "SELECT id, status FROM %s WHERE user_id = $1 LIMIT 50",
		"UPDATE %s SET status = $1 WHERE id = $2", "INSERT INTO %s (id, payload) VALUES ($1, $2)",
	}
	exceptionTypes = []string{"java.net.SocketTimeoutException", "io.grpc.StatusRuntimeException", "ValueError", "context.DeadlineExceeded", "java.lang.NullPointerException", "TimeoutError"}
	exceptionMsgs  = []string{"Read timed out", "UNAVAILABLE: upstream connect error", "invalid literal for int() with base 10", "context deadline exceeded", "Cannot invoke method on null", "operation timed out after 5000ms"}
	frameFuncs     = []string{"handleRequest", "ServeHTTP", "process", "invoke", "call", "execute", "doFilter", "dispatch", "run", "apply", "resolve", "load"}
)

// realOp is one operation of a service.
type realOp struct {
	name   string
	method string
	route  string
	rpc    bool
	median float64 // median self time, ns
	sigma  float64
}

type realService struct {
	name      string
	resources []*span.Resource
	ops       []realOp
	lang      string
}

type realisticShape struct {
	cfg        Config
	services   []realService
	httpScope  *span.Scope
	dbScope    *span.Scope
	codeScope  *span.Scope
	needleUser string
	perm       []int
	nodes      []node
	open       []int
}

func newRealisticShape(cfg Config) *realisticShape {
	// The fleet is derived from a fixed seed so that every run sees the
	// same services whatever --seed says.
	r := rand.New(rand.NewPCG(1, 2))
	s := &realisticShape{
		cfg:        cfg,
		httpScope:  &span.Scope{Name: "io.opentelemetry.http", Version: "2.6.0"},
		dbScope:    &span.Scope{Name: "io.opentelemetry.jdbc", Version: "2.6.0-alpha"},
		codeScope:  &span.Scope{Name: "manual", Version: "1.0.0", Attrs: []span.Attr{{Key: "scope.team", Value: span.StringValue("platform")}}},
		needleUser: "needle-user-" + strconv.FormatUint(cfg.Seed, 10),
		perm:       make([]int, len(fillers)),
	}
	for i := range cfg.Services {
		name := fmt.Sprintf("service-%02d", i)
		if i < len(realisticNames) {
			name = realisticNames[i]
		}
		svc := realService{name: name, lang: languages[i%len(languages)]}
		for h := range 1 + i%4 {
			pod := fmt.Sprintf("%s-%x-%d", name, 0x5d8f9+i*7919, h)
			svc.resources = append(svc.resources, &span.Resource{
				Attrs: []span.Attr{
					{Key: "service.name", Value: span.StringValue(name)},
					{Key: "service.namespace", Value: span.StringValue("shop")},
					{Key: "service.version", Value: span.StringValue(fmt.Sprintf("v1.%d.%d", i%7, i%5))},
					{Key: "service.instance.id", Value: span.StringValue(fmt.Sprintf("%08x-%04x", 0x1a2b3c4d^(i*131+h), h*17))},
					{Key: "host.name", Value: span.StringValue(fmt.Sprintf("node-%d", (i+h)%6))},
					{Key: "k8s.pod.name", Value: span.StringValue(pod)},
					{Key: "k8s.namespace.name", Value: span.StringValue("shop")},
					{Key: "deployment.environment.name", Value: span.StringValue("production")},
					{Key: "telemetry.sdk.name", Value: span.StringValue("opentelemetry")},
					{Key: "telemetry.sdk.language", Value: span.StringValue(svc.lang)},
					{Key: "telemetry.sdk.version", Value: span.StringValue("1.38.0")},
					{Key: "process.pid", Value: span.IntValue(int64(1 + h*37 + i))},
				},
				SchemaURL: "https://opentelemetry.io/schemas/1.26.0",
			})
		}
		rpc := i%3 == 2
		for j := range cfg.Operations {
			op := realOp{
				method: methods[r.IntN(len(methods))],
				rpc:    rpc,
				median: math.Exp(r.Float64()*math.Log(60)) * 5e5, // 0.5 to 30 ms
				sigma:  0.4 + r.Float64()*0.6,
			}
			noun := nouns[(i+j)%len(nouns)]
			switch j % 3 {
			case 0:
				op.route = "/api/" + noun
			case 1:
				op.route = "/api/" + noun + "/{id}"
			default:
				op.route = "/api/" + noun + "/{id}/" + subNouns[j%len(subNouns)]
			}
			if i == 0 && j == 0 {
				op.method = "GET" // the broad query always finds matches
			}
			if rpc {
				op.name = fmt.Sprintf("shop.%s.v1.%sService/%s%s", strings.ReplaceAll(name, "-", ""), titled(name), verbs[j%len(verbs)], titled(noun))
			} else {
				op.name = op.method + " " + op.route
			}
			svc.ops = append(svc.ops, op)
		}
		s.services = append(s.services, svc)
	}
	return s
}

func titled(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// spansPerTrace is the measured mean trace size with default flags.
func (s *realisticShape) spansPerTrace() float64 { return 20 }

func (s *realisticShape) needleAttr() (string, string) { return "user.id", s.needleUser }

func (s *realisticShape) broad() Query {
	return Query{Service: s.services[0].name, Attr: "http.request.method=GET"}
}

// pickService returns a service index skewed towards low indices, so that a
// few services are much busier than the rest.
func (s *realisticShape) pickService(r *rand.Rand, not int) int {
	n := len(s.services)
	u := r.Float64()
	i := int(float64(n) * u * u)
	if i == not {
		i = (i + 1) % n
	}
	return i
}

// node is a span position while a tree grows.
type node struct {
	svc, depth, children int
}

func (s *realisticShape) trace(t *traceBuf, r *rand.Rand, idx int64, needle bool) {
	size := 0
	big := r.Float64() < 0.001
	if big {
		size = 1000 + r.IntN(9001)
	} else {
		size = min(150, max(1, int(math.Round(8*math.Exp(0.9*r.NormFloat64())))))
	}
	user := "user-" + strconv.Itoa(r.IntN(1_000_000))
	if needle {
		user = s.needleUser
	}
	tenant := "tenant-" + strconv.Itoa(r.IntN(500))
	nodes := s.nodes[:0]

	// The root is a server span of an edge service: 60 % frontend, 30 %
	// api-gateway, 10 % mobile-bff.
	root := 0
	if u := r.Float64(); u >= 0.9 {
		root = 2
	} else if u >= 0.6 {
		root = 1
	}
	root = min(root, len(s.services)-1)
	s.serverSpan(t, r, -1, root, user, tenant, true)
	nodes = append(nodes, node{svc: root, depth: 1})
	if needle {
		t.needleService = s.services[root].name
	}

	maxDepth := s.cfg.Depth
	open := append(s.open[:0], 0) // nodes that may still get children
	for len(t.spans) < size {
		if len(open) == 0 {
			break
		}
		// Grow depth-first half of the time, otherwise attach anywhere.
		k := len(open) - 1
		if r.IntN(2) == 0 {
			k = r.IntN(len(open))
		}
		p := open[k]
		if !big && nodes[p].children >= s.cfg.Fanout {
			open[k] = open[len(open)-1]
			open = open[:len(open)-1]
			continue
		}
		nodes[p].children++
		svc := nodes[p].svc
		depth := nodes[p].depth
		if r.IntN(10) < 7 && depth+2 <= maxDepth && len(s.services) > 1 {
			// A call to another service: a client span and its server span.
			to := s.pickService(r, svc)
			c := s.clientSpan(t, r, p, svc, to, tenant)
			nodes = append(nodes, node{svc: svc, depth: depth + 1})
			s.serverSpan(t, r, c, to, user, tenant, false)
			nodes = append(nodes, node{svc: to, depth: depth + 2})
			if depth+2 < maxDepth {
				open = append(open, len(nodes)-1)
			}
		} else {
			s.localSpan(t, r, p, svc, tenant)
			nodes = append(nodes, node{svc: svc, depth: depth + 1})
			if depth+1 < maxDepth && r.IntN(3) == 0 {
				open = append(open, len(nodes)-1)
			}
		}
	}
	s.open = open
	s.nodes = nodes[:0]
	// Occasionally link the root to the previous trace, as a batch consumer
	// or a follow-up request would.
	if r.IntN(100) == 0 && !t.prevID.IsZero() {
		t.spans[0].Links = []span.Link{{
			TraceID: t.prevID,
			SpanID:  t.prevRoot,
			Attrs:   []span.Attr{{Key: "link.reason", Value: span.StringValue("follows_from")}},
		}}
	}
}

func (s *realisticShape) resource(r *rand.Rand, svc int) *span.Resource {
	res := s.services[svc].resources
	return res[r.IntN(len(res))]
}

// status draws the status of a span and returns the HTTP status code to
// report.
func (s *realisticShape) status(r *rand.Rand, sp *span.Span) int64 {
	if r.Float64() < s.cfg.ErrorRatio {
		sp.StatusCode = span.StatusError
		i := r.IntN(len(exceptionTypes))
		sp.StatusMessage = exceptionMsgs[i]
		sp.Events = append(sp.Events, span.Event{
			Name: "exception",
			Attrs: []span.Attr{
				{Key: "exception.type", Value: span.StringValue(exceptionTypes[i])},
				{Key: "exception.message", Value: span.StringValue(exceptionMsgs[i])},
				{Key: "exception.stacktrace", Value: span.StringValue(stackTrace(r, exceptionTypes[i], exceptionMsgs[i]))},
			},
		})
		if r.IntN(2) == 0 {
			return 500
		}
		return 503
	}
	switch u := r.IntN(100); {
	case u < 2:
		return 404
	case u < 3:
		return 400
	}
	return 200
}

func stackTrace(r *rand.Rand, typ, msg string) string {
	var b strings.Builder
	b.WriteString(typ + ": " + msg + "\n")
	for range 5 + r.IntN(11) {
		f := frameFuncs[r.IntN(len(frameFuncs))]
		fmt.Fprintf(&b, "\tat com.shop.%s.%s(%s.java:%d)\n", nouns[r.IntN(len(nouns))], f, titled(f), 20+r.IntN(400))
	}
	return b.String()
}

func (s *realisticShape) serverSpan(t *traceBuf, r *rand.Rand, parent, svc int, user, tenant string, root bool) int {
	srv := &s.services[svc]
	u := r.Float64()
	op := &srv.ops[int(float64(len(srv.ops))*u*u)]
	sp := span.Span{Name: op.name, Kind: span.KindServer, Resource: s.resource(r, svc), Scope: s.httpScope, Flags: 1}
	code := s.status(r, &sp)
	start := t.attrStart()
	if op.rpc {
		grpcCode := int64(0)
		if sp.StatusCode == span.StatusError {
			grpcCode = 14
		}
		t.attrs = append(t.attrs,
			span.Attr{Key: "rpc.system", Value: span.StringValue("grpc")},
			span.Attr{Key: "rpc.method", Value: span.StringValue(op.name[strings.LastIndexByte(op.name, '/')+1:])},
			span.Attr{Key: "rpc.grpc.status_code", Value: span.IntValue(grpcCode)},
		)
	} else {
		t.attrs = append(t.attrs,
			span.Attr{Key: "http.request.method", Value: span.StringValue(op.method)},
			span.Attr{Key: "http.route", Value: span.StringValue(op.route)},
			span.Attr{Key: "url.path", Value: span.StringValue(strings.Replace(op.route, "{id}", strconv.Itoa(r.IntN(1_000_000)), 1))},
			span.Attr{Key: "http.response.status_code", Value: span.IntValue(code)},
		)
	}
	t.attrs = append(t.attrs, span.Attr{Key: "user.id", Value: span.StringValue(user)})
	s.fill(t, r, start, srv.name, tenant)
	sp.Attrs = t.attrEnd(start)
	if r.IntN(20) == 0 && sp.StatusCode != span.StatusError {
		sp.Events = append(sp.Events, span.Event{Name: "cache miss", Attrs: []span.Attr{{Key: "cache.key", Value: span.StringValue("k:" + strconv.Itoa(r.IntN(10000)))}}})
	}
	gap := int64(100_000 + r.IntN(900_000))
	if root {
		gap = 0
	}
	return s.add(t, r, sp, parent, lognormal(r, op.median, op.sigma), gap)
}

func (s *realisticShape) clientSpan(t *traceBuf, r *rand.Rand, parent, svc, to int, tenant string) int {
	dst := &s.services[to]
	op := &dst.ops[r.IntN(len(dst.ops))]
	sp := span.Span{Kind: span.KindClient, Resource: s.resource(r, svc), Scope: s.httpScope, Flags: 1}
	code := s.status(r, &sp)
	start := t.attrStart()
	if op.rpc {
		sp.Name = op.name
		t.attrs = append(t.attrs,
			span.Attr{Key: "rpc.system", Value: span.StringValue("grpc")},
			span.Attr{Key: "server.address", Value: span.StringValue(dst.name + ".shop.svc.cluster.local")},
			span.Attr{Key: "server.port", Value: span.IntValue(9090)},
		)
	} else {
		sp.Name = op.method
		t.attrs = append(t.attrs,
			span.Attr{Key: "http.request.method", Value: span.StringValue(op.method)},
			span.Attr{Key: "server.address", Value: span.StringValue(dst.name + ".shop.svc.cluster.local")},
			span.Attr{Key: "server.port", Value: span.IntValue(8080)},
			span.Attr{Key: "http.response.status_code", Value: span.IntValue(code)},
		)
	}
	t.attrs = append(t.attrs, span.Attr{Key: "peer.service", Value: span.StringValue(dst.name)})
	s.fill(t, r, start, s.services[svc].name, tenant)
	sp.Attrs = t.attrEnd(start)
	return s.add(t, r, sp, parent, lognormal(r, 3e5, 0.5), int64(20_000+r.IntN(200_000)))
}

func (s *realisticShape) localSpan(t *traceBuf, r *rand.Rand, parent, svc int, tenant string) int {
	srv := &s.services[svc]
	sp := span.Span{Resource: s.resource(r, svc), Flags: 1}
	s.status(r, &sp)
	start := t.attrStart()
	median := 1e6
	if r.IntN(2) == 0 {
		table := nouns[r.IntN(len(nouns))]
		q := fmt.Sprintf(dbQueries[r.IntN(len(dbQueries))], table)
		sp.Name = strings.SplitN(q, " ", 2)[0] + " " + table
		sp.Kind = span.KindClient
		sp.Scope = s.dbScope
		t.attrs = append(t.attrs,
			span.Attr{Key: "db.system.name", Value: span.StringValue("postgresql")},
			span.Attr{Key: "db.namespace", Value: span.StringValue(strings.ReplaceAll(srv.name, "-", "_"))},
			span.Attr{Key: "db.collection.name", Value: span.StringValue(table)},
			span.Attr{Key: "db.query.text", Value: span.StringValue(q)},
		)
		median = 2e6
	} else {
		sp.Name = verbs[r.IntN(len(verbs))] + titled(nouns[r.IntN(len(nouns))])
		sp.Kind = span.KindInternal
		sp.Scope = s.codeScope
		t.attrs = append(t.attrs, span.Attr{Key: "code.function.name", Value: span.StringValue(sp.Name)})
	}
	s.fill(t, r, start, srv.name, tenant)
	sp.Attrs = t.attrEnd(start)
	return s.add(t, r, sp, parent, lognormal(r, median, 0.8), int64(10_000+r.IntN(50_000)))
}

// add appends sp; a quarter of spans run their children in parallel.
func (s *realisticShape) add(t *traceBuf, r *rand.Rand, sp span.Span, parent int, self, gap int64) int {
	return t.add(sp, parent, self, gap, r.IntN(4) == 0)
}

// fillers are optional attributes with realistic value distributions.
var fillers = []func(r *rand.Rand, svc, tenant string) span.Attr{
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "client.address", Value: span.StringValue(fmt.Sprintf("10.%d.%d.%d", r.IntN(4), r.IntN(256), r.IntN(256)))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "user_agent.original", Value: span.StringValue(userAgents[r.IntN(len(userAgents))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "network.protocol.version", Value: span.StringValue([]string{"1.1", "2"}[r.IntN(2)])}
	},
	func(_ *rand.Rand, _, tenant string) span.Attr {
		return span.Attr{Key: "app.tenant.id", Value: span.StringValue(tenant)}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.request.id", Value: span.StringValue(strconv.FormatUint(r.Uint64(), 16))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.session.id", Value: span.StringValue("sess-" + strconv.Itoa(r.IntN(1_000_000)))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "cloud.region", Value: span.StringValue(regions[r.IntN(len(regions))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "cloud.availability_zone", Value: span.StringValue(regions[r.IntN(len(regions))] + zones[r.IntN(len(zones))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.feature_flag.new_checkout", Value: span.BoolValue(r.IntN(10) == 0)}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.cache.hit", Value: span.BoolValue(r.IntN(3) > 0)}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		n := int64(0)
		if r.IntN(10) == 0 {
			n = 1 + r.Int64N(3)
		}
		return span.Attr{Key: "app.retry.count", Value: span.IntValue(n)}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.queue.depth", Value: span.IntValue(r.Int64N(1000))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.payload.bytes", Value: span.IntValue(int64(math.Exp(7 + 1.5*r.NormFloat64())))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.latency_budget_ms", Value: span.DoubleValue(math.Round(r.Float64()*5000) / 10)}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.sampling.ratio", Value: span.DoubleValue([]float64{0.1, 0.5, 1}[r.IntN(3)])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.build.sha", Value: span.StringValue(buildSHAs[r.IntN(len(buildSHAs))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.customer.tier", Value: span.StringValue(tiers[r.IntN(len(tiers))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.experiment.bucket", Value: span.IntValue(r.Int64N(10))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.items.count", Value: span.IntValue(1 + int64(math.Abs(r.NormFloat64()*4)))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.cart.total", Value: span.DoubleValue(math.Round(r.ExpFloat64()*8000) / 100)}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "thread.id", Value: span.IntValue(1 + r.Int64N(64))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "thread.name", Value: span.StringValue("worker-" + strconv.Itoa(r.IntN(16)))}
	},
	func(_ *rand.Rand, svc, _ string) span.Attr {
		return span.Attr{Key: "code.file.path", Value: span.StringValue("src/" + svc + "/handler.go")}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "code.line.number", Value: span.IntValue(10 + r.Int64N(900))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.order.id", Value: span.StringValue("ord-" + strconv.Itoa(r.IntN(10_000_000)))}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.currency", Value: span.StringValue(currencies[r.IntN(len(currencies))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.locale", Value: span.StringValue(locales[r.IntN(len(locales))])}
	},
	func(r *rand.Rand, _, _ string) span.Attr {
		return span.Attr{Key: "app.tags", Value: span.Value{Type: span.TypeArray, Array: []span.Value{
			span.StringValue(nouns[r.IntN(len(nouns))]), span.StringValue(tiers[r.IntN(len(tiers))]),
		}}}
	},
}

// fill tops the span's attributes up to a count drawn from [5, cfg.Attrs]
// with fillers in a random order.
func (s *realisticShape) fill(t *traceBuf, r *rand.Rand, start int, svc, tenant string) {
	want := 5 + r.IntN(max(1, s.cfg.Attrs-4))
	have := len(t.attrs) - start
	for i := range s.perm {
		s.perm[i] = i
	}
	for k := 0; have < want && k < len(s.perm); k++ {
		j := k + r.IntN(len(s.perm)-k)
		s.perm[k], s.perm[j] = s.perm[j], s.perm[k]
		t.attrs = append(t.attrs, fillers[s.perm[k]](r, svc, tenant))
		have++
	}
}
