package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixture is a small fixed set of traces: a checkout trace with an error and
// an event, and a single-span health check.
func fixture() *span.Batch {
	front := &span.Resource{Attrs: []span.Attr{
		{Key: "service.name", Value: span.StringValue("frontend")},
		{Key: "service.version", Value: span.StringValue("1.4.2")},
	}}
	pay := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("payment")}}}
	sc := &span.Scope{Name: "io.clew.test", Version: "0.1"}
	t1, _ := span.ParseTraceID("5b8efff798038103d269b633813fc60c")
	t2, _ := span.ParseTraceID("0af7651916cd43dd8448eb211c80319c")
	s1, _ := span.ParseSpanID("eee19b7ec3c1b173")
	s2, _ := span.ParseSpanID("eee19b7ec3c1b174")
	s3, _ := span.ParseSpanID("b7ad6b7169203331")
	const base = 1_764_000_000_000_000_000
	return &span.Batch{
		Resources: []*span.Resource{front, pay},
		Scopes:    []*span.Scope{sc},
		Spans: []span.Span{
			{TraceID: t1, SpanID: s1, Name: "POST /checkout", Kind: span.KindServer, StartUnixNano: base, EndUnixNano: base + 42_000_000,
				Attrs:    []span.Attr{{Key: "http.request.method", Value: span.StringValue("POST")}, {Key: "http.response.status_code", Value: span.IntValue(500)}},
				Resource: front, Scope: sc, StatusCode: span.StatusError, StatusMessage: "payment failed"},
			{TraceID: t1, SpanID: s2, ParentSpanID: s1, Name: "charge", Kind: span.KindClient, StartUnixNano: base + 1_000_000, EndUnixNano: base + 40_000_000,
				Attrs:    []span.Attr{{Key: "payment.method", Value: span.StringValue("card")}, {Key: "amount", Value: span.DoubleValue(12.5)}},
				Events:   []span.Event{{TimeUnixNano: base + 39_000_000, Name: "exception", Attrs: []span.Attr{{Key: "exception.type", Value: span.StringValue("CardDeclined")}}}},
				Resource: pay, Scope: sc, StatusCode: span.StatusError},
			{TraceID: t2, SpanID: s3, Name: "GET /health", Kind: span.KindServer, StartUnixNano: base + 100_000_000, EndUnixNano: base + 100_500_000,
				Attrs:    []span.Attr{{Key: "http.request.method", Value: span.StringValue("GET")}, {Key: "http.response.status_code", Value: span.IntValue(200)}},
				Resource: front, Scope: sc},
		},
	}
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	db := storetest.OpenStore(t, fixture())
	mux := http.NewServeMux()
	a := New(db, db, nil)
	a.now = func() time.Time { return time.Unix(0, 1_764_000_000_000_000_000).Add(time.Hour) }
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestGolden(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, path string
		code       int
	}{
		{"trace", "/api/v1/traces/5b8efff798038103d269b633813fc60c", 200},
		{"trace_short_id", "/api/v1/traces/0af7651916cd43dd8448eb211c80319c", 200},
		{"trace_missing", "/api/v1/traces/00000000000000000000000000000001", 404},
		{"search_all", "/api/v1/search", 200},
		{"search_error_full", "/api/v1/search?status=error&traces=full", 200},
		{"search_attr_numeric", "/api/v1/search?attr=http.response.status_code%3E%3D500", 200},
		{"search_attr_string_vs_int", "/api/v1/search?attr=http.response.status_code%3D%22200%22", 200},
		{"search_resource_regex", "/api/v1/search?attr=resource:service.version%3D~1%5C..*", 200},
		{"search_event_attr", "/api/v1/search?attr=event:exception.type%3DCardDeclined", 200},
		{"search_duration", "/api/v1/search?minDuration=1ms&service=frontend", 200},
		{"search_page", "/api/v1/search?limit=1", 200},
		{"search_none", "/api/v1/search?service=nope", 200},
		{"search_bad_op", "/api/v1/search?attr=x%3D~(", 400},
		{"services", "/api/v1/services", 200},
		{"span_names", "/api/v1/services/frontend/spans", 200},
		{"attributes_span", "/api/v1/attributes?scope=span", 200},
		{"attribute_values", "/api/v1/attributes/http.request.method/values", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatalf("GET %s: invalid JSON %q: %v", c.path, body, err)
			}
			golden := filepath.Join("testdata", c.name+".golden.json")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("GET %s:\n got: %s\nwant: %s", c.path, pretty.Bytes(), want)
			}
		})
	}
}

