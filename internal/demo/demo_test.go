package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// span is what the tests keep of one received span.
type span struct {
	service, version, instance string
	traceID, spanID, parentID  string
	name                       string
	kind                       ptrace.SpanKind
	dur                        time.Duration
	attrs                      map[string]any
	links                      []string // "traceID/spanID"
	exceptions                 int      // exception events with a stack trace
}

// receiver is an in-process OTLP/gRPC trace receiver that keeps every span
// in memory.
type receiver struct {
	ptraceotlp.UnimplementedGRPCServer
	mu    sync.Mutex
	spans []span
	addr  string
}

func (r *receiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	var got []span
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes().AsRaw()
		str := func(k string) string { s, _ := res[k].(string); return s }
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			sp := sss.At(j).Spans()
			for k := range sp.Len() {
				s := sp.At(k)
				rec := span{
					service: str("service.name"), version: str("service.version"), instance: str("service.instance.id"),
					traceID: s.TraceID().String(), spanID: s.SpanID().String(), name: s.Name(), kind: s.Kind(),
					dur:   s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()),
					attrs: s.Attributes().AsRaw(),
				}
				if !s.ParentSpanID().IsEmpty() {
					rec.parentID = s.ParentSpanID().String()
				}
				for l := range s.Links().Len() {
					ln := s.Links().At(l)
					rec.links = append(rec.links, ln.TraceID().String()+"/"+ln.SpanID().String())
				}
				for e := range s.Events().Len() {
					ev := s.Events().At(e)
					if st, ok := ev.Attributes().Get("exception.stacktrace"); ev.Name() == "exception" && ok && st.Type() == pcommon.ValueTypeStr && st.Str() != "" {
						rec.exceptions++
					}
				}
				got = append(got, rec)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{addr: ln.Addr().String()}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return r
}

// run runs the demo against a fresh receiver for d, calling during (if not
// nil) while it runs, and returns every span once all are flushed.
func run(t *testing.T, scenarios []string, rate float64, d time.Duration, during func(*Demo)) ([]span, *Demo) {
	t.Helper()
	if testing.Short() {
		d = d * 2 / 3
	}
	r := startReceiver(t)
	cfg := DefaultConfig()
	cfg.Endpoint = r.addr
	cfg.Rate = rate
	cfg.Scenarios = scenarios
	cfg.ControlAddr = "127.0.0.1:0"
	cfg.GroundTruthPath = filepath.Join(t.TempDir(), "demo", "ground-truth.jsonl")
	cfg.BatchTimeout = 200 * time.Millisecond
	dm, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during(dm)
	}
	time.Sleep(d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dm.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	sent, failed := dm.Stats()
	t.Logf("driver sent %d requests, %d failed", sent, failed)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.spans) == 0 {
		t.Fatal("no spans received")
	}
	return slices.Clone(r.spans), dm
}

func byID(spans []span) map[string]*span {
	m := make(map[string]*span, len(spans))
	for i := range spans {
		m[spans[i].traceID+"/"+spans[i].spanID] = &spans[i]
	}
	return m
}

func parentOf(ids map[string]*span, s *span) *span {
	if s.parentID == "" {
		return nil
	}
	return ids[s.traceID+"/"+s.parentID]
}

// isInstrumentedCall says whether a client span is a call to one of the
// shop's own services (otelhttp or otelgrpc), which must have a server
// span on the other side; database, cache and payment-provider calls do not.
func isInstrumentedCall(s *span) bool {
	if s.kind != ptrace.SpanKindClient {
		return false
	}
	if _, ok := s.attrs["rpc.system.name"]; ok {
		return true
	}
	tmpl, ok := s.attrs["url.template"].(string)
	return ok && tmpl != "/v1/charges"
}

