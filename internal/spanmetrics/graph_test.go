package spanmetrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// edgeCounts returns "client>server/conn=calls/errors" for every edge over
// the test hour.
func edgeCounts(t *testing.T, m *Metrics) []string {
	t.Helper()
	es, err := m.Edges(context.Background(), t0.Add(-time.Hour), t0.Add(2*time.Hour), time.Hour*3)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		var calls, errs uint64
		for _, b := range e.Buckets {
			calls += b.Calls
			errs += b.Errors
		}
		out = append(out, fmt.Sprintf("%s>%s/%s=%d/%d", e.Key.Client, e.Key.Server, e.Key.ConnectionType, calls, errs))
	}
	return out
}

func unpairedCounts(m *Metrics) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k, v := range m.unpaired {
		out = append(out, fmt.Sprintf("%s>%s=%d", k.Client, k.Server, v))
	}
	slices.Sort(out)
	return out
}

func TestPairing(t *testing.T) {
	ms := time.Millisecond
	cl := func(svc string, trace, id, parent int, attrs ...span.Attr) sp {
		return sp{svc: svc, name: "call", kind: span.KindClient, trace: trace, id: id, parent: parent, start: t0, dur: 20 * ms, attrs: attrs}
	}
	sv := func(svc string, trace, id, parent int) sp {
		return sp{svc: svc, name: "handle", kind: span.KindServer, trace: trace, id: id, parent: parent, start: t0.Add(ms), dur: 15 * ms}
	}
	prod := func(svc string, trace, id int, attrs ...span.Attr) sp {
		return sp{svc: svc, name: "send", kind: span.KindProducer, trace: trace, id: id, start: t0, dur: 2 * ms, attrs: attrs}
	}
	cons := func(svc string, trace, id, parent int, links ...span.Link) sp {
		return sp{svc: svc, name: "process", kind: span.KindConsumer, trace: trace, id: id, parent: parent, start: t0.Add(5 * ms), dur: 3 * ms, links: links}
	}
	withErr := func(s sp) sp { s.err = true; return s }
	link := func(trace, id int) span.Link { return span.Link{TraceID: tid(trace), SpanID: sid(id)} }

	cases := []struct {
		name     string
		batches  [][]sp // each observed in turn, 1s apart
		wait     time.Duration
		edges    []string
		unpaired []string
	}{
		{
			name:    "same batch",
			batches: [][]sp{{cl("front", 1, 1, 0), sv("back", 1, 2, 1)}},
			edges:   []string{"front>back/=1/0"},
		},
		{
			name:    "server first, later batch",
			batches: [][]sp{{sv("back", 1, 2, 1)}, {cl("front", 1, 1, 0)}},
			edges:   []string{"front>back/=1/0"},
		},
		{
			name:    "client first, later batch, server error",
			batches: [][]sp{{cl("front", 1, 1, 0)}, {withErr(sv("back", 1, 2, 1))}},
			edges:   []string{"front>back/=1/1"},
		},
		{
			name:    "out of order, many",
			batches: [][]sp{{sv("b", 1, 2, 1), cl("a", 2, 1, 0)}, {cl("a", 1, 1, 0), sv("c", 3, 2, 1)}, {sv("b", 2, 2, 1), cl("a", 3, 1, 0)}},
			edges:   []string{"a>b/=2/0", "a>c/=1/0"},
		},
		{
			name:     "expiry: client alone",
			batches:  [][]sp{{cl("front", 1, 1, 0)}},
			wait:     time.Minute,
			unpaired: []string{"front>=1"},
		},
		{
			name:     "expiry: server alone, then its client too late",
			batches:  [][]sp{{sv("back", 1, 2, 1)}},
			wait:     time.Minute,
			unpaired: []string{">back=1"},
		},
		{
			name:    "root server makes no edge",
			batches: [][]sp{{sv("back", 1, 2, 0)}},
			wait:    time.Minute,
		},
		{
			name:    "database: db.system.name, at once",
			batches: [][]sp{{cl("checkout", 1, 1, 0, str("db.system.name", "postgresql"), str("server.address", "db-1")), withErr(cl("checkout", 1, 2, 0, str("db.system.name", "postgresql")))}},
			edges:   []string{"checkout>postgresql/database=2/1"},
		},
		{
			name:    "database: legacy db.system",
			batches: [][]sp{{cl("cart", 1, 1, 0, str("db.system", "redis"))}},
			edges:   []string{"cart>redis/database=1/0"},
		},
		{
			name:    "messaging: consumer in another trace, linked",
			batches: [][]sp{{prod("checkout", 1, 1, str("messaging.system", "kafka"))}, {cons("shipping", 9, 5, 0, link(1, 1))}},
			edges:   []string{"checkout>shipping/messaging_system=1/0"},
		},
		{
			name:    "messaging: consumer first, linked",
			batches: [][]sp{{cons("shipping", 9, 5, 0, link(1, 1))}, {prod("checkout", 1, 1, str("messaging.system", "kafka"))}},
			edges:   []string{"checkout>shipping/messaging_system=1/0"},
		},
		{
			name:    "messaging: consumer child of the producer",
			batches: [][]sp{{prod("checkout", 1, 1), cons("shipping", 1, 2, 1)}},
			edges:   []string{"checkout>shipping/messaging_system=1/0"},
		},
		{
			name:    "messaging: no consumer gives the queue node",
			batches: [][]sp{{prod("checkout", 1, 1, str("messaging.system", "kafka"), str("server.address", "broker"))}},
			wait:    time.Minute,
			edges:   []string{"checkout>kafka/messaging_system=1/0"},
		},
		{
			name:    "external: server.address",
			batches: [][]sp{{withErr(cl("checkout", 1, 1, 0, str("server.address", "api.stripe.com")))}},
			wait:    time.Minute,
			edges:   []string{"checkout>api.stripe.com/virtual_node=1/1"},
		},
		{
			name:    "external: peer.service wins over server.address",
			batches: [][]sp{{cl("checkout", 1, 1, 0, str("server.address", "10.0.0.1"), str("peer.service", "fraud"))}},
			wait:    time.Minute,
			edges:   []string{"checkout>fraud/virtual_node=1/0"},
		},
		{
			name:    "external node not used when the server pairs",
			batches: [][]sp{{cl("checkout", 1, 1, 0, str("server.address", "payment:8080"))}, {sv("payment", 1, 2, 1)}},
			wait:    time.Minute,
			edges:   []string{"checkout>payment/=1/0"},
		},
		{
			name:    "duplicate client span counts once",
			batches: [][]sp{{cl("a", 1, 1, 0)}, {cl("a", 1, 1, 0)}, {sv("b", 1, 2, 1)}},
			edges:   []string{"a>b/=1/0"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: t0.Add(30 * time.Second)}
			m := open(t, DefaultConfig(), "", clk)
			for _, spans := range c.batches {
				m.Observe(newBuilder().add(spans...).batch())
				clk.add(time.Second)
			}
			if c.wait > 0 {
				clk.add(c.wait)
				m.Tick(clk.now())
			}
			if got := edgeCounts(t, m); !slices.Equal(got, c.edges) {
				t.Errorf("edges = %v, want %v", got, c.edges)
			}
			if got := unpairedCounts(m); !slices.Equal(got, c.unpaired) {
				t.Errorf("unpaired = %v, want %v", got, c.unpaired)
			}
		})
	}
}

