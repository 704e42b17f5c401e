package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/jaeger"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/tempo"
	"github.com/clew-dev/clew/internal/testutil"
)

// queryRoutes are the GET endpoints of the query port's APIs; {} stands
// for a fuzzed path part.
var queryRoutes = []string{
	// Native.
	"/api/v1/traces/{}", "/api/v1/search", "/api/v1/services", "/api/v1/services/{}/spans", "/api/v1/span-names",
	"/api/v1/attributes", "/api/v1/attributes/{}/values", "/api/v1/status",
	// Jaeger, legacy and api_v3.
	"/jaeger/api/services", "/jaeger/api/services/{}/operations", "/jaeger/api/operations", "/jaeger/api/traces",
	"/jaeger/api/traces/{}", "/jaeger/api/dependencies", "/jaeger/api/v3/services", "/jaeger/api/v3/operations",
	"/jaeger/api/v3/traces", "/jaeger/api/v3/traces/{}", "/jaeger/api/{}",
	// Tempo.
	"/tempo/api/echo", "/tempo/api/status/buildinfo", "/tempo/api/traces/{}", "/tempo/api/v2/traces/{}",
	"/tempo/api/search", "/tempo/api/search/tags", "/tempo/api/v2/search/tags", "/tempo/api/search/tag/{}/values",
	"/tempo/api/v2/search/tag/{}/values", "/tempo/api/metrics/query_range", "/tempo/api/metrics/query", "/tempo/api/{}",
}

// queryMux mounts the native, Jaeger and Tempo APIs over the TraceQL
// fixture, as Run does.
func queryMux(t testing.TB) *http.ServeMux {
	db := storetest.OpenStore(t, testutil.TraceQLFixture())
	mux := http.NewServeMux()
	api.New(db, db, nil).Register(mux)
	jaeger.New(db, nil).Register(mux, "/jaeger")
	tempo.New(db, nil).Register(mux, "/tempo")
	return mux
}

// FuzzQueryAPIs sends fuzzed path parts and query strings to every query
// endpoint, in process. Whatever the input, a handler must not panic,
// must answer 2xx or 4xx (the store does not fail here, so a 5xx is a
// bug), and a JSON answer must parse.
func FuzzQueryAPIs(f *testing.F) {
	const s0, s4 = "1764000000", "1764000004"
	seeds := []struct {
		route       string
		part, query string
	}{
		{"/api/v1/traces/{}", "1", ""},
		{"/api/v1/search", "", "service=frontend&attr=http.status_code%3E%3D500&limit=2&minDuration=1ms&status=error&kind=server"},
		{"/api/v1/search", "", "cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&traces=full&start=" + s0 + "&end=2025-11-24T16:00:04Z&since=1h"},
		{"/api/v1/attributes/{}/values", "http.method", "scope=span&limit=3"},
		{"/api/v1/search", "", "q=" + url.QueryEscape(`{ status = error } >> { }`) + "&limit=3&since=2h"},
		{"/jaeger/api/traces", "", `service=frontend&operation=charge&tags={"http.method":"POST"}&tag=a:b&start=1764000000000000&end=1764000004000000&minDuration=1ms&maxDuration=1s&limit=5&raw=true`},
		{"/jaeger/api/traces", "", "traceID=1&traceID=3"},
		{"/jaeger/api/traces/{}", "0000000000000001", "start=1&end=2&raw=false"},
		{"/jaeger/api/operations", "", "service=frontend&spanKind=server"},
		{"/jaeger/api/dependencies", "", "endTs=1764000004000&lookback=3600000"},
		{"/jaeger/api/v3/traces", "", `query.service_name=frontend&query.start_time_min=2025-11-24T16:00:00Z&query.duration_min=1ms&query.search_depth=3&query.attributes={"a":1}`},
		{"/jaeger/api/v3/traces/{}", "3", "startTime=2025-11-24T16:00:00Z&rawTraces=true"},
		{"/jaeger/api/v3/operations", "", "service=db&span_kind=internal"},
		{"/tempo/api/search", "", "q=" + url.QueryEscape(`{ resource.service.name = "frontend" && span.http.status_code >= 200 }`) + "&limit=20&spss=3&start=" + s0 + "&end=" + s4},
		{"/tempo/api/search", "", "q=" + url.QueryEscape(`{ kind = server } >> { name = "db.query" } | select(span.db.system, nestedSetParent)`)},
		{"/tempo/api/search", "", "q=" + url.QueryEscape(`{ status = error } | by(resource.service.name) | count() > 1`) + "&spss=1"},
		{"/tempo/api/search", "", "tags=" + url.QueryEscape(`service.name=db db.system="postgres"`) + "&minDuration=10ms&maxDuration=1s"},
		{"/tempo/api/traces/{}", "1", ""},
		{"/tempo/api/v2/traces/{}", "3", "start=1&end=2"},
		{"/tempo/api/v2/search/tags", "", "scope=intrinsic"},
		{"/tempo/api/v2/search/tag/{}/values", url.PathEscape(url.PathEscape("resource.service.name")), "q=%7B%7D"},
		{"/tempo/api/v2/search/tag/{}/values", "status", ""},
		{"/tempo/api/search/tag/{}/values", "service.name", "limit=2"},
		{"/tempo/api/metrics/query_range", "", "q=" + url.QueryEscape(`{ } | quantile_over_time(duration, .5, .9) by (resource.service.name)`) + "&start=" + s0 + "&end=" + s4 + "&step=1s&exemplars=2"},
		{"/tempo/api/metrics/query_range", "", "q=" + url.QueryEscape(`{ } | compare({ status = error }, 5)`) + "&since=1h&step=60"},
		{"/tempo/api/metrics/query_range", "", "q=" + url.QueryEscape(`{ } | histogram_over_time(duration) with(sample=true)`)},
		{"/tempo/api/metrics/query", "", "q=" + url.QueryEscape(`{ } | rate() by (name) | topk(2)`) + "&start=" + s0 + "&end=" + s4},
	}
	for _, s := range seeds {
		i := indexOf(queryRoutes, s.route)
		if i < 0 {
			f.Fatalf("seed route %s is not in queryRoutes", s.route)
		}
		f.Add(uint8(i), s.part, s.query, false)
	}
	f.Add(uint8(indexOf(queryRoutes, "/tempo/api/v2/traces/{}")), "3", "", true)
	mux := queryMux(f)
	f.Fuzz(func(t *testing.T, route uint8, part, query string, protobuf bool) {
		path := strings.Replace(queryRoutes[int(route)%len(queryRoutes)], "{}", part, 1)
		u, err := url.Parse(path + "?" + query)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL, req.RequestURI = u, u.RequestURI()
		if protobuf {
			req.Header.Set("Accept", "application/protobuf")
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 || code < 200 || code >= 300 && code < 400 && code != http.StatusMovedPermanently && code != http.StatusTemporaryRedirect && code != http.StatusPermanentRedirect {
			t.Fatalf("GET %s: %d %s", u.RequestURI(), code, rec.Body.Bytes())
		}
		if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("GET %s: %d invalid JSON %q", u.RequestURI(), code, rec.Body.Bytes())
		}
	})
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
