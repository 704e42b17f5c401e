package tempo

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

var update = flag.Bool("update", false, "rewrite golden files")

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	db := openStore(t, fixture())
	a := New(db, nil)
	a.now = func() time.Time { return time.Unix(0, base).Add(time.Hour) }
	mux := http.NewServeMux()
	a.Register(mux, "/tempo")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func q(s string) string { return url.QueryEscape(s) }

func TestGolden(t *testing.T) {
	srv := newTestServer(t)
	const s0, s4 = "1764000000", "1764000004"
	cases := []struct {
		name, path string
		code       int
	}{
		{"trace_v1", "/tempo/api/traces/00000000000000000000000000000001", 200},
		{"trace_v2", "/tempo/api/v2/traces/3", 200},
		{"trace_missing", "/tempo/api/v2/traces/77", 404},
		{"trace_bad_id", "/tempo/api/traces/xyz", 400},
		{"search_traceql", "/tempo/api/search?q=" + q(`{ resource.service.name = "frontend" && span.http.status_code >= 200 }`) + "&limit=20&spss=3&start=" + s0 + "&end=" + s4, 200},
		{"search_structural", "/tempo/api/search?q=" + q(`{ kind = server } >> { name = "db.query" } | select(span.db.system, nestedSetParent)`), 200},
		{"search_by", "/tempo/api/search?q=" + q(`{ status = error } | by(resource.service.name)`) + "&spss=1", 200},
		{"search_orphan", "/tempo/api/search?q=" + q(`{ kind = consumer }`), 200},
		{"search_enums", "/tempo/api/search?q=" + q(`{ status = error } | select(status, kind, duration, statusMessage, span.http.status_code)`), 200},
		{"search_empty_query", "/tempo/api/search?limit=2", 200},
		{"search_legacy", "/tempo/api/search?tags=" + q(`service.name=db db.system="postgres"`) + "&minDuration=10ms", 200},
		{"search_bad_query", "/tempo/api/search?q=" + q(`{ name = }`), 400},
		{"search_metrics_query", "/tempo/api/search?q=" + q(`{ } | rate()`), 400},
		{"search_bad_limit", "/tempo/api/search?limit=x", 400},
		{"tags_v1", "/tempo/api/search/tags", 200},
		{"tags_v2", "/tempo/api/v2/search/tags", 200},
		{"tags_v2_span", "/tempo/api/v2/search/tags?scope=span", 200},
		{"tags_v2_bad_scope", "/tempo/api/v2/search/tags?scope=nope", 400},
		{"tag_values_v1", "/tempo/api/search/tag/service.name/values", 200},
		{"tag_values_v2_resource", "/tempo/api/v2/search/tag/" + url.PathEscape(url.PathEscape("resource.service.name")) + "/values", 200},
		{"tag_values_v2_int", "/tempo/api/v2/search/tag/span.http.status_code/values", 200},
		{"tag_values_v2_status", "/tempo/api/v2/search/tag/status/values", 200},
		{"tag_values_v2_kind", "/tempo/api/v2/search/tag/kind/values", 200},
		{"tag_values_v2_name", "/tempo/api/v2/search/tag/name/values", 200},
		{"query_range", "/tempo/api/metrics/query_range?q=" + q(`{ } | count_over_time() by (resource.service.name)`) + "&start=" + s0 + "&end=" + s4 + "&step=1s", 200},
		{"query_range_quantile", "/tempo/api/metrics/query_range?q=" + q(`{ name = "db.query" } | quantile_over_time(duration, .9)`) + "&start=" + s0 + "000000000&end=2025-11-24T16:00:04Z&step=2", 200},
		{"query_range_bad_step", "/tempo/api/metrics/query_range?q=" + q(`{ } | rate()`) + "&start=" + s0 + "&end=" + s4 + "&step=1ns", 400},
		{"query_range_not_metrics", "/tempo/api/metrics/query_range?q=" + q(`{ }`), 400},
		{"query_instant", "/tempo/api/metrics/query?q=" + q(`{ status = error } | count_over_time() by (resource.service.name)`) + "&since=2h", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, srv, c.path)
			if resp.StatusCode != c.code {
				t.Fatalf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
			}
			var out []byte
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, body, "", "  "); err != nil {
					t.Fatalf("GET %s: invalid JSON %q: %v", c.path, body, err)
				}
				out = append(pretty.Bytes(), '\n')
			} else {
				out = body
			}
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("GET %s:\n%s\nwant:\n%s", c.path, out, want)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	srv := newTestServer(t)
	resp, body := get(t, srv, "/tempo/api/echo")
	if resp.StatusCode != 200 || string(body) != "echo" {
		t.Errorf("echo: %d %q", resp.StatusCode, body)
	}
}

