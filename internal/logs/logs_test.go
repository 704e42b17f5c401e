package logs

import (
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/clew-dev/clew/internal/otlp"
)

func sampleRequest(n int) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	for r := range 2 {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", []string{"api", "db"}[r])
		rl.Resource().Attributes().PutStr("host.name", "h1")
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("io.clew.test")
		for i := range n / 2 {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)))
			lr.SetObservedTimestamp(pcommon.Timestamp(1_700_000_000_000_000_100 + int64(i)))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr("GET /api/orders/123 200 in 12ms user=alice")
			lr.Attributes().PutStr("http.method", "GET")
			lr.Attributes().PutInt("http.status_code", 200)
			lr.Attributes().PutDouble("ratio", 0.5)
			lr.Attributes().PutBool("ok", true)
			lr.SetTraceID(pcommon.TraceID{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
			lr.SetSpanID(pcommon.SpanID{byte(i), 1, 2, 3, 4, 5, 6, 7})
			lr.SetFlags(plog.DefaultLogRecordFlags.WithIsSampled(true))
		}
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

func TestDecodeAndBatchRoundTrip(t *testing.T) {
	req := sampleRequest(10)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	var a, b Batch
	d := NewDecoder(otlp.Limits{})
	if _, err := d.DecodeProto(pb, &a); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DecodeJSON(js, &b); err != nil {
		t.Fatal(err)
	}
	if len(a.Records) != 10 || len(b.Records) != 10 {
		t.Fatalf("%d and %d records", len(a.Records), len(b.Records))
	}
	r := a.Records[7]
	if r.Service != "db" || r.Scope != "io.clew.test" || r.Severity != 9 || r.Flags != 1 || r.Body != "GET /api/orders/123 200 in 12ms user=alice" {
		t.Fatalf("record %+v", r)
	}
	if v, ok := r.Attr("http.status_code"); !ok || v != "200" {
		t.Fatalf("attr = %q %v", v, ok)
	}
	if v, ok := r.Attr("host.name"); !ok || v != "h1" {
		t.Fatalf("resource attr = %q %v", v, ok)
	}
	enc := AppendBatch(nil, a.Records)
	var c Batch
	if err := DecodeBatch(enc, &c); err != nil {
		t.Fatal(err)
	}
	for i := range a.Records {
		x, y, z := string(AppendJSON(nil, &a.Records[i])), string(AppendJSON(nil, &b.Records[i])), string(AppendJSON(nil, &c.Records[i]))
		if x != y || x != z {
			t.Fatalf("record %d differs:\nproto %s\njson  %s\nbatch %s", i, x, y, z)
		}
		if KeyOf(&a.Records[i]) != KeyOf(&c.Records[i]) {
			t.Fatalf("record %d: key changed through the batch encoding", i)
		}
	}
	// Truncated encodings fail cleanly.
	for n := range len(enc) {
		var x Batch
		if err := DecodeBatch(enc[:n], &x); err == nil {
			t.Fatalf("DecodeBatch of %d of %d bytes: no error", n, len(enc))
		}
	}
}

func TestMatch(t *testing.T) {
	var b Batch
	pb, _ := sampleRequest(4).MarshalProto()
	if _, err := NewDecoder(otlp.Limits{}).DecodeProto(pb, &b); err != nil {
		t.Fatal(err)
	}
	r := &b.Records[0]
	tid, sid := r.TraceID, r.SpanID
	other := [16]byte{9}
	cases := []struct {
		name string
		q    Query
		want bool
	}{
		{"empty", Query{}, true},
		{"service", Query{Service: "api"}, true},
		{"other service", Query{Service: "db"}, false},
		{"severity at", Query{MinSeverity: 9}, true},
		{"severity above", Query{MinSeverity: 13}, false},
		{"time in", Query{Start: r.Time, End: r.Time + 1}, true},
		{"time end exclusive", Query{End: r.Time}, false},
		{"attr", Query{Attrs: []KV{{Key: "http.method", Value: "GET"}}}, true},
		{"attr int as text", Query{Attrs: []KV{{Key: "http.status_code", Value: "200"}}}, true},
		{"resource attr", Query{Attrs: []KV{{Key: "host.name", Value: "h1"}}}, true},
		{"attr mismatch", Query{Attrs: []KV{{Key: "http.method", Value: "POST"}}}, false},
		{"missing attr", Query{Attrs: []KV{{Key: "nope", Value: ""}}}, false},
		{"contains", Query{Contains: []string{"orders/123"}}, true},
		{"not contains", Query{NotContains: []string{"orders"}}, false},
		{"regexp", Query{Regexp: []*regexp.Regexp{regexp.MustCompile(`in \d+ms`)}}, true},
		{"not regexp", Query{NotRegexp: []*regexp.Regexp{regexp.MustCompile(`alice$`)}}, false},
		{"trace", Query{TraceID: &tid}, true},
		{"other trace", Query{TraceID: &other}, false},
		{"span", Query{SpanID: &sid}, true},
		{"resource matcher", Query{Resource: []Matcher{{Key: "service.name", Op: MatchRe, Re: regexp.MustCompile(`^(?:a.*)$`)}}}, true},
		{"resource ne", Query{Resource: []Matcher{{Key: "service.name", Op: MatchNe, Value: "api"}}}, false},
	}
	for _, c := range cases {
		if got := c.q.Match(r); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSeverityNames(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint8
		ok   bool
	}{{"info", 9, true}, {"WARN", 13, true}, {"warning", 13, true}, {"error3", 19, true}, {"17", 17, true}, {"25", 0, false}, {"loud", 0, false}, {"fatal4", 24, true}} {
		got, ok := ParseSeverity(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseSeverity(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if SeverityName(9) != "INFO" || SeverityName(14) != "WARN2" || SeverityName(0) != "UNSPECIFIED" {
		t.Errorf("SeverityName: %s %s %s", SeverityName(9), SeverityName(14), SeverityName(0))
	}
}

func TestCursor(t *testing.T) {
	c := Cursor{Key: Key{Time: -5, Hash: 1 << 63}, Set: true}
	got, err := ParseCursor(c.String())
	if err != nil || got != c {
		t.Fatalf("ParseCursor(String) = %+v %v", got, err)
	}
	for _, bad := range []string{"x", "AAAA", strings.Repeat("A", 40)} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q): no error", bad)
		}
	}
}

func TestLabelName(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"service.name", "service_name"}, {"k8s.pod.name", "k8s_pod_name"}, {"plain", "plain"}, {"1st", "_1st"}, {"", "_"}, {"a-b/c", "a_b_c"}} {
		if got := LabelName(c.in); got != c.want {
			t.Errorf("LabelName(%q) = %q, want %q", c.in, got, c.want)
		}
		if !isLabelOf(c.want, c.in) {
			t.Errorf("isLabelOf(%q, %q) = false", c.want, c.in)
		}
	}
	if isLabelOf("service_names", "service.name") || isLabelOf("service.name", "service_name") {
		t.Error("isLabelOf matched a different name")
	}
}
