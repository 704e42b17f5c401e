package jaeger

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

// goldenFixtures are the compat traces loaded, unshifted, for the golden
// files: one per place a tag can sit, links, scope name and version, and
// a trace whose spans lie on two days.
var goldenFixtures = []string{
	"span_tags_trace", "log_tags_trace", "process_tags_trace", "multi_spot_tags_trace",
	"link_attributes_trace", "scope_name_version_trace", "scope_attributes_trace", "multi_index_trace",
}

// richTrace has what the fixtures lack: a parent, kinds, an error status
// with a message, a trace state, dropped counts, a named event, an array
// attribute, a NaN, and two resources with the same content (one process).
func richTrace() *span.Batch {
	res1 := &span.Resource{Attrs: []span.Attr{
		{Key: "service.name", Value: span.StringValue("checkout")},
		{Key: "host.name", Value: span.StringValue("web-1")},
	}, DroppedAttrs: 1}
	res2 := &span.Resource{Attrs: slicesClone(res1.Attrs), DroppedAttrs: 1}
	sc := &span.Scope{Name: "io.clew.test", Version: "0.1", Attrs: []span.Attr{{Key: "scope.attr", Value: span.BoolValue(true)}}}
	tid, _ := span.ParseTraceID("5b8efff798038103d269b633813fc60c")
	s1, _ := span.ParseSpanID("eee19b7ec3c1b173")
	s2, _ := span.ParseSpanID("eee19b7ec3c1b174")
	other, _ := span.ParseTraceID("0af7651916cd43dd8448eb211c80319c")
	const base = 1_764_000_000_000_000_000
	return &span.Batch{
		Resources: []*span.Resource{res1, res2},
		Scopes:    []*span.Scope{sc},
		Spans: []span.Span{
			{TraceID: tid, SpanID: s1, Name: "POST /checkout", Kind: span.KindServer, Flags: 0x301, StartUnixNano: base, EndUnixNano: base + 42_000_500,
				TraceState: "vendor=x", DroppedAttrs: 2, DroppedEvents: 3, DroppedLinks: 4,
				Attrs: []span.Attr{
					{Key: "http.response.status_code", Value: span.IntValue(500)},
					{Key: "ratio", Value: span.DoubleValue(0.25)},
					{Key: "nan", Value: span.Value{Type: span.TypeDouble, Num: 0x7ff8000000000001}},
					{Key: "tags", Value: span.Value{Type: span.TypeArray, Array: []span.Value{span.StringValue("a"), span.IntValue(1)}}},
					{Key: "blob", Value: span.BytesValue([]byte{0, 0, 0x30, 0x39})},
				},
				Events: []span.Event{{TimeUnixNano: base + 1_000, Name: "exception", Attrs: []span.Attr{
					{Key: "exception.type", Value: span.StringValue("CardDeclined")},
					{Key: "attempt", Value: span.IntValue(2)},
				}}},
				Links:    []span.Link{{TraceID: other, SpanID: s2}},
				Resource: res1, Scope: sc, StatusCode: span.StatusError, StatusMessage: "payment failed"},
			{TraceID: tid, SpanID: s2, ParentSpanID: s1, Name: "charge", Kind: span.KindClient, StartUnixNano: base + 1_000_000, EndUnixNano: base + 40_000_000,
				Links:    []span.Link{{TraceID: tid, SpanID: s1}}, // the parent again: not repeated
				Resource: res2, Scope: sc, StatusCode: span.StatusOK},
		},
	}
}

func slicesClone(a []span.Attr) []span.Attr { return append([]span.Attr(nil), a...) }

