package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/testutil"
)

// redT0 is the RED fixture's clock origin: a whole hour.
var redT0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// redSpan describes one span of the RED fixture.
type redSpan struct {
	svc, version, name string
	kind               span.Kind
	trace, id, parent  int
	start              time.Time
	dur                time.Duration
	err                bool
	attrs              []span.Attr
	links              []span.Link
}

func redTID(n int) span.TraceID { return span.TraceID{14: byte(n >> 8), 15: byte(n)} }
func redSID(n int) span.SpanID  { return span.SpanID{6: byte(n >> 8), 7: byte(n)} }

func redBatch(spans []redSpan) *span.Batch {
	b := &span.Batch{}
	res := map[string]*span.Resource{}
	for _, s := range spans {
		r := res[s.svc+"\x00"+s.version]
		if r == nil {
			r = &span.Resource{Attrs: []span.Attr{testutil.Str("service.name", s.svc), testutil.Str("service.version", s.version)}}
			res[s.svc+"\x00"+s.version] = r
			b.Resources = append(b.Resources, r)
		}
		x := span.Span{TraceID: redTID(s.trace), SpanID: redSID(s.id), Name: s.name, Kind: s.kind, Resource: r,
			StartUnixNano: uint64(s.start.UnixNano()), EndUnixNano: uint64(s.start.Add(s.dur).UnixNano()), Attrs: s.attrs, Links: s.links}
		if s.parent != 0 {
			x.ParentSpanID = redSID(s.parent)
		}
		if s.err {
			x.StatusCode = span.StatusError
		}
		b.Spans = append(b.Spans, x)
	}
	return b
}

