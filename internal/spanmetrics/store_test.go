package spanmetrics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store/storetest"
)

// shopWorkload generates n demo-like requests over the ten minutes from
// t0, as batches whose spans are shuffled across batches (servers often
// arrive before their clients). Some traces lose their client span, some
// payment calls have no server (an external service).
func shopWorkload(seed uint64, n int) []*span.Batch {
	r := rand.New(rand.NewPCG(seed, 1))
	res := map[string]*span.Resource{}
	resource := func(svc, ver string) *span.Resource {
		if x := res[svc]; x != nil {
			return x
		}
		x := &span.Resource{Attrs: []span.Attr{str("service.name", svc), str("service.version", ver)}}
		res[svc] = x
		return x
	}
	var all []span.Span
	id := 0
	mk := func(trace span.TraceID, parent span.SpanID, svc, name string, kind span.Kind, start time.Time, dur time.Duration, fail bool, attrs ...span.Attr) span.Span {
		id++
		s := span.Span{TraceID: trace, SpanID: sid(id), ParentSpanID: parent, Name: name, Kind: kind, Resource: resource(svc, "1.0"),
			StartUnixNano: uint64(start.UnixNano()), EndUnixNano: uint64(start.Add(dur).UnixNano()), Attrs: attrs}
		if fail {
			s.StatusCode = span.StatusError
		}
		return s
	}
	ms := time.Millisecond
	for i := range n {
		tr := tid(i + 1)
		at := t0.Add(time.Duration(r.IntN(600_000)) * ms)
		fail := r.IntN(10) == 0
		root := mk(tr, span.SpanID{}, "frontend", []string{"GET /", "POST /cart", "POST /checkout"}[r.IntN(3)], span.KindServer, at, 200*ms, fail)
		call := mk(tr, root.SpanID, "frontend", "POST", span.KindClient, at.Add(ms), 190*ms, fail)
		srv := mk(tr, call.SpanID, "checkout", "PlaceOrder", span.KindServer, at.Add(2*ms), time.Duration(50+r.IntN(150))*ms, fail)
		spans := []span.Span{root, srv}
		if r.IntN(20) != 0 { // sometimes the client span is lost
			spans = append(spans, call)
		}
		for range r.IntN(3) {
			spans = append(spans, mk(tr, srv.SpanID, "checkout", "SELECT orders", span.KindClient, at.Add(3*ms), time.Duration(1+r.IntN(9))*ms, r.IntN(30) == 0,
				str("db.system.name", "postgresql"), str("server.address", "db")))
		}
		spans = append(spans, mk(tr, srv.SpanID, "checkout", "GET", span.KindClient, at.Add(4*ms), ms/2, false, str("db.system", "redis")))
		prod := mk(tr, srv.SpanID, "checkout", "send orders", span.KindProducer, at.Add(5*ms), 2*ms, false, str("messaging.system", "kafka"))
		spans = append(spans, prod)
		if r.IntN(8) != 0 { // the consumer, in a trace of its own, linked
			c := mk(tid(100000+i), span.SpanID{}, "shipping", "process orders", span.KindConsumer, at.Add(30*ms), 8*ms, false, str("messaging.system", "kafka"))
			c.Links = []span.Link{{TraceID: tr, SpanID: prod.SpanID}}
			spans = append(spans, c)
		}
		pay := mk(tr, srv.SpanID, "checkout", "charge", span.KindClient, at.Add(6*ms), 40*ms, fail, str("server.address", "payments.example"))
		spans = append(spans, pay)
		if r.IntN(2) == 0 { // payment instrumented half of the time
			spans = append(spans, mk(tr, pay.SpanID, "payment", "Charge", span.KindServer, at.Add(7*ms), 30*ms, fail))
		}
		all = append(all, spans...)
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	var out []*span.Batch
	for len(all) > 0 {
		k := min(len(all), 1+r.IntN(200))
		b := &span.Batch{Spans: append([]span.Span(nil), all[:k]...)}
		seen := map[*span.Resource]bool{}
		for _, s := range b.Spans {
			if !seen[s.Resource] {
				seen[s.Resource] = true
				b.Resources = append(b.Resources, s.Resource)
			}
		}
		out = append(out, b)
		all = all[k:]
	}
	return out
}

// TestAgainstStore ingests a workload into a real store and into span
// metrics, as the app's appender does, then checks that the RED and
// service-graph answers of the API equal counts computed directly from
// the spans read back from the store.
func TestAgainstStore(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenStore(t)
	clk := &clock{t: t0}
	m := open(t, DefaultConfig(), t.TempDir(), clk)
	batches := shopWorkload(42, 600)
	for i, b := range batches {
		if err := db.Append(ctx, otlp.MarshalProto(nil, b), b); err != nil {
			t.Fatal(err)
		}
		m.Observe(b)
		if i%5 == 0 { // time passes (well within pairing_wait): minutes are written, pairs wait
			clk.add(100 * time.Millisecond)
			m.Tick(clk.now())
		}
	}
	clk.add(time.Minute) // every pending pair expires
	m.Tick(clk.now())

	// Read the spans back from the store.
	q := &search.Query{}
	if err := q.Compile(); err != nil {
		t.Fatal(err)
	}
	res, err := db.Search(ctx, q, 100000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var spans []span.Span
	for _, h := range res.Hits {
		b, ok, err := db.FindTrace(ctx, h.TraceID)
		if err != nil || !ok {
			t.Fatalf("FindTrace %s: %v %v", h.TraceID, ok, err)
		}
		spans = append(spans, b.Spans...)
	}

	// Expected RED per service/operation/kind, and edges, from the spans.
	type red struct{ calls, errors uint64 }
	wantRED := map[string]red{}
	byID := map[pkey]*span.Span{}
	for i := range spans {
		s := &spans[i]
		k := fmt.Sprintf("%s|%s|%s", s.Resource.ServiceName(), s.Name, s.Kind)
		r := wantRED[k]
		r.calls++
		if s.StatusCode == span.StatusError {
			r.errors++
		}
		wantRED[k] = r
		byID[pkey{s.TraceID, s.SpanID}] = s
	}
	wantEdges := map[string]red{}
	paired := map[pkey]bool{}
	edge := func(c, s *span.Span, server, conn string) {
		k := c.Resource.ServiceName() + ">" + server + "/" + conn
		e := wantEdges[k]
		e.calls++
		if c.StatusCode == span.StatusError || s != nil && s.StatusCode == span.StatusError {
			e.errors++
		}
		wantEdges[k] = e
	}
	attr := func(s *span.Span, key string) string {
		for _, a := range s.Attrs {
			if a.Key == key {
				return a.Value.Str
			}
		}
		return ""
	}
	for i := range spans {
		s := &spans[i]
		var parents []pkey
		if !s.ParentSpanID.IsZero() {
			parents = append(parents, pkey{s.TraceID, s.ParentSpanID})
		}
		for _, l := range s.Links {
			parents = append(parents, pkey{l.TraceID, l.SpanID})
		}
		for _, pk := range parents {
			p := byID[pk]
			switch {
			case p != nil && s.Kind == span.KindServer && p.Kind == span.KindClient:
				edge(p, s, s.Resource.ServiceName(), "")
			case p != nil && s.Kind == span.KindConsumer && p.Kind == span.KindProducer:
				edge(p, s, s.Resource.ServiceName(), ConnMessaging)
			default:
				continue
			}
			paired[pk] = true
			break
		}
	}
	for i := range spans {
		s := &spans[i]
		switch {
		case s.Kind == span.KindClient && (attr(s, "db.system.name") != "" || attr(s, "db.system") != ""):
			db := attr(s, "db.system.name")
			if db == "" {
				db = attr(s, "db.system")
			}
			edge(s, nil, db, ConnDatabase)
		case paired[pkey{s.TraceID, s.SpanID}]:
		case s.Kind == span.KindProducer && attr(s, "messaging.system") != "":
			edge(s, nil, attr(s, "messaging.system"), ConnMessaging)
		case s.Kind == span.KindClient && attr(s, "server.address") != "":
			edge(s, nil, attr(s, "server.address"), ConnVirtual)
		}
	}

	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	end := start.Add(15 * time.Minute)
	series, err := m.Range(ctx, nil, start, end, 15*time.Minute)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	gotRED := map[string]red{}
	for _, s := range series {
		k := fmt.Sprintf("%s|%s|%s", s.Key.Service, s.Key.Operation, s.Key.Kind)
		r := gotRED[k]
		for _, b := range s.Buckets {
			r.calls += b.Calls
			r.errors += b.Errors
		}
		gotRED[k] = r
	}
	if len(gotRED) != len(wantRED) {
		t.Errorf("RED series: got %d, want %d\n got %v\nwant %v", len(gotRED), len(wantRED), gotRED, wantRED)
	}
	for k, w := range wantRED {
		if gotRED[k] != w {
			t.Errorf("RED %s: got %+v, want %+v", k, gotRED[k], w)
		}
	}

	g, err := m.Graph(ctx, start, end)
	if err != nil {
		t.Fatalf("Graph: %v", err)
	}
	gotEdges := map[string]red{}
	for _, e := range g.Edges {
		gotEdges[e.Key.Client+">"+e.Key.Server+"/"+e.Key.ConnectionType] = red{e.Total.Calls, e.Total.Errors}
	}
	if len(gotEdges) != len(wantEdges) {
		t.Errorf("edges: got %v, want %v", gotEdges, wantEdges)
	}
	for k, w := range wantEdges {
		if gotEdges[k] != w {
			t.Errorf("edge %s: got %+v, want %+v", k, gotEdges[k], w)
		}
	}
	t.Logf("%d spans in %d batches; %d RED series, %d edges: %v", len(spans), len(batches), len(gotRED), len(gotEdges), gotEdges)
}