func TestGolden(t *testing.T) {
	db := openDB(t)
	srv := serve(t, db)
	for _, f := range goldenFixtures {
		appendBatch(t, db, decodeFixture(t, filepath.Join(compatDir, "traces", f+".json"), 0))
	}
	appendBatch(t, db, richTrace())
	cases := []struct {
		name, path string
		code       int
	}{
		{"legacy_services", "/jaeger/api/services", 200},
		{"legacy_service_operations", "/jaeger/api/services/checkout/operations", 200},
		{"legacy_operations", "/jaeger/api/operations?service=checkout", 200},
		{"legacy_operations_kind", "/jaeger/api/operations?service=checkout&spanKind=client", 200},
		{"legacy_operations_bad_kind", "/jaeger/api/operations?service=checkout&spanKind=sideways", 400},
		{"legacy_trace_rich", "/jaeger/api/traces/5b8efff798038103d269b633813fc60c", 200},
		{"legacy_trace_rich_raw", "/jaeger/api/traces/5b8efff798038103d269b633813fc60c?raw=true", 200},
		{"legacy_trace_span_tags", "/jaeger/api/traces/00000000000000000000000000000001", 200},
		{"legacy_trace_log_tags", "/jaeger/api/traces/0000000000000002", 200},
		{"legacy_trace_process_tags", "/jaeger/api/traces/00000000000000000000000000000003", 200},
		{"legacy_trace_links", "/jaeger/api/traces/00000000000000000000000000000226", 200},
		{"legacy_trace_scope", "/jaeger/api/traces/00000000000000000000000000000224", 200},
		{"legacy_trace_missing", "/jaeger/api/traces/00000000000000000000000000000099", 404},
		{"legacy_trace_bad_id", "/jaeger/api/traces/xyz", 400},
		{"legacy_search_tag", "/jaeger/api/traces?service=query03-service&tag=sameplacetag2:123&tag=sameplacetag4:true", 200},
		{"legacy_search_trace_ids", "/jaeger/api/traces?traceID=0000000000000002&traceID=00000000000000000000000000000098", 200},
		{"legacy_search_none", "/jaeger/api/traces?service=checkout&minDuration=1h", 200},
		{"legacy_search_bad_duration", "/jaeger/api/traces?service=checkout&minDuration=10", 400},
		{"legacy_dependencies", "/jaeger/api/dependencies?endTs=1764000000000&lookback=3600000", 200},
		{"legacy_unknown", "/jaeger/api/nope", 404},
		{"v3_services", "/jaeger/api/v3/services", 200},
		{"v3_operations", "/jaeger/api/v3/operations?service=checkout&spanKind=server", 200},
		{"v3_trace_rich", "/jaeger/api/v3/traces/5b8efff798038103d269b633813fc60c", 200},
		{"v3_trace_missing", "/jaeger/api/v3/traces/00000000000000000000000000000099", 404},
		{"v3_find", "/jaeger/api/v3/traces?query.serviceName=checkout&query.attributes=%7B%22http.response.status_code%22%3A%22500%22%7D", 200},
		{"v3_find_none", "/jaeger/api/v3/traces?query.serviceName=checkout&query.durationMin=1h", 404},
		{"v3_find_bad_time", "/jaeger/api/v3/traces?query.start_time_min=yesterday", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := get(t, srv, c.path)
			if code != c.code {
				t.Fatalf("GET %s: %d %s, want %d", c.path, code, body, c.code)
			}
			checkGolden(t, c.name, body)
		})
	}
}

// TestTransformFixture checks the legacy trace model against Jaeger's own
// OTLP-to-UI conversion of the same input (api-shapes/transform_*.json).
// The input holds one span twice; clew stores a span sent twice once, so
// the expected trace is Jaeger's with the duplicate removed.
func TestTransformFixture(t *testing.T) {
	db := openDB(t)
	srv := serve(t, db)
	appendBatch(t, db, decodeFixture(t, filepath.Join(compatDir, "api-shapes", "transform_otlp2jaeger-in.json"), 0))
	var want struct {
		Data []map[string]any `json:"data"`
	}
	readJSON(t, filepath.Join(compatDir, "api-shapes", "transform_otlp2jaeger-out.json"), &want)
	tr := want.Data[0]
	tr["spans"] = tr["spans"].([]any)[:1]

	code, body := get(t, srv, "/jaeger/api/traces/83a9efd15c1c98a977e0711cc93ee28b")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != 1 || !reflect.DeepEqual(got.Data[0], tr) {
		t.Errorf("got  %s\nwant %s", mustJSON(got.Data), mustJSON(tr))
	}
}

// TestV3Shapes checks api_v3 answers field by field against Jaeger's
// snapshots (api-shapes/apiv3_*.json), on stores holding just what each
// snapshot shows.
func TestV3Shapes(t *testing.T) {
	tid, _ := span.ParseTraceID("1")
	sid, _ := span.ParseSpanID("2")
	traceDB := openDB(t)
	appendBatch(t, traceDB, &span.Batch{Spans: []span.Span{{TraceID: tid, SpanID: sid, Name: "foobar", Kind: span.KindServer,
		StatusCode: span.StatusError, Resource: &span.Resource{}, Scope: &span.Scope{}}}})
	namesDB := openDB(t)
	foo := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("foo")}}}
	appendBatch(t, namesDB, &span.Batch{Spans: []span.Span{{TraceID: tid, SpanID: sid, Name: "get_users", Kind: span.KindServer,
		StartUnixNano: 1, EndUnixNano: 2, Resource: foo, Scope: &span.Scope{}}}})
	traceSrv, namesSrv := serve(t, traceDB), serve(t, namesDB)
	for _, c := range []struct {
		srv         interface{ Close() }
		url, golden string
	}{
		{traceSrv, traceSrv.URL + "/jaeger/api/v3/traces/00000000000000000000000000000001", "apiv3_GetTrace"},
		{traceSrv, traceSrv.URL + "/jaeger/api/v3/traces?query.operationName=foobar", "apiv3_FindTraces"},
		{namesSrv, namesSrv.URL + "/jaeger/api/v3/services", "apiv3_GetServices"},
		{namesSrv, namesSrv.URL + "/jaeger/api/v3/operations?service=foo&spanKind=server", "apiv3_GetOperations"},
	} {
		var want, got any
		readJSON(t, filepath.Join(compatDir, "api-shapes", c.golden+".json"), &want)
		resp, err := traceSrv.Client().Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", c.url, resp.StatusCode, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", c.golden, mustJSON(got), mustJSON(want))
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