func postControl(t *testing.T, d *Demo, path string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post("http://"+d.ControlAddr()+path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestEndToEnd runs the shop with propagation on and checks the shape of
// what it exports: every service, parent/child links across processes,
// matching client/server pairs, span links, exceptions and no orphans. It
// also switches a scenario on through the control API and checks its
// ground truth.
func TestEndToEnd(t *testing.T) {
	spans, dm := run(t, nil, 60, 4*time.Second, func(d *Demo) {
		time.Sleep(time.Second)
		if code, body := postControl(t, d, "/scenarios/error-rate?enable=true"); code != http.StatusOK || body["enabled"] != true {
			t.Errorf("enable error-rate: %d %v", code, body)
		}
		if code, _ := postControl(t, d, "/scenarios/no-such-thing?enable=true"); code != http.StatusNotFound {
			t.Errorf("unknown scenario answered %d, want 404", code)
		}
		if code, _ := postControl(t, d, "/scenarios/error-rate?enable=maybe"); code != http.StatusBadRequest {
			t.Errorf("enable=maybe answered %d, want 400", code)
		}
		resp, err := http.Get("http://" + d.ControlAddr() + "/scenarios")
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Scenarios []scenarioState `json:"scenarios"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(list.Scenarios) != len(scenarioList) {
			t.Errorf("GET /scenarios lists %d scenarios, want %d", len(list.Scenarios), len(scenarioList))
		}
		for _, s := range list.Scenarios {
			if s.Enabled != (s.Name == "error-rate") {
				t.Errorf("scenario %s enabled=%v", s.Name, s.Enabled)
			}
		}
	})
	ids := byID(spans)
	t.Logf("%d spans", len(spans))

	services := map[string]int{}
	for _, s := range spans {
		services[s.service]++
	}
	for _, name := range serviceNames() {
		if services[name] == 0 {
			t.Errorf("no spans of service %s (got %v)", name, services)
		}
	}

	var orphans, crossProcess, pairs, links, exceptions int
	edges := map[string]bool{}
	children := map[string][]*span{}
	for i := range spans {
		s := &spans[i]
		if s.parentID != "" {
			children[s.traceID+"/"+s.parentID] = append(children[s.traceID+"/"+s.parentID], s)
		}
	}
	for i := range spans {
		s := &spans[i]
		p := parentOf(ids, s)
		if s.parentID != "" && p == nil {
			orphans++
			if orphans <= 5 {
				t.Errorf("orphan: %s %q parent %s missing", s.service, s.name, s.parentID)
			}
		}
		if s.kind == ptrace.SpanKindServer && p != nil {
			if p.kind != ptrace.SpanKindClient {
				t.Errorf("server span %s %q has a %v parent, want a client span", s.service, s.name, p.kind)
			}
			if p.service != s.service {
				crossProcess++
				edges[p.service+"->"+s.service] = true
			}
		}
		if isInstrumentedCall(s) {
			var servers []*span
			for _, c := range children[s.traceID+"/"+s.spanID] {
				if c.kind == ptrace.SpanKindServer {
					servers = append(servers, c)
				}
			}
			if len(servers) != 1 || servers[0].name != s.name {
				t.Errorf("client span %s %q has %d server children, want one of the same name", s.service, s.name, len(servers))
			} else {
				pairs++
			}
		}
		if s.kind == ptrace.SpanKindConsumer {
			if s.parentID != "" || len(s.links) != 1 {
				t.Errorf("consumer span %q: parent %q, %d links; want a new root with one link", s.name, s.parentID, len(s.links))
			} else if prod := ids[s.links[0]]; prod == nil || prod.kind != ptrace.SpanKindProducer {
				t.Errorf("consumer span %q links to %s, which is not a received producer span", s.name, s.links[0])
			} else {
				links++
			}
		}
		exceptions += s.exceptions
		if s.attrs["db.system.name"] == "postgresql" && s.attrs["db.query.text"] == nil {
			t.Errorf("database span %q without db.query.text", s.name)
		}
	}
	t.Logf("cross-process parents %d, client/server pairs %d, consumer links %d, exceptions %d, edges %v", crossProcess, pairs, links, exceptions, edges)
	for _, e := range []string{"gateway->catalog", "gateway->checkout", "gateway->cart", "checkout->payment", "checkout->cart", "checkout->inventory", "recommendation->catalog"} {
		if !edges[e] {
			t.Errorf("no server span whose parent is a client span of the caller for %s", e)
		}
	}
	if links == 0 {
		t.Error("no consumer span with a link to its producer")
	}
	if exceptions == 0 {
		t.Error("no exception events with a stack trace")
	}
	var cart503 int
	for _, s := range spans {
		if s.service == svcCart && s.kind == ptrace.SpanKindServer && s.attrs["http.response.status_code"] == int64(503) && s.exceptions > 0 {
			cart503++
		}
	}
	if cart503 == 0 {
		t.Error("error-rate on, but no cart server span answered 503 with an exception")
	}

	// Ground truth: the file has a start and an end line for error-rate,
	// and the API's episode is closed.
	gt := dm.GroundTruth()
	if len(gt) != 1 || gt[0].Scenario != "error-rate" || gt[0].Service != svcCart || gt[0].EndedAt == nil || !gt[0].EndedAt.After(gt[0].StartedAt) {
		t.Errorf("ground truth = %+v", gt)
	}
	lines := readLines(t, dm.cfg.GroundTruthPath)
	if len(lines) != 2 || lines[0].EndedAt != nil || lines[1].EndedAt == nil || lines[0].StartedAt != lines[1].StartedAt {
		t.Errorf("ground-truth file = %+v, want a start line and an end line", lines)
	}
}

func readLines(t *testing.T, path string) []GroundTruth {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []GroundTruth
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var g GroundTruth
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("ground-truth line %q: %v", sc.Text(), err)
		}
		out = append(out, g)
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBadDeployment checks that the new checkout version serves part of the
// traffic and that its PlaceOrder spans are slower than the old version's.
func TestBadDeployment(t *testing.T) {
	spans, dm := run(t, []string{"bad-deployment"}, 80, 4500*time.Millisecond, nil)
	byVersion := map[string][]time.Duration{}
	instances := map[string]bool{}
	for _, s := range spans {
		if s.service == svcCheckout && s.kind == ptrace.SpanKindServer && s.name == opPlaceOrder {
			byVersion[s.version] = append(byVersion[s.version], s.dur)
			instances[s.instance] = true
		}
	}
	oldV, newV := byVersion[checkoutStableVersion], byVersion[checkoutCanaryVersion]
	t.Logf("PlaceOrder spans: %d on %s, %d on %s; instances %v", len(oldV), checkoutStableVersion, len(newV), checkoutCanaryVersion, instances)
	if len(oldV) < 3 || len(newV) < 3 {
		t.Fatalf("too few PlaceOrder spans per version: %d old, %d new", len(oldV), len(newV))
	}
	if instances["checkout-2"] {
		t.Error("checkout-2 served PlaceOrder although the canary replaced it")
	}
	mo, mn := median(oldV), median(newV)
	t.Logf("median PlaceOrder: %v on %s, %v on %s", mo, checkoutStableVersion, mn, checkoutCanaryVersion)
	if mn < mo+100*time.Millisecond {
		t.Errorf("new version's median %v is not clearly slower than the old version's %v", mn, mo)
	}
	gt := dm.GroundTruth()
	if len(gt) != 1 || gt[0].Version != checkoutCanaryVersion || gt[0].Operation != opPlaceOrder || gt[0].EndedAt == nil {
		t.Errorf("ground truth = %+v", gt)
	}
}

// TestDropContext checks that with payment's propagator broken its server
// spans start new traces and checkout's calls to it have no server child.
func TestDropContext(t *testing.T) {
	spans, _ := run(t, []string{"drop-context"}, 80, 3*time.Second, nil)
	ids := byID(spans)
	var roots, parented, unanswered int
	for i := range spans {
		s := &spans[i]
		if s.service == svcPayment && s.kind == ptrace.SpanKindServer {
			if s.parentID == "" {
				roots++
			} else {
				parented++
			}
		}
	}
	hasServerChild := map[string]bool{}
	for i := range spans {
		if p := parentOf(ids, &spans[i]); p != nil && spans[i].kind == ptrace.SpanKindServer {
			hasServerChild[p.traceID+"/"+p.spanID] = true
		}
	}
	for _, s := range spans {
		if s.service == svcCheckout && s.kind == ptrace.SpanKindClient && s.name == "POST /charges" && !hasServerChild[s.traceID+"/"+s.spanID] {
			unanswered++
		}
	}
	t.Logf("payment server spans: %d new roots, %d with a parent; %d checkout calls without a server child", roots, parented, unanswered)
	if roots == 0 || parented != 0 {
		t.Errorf("payment server spans: %d roots, %d parented; want only new roots", roots, parented)
	}
	if unanswered == 0 {
		t.Error("no checkout call to payment lost its server child")
	}
}

// TestBadInput checks that bad scenario names, endpoints and rates are
// errors, never panics.
func TestBadInput(t *testing.T) {
	if _, err := ParseScenarios("bad-deployment, nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("ParseScenarios with an unknown name: %v", err)
	}
	if got, err := ParseScenarios(" bad-deployment,,drop-context "); err != nil || !slices.Equal(got, []string{"bad-deployment", "drop-context"}) {
		t.Errorf("ParseScenarios = %v, %v", got, err)
	}
	for _, ep := range []string{"", "localhost", "http://127.0.0.1:4317", ":4317", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:otlp", "[::1"} {
		if err := ValidateEndpoint(ep); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
	for _, ep := range []string{"127.0.0.1:4317", "clew.internal:4317", "[::1]:4317"} {
		if err := ValidateEndpoint(ep); err != nil {
			t.Errorf("endpoint %q: %v", ep, err)
		}
	}
	for _, r := range []float64{0, -1, math.NaN(), math.Inf(1), maxRate + 1} {
		if err := ValidateRate(r); err == nil {
			t.Errorf("rate %v accepted", r)
		}
	}
	cfg := DefaultConfig()
	cfg.Endpoint = "127.0.0.1:4317"
	cfg.Scenarios = []string{"nope"}
	cfg.ControlAddr = "127.0.0.1:0"
	if d, err := Start(t.Context(), cfg); err == nil {
		_ = d.Close(t.Context())
		t.Error("Start with an unknown scenario succeeded")
	}
}
