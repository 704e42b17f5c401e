package spanmetrics

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// apiFixture is a shop over ten minutes from t0: frontend calls checkout,
// which queries postgresql, publishes to kafka (consumed by shipping) and
// calls an external payment API; checkout 2.0 appears at minute 5 with
// errors.
func apiFixture(t *testing.T) (*Metrics, *http.ServeMux) {
	clk := &clock{t: t0}
	m := open(t, DefaultConfig(), t.TempDir(), clk)
	ms := time.Millisecond
	n := 0
	for i := range 10 {
		at := t0.Add(time.Duration(i) * time.Minute)
		clk.set(at.Add(30 * time.Second))
		bb := newBuilder()
		for j := range 4 {
			n++
			ver := "1.0"
			if i >= 5 {
				ver = "2.0"
			}
			failing := ver == "2.0" && j == 0
			bb.add(
				sp{svc: "frontend", version: "3.1", name: "POST /checkout", kind: span.KindServer, trace: n, id: 1, start: at, dur: 120 * ms, err: failing},
				sp{svc: "frontend", version: "3.1", name: "POST", kind: span.KindClient, trace: n, id: 2, parent: 1, start: at.Add(ms), dur: 110 * ms, err: failing},
				sp{svc: "checkout", version: ver, name: "PlaceOrder", kind: span.KindServer, trace: n, id: 3, parent: 2, start: at.Add(2 * ms), dur: time.Duration(100+10*j) * ms, err: failing},
				sp{svc: "checkout", version: ver, name: "INSERT orders", kind: span.KindClient, trace: n, id: 4, parent: 3, start: at.Add(3 * ms), dur: 4 * ms,
					attrs: []span.Attr{str("db.system.name", "postgresql"), str("server.address", "db")}},
				sp{svc: "checkout", version: ver, name: "send orders", kind: span.KindProducer, trace: n, id: 5, parent: 3, start: at.Add(8 * ms), dur: 2 * ms,
					attrs: []span.Attr{str("messaging.system", "kafka")}},
				sp{svc: "checkout", version: ver, name: "charge", kind: span.KindClient, trace: n, id: 6, parent: 3, start: at.Add(10 * ms), dur: 60 * ms,
					attrs: []span.Attr{str("server.address", "api.payments.example")}},
				sp{svc: "shipping", version: "1.2", name: "process orders", kind: span.KindConsumer, trace: 1000 + n, id: 1, start: at.Add(20 * ms), dur: 9 * ms,
					links: []span.Link{{TraceID: tid(n), SpanID: sid(5)}}},
			)
		}
		m.Observe(bb.batch())
		m.tick(clk.now())
	}
	clk.set(t0.Add(11 * time.Minute))
	m.tick(clk.now())
	mux := http.NewServeMux()
	NewHandler(m, nil).Register(mux)
	return m, mux
}

func get(t *testing.T, mux http.Handler, url string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: content type %q", url, ct)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, rec.Body.Bytes(), "", "  "); err != nil {
		t.Fatalf("%s: %v: %s", url, err, rec.Body.Bytes())
	}
	return rec.Code, append(pretty.Bytes(), '\n')
}

func TestAPIGolden(t *testing.T) {
	_, mux := apiFixture(t)
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
			code, body := get(t, mux, c.url)
			if code != c.code {
				t.Fatalf("%s: status %d, want %d: %s", c.url, code, c.code, body)
			}
			golden(t, "api_"+c.name+".golden.json", body)
		})
	}
}

// TestAPIParams covers the time parameters: since, unix seconds, and the
// default step.
func TestAPIParams(t *testing.T) {
	m, _ := apiFixture(t)
	m.now = func() time.Time { return t0.Add(10 * time.Minute) }
	h := NewHandler(m, nil)
	mux2 := http.NewServeMux()
	h.Register(mux2)
	for _, url := range []string{
		"/api/v1/red?by=service&since=10m",
		"/api/v1/red?by=service&start=1772445600&end=1772446200",
		"/api/v1/red?by=service&start=1772445600000&end=1772446200000",
	} {
		code, body := get(t, mux2, url)
		if code != 200 {
			t.Fatalf("%s: %d %s", url, code, body)
		}
		var r redResponse
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if r.Step != "1m0s" || len(r.Series) != 3 || r.Series[0].Service != "checkout" || r.Series[0].Calls != 40 {
			t.Fatalf("%s: %s", url, body)
		}
	}
	// Disabled.
	mux3 := http.NewServeMux()
	NewHandler(nil, nil).Register(mux3)
	code, body := get(t, mux3, "/api/v1/red")
	if code != 404 || !strings.Contains(string(body), "spanmetrics.enabled") {
		t.Fatalf("disabled: %d %s", code, body)
	}
}
