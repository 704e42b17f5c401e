package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// The shop's services.
const (
	svcGateway        = "gateway"
	svcCatalog        = "catalog"
	svcCart           = "cart"
	svcCheckout       = "checkout"
	svcPayment        = "payment"
	svcInventory      = "inventory"
	svcRecommendation = "recommendation"
	svcShipping       = "shipping"
)

// transport is how a service is reached.
type transport int

const (
	viaHTTP transport = iota
	viaGRPC
	viaQueue // consumes the orders topic and listens on nothing
)

// serviceSpec is one service of the shop.
type serviceSpec struct {
	name      string
	version   string
	instances int
	via       transport
	// calls lists the gRPC services it calls (HTTP needs no connection set
	// up in advance).
	calls []string
}

var specs = []serviceSpec{
	{name: svcGateway, version: "2.3.1", instances: 1, via: viaHTTP, calls: []string{svcCatalog, svcCheckout, svcInventory, svcRecommendation}},
	{name: svcCatalog, version: "3.0.4", instances: 2, via: viaGRPC},
	{name: svcCart, version: "1.8.0", instances: 1, via: viaHTTP},
	{name: svcCheckout, version: checkoutStableVersion, instances: 3, via: viaGRPC, calls: []string{svcCatalog, svcInventory}},
	{name: svcPayment, version: "2.1.7", instances: 1, via: viaHTTP},
	{name: svcInventory, version: "1.2.9", instances: 1, via: viaGRPC},
	{name: svcRecommendation, version: "0.9.3", instances: 1, via: viaGRPC, calls: []string{svcCatalog}},
	{name: svcShipping, version: "1.0.2", instances: 1, via: viaQueue},
}

func serviceNames() []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

// instance is one running copy of a service: its own TracerProvider (and so
// its own resource and exporter), listener and clients.
type instance struct {
	shop    *shop
	service string
	version string
	id      string
	canary  bool
	via     transport

	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	db     database
	cache  cache

	ln      net.Listener
	addr    string
	httpSrv *http.Server
	grpcSrv *grpc.Server

	http  *http.Client
	conns map[string]*grpc.ClientConn // by target instance ID
}

// shop is every instance plus the simulated external world: the payment
// provider and the orders topic.
type shop struct {
	cfg    Config
	faults *faults
	log    *slog.Logger

	all      []*instance
	stable   map[string][]*instance
	canaries map[string]*instance

	psp    *http.Server
	pspLn  net.Listener
	pspURL string

	orders       *queue
	consumerStop context.CancelFunc
	consumerWG   sync.WaitGroup

	carts *cartStore
	stock *stockStore
}

func newShop(ctx context.Context, cfg Config, f *faults, log *slog.Logger) (_ *shop, err error) {
	s := &shop{
		cfg: cfg, faults: f, log: log,
		stable:   map[string][]*instance{},
		canaries: map[string]*instance{},
		orders:   &queue{topic: "orders", ch: make(chan message, 4096)},
		carts:    &cartStore{items: map[string]map[string]int{}},
		stock:    newStockStore(),
	}
	defer func() {
		if err != nil {
			_ = s.close(context.Background())
		}
	}()
	for _, sp := range specs {
		for i := range sp.instances {
			in, err := s.newInstance(ctx, sp, sp.version, fmt.Sprintf("%s-%d", sp.name, i), false)
			if err != nil {
				return nil, err
			}
			s.stable[sp.name] = append(s.stable[sp.name], in)
		}
		if sp.name == svcCheckout {
			in, err := s.newInstance(ctx, sp, checkoutCanaryVersion, sp.name+"-canary", true)
			if err != nil {
				return nil, err
			}
			s.canaries[sp.name] = in
		}
	}
	if s.pspLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("listen for the payment provider: %w", err)
	}
	s.pspURL = "http://" + s.pspLn.Addr().String()
	s.psp = &http.Server{Handler: s.pspHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.psp.Serve(s.pspLn) }()

	// Connect every instance to the instances of the gRPC services it
	// calls, canaries included, then start serving.
	for _, in := range s.all {
		sp := specFor(in.service)
		in.http = newHTTPClient(in.tp, in.prop)
		in.conns = map[string]*grpc.ClientConn{}
		for _, callee := range sp.calls {
			targets := slices.Clone(s.stable[callee])
			if c := s.canaries[callee]; c != nil {
				targets = append(targets, c)
			}
			for _, t := range targets {
				cc, err := dialGRPC(in, t.addr)
				if err != nil {
					return nil, err
				}
				in.conns[t.id] = cc
			}
		}
	}
	for _, in := range s.all {
		in.serve()
	}
	cctx, cancel := context.WithCancel(context.Background())
	s.consumerStop = cancel
	for _, in := range s.stable[svcShipping] {
		for range 2 {
			s.consumerWG.Add(1)
			go func() {
				defer s.consumerWG.Done()
				in.consume(cctx, s.orders)
			}()
		}
	}
	return s, nil
}

func specFor(name string) serviceSpec {
	i := slices.IndexFunc(specs, func(sp serviceSpec) bool { return sp.name == name })
	return specs[i]
}

func (s *shop) newInstance(ctx context.Context, sp serviceSpec, version, id string, canary bool) (*instance, error) {
	tp, err := newProvider(ctx, s.cfg, sp.name, version, id)
	if err != nil {
		return nil, err
	}
	in := &instance{shop: s, service: sp.name, version: version, id: id, canary: canary, via: sp.via, tp: tp}
	s.all = append(s.all, in)
	in.tracer = tp.Tracer(instrumentationScope)
	var off func() bool
	if sp.name == svcPayment {
		off = func() bool { return s.faults.on(scDropContext) }
	}
	in.prop = newPropagator(off)
	in.db = database{tracer: in.tracer, name: "shop", host: sp.name + "-db"}
	in.cache = cache{tracer: in.tracer, host: sp.name + "-redis"}
	if sp.via == viaQueue {
		return in, nil
	}
	if in.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("listen for %s: %w", id, err)
	}
	in.addr = in.ln.Addr().String()
	return in, nil
}