func TestParseCond(t *testing.T) {
	cases := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"http.method=GET", "any http.method = string GET", false},
		{"span:http.status_code>=500", "span http.status_code >= int 500", false},
		{"resource:host.name=~\"web-.*\"", "resource host.name =~ string web-.*", false},
		{"user.id=\"42\"", "any user.id = string 42", false},
		{"ratio<0.5", "any ratio < double 0.5", false},
		{"sampled=true", "any sampled = bool true", false},
		{"error", "any error exists empty ", false},
		{"url:path=/x", "any url:path = string /x", false},
		{"=x", "", true},
		{"a=>b", "any a = string >b", false},
	}
	for _, c := range cases {
		got, err := parseCond(c.in)
		if (err != nil) != c.wantErr {
			t.Fatalf("parseCond(%q) error = %v, want error %v", c.in, err, c.wantErr)
		}
		if err != nil {
			continue
		}
		s := got.Scope.String() + " " + got.Key + " " + got.Op.String() + " " + got.Value.Type.String() + " " + got.Value.AsString()
		if s != c.want {
			t.Errorf("parseCond(%q) = %q, want %q", c.in, s, c.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
	}{
		{"1764000000", 1764000000e9},
		{"1764000000000", 1764000000000e6},
		{"1764000000000000", 1764000000000000e3},
		{"1764000000000000000", 1764000000000000000},
		{"2025-11-24T16:00:00Z", 1764000000e9},
	}
	for _, c := range cases {
		got, err := parseTime(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseTime(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// TestSearchTimeRange checks that search reads start, end and since as
// every native endpoint does (docs/api.md, "Time parameters").
func TestSearchTimeRange(t *testing.T) {
	now := time.Unix(1764000000, 0)
	cases := []struct {
		query      string
		start, end uint64
		err        string
	}{
		{"", 0, 0, ""},
		{"since=1h", 1763996400e9, 0, ""},
		{"since=1h&end=1763990000", 1763986400e9, 1763990000e9, ""},
		{"start=1763990000000&end=1763990000", 1763990000e9, 1763990000e9, ""},
		{"start=1h", 0, 0, "start: "},
		{"since=1h&start=1763990000", 0, 0, "give start or since, not both"},
		{"start=1763990001&end=1763990000", 0, 0, "end must not be before start"},
		{"since=-5m", 0, 0, "want a positive duration"},
	}
	for _, c := range cases {
		v, _ := url.ParseQuery(c.query)
		q, _, _, err := parseSearch(v, now, 1000)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.query, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.query, err)
		} else if q.Start != c.start || q.End != c.end {
			t.Errorf("%q: start %d end %d, want %d %d", c.query, q.Start, q.End, c.start, c.end)
		}
	}
}

func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{"service=a&attr=x%3D1", "attr=span:a%3E%3D2.5&status=error,ok", "minDuration=1ms&maxDuration=2s&limit=5", "cursor=AAAA&start=2025-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, _, _, err := parseSearch(v, time.Unix(1764000000, 0), 1000)
		if err == nil && q == nil {
			t.Fatal("nil query without error")
		}
	})
}

// TestLimits checks query.max_traces_per_search (a larger limit is a 400
// naming it) and query.max_spans_per_query (the page ends early with a
// warning, and nextCursor continues after it).
func TestLimits(t *testing.T) {
	db := storetest.OpenStore(t, fixture())
	a := New(db, db, nil)
	a.SetLimits(httpapi.Limits{MaxTracesPerSearch: 5, MaxSpansPerQuery: 1})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	search := func(query string) (int, SearchResponse, string) {
		resp, err := http.Get(srv.URL + "/api/v1/search?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var out SearchResponse
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, out, string(body)
	}
	if code, _, body := search("limit=6"); code != 400 || !bytes.Contains([]byte(body), []byte("query.max_traces_per_search")) {
		t.Errorf("limit over the maximum: %d %s", code, body)
	}
	// The newest trace has one span, the next two: the span limit ends
	// the page after the first; the cursor leads to the second (a page
	// always holds one trace, however large).
	var seen []string
	cursor := ""
	for range 3 {
		code, out, body := search("limit=5" + cursor)
		if code != 200 || len(out.Traces) != 1 || out.Total != 2 {
			t.Fatalf("page %d: %d %s", len(seen), code, body)
		}
		seen = append(seen, out.Traces[0].TraceID)
		if out.NextCursor == "" {
			break
		}
		if !bytes.Contains([]byte(out.Warning), []byte("query.max_spans_per_query")) {
			t.Errorf("page %d: warning %q", len(seen), out.Warning)
		}
		cursor = "&cursor=" + out.NextCursor
	}
	if want := []string{"0af7651916cd43dd8448eb211c80319c", "5b8efff798038103d269b633813fc60c"}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("pages %v, want %v", seen, want)
	}
}
