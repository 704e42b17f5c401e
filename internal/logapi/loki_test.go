package logapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/logs"
)

func TestParseLogQL(t *testing.T) {
	valid := []struct {
		in    string
		check func(*logs.Query) bool
	}{
		{`{service_name="checkout"}`, func(q *logs.Query) bool { return q.Service == "checkout" && len(q.Resource) == 1 }},
		{`{ service_name = "a" , host_name=~"h.*", env!="prod", k8s_pod!~` + "`x|y`" + ` }`, func(q *logs.Query) bool {
			return len(q.Resource) == 4 && q.Resource[1].Op == logs.MatchRe && q.Resource[1].Re.MatchString("h1") && !q.Resource[1].Re.MatchString("xh1")
		}},
		{`{}`, func(q *logs.Query) bool { return len(q.Resource) == 0 }},
		{`{a="b"} |= "error" != "debug" |~ "time.*out" !~ "^GET"`, func(q *logs.Query) bool {
			return len(q.Contains) == 1 && len(q.NotContains) == 1 && len(q.Regexp) == 1 && len(q.NotRegexp) == 1
		}},
		{`{a="b"} |= "4bf92f3577b34da6a3ce929d0e0e4736"`, func(q *logs.Query) bool { return q.TraceID != nil && len(q.Contains) == 0 }},
		{`{a="quote \" and \\ backslash"}`, func(q *logs.Query) bool { return q.Resource[0].Value == `quote " and \ backslash` }},
		{`{a="b"} |= ""`, func(q *logs.Query) bool { return len(q.Contains) == 0 }},
		{`{a="b"} | drop __error__, __error_details__ |= "x"`, func(q *logs.Query) bool { return len(q.Contains) == 1 }},
	}
	for _, c := range valid {
		q, err := ParseLogQL(c.in)
		if err != nil {
			t.Errorf("ParseLogQL(%q): %v", c.in, err)
			continue
		}
		if !c.check(q) {
			t.Errorf("ParseLogQL(%q) = %+v", c.in, q)
		}
	}
	fails := []struct{ in, want string }{
		{``, "stream selector"},
		{`service_name="x"`, "stream selector"},
		{`{a="b"`, "want , or }"},
		{`{a="b" b="c"}`, "want , or }"},
		{`{a}`, "want = != =~ or !~"},
		{`{="b"}`, "label name"},
		{`{a=b}`, "quoted string"},
		{`{a="b}`, "unterminated"},
		{`{a=~"("}`, "matcher a"},
		{`{a="b"} |~ "("`, "line filter |~"},
		{`{a="b"} | json`, "unsupported LogQL at byte 8: the pipeline stage | json is not supported"},
		{`{a="b"} | logfmt | level="error"`, "| logfmt is not supported"},
		{`{a="b"} |= "x" | line_format "{{.a}}"`, "| line_format"},
		{`count_over_time({a="b"}[5m])`, "a metric query (count_over_time) where a log query is expected"},
		{`{a="b"} x`, "unexpected"},
		{`{a="b"} | drop level`, "| drop is not supported"},
		{`{a="b"} |= "` + strings.Repeat("x", 20000) + `"`, "at most"},
		{`{a="b"} |~ "` + strings.Repeat("(a)", 400) + `"`, "at most 1024"},
		{`{` + strings.Repeat(`a="b",`, 40) + `a="b"}`, "more than 32 matchers"},
	}
	for _, c := range fails {
		_, err := ParseLogQL(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseLogQL(%.50q) error = %v, want one containing %q", c.in, err, c.want)
		}
	}
}