// serve registers the instance's handlers and starts its server.
func (in *instance) serve() {
	switch in.via {
	case viaHTTP:
		mux := http.NewServeMux()
		switch in.service {
		case svcGateway:
			in.registerGateway(mux)
		case svcCart:
			in.registerCart(mux)
		case svcPayment:
			in.registerPayment(mux)
		}
		// otelhttp wraps the mux, so the server span covers routing and is
		// named "{method} {http.route}" once the mux has matched a pattern.
		in.httpSrv = &http.Server{
			Handler:           otelhttp.NewHandler(mux, in.service, otelhttp.WithTracerProvider(in.tp), otelhttp.WithPropagators(in.prop)),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go func() { _ = in.httpSrv.Serve(in.ln) }()
	case viaGRPC:
		in.grpcSrv = newGRPCServer(in)
		switch in.service {
		case svcCatalog:
			in.grpcSrv.RegisterService(in.catalogDesc(), in)
		case svcCheckout:
			in.grpcSrv.RegisterService(in.checkoutDesc(), in)
		case svcInventory:
			in.grpcSrv.RegisterService(in.inventoryDesc(), in)
		case svcRecommendation:
			in.grpcSrv.RegisterService(in.recommendationDesc(), in)
		}
		go func() { _ = in.grpcSrv.Serve(in.ln) }()
	}
}

// pick chooses the instance of service a request goes to. While the
// bad-deployment scenario is on, the canary takes the place of the last
// stable instance, so it gets that instance's share of the traffic.
func (s *shop) pick(service string) *instance {
	pool := s.stable[service]
	i := shopRand.IntN(len(pool))
	if c := s.canaries[service]; c != nil && i == len(pool)-1 && s.faults.on(scBadDeployment) {
		return c
	}
	return pool[i]
}

// invoke calls a unary gRPC method ("shop.catalog.v1.CatalogService/GetProduct")
// on an instance of service.
func (in *instance) invoke(ctx context.Context, service, method string, req, resp any) error {
	t := in.shop.pick(service)
	cc := in.conns[t.id]
	if cc == nil {
		return fmt.Errorf("%s has no connection to %s", in.id, t.id)
	}
	return cc.Invoke(ctx, "/"+method, req, resp)
}

// call sends an HTTP request to an instance of service.
func (in *instance) call(ctx context.Context, service, method, tmpl, path string, attempt int, body, out any) error {
	t := in.shop.pick(service)
	return callHTTP(ctx, in.http, method, "http://"+t.addr, tmpl, path, attempt, body, out)
}

func (s *shop) gatewayURL() string { return "http://" + s.stable[svcGateway][0].addr }

// instanceInfo is one row of GET /services on the control API.
type instanceInfo struct {
	Service    string `json:"service"`
	Version    string `json:"version"`
	InstanceID string `json:"instanceID"`
	Protocol   string `json:"protocol"`
	Addr       string `json:"addr,omitempty"`
	Canary     bool   `json:"canary,omitempty"`
	Serving    bool   `json:"serving"`
}

func (s *shop) describe() []instanceInfo {
	out := make([]instanceInfo, 0, len(s.all))
	for _, in := range s.all {
		proto := map[transport]string{viaHTTP: "http", viaGRPC: "grpc", viaQueue: "kafka consumer"}[in.via]
		serving := !in.canary || s.faults.on(scBadDeployment)
		if in.service == svcCheckout && !in.canary && in == s.stable[svcCheckout][len(s.stable[svcCheckout])-1] {
			serving = !s.faults.on(scBadDeployment)
		}
		out = append(out, instanceInfo{Service: in.service, Version: in.version, InstanceID: in.id, Protocol: proto,
			Addr: in.addr, Canary: in.canary, Serving: serving})
	}
	return out
}

// close stops serving (the gateway first, so that callers stop before their
// callees), drains the orders topic, and flushes every provider.
func (s *shop) close(ctx context.Context) error {
	order := []string{svcGateway, svcCheckout, svcRecommendation, svcPayment, svcCatalog, svcCart, svcInventory}
	byOrder := slices.Clone(s.all)
	slices.SortStableFunc(byOrder, func(a, b *instance) int {
		ia, ib := slices.Index(order, a.service), slices.Index(order, b.service)
		if ia < 0 {
			ia = len(order)
		}
		if ib < 0 {
			ib = len(order)
		}
		return ia - ib
	})
	for _, in := range byOrder {
		if in.httpSrv != nil {
			_ = in.httpSrv.Shutdown(ctx)
		}
		if in.grpcSrv != nil {
			stopGRPC(ctx, in.grpcSrv)
		}
		if in.httpSrv == nil && in.grpcSrv == nil && in.ln != nil {
			in.ln.Close()
		}
	}
	if s.psp != nil {
		_ = s.psp.Shutdown(ctx)
	}
	if s.consumerStop != nil {
		s.consumerStop()
		s.consumerWG.Wait()
	}
	for _, in := range s.all {
		for _, cc := range in.conns {
			cc.Close()
		}
	}
	// Flush every provider at once: each may wait on its exporter.
	errs := make([]error, len(s.all))
	var wg sync.WaitGroup
	for i, in := range s.all {
		wg.Go(func() {
			if err := in.tp.Shutdown(ctx); err != nil {
				errs[i] = fmt.Errorf("flush spans of %s: %w", in.id, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func stopGRPC(ctx context.Context, s *grpc.Server) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.Stop()
	}
}