// TestPendingBound checks that spans waiting for a partner are bounded and
// the excess is counted as dropped.
func TestPendingBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPendingPairs = 10
	clk := &clock{t: t0}
	m := open(t, cfg, "", clk)
	bb := newBuilder()
	for i := 1; i <= 25; i++ {
		bb.add(sp{svc: "a", name: "call", kind: span.KindClient, trace: i, id: 1, start: t0, dur: time.Millisecond})
	}
	m.Observe(bb.batch())
	m.mu.Lock()
	pend, dropped := len(m.graph.clients), m.dropped[EdgeKey{Client: "a"}]
	m.mu.Unlock()
	if pend != 10 || dropped != 15 {
		t.Fatalf("pending %d, dropped %d; want 10 and 15", pend, dropped)
	}
	clk.add(time.Minute)
	m.Tick(clk.now())
	if got := unpairedCounts(m); !slices.Equal(got, []string{"a>=10"}) {
		t.Fatalf("unpaired = %v", got)
	}
	m.mu.Lock()
	nc, ns := len(m.graph.clients), len(m.graph.servers)
	m.mu.Unlock()
	if nc != 0 || ns != 0 {
		t.Fatalf("pending state not empty after expiry: %d %d", nc, ns)
	}
	if s := strings.Join(edgeCounts(t, m), ","); s != "" {
		t.Fatalf("edges %s", s)
	}
}