func TestParseMetric(t *testing.T) {
	valid := []struct {
		in    string
		check func(*metricQuery) bool
	}{
		{`count_over_time({a="b"}[5m])`, func(m *metricQuery) bool { return m.fn == "count_over_time" && m.window == 5*time.Minute && !m.sum }},
		{`sum by (service_name, host_name) (rate({a="b"} |= "x" [1m]))`, func(m *metricQuery) bool {
			return m.fn == "rate" && m.sum && len(m.by) == 2 && len(m.q.Contains) == 1
		}},
		{`sum(count_over_time({a="b"}[1d])) by (level)`, func(m *metricQuery) bool { return m.window == 24*time.Hour && m.by[0] == "level" }},
		{`sum(rate({a="b"}[30s]))`, func(m *metricQuery) bool { return m.sum && m.by == nil }},
		{`sum by (level) (count_over_time({a="b"} | drop __error__[1m]))`, func(m *metricQuery) bool { return m.window == time.Minute }},
	}
	for _, c := range valid {
		m, err := parseMetric(c.in)
		if err != nil || !c.check(m) {
			t.Errorf("parseMetric(%q) = %+v, %v", c.in, m, err)
		}
	}
	fails := []struct{ in, want string }{
		{`bytes_over_time({a="b"}[5m])`, "bytes_over_time is not supported"},
		{`count_over_time({a="b"})`, "want a range"},
		{`count_over_time({a="b"}[0s])`, "positive duration"},
		{`count_over_time({a="b"}[5m]`, "want ) to close"},
		{`sum(count_over_time({a="b"}[5m])) + 1`, "after the metric query is not supported"},
		{`sum by (a) (count_over_time({a="b"}[5m])) by (b)`, "by given twice"},
		{`count_over_time({a="b"} | json [5m])`, "| json is not supported"},
	}
	for _, c := range fails {
		_, err := parseMetric(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseMetric(%q) error = %v, want one containing %q", c.in, err, c.want)
		}
	}
}