// TestTraceProtobuf decodes the protobuf answers with the OpenTelemetry
// Collector's pdata: v1 is a Trace (TracesData's wire shape), v2 a
// TraceByIDResponse whose field 1 is that Trace.
func TestTraceProtobuf(t *testing.T) {
	srv := newTestServer(t)
	check := func(name string, msg []byte) {
		tr, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(msg)
		if err != nil {
			t.Fatalf("%s: unmarshal: %v", name, err)
		}
		if tr.SpanCount() != 4 || tr.ResourceSpans().Len() != 4 {
			t.Fatalf("%s: %d spans in %d resource spans, want 4 in 4", name, tr.SpanCount(), tr.ResourceSpans().Len())
		}
		rs := tr.ResourceSpans().At(0)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		sp := rs.ScopeSpans().At(0).Spans().At(0)
		if svc.Str() != "frontend" || sp.Name() != "POST /checkout" || sp.Status().Code() != ptrace.StatusCodeError || sp.TraceID().String() != "00000000000000000000000000000001" {
			t.Errorf("%s: first span %s/%s status %v trace %s", name, svc.Str(), sp.Name(), sp.Status().Code(), sp.TraceID())
		}
	}
	for _, accept := range []string{"application/protobuf", "application/x-protobuf"} {
		resp, body := get(t, srv, "/tempo/api/traces/1", "Accept", accept)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/protobuf" {
			t.Fatalf("v1 %s: %d %s", accept, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		check("v1", body)
	}
	resp, body := get(t, srv, "/tempo/api/v2/traces/1", "Accept", "application/protobuf")
	if resp.StatusCode != 200 {
		t.Fatalf("v2: %d", resp.StatusCode)
	}
	// TraceByIDResponse: field 1 (length-delimited) holds the Trace, and
	// nothing follows (status COMPLETE is the zero value).
	if len(body) < 2 || body[0] != 0x0a {
		t.Fatalf("v2: body starts with %x, want field 1", body[:min(len(body), 4)])
	}
	n, k := uint64(0), 1
	for shift := 0; k < len(body); shift += 7 {
		c := body[k]
		k++
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if uint64(len(body)-k) != n {
		t.Fatalf("v2: field 1 is %d bytes, %d follow", n, len(body)-k)
	}
	check("v2", body[k:])
}

func TestSearchTraps(t *testing.T) {
	srv := newTestServer(t)
	_, body := get(t, srv, "/tempo/api/search?q="+q(`{ status = error } | select(kind, duration, span.amount, span.tags)`))
	var res struct {
		Traces []struct {
			StartTimeUnixNano any
			SpanSets          []struct {
				Spans []struct {
					StartTimeUnixNano any
					DurationNanos     any
					Attributes        []map[string]any
				}
			}
		}
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Traces) != 1 {
		t.Fatalf("got %d traces: %s", len(res.Traces), body)
	}
	tr := res.Traces[0]
	if _, ok := tr.StartTimeUnixNano.(string); !ok {
		t.Errorf("startTimeUnixNano is %T, want a string", tr.StartTimeUnixNano)
	}
	if len(tr.SpanSets) == 0 || len(tr.SpanSets[0].Spans) == 0 {
		t.Fatal("spanSets empty")
	}
	sp := tr.SpanSets[0].Spans[0]
	if _, ok := sp.DurationNanos.(string); !ok {
		t.Errorf("durationNanos is %T, want a string", sp.DurationNanos)
	}
	for _, a := range sp.Attributes {
		if a["key"] == "status" || a["key"] == "kind" {
			if v := a["value"].(map[string]any); v["stringValue"] == nil {
				t.Errorf("%v is not a string value", a)
			}
		}
	}
}