// redFixture is a shop over ten minutes from redT0: frontend calls
// checkout, which queries postgresql, publishes to kafka (consumed by
// shipping) and calls an external payment API; checkout 2.0 appears at
// minute 5 with errors.
func redFixture(t *testing.T) (*spanmetrics.Metrics, *testClock) {
	clk := &testClock{t: redT0}
	m, err := spanmetrics.Open(spanmetrics.DefaultConfig(), spanmetrics.Options{Dir: t.TempDir(), Now: clk.now, Retention: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ms := time.Millisecond
	str := testutil.Str
	n := 0
	for i := range 10 {
		at := redT0.Add(time.Duration(i) * time.Minute)
		clk.set(at.Add(30 * time.Second))
		var spans []redSpan
		for j := range 4 {
			n++
			ver := "1.0"
			if i >= 5 {
				ver = "2.0"
			}
			failing := ver == "2.0" && j == 0
			spans = append(spans,
				redSpan{svc: "frontend", version: "3.1", name: "POST /checkout", kind: span.KindServer, trace: n, id: 1, start: at, dur: 120 * ms, err: failing},
				redSpan{svc: "frontend", version: "3.1", name: "POST", kind: span.KindClient, trace: n, id: 2, parent: 1, start: at.Add(ms), dur: 110 * ms, err: failing},
				redSpan{svc: "checkout", version: ver, name: "PlaceOrder", kind: span.KindServer, trace: n, id: 3, parent: 2, start: at.Add(2 * ms), dur: time.Duration(100+10*j) * ms, err: failing},
				redSpan{svc: "checkout", version: ver, name: "INSERT orders", kind: span.KindClient, trace: n, id: 4, parent: 3, start: at.Add(3 * ms), dur: 4 * ms,
					attrs: []span.Attr{str("db.system.name", "postgresql"), str("server.address", "db")}},
				redSpan{svc: "checkout", version: ver, name: "send orders", kind: span.KindProducer, trace: n, id: 5, parent: 3, start: at.Add(8 * ms), dur: 2 * ms,
					attrs: []span.Attr{str("messaging.system", "kafka")}},
				redSpan{svc: "checkout", version: ver, name: "charge", kind: span.KindClient, trace: n, id: 6, parent: 3, start: at.Add(10 * ms), dur: 60 * ms,
					attrs: []span.Attr{str("server.address", "api.payments.example")}},
				redSpan{svc: "shipping", version: "1.2", name: "process orders", kind: span.KindConsumer, trace: 1000 + n, id: 1, start: at.Add(20 * ms), dur: 9 * ms,
					links: []span.Link{{TraceID: redTID(n), SpanID: redSID(5)}}},
			)
		}
		m.Observe(redBatch(spans))
		m.Tick(clk.now())
	}
	clk.set(redT0.Add(11 * time.Minute))
	m.Tick(clk.now())
	return m, clk
}

// serveJSON serves url on mux and returns the status and the answer,
// indented.
func serveJSON(t *testing.T, mux http.Handler, url string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", url, ct)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bytes.TrimSpace(rec.Body.Bytes()), "", "  "); err != nil {
		t.Fatalf("%s: %v: %s", url, err, rec.Body.Bytes())
	}
	return rec.Code, append(pretty.Bytes(), '\n')
}

// checkGoldenFile compares got with testdata/name, rewriting it under -update.
func checkGoldenFile(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestREDGolden(t *testing.T) {
	m, _ := redFixture(t)
	mux := http.NewServeMux()
	NewSpanMetrics(m, nil).Register(mux)
	rng := "start=2026-03-02T10:00:00Z&end=2026-03-02T10:10:00Z"
	cases := []struct {
		name, url string
		code      int
	}{
		{"servicegraph", "/api/v1/servicegraph?" + rng, 200},
		{"servicegraph_empty", "/api/v1/servicegraph?start=2026-03-01T10:00:00Z&end=2026-03-01T11:00:00Z", 200},
		{"red_by_operation", "/api/v1/red?service=checkout&" + rng + "&step=5m", 200},
		{"red_by_service", "/api/v1/red?by=service&" + rng + "&step=5m", 200},
		{"red_by_version", "/api/v1/red?by=version&service=checkout&" + rng + "&step=5m", 200},
		{"red_one_operation_kind", "/api/v1/red?service=checkout&operation=PlaceOrder&kind=server&" + rng + "&step=10m", 200},
		{"red_bad_step", "/api/v1/red?step=90s&" + rng, 400},
		{"red_bad_by", "/api/v1/red?by=host&" + rng, 400},
		{"red_bad_kind", "/api/v1/red?kind=sideways&" + rng, 400},
		{"red_too_many_points", "/api/v1/red?start=2026-01-01T00:00:00Z&end=2026-03-01T00:00:00Z&step=1m", 400},
		{"bad_range", "/api/v1/servicegraph?start=2026-03-02T10:10:00Z&end=2026-03-02T10:00:00Z", 400},
		{"bad_since", "/api/v1/servicegraph?since=soon", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := serveJSON(t, mux, c.url)
			if code != c.code {
				t.Fatalf("%s: status %d, want %d: %s", c.url, code, c.code, body)
			}
			checkGoldenFile(t, "red_"+c.name+".golden.json", body)
		})
	}
}

// TestREDTimeParams covers the time parameters (docs/api.md, "Time
// parameters"): since, Unix seconds and milliseconds, RFC 3339, and the
// default step.
func TestREDTimeParams(t *testing.T) {
	m, clk := redFixture(t)
	clk.set(redT0.Add(10 * time.Minute))
	mux := http.NewServeMux()
	NewSpanMetrics(m, nil).Register(mux)
	for _, url := range []string{
		"/api/v1/red?by=service&since=10m",
		"/api/v1/red?by=service&start=1772445600&end=1772446200",
		"/api/v1/red?by=service&start=1772445600000&end=1772446200000",
		"/api/v1/red?by=service&start=1772445600000000000&end=1772446200000000000",
		"/api/v1/red?by=service&start=2026-03-02T10:00:00Z&end=1772446200.5",
	} {
		code, body := serveJSON(t, mux, url)
		if code != 200 {
			t.Fatalf("%s: %d %s", url, code, body)
		}
		var r REDResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Step != "1m0s" || len(r.Series) != 3 || r.Series[0].Service != "checkout" || r.Series[0].Calls != 40 {
			t.Fatalf("%s: %s", url, body)
		}
	}
	// Disabled.
	mux3 := http.NewServeMux()
	NewSpanMetrics(nil, nil).Register(mux3)
	code, body := serveJSON(t, mux3, "/api/v1/red")
	if code != 404 || !strings.Contains(string(body), "spanmetrics.enabled") {
		t.Fatalf("disabled: %d %s", code, body)
	}
}
