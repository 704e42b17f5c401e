package tempo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
)

// limitServer serves the fixture with limits l.
func limitServer(t *testing.T, l httpapi.Limits) *httptest.Server {
	t.Helper()
	a := New(openStore(t, fixture()), nil)
	a.SetLimits(l)
	a.now = func() time.Time { return time.Unix(0, base).Add(time.Hour) }
	mux := http.NewServeMux()
	a.Register(mux, "/tempo")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestLimits checks that each query limit refuses a request with a 400
// naming it, or cuts the answer with status PARTIAL and a message naming
// it.
func TestLimits(t *testing.T) {
	const rng = "&start=1764000000&end=1764000004"
	cases := []struct {
		name   string
		limits httpapi.Limits
		path   string
		code   int
		// want is in the body; traces and series bound the answer's
		// length (-1: not checked).
		want           string
		traces, series int
	}{
		{"points_refused", httpapi.Limits{MaxPointsPerSeries: 100}, "/tempo/api/metrics/query_range?q=" + q(`{ } | rate()`) + rng + "&step=10ms",
			400, "400 points per series, over the limit of 100 (query.max_points_per_series)", -1, -1},
		{"points_at_limit", httpapi.Limits{MaxPointsPerSeries: 400}, "/tempo/api/metrics/query_range?q=" + q(`{ } | rate()`) + rng + "&step=10ms",
			200, `"status":"COMPLETE"`, -1, 1},
		{"series_cut", httpapi.Limits{MaxSeriesPerMetricsQuery: 2}, "/tempo/api/metrics/query_range?q=" + q(`{ } | count_over_time() by (name)`) + rng + "&step=1s",
			200, "query.max_series_per_metrics_query (2)", -1, 2},
		{"series_cut_instant", httpapi.Limits{MaxSeriesPerMetricsQuery: 3}, "/tempo/api/metrics/query?q=" + q(`{ } | count_over_time() by (name)`) + rng,
			200, "query.max_series_per_metrics_query (3)", -1, 3},
		{"series_cut_compare", httpapi.Limits{MaxSeriesPerMetricsQuery: 1}, "/tempo/api/metrics/query_range?q=" + q(`{ } | compare({ status = error })`) + rng + "&step=1s",
			200, "query.max_series_per_metrics_query (1)", -1, -1},
		{"series_under_limit", httpapi.Limits{MaxSeriesPerMetricsQuery: 8}, "/tempo/api/metrics/query_range?q=" + q(`{ } | count_over_time() by (name)`) + rng + "&step=1s",
			200, `"status":"COMPLETE"`, -1, 8},
		{"candidates_search", httpapi.Limits{MaxCandidateTraces: 1}, "/tempo/api/search?q=" + q(`{ }`),
			200, "query.max_candidate_traces (1)", 1, -1},
		{"candidates_metrics", httpapi.Limits{MaxCandidateTraces: 1}, "/tempo/api/metrics/query_range?q=" + q(`{ } >> { } | rate()`) + rng + "&step=1s",
			200, "query.max_candidate_traces (1)", -1, -1},
		{"spans_search", httpapi.Limits{MaxSpansPerQuery: 1}, "/tempo/api/search?q=" + q(`{ }`),
			200, "query.max_spans_per_query (1)", 2, -1},
		{"spans_legacy_search", httpapi.Limits{MaxSpansPerQuery: 1}, "/tempo/api/search?tags=" + q(`service.name=frontend`),
			200, "query.max_spans_per_query (1)", 2, -1},
		{"spans_metrics", httpapi.Limits{MaxSpansPerScan: 1}, "/tempo/api/metrics/query_range?q=" + q(`{ } | rate()`) + rng + "&step=1s",
			200, "query.max_spans_per_scan (1)", -1, 1},
		// A span-column scan holds no spans: the limit on spans held does
		// not cut it.
		{"spans_metrics_scan_not_held", httpapi.Limits{MaxSpansPerQuery: 1}, "/tempo/api/metrics/query_range?q=" + q(`{ } | rate()`) + rng + "&step=1s",
			200, `"status":"COMPLETE"`, -1, 1},
		{"spans_metrics_structural", httpapi.Limits{MaxSpansPerQuery: 1}, "/tempo/api/metrics/query_range?q=" + q(`{ } >> { } | rate()`) + rng + "&step=1s",
			200, "query.max_spans_per_query (1)", -1, -1}, // which traces load before the cut depends on scheduling
		{"traces_lowered", httpapi.Limits{MaxTracesPerSearch: 2}, "/tempo/api/search?q=" + q(`{ }`) + "&limit=50",
			200, `"traces":[`, 2, -1},
		{"complete_search", httpapi.Limits{}, "/tempo/api/search?q=" + q(`{ }`) + "&limit=50",
			200, `"traces":[`, 4, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := limitServer(t, c.limits)
			resp, body := get(t, srv, c.path)
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.want) {
				t.Fatalf("GET %s: %d %s\nwant %d with %q", c.path, resp.StatusCode, body, c.code, c.want)
			}
			if c.code != 200 {
				return
			}
			var out struct {
				Traces  []json.RawMessage
				Series  []json.RawMessage
				Status  string
				Message string
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			if c.traces >= 0 && (len(out.Traces) > c.traces || c.name == "traces_lowered" && len(out.Traces) != c.traces) {
				t.Errorf("%d traces, want at most %d", len(out.Traces), c.traces)
			}
			if c.series >= 0 && len(out.Series) != c.series {
				t.Errorf("%d series, want %d", len(out.Series), c.series)
			}
			if partial := strings.Contains(c.want, "query."); partial != (out.Status == "PARTIAL") || partial && !strings.HasPrefix(out.Message, "partial result: ") {
				t.Errorf("status %q message %q", out.Status, out.Message)
			}
		})
	}
}
