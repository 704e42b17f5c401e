package jaeger

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/httpapi"
)

// TestLimits checks the query limits on both HTTP APIs:
// query.max_traces_per_search lowers a larger limit, and
// query.max_spans_per_query cuts the answer, saying so in the legacy
// envelope's errors or in api_v3's Warning header.
func TestLimits(t *testing.T) {
	db := openDB(t)
	loadCompat(t, db, fixtureShift())
	serveWith := func(l httpapi.Limits) *httptest.Server {
		a := New(db, nil)
		a.SetLimits(l)
		mux := http.NewServeMux()
		a.Register(mux, "/jaeger")
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	legacy := func(srv *httptest.Server, query string) (int, legacyResponse, []Trace) {
		code, body := get(t, srv, "/jaeger/api/traces?"+query)
		var resp struct {
			legacyResponse
			Data []Trace `json:"data"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		return code, resp.legacyResponse, resp.Data
	}

	small := serveWith(httpapi.Limits{MaxTracesPerSearch: 2})
	if code, env, data := legacy(small, "limit=50"); code != 200 || len(data) != 2 || env.Total < 30 || len(env.Errors) != 0 {
		t.Errorf("legacy limit=50 with max 2: %d, %d traces, %+v", code, len(data), env)
	}
	if code, body := get(t, small, "/jaeger/api/v3/traces?query.searchDepth=50"); code != 200 || len(v3Shape(t, body)) != 2 {
		t.Errorf("v3 searchDepth=50 with max 2: %d, %v", code, v3Shape(t, body))
	}

	// example-service-1's newest trace is the large one (10,008 spans):
	// past the span limit, example_trace is left out.
	cut := serveWith(httpapi.Limits{MaxSpansPerQuery: 1000})
	code, env, data := legacy(cut, "service=example-service-1&limit=10")
	if code != 200 || len(data) != 1 || data[0].TraceID != largeTraceID.String() || env.Total != 2 ||
		len(env.Errors) != 1 || !strings.Contains(env.Errors[0].Msg, "partial result: 1 of 2 traces") || !strings.Contains(env.Errors[0].Msg, "query.max_spans_per_query") {
		t.Errorf("legacy cut: %d, %d traces, %+v", code, len(data), env)
	}
	resp, err := http.Get(cut.URL + "/jaeger/api/v3/traces?query.serviceName=example-service-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if w := resp.Header.Get("Warning"); resp.StatusCode != 200 || !strings.HasPrefix(w, `199 clew "partial result: 1 of 2 traces`) {
		t.Errorf("v3 cut: %d, Warning %q", resp.StatusCode, w)
	}
	// Asked by ID, the traces past the limit are listed in errors.
	code, env, data = legacy(cut, "traceID="+largeTraceID.String()+"&traceID=1")
	if code != 200 || len(data) != 1 || len(env.Errors) != 2 || env.Errors[1].TraceID != "00000000000000000000000000000001" {
		t.Errorf("legacy by ID cut: %d, %d traces, %+v", code, len(data), env)
	}
}