func lokiServer(t *testing.T) *httptest.Server {
	t.Helper()
	resA := []logs.KV{{Key: "service.name", Value: "checkout", Type: 's'}, {Key: "host.name", Value: "h1", Type: 's'}}
	resB := []logs.KV{{Key: "service.name", Value: "payment", Type: 's'}}
	var recs []logs.Record
	for i := 5; i >= 0; i-- {
		r := logs.Record{Time: 1_700_000_000_000_000_000 + int64(i), Body: []string{"ok", "error: declined"}[i%2], BodyType: 's', Resource: resA, Service: "checkout", Severity: uint8(9 + 8*(i%2))}
		if i >= 4 {
			r.Resource, r.Service = resB, "payment"
		}
		r.TraceID = [16]byte{0x4b, 0xf9, byte(i)}
		recs = append(recs, r)
	}
	mux := http.NewServeMux()
	a := New(&fakeReader{recs}, nil)
	a.now = func() time.Time { return time.Unix(0, 1_700_000_000_000_000_000).Add(time.Minute) }
	a.RegisterLoki(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestLoki answers the request shapes of Grafana's Loki data source
// (Explore, label browser, trace to logs) and compares the JSON.
func TestLoki(t *testing.T) {
	srv := lokiServer(t)
	cases := []struct {
		name, path string
		code       int
		want       string
	}{
		{"explore", "/loki/api/v1/query_range?direction=backward&end=1700000000100000000&limit=1000&query=" + url.QueryEscape(`{service_name="checkout"} |= "error"`) + "&start=1699999990000000000&step=2000ms", 200,
			`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"host_name":"h1","service_name":"checkout"},"values":[["1700000000000000003","error: declined"],["1700000000000000001","error: declined"]]}],"stats":{}}}`},
		{"forward", "/loki/api/v1/query_range?direction=forward&limit=2&start=1699999990000000000&end=1700000000100000000&query=" + url.QueryEscape(`{service_name=~"check.*|pay.*"}`), 200,
			`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"service_name":"payment"},"values":[["1700000000000000004","ok"],["1700000000000000005","error: declined"]]}],"stats":{}}}`},
		{"trace to logs", "/loki/api/v1/query_range?start=1699999990000000000&end=1700000000100000000&query=" + url.QueryEscape(`{service_name="checkout"} |= "4bf90200000000000000000000000000"`), 200,
			`{"status":"success","data":{"resultType":"streams","result":[{"stream":{"host_name":"h1","service_name":"checkout"},"values":[["1700000000000000002","ok"]]}],"stats":{}}}`},
		{"labels", "/loki/api/v1/labels?start=1699999990000000000&end=1700000000100000000", 200,
			`{"status":"success","data":["host_name","service_name"]}`},
		{"label values", "/loki/api/v1/label/service_name/values?start=1699999990000000000&end=1700000000100000000", 200,
			`{"status":"success","data":["checkout","payment"]}`},
		{"label values of a selection", "/loki/api/v1/label/service_name/values?query=" + url.QueryEscape(`{host_name="h1"}`), 200,
			`{"status":"success","data":["checkout"]}`},
		{"series", "/loki/api/v1/series?match[]=" + url.QueryEscape(`{service_name=~".+"}`), 200,
			`{"status":"success","data":[{"host_name":"h1","service_name":"checkout"},{"service_name":"payment"}]}`},
		{"unsupported parser", "/loki/api/v1/query_range?query=" + url.QueryEscape(`{a="b"} | json`), 400,
			"unsupported LogQL at byte 8: the pipeline stage | json is not supported (clew supports a stream selector and the line filters |= != |~ !~)"},
		{"unsupported metric", "/loki/api/v1/query?query=" + url.QueryEscape(`avg_over_time({a="b"} | unwrap x [1m])`), 400,
			"unsupported LogQL at byte 0: the metric function avg_over_time is not supported (clew has count_over_time and rate, optionally inside sum [by (...)]) (clew supports a stream selector and the line filters |= != |~ !~)"},
		{"instant log query", "/loki/api/v1/query?query=" + url.QueryEscape(`{a="b"}`), 400,
			"log queries are not supported as an instant query type, please change your query to a range query type"},
		{"log volume", "/loki/api/v1/query_range?start=1700000000&end=1700000010&step=5&query=" + url.QueryEscape(`sum by (service_name) (count_over_time({service_name=~".+"}[10s]))`), 200,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"service_name":"checkout"},"values":[[1700000000,"1"],[1700000005,"4"],[1700000010,"3"]]},{"metric":{"service_name":"payment"},"values":[[1700000005,"2"],[1700000010,"2"]]}],"stats":{}}}`},
		{"volume by level", "/loki/api/v1/query_range?start=1700000000&end=1700000000&step=5&query=" + url.QueryEscape(`sum by (detected_level) (count_over_time({service_name=~".+"} | drop __error__ [10s]))`), 200,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"detected_level":"info"},"values":[[1700000000,"1"]]}],"stats":{}}}`},
		{"rate per stream", "/loki/api/v1/query_range?start=1700000000&end=1700000010&step=10s&query=" + url.QueryEscape(`rate({service_name="checkout"} |= "error" [10s])`), 200,
			`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"host_name":"h1","service_name":"checkout"},"values":[[1700000010,"0.2"]]}],"stats":{}}}`},
		{"instant metric", "/loki/api/v1/query?time=1700000001&query=" + url.QueryEscape(`sum(count_over_time({service_name="payment"}[1m]))`), 200,
			`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000001,"2"]}],"stats":{}}}`},
		{"too many steps", "/loki/api/v1/query_range?start=1600000000&end=1700000000&step=1&query=" + url.QueryEscape(`count_over_time({a="b"}[1m])`), 400,
			"the range holds 100000001 steps, at most 11000: raise step"},
		{"series without match", "/loki/api/v1/series", 400, "match[] is required"},
		{"bad direction", "/loki/api/v1/query_range?direction=up&query=" + url.QueryEscape(`{a="b"}`), 400, `direction "up": want forward or backward`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.code || strings.TrimSpace(string(b)) != c.want {
				t.Fatalf("GET %s:\n got %d %s\nwant %d %s", c.path, resp.StatusCode, b, c.code, c.want)
			}
		})
	}
	// Loki takes form-encoded POSTs.
	resp, err := http.PostForm(srv.URL+"/loki/api/v1/labels", url.Values{"start": {"1699999990000000000"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST labels: %d", resp.StatusCode)
	}
}
