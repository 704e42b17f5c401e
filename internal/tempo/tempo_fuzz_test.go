package tempo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/store/storetest"
)

// FuzzTraceQL runs fuzzed TraceQL queries through the search and metrics
// endpoints over the fixture. Whatever the query, the answer is a 200 or
// a 400 (a 5xx is a bug: the store does not fail here), and a search
// answer has the wire shape Grafana expects (checkSearchWire).
func FuzzTraceQL(f *testing.F) {
	for _, q := range []string{
		`{ }`,
		`{ resource.service.name = "frontend" && span.http.status_code >= 200 }`,
		`{ kind = server } >> { name = "db.query" } | select(span.db.system, nestedSetParent)`,
		`{ status = error } | by(resource.service.name) | count() > 1`,
		`{ .db.system =~ "post.*" } || { duration > 10ms } | avg(duration) > 1ms`,
		`{ } !~ { span.tags = "a" } | coalesce()`,
		`{ event:name = "exception" && event.exception.type != nil } &> { rootServiceName = "frontend" }`,
		`{ span.amount * 2 + 1 > 20.5 } | min(span.amount) < 100`,
		`{ trace:duration > 1ms && span:id != "" && trace:id != "" } with(most_recent=true)`,
		`{ } | rate() by (resource.service.name)`,
		`{ } | quantile_over_time(duration, .5, .99) by (name)`,
		`{ } | histogram_over_time(duration) with(sample=true)`,
		`{ status = error } | count_over_time() | topk(1)`,
		`{ } | compare({ status = error }, 3, 1764000000000000000, 1764000002000000000)`,
		`{ } | max_over_time(span.http.status_code) > 100`,
	} {
		f.Add(q, "1s", uint16(20))
	}
	a := New(storetest.OpenStore(f, fixture()), nil)
	a.now = func() time.Time { return time.Unix(0, base).Add(time.Hour) }
	mux := http.NewServeMux()
	a.Register(mux, "/tempo")
	f.Fuzz(func(t *testing.T, q, step string, limit uint16) {
		v := url.Values{"q": {q}, "start": {"1764000000"}, "end": {"1764000004"}}
		paths := []string{"/tempo/api/metrics/query_range?" + v.Encode() + "&step=" + url.QueryEscape(step), "/tempo/api/metrics/query?" + v.Encode()}
		v.Set("limit", strconv.Itoa(int(limit%1100)))
		v.Set("spss", "2")
		paths = append(paths, "/tempo/api/search?"+v.Encode())
		for _, p := range paths {
			req := httptest.NewRequest(http.MethodGet, p, nil)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != 200 && rec.Code != 400 {
				t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body.Bytes())
			}
			if rec.Code != 200 {
				continue
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("GET %s: invalid JSON %q", p, rec.Body.Bytes())
			}
			if strings.HasPrefix(p, "/tempo/api/search") {
				checkSearchWire(t, p, rec.Body.Bytes())
			}
		}
	})
}
