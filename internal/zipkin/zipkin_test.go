package zipkin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore/providers/filesystem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store"
)

// storeAppender adapts the store to ingest.Appender as internal/app does.
type storeAppender struct{ db *store.DB }

func (a storeAppender) Append(ctx context.Context, _ string, rec []byte, b *span.Batch) error {
	err := a.db.Append(ctx, rec, b)
	if errors.Is(err, store.ErrOverloaded) || errors.Is(err, store.ErrClosed) {
		return fmt.Errorf("%w: %w", ingest.ErrRetryable, err)
	}
	return err
}

type testServer struct {
	*httptest.Server
	api *API
	reg *prometheus.Registry
}

// newTestServer serves the Zipkin API and the native API over a real
// store in a temporary directory, as clew's query port and Zipkin port do.
func newTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.DefaultConfig()
	cfg.WALSync = "none"
	cfg.Retention = 0
	db, err := store.Open(context.Background(), cfg, store.Options{Tenant: "t", WALDir: filepath.Join(dir, "wal"), Bucket: bkt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := prometheus.NewRegistry()
	z := New(ingest.NewCore(ingest.DefaultConfig(), "t", storeAppender{db}, nil, reg), db, nil)
	mux := http.NewServeMux()
	z.Register(mux)
	api.New(db, db, nil).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, api: z, reg: reg}
}

func (s *testServer) post(t *testing.T, contentType, encoding string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v2/spans", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *testServer) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// zspanJSON is a Zipkin v2 JSON span as a generic map, numbers kept exact.
type zspanJSON = map[string]any

// loadExample reads an example file: a list of spans or a single span.
func loadExample(t testing.TB, path string) []zspanJSON {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var out []zspanJSON
	switch v := v.(type) {
	case []any:
		for _, s := range v {
			out = append(out, s.(zspanJSON))
		}
	case zspanJSON:
		out = []zspanJSON{v}
	}
	return out
}

func exampleFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	return files
}

func decodeList(t *testing.T, b []byte) []zspanJSON {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []zspanJSON
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

// normalize rewrites a span as Zipkin itself would write it back: 128-bit
// trace IDs with zero high bits as 16 digits, no parentId equal to the id,
// no zero timestamp or duration, no empty endpoints, tags or annotations,
// no false flags.
func normalize(s zspanJSON) zspanJSON {
	out := zspanJSON{}
	for k, v := range s {
		out[k] = v
	}
	if id, ok := out["traceId"].(string); ok {
		id = strings.ToLower(id)
		if len(id) == 32 && strings.HasPrefix(id, "0000000000000000") {
			id = id[16:]
		}
		out["traceId"] = id
	}
	if out["parentId"] == out["id"] {
		delete(out, "parentId")
	}
	for _, k := range []string{"timestamp", "duration"} {
		if n, ok := out[k].(json.Number); ok && n.String() == "0" {
			delete(out, k)
		}
	}
	for _, k := range []string{"localEndpoint", "remoteEndpoint", "tags"} {
		if m, ok := out[k].(map[string]any); ok && len(m) == 0 {
			delete(out, k)
		}
	}
	if a, ok := out["annotations"].([]any); ok && len(a) == 0 {
		delete(out, "annotations")
	}
	for _, k := range []string{"debug", "shared"} {
		if out[k] == false {
			delete(out, k)
		}
	}
	for _, k := range []string{"localEndpoint", "remoteEndpoint"} {
		if m, ok := out[k].(map[string]any); ok {
			for _, f := range []string{"ipv4", "ipv6"} {
				if ip, ok := m[f].(string); ok {
					m2 := map[string]any{}
					for k, v := range m {
						m2[k] = v
					}
					a, _ := parseIP(ip)
					m2[f] = a.String()
					m = m2
				}
			}
			out[k] = m
		}
	}
	for k, v := range out {
		if v == nil {
			delete(out, k)
		}
	}
	return out
}

func spanKey(s zspanJSON) string {
	return fmt.Sprint(s["id"], "/", s["kind"], "/", s["timestamp"], "/", s["name"], "/", s["shared"])
}

// compareSpans compares two span lists field by field, in any order.
func compareSpans(t *testing.T, what string, got, want []zspanJSON) {
	t.Helper()
	sort.Slice(got, func(i, j int) bool { return spanKey(got[i]) < spanKey(got[j]) })
	sort.Slice(want, func(i, j int) bool { return spanKey(want[i]) < spanKey(want[j]) })
	if len(got) != len(want) {
		t.Errorf("%s: got %d spans, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		g, w := got[i], normalize(want[i])
		keys := map[string]bool{}
		for k := range g {
			keys[k] = true
		}
		for k := range w {
			keys[k] = true
		}
		for k := range keys {
			if !reflect.DeepEqual(g[k], w[k]) {
				t.Errorf("%s: span %v: field %s = %v, want %v", what, w["id"], k, g[k], w[k])
			}
		}
	}
}

// encodeProto encodes spans as a zipkin.proto3 ListOfSpans, field by
// field, independently of the decoder under test.
func encodeProto(t testing.TB, spans []zspanJSON) []byte {
	var out []byte
	hexID := func(s string, n int) []byte {
		s = strings.Repeat("0", max(0, 2*n-len(s))) + s
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("bad id %q", s)
		}
		return b
	}
	num := func(v any) uint64 {
		n, err := v.(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return uint64(n)
	}
	endpoint := func(e map[string]any) []byte {
		var b []byte
		if s, ok := e["serviceName"].(string); ok {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendString(b, s)
		}
		for _, k := range []string{"ipv4", "ipv6"} {
			if s, ok := e[k].(string); ok {
				a, ok := parseIP(s)
				if !ok {
					t.Fatalf("bad address %q", s)
				}
				b = protowire.AppendTag(b, map[string]protowire.Number{"ipv4": 2, "ipv6": 3}[k], protowire.BytesType)
				b = protowire.AppendBytes(b, a.AsSlice())
			}
		}
		if p, ok := e["port"]; ok {
			b = protowire.AppendTag(b, 4, protowire.VarintType)
			b = protowire.AppendVarint(b, num(p))
		}
		return b
	}
	for _, s := range spans {
		var b []byte
		tid := s["traceId"].(string)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, hexID(tid, map[bool]int{true: 8, false: 16}[len(tid) <= 16]))
		if p, ok := s["parentId"].(string); ok {
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendBytes(b, hexID(p, 8))
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, hexID(s["id"].(string), 8))
		if k, ok := s["kind"].(string); ok {
			b = protowire.AppendTag(b, 4, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(slices.Index(protoKinds[:], k)))
		}
		if n, ok := s["name"].(string); ok {
			b = protowire.AppendTag(b, 5, protowire.BytesType)
			b = protowire.AppendString(b, n)
		}
		if v, ok := s["timestamp"]; ok {
			b = protowire.AppendTag(b, 6, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, num(v))
		}
		if v, ok := s["duration"]; ok {
			b = protowire.AppendTag(b, 7, protowire.VarintType)
			b = protowire.AppendVarint(b, num(v))
		}
		for f, k := range map[protowire.Number]string{8: "localEndpoint", 9: "remoteEndpoint"} {
			if e, ok := s[k].(map[string]any); ok {
				b = protowire.AppendTag(b, f, protowire.BytesType)
				b = protowire.AppendBytes(b, endpoint(e))
			}
		}
		if anns, ok := s["annotations"].([]any); ok {
			for _, a := range anns {
				a := a.(map[string]any)
				var ab []byte
				ab = protowire.AppendTag(ab, 1, protowire.Fixed64Type)
				ab = protowire.AppendFixed64(ab, num(a["timestamp"]))
				ab = protowire.AppendTag(ab, 2, protowire.BytesType)
				ab = protowire.AppendString(ab, a["value"].(string))
				b = protowire.AppendTag(b, 10, protowire.BytesType)
				b = protowire.AppendBytes(b, ab)
			}
		}
		if tags, ok := s["tags"].(map[string]any); ok {
			keys := make([]string, 0, len(tags))
			for k := range tags {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				var eb []byte
				eb = protowire.AppendTag(eb, 1, protowire.BytesType)
				eb = protowire.AppendString(eb, k)
				eb = protowire.AppendTag(eb, 2, protowire.BytesType)
				eb = protowire.AppendString(eb, tags[k].(string))
				b = protowire.AppendTag(b, 11, protowire.BytesType)
				b = protowire.AppendBytes(b, eb)
			}
		}
		for f, k := range map[protowire.Number]string{12: "debug", 13: "shared"} {
			if s[k] == true {
				b = protowire.AppendTag(b, f, protowire.VarintType)
				b = protowire.AppendVarint(b, 1)
			}
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, b)
	}
	return out
}

// TestExamples posts every Zipkin example as JSON and as protobuf, reads
// each trace back through GET /api/v2/trace/{id} and compares it field by
// field with what was sent.
func TestExamples(t *testing.T) {
	for _, file := range exampleFiles(t) {
		spans := loadExample(t, file)
		for _, enc := range []string{"json", "proto"} {
			t.Run(filepath.Base(file)+"/"+enc, func(t *testing.T) {
				srv := newTestServer(t)
				var body []byte
				ct := "application/json"
				if enc == "json" {
					body, _ = json.Marshal(spans)
				} else {
					body, ct = encodeProto(t, spans), "application/x-protobuf"
				}
				if code, msg := srv.post(t, ct, "", body); code != http.StatusAccepted {
					t.Fatalf("POST: %d %s", code, msg)
				}
				byTrace := map[string][]zspanJSON{}
				for _, s := range spans {
					id := normalize(s)["traceId"].(string)
					byTrace[id] = append(byTrace[id], s)
				}
				for id, want := range byTrace {
					code, b := srv.get(t, "/api/v2/trace/"+id)
					if code != http.StatusOK {
						t.Fatalf("GET trace %s: %d %s", id, code, b)
					}
					compareSpans(t, "trace "+id, decodeList(t, b), want)
				}
			})
		}
	}
}

// TestQueryAPI runs the query endpoints over the messaging example.
func TestQueryAPI(t *testing.T) {
	srv := newTestServer(t)
	spans := loadExample(t, filepath.Join("testdata", "examples", "messaging.json"))
	chinese := loadExample(t, filepath.Join("testdata", "examples", "zipkin2-chinese.json"))
	body, _ := json.Marshal(append(spans, chinese...))
	if code, msg := srv.post(t, "application/json", "", body); code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, msg)
	}
	// messaging.json starts at 1521186011926119 µs; the Chinese one at
	// 1472470996199000 µs.
	const window = "&endTs=1521186012000&lookback=100000000000"
	cases := []struct {
		path string
		code int
		want string
	}{
		{"/api/v2/services", 200, `["backend","frontend","订单维护服务"]`},
		{"/api/v2/spans?serviceName=backend", 200, `["next-message","on-message"]`},
		{"/api/v2/spans?serviceName=nope", 200, `[]`},
		{"/api/v2/spans", 400, ""},
		{"/api/v2/remoteServices?serviceName=frontend", 200, `["rabbitmq"]`},
		{"/api/v2/remoteServices?serviceName=backend", 200, `["rabbitmq"]`},
		{"/api/v2/remoteServices?serviceName=订单维护服务", 200, `["个人信息服务"]`},
		{"/api/v2/remoteServices", 400, ""},
		{"/api/v2/dependencies?endTs=1521186012000", 200, `[]`},
		{"/api/v2/dependencies", 400, ""},
		{"/api/v2/autocompleteValues?key=rabbit.queue", 200, `["backend"]`},
		{"/api/v2/autocompleteValues", 400, ""},
		{"/api/v2/traces?limit=x", 400, ""},
		{"/api/v2/traces?minDuration=-1", 400, ""},
		{"/api/v2/traces?endTs=soon", 400, ""},
		{"/api/v2/traceMany?traceIds=5aab74dbb904746bb33447baae403ed6", 400, ""},
		{"/api/v2/traceMany?traceIds=5aab74dbb904746bb33447baae403ed6,5aab74dbb904746bb33447baae403ed6", 400, ""},
		{"/api/v2/traceMany?traceIds=5aab74dbb904746bb33447baae403ed6,XYZ", 400, ""},
		{"/api/v2/nope", 404, ""},
	}
	for _, c := range cases {
		code, b := srv.get(t, c.path)
		if code != c.code || c.want != "" && string(b) != c.want {
			t.Errorf("GET %s = %d %s, want %d %s", c.path, code, b, c.code, c.want)
		}
	}
	code, b := srv.get(t, "/api/v2/autocompleteKeys")
	var keys []string
	if code != 200 || json.Unmarshal(b, &keys) != nil || !slices.Contains(keys, "rabbit.queue") || slices.Contains(keys, keyPeerService) {
		t.Errorf("autocompleteKeys = %d %s", code, b)
	}

	traceCount := func(path string) int {
		t.Helper()
		code, b := srv.get(t, path)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		var traces [][]zspanJSON
		if err := json.Unmarshal(b, &traces); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
		for _, tr := range traces {
			if len(tr) == 0 {
				t.Errorf("GET %s: an empty trace", path)
			}
		}
		return len(traces)
	}
	finds := []struct {
		query string
		want  int
	}{
		{"serviceName=frontend", 1},
		{"serviceName=all", 2},
		{"serviceName=backend&spanName=on-message", 1},
		{"serviceName=backend&spanName=publish", 0},
		{"annotationQuery=rabbit.queue%3Dbackend", 1},
		{"annotationQuery=rabbit.queue%3Dbackend+and+rabbit.exchange", 1},
		// Terms may be met by different spans of the trace (Zipkin's rule).
		{"annotationQuery=rabbit.queue%3Dbackend+and+http.path", 1},
		{"annotationQuery=rabbit.queue%3Dbackend+and+http.path%3D%2Fnope", 0},
		{"annotationQuery=error", 1},
		{"annotationQuery=http.status_code%3D403+and+error", 1},
		{"remoteServiceName=rabbitmq", 1},
		{"minDuration=2839", 2},
		{"minDuration=2839&maxDuration=2839", 1}, // the frontend server span
		{"minDuration=2840&maxDuration=100000", 0},
		{"minDuration=207000&maxDuration=207000", 1},
		{"limit=1", 1},
		{"", 2},
	}
	for _, f := range finds {
		if got := traceCount("/api/v2/traces?" + f.query + window); got != f.want {
			t.Errorf("traces?%s: %d traces, want %d", f.query, got, f.want)
		}
	}
	// The window excludes what is outside it; the default lookback is a day.
	if got := traceCount("/api/v2/traces?endTs=1521186011000&lookback=1000"); got != 0 {
		t.Errorf("traces before the data: %d, want 0", got)
	}
	if got := traceCount("/api/v2/traces"); got != 0 {
		t.Errorf("traces of the last day: %d, want 0", got)
	}
	if got := traceCount("/api/v2/traceMany?traceIds=5aab74dbb904746bb33447baae403ed6,4d1e00c0db9010db86154a4ba6e91385,00000000000000000000000000000001"); got != 2 {
		t.Errorf("traceMany: %d traces, want 2", got)
	}
}

// TestPostEdgeCases checks the cases compat/README.md names and the
// refusals of bad input, with their metrics.
func TestPostEdgeCases(t *testing.T) {
	srv := newTestServer(t)
	one := `[{"traceId":"0123456789abcdef","id":"0000000000000001","name":"x","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"svc"}}]`
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	cases := []struct {
		name, ct, enc string
		body          []byte
		code          int
	}{
		{"empty_json_list", "application/json", "", []byte(" [ ] "), 202},
		{"empty_proto_list", "application/x-protobuf", "", nil, 202},
		{"no_content_type_is_json", "", "", []byte(one), 202},
		{"gzip_json", "application/json", "gzip", gz(one), 202},
		{"gzip_proto", "application/x-protobuf", "gzip", gz(string(encodeProto(t, decodeList(t, []byte(one))))), 202},
		{"json_charset", "application/json; charset=utf-8", "", []byte(one), 202},
		{"proto_declared_json_sent", "application/x-protobuf", "", []byte(one), 400},
		{"json_declared_proto_sent", "application/json", "", encodeProto(t, decodeList(t, []byte(one))), 400},
		{"empty_json_body", "application/json", "", nil, 400},
		{"json_object_not_list", "application/json", "", []byte(one[1 : len(one)-1]), 400},
		{"json_truncated", "application/json", "", []byte(one[:40]), 400},
		{"json_trailing", "application/json", "", []byte(one + "x"), 400},
		{"missing_trace_id", "application/json", "", []byte(`[{"id":"1"}]`), 400},
		{"missing_id", "application/json", "", []byte(`[{"traceId":"1"}]`), 400},
		{"bad_trace_id", "application/json", "", []byte(`[{"traceId":"xyz","id":"1"}]`), 400},
		{"long_trace_id", "application/json", "", []byte(`[{"traceId":"` + strings.Repeat("a", 33) + `","id":"1"}]`), 400},
		{"zero_id", "application/json", "", []byte(`[{"traceId":"1","id":"0000000000000000"}]`), 400},
		{"bad_kind", "application/json", "", []byte(`[{"traceId":"1","id":"1","kind":"SIDEWAYS"}]`), 400},
		{"negative_timestamp", "application/json", "", []byte(`[{"traceId":"1","id":"1","timestamp":-5}]`), 400},
		{"tag_object", "application/json", "", []byte(`[{"traceId":"1","id":"1","tags":{"a":{}}}]`), 400},
		{"bad_gzip", "application/json", "gzip", []byte(one), 400},
		{"proto_group", "application/x-protobuf", "", []byte{0x0b}, 400},
		{"proto_short_id", "application/x-protobuf", "", []byte{0x0a, 0x04, 0x1a, 0x02, 0x01, 0x02}, 400},
		{"unknown_type", "text/plain", "", []byte(one), 415},
		{"unknown_encoding", "application/json", "br", []byte(one), 415},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, msg := srv.post(t, c.ct, c.enc, c.body)
			if code != c.code {
				t.Fatalf("POST = %d %q, want %d", code, msg, c.code)
			}
			if code >= 400 && strings.TrimSpace(msg) == "" {
				t.Errorf("POST = %d with no message", code)
			}
		})
	}
	if got := counter(t, srv.reg, "clew_zipkin_discarded_spans_total", "malformed_request"); got < 15 {
		t.Errorf("clew_zipkin_discarded_spans_total{reason=malformed_request} = %v, want ≥ 15", got)
	}
	if got := counter(t, srv.reg, "clew_zipkin_spans_received_total", ""); got != 4 {
		t.Errorf("clew_zipkin_spans_received_total = %v, want 4", got)
	}
}

// TestTraceIDs checks 16- and 32-digit IDs on the way in and out, and the
// 404 and 400 answers of trace lookups.
func TestTraceIDs(t *testing.T) {
	srv := newTestServer(t)
	body := `[{"traceId":"0123456789abcdef","id":"0000000000000001","name":"short","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"svc"}},
	          {"traceId":"fedcba98765432100123456789abcdef","id":"2","name":"long","timestamp":1700000000000000,"duration":5,"localEndpoint":{"serviceName":"svc"}},
	          {"traceId":"abc","id":"3","parentId":"3","name":"padded","timestamp":1700000000000000}]`
	if code, msg := srv.post(t, "application/json", "", []byte(body)); code != 202 {
		t.Fatalf("POST: %d %s", code, msg)
	}
	cases := []struct {
		id   string
		code int
		want string // the trace ID the spans read back with
	}{
		{"0123456789abcdef", 200, "0123456789abcdef"},
		{"00000000000000000123456789abcdef", 200, "0123456789abcdef"},
		{"fedcba98765432100123456789abcdef", 200, "fedcba98765432100123456789abcdef"},
		{"0000000000000abc", 200, "0000000000000abc"},
		{"0000000000000002", 404, ""},
		{"00000000000000000000000000000009", 404, ""},
		{"0123456789ABCDEF", 400, ""},
		{"0123456789abcde", 400, ""},
		{"0123456789abcdef0", 400, ""},
		{"fedcba98765432100123456789abcdef0", 400, ""},
		{"0123456789abcdeg", 400, ""},
		{"0000000000000000", 400, ""},
	}
	for _, c := range cases {
		code, b := srv.get(t, "/api/v2/trace/"+c.id)
		if code != c.code {
			t.Errorf("GET trace/%s = %d %s, want %d", c.id, code, b, c.code)
			continue
		}
		if c.code != 200 {
			continue
		}
		spans := decodeList(t, b)
		if len(spans) != 1 || spans[0]["traceId"] != c.want {
			t.Errorf("GET trace/%s = %s, want one span of trace %s", c.id, b, c.want)
		}
		if spans[0]["name"] == "padded" && (spans[0]["id"] != "0000000000000003" || spans[0]["parentId"] != nil) {
			t.Errorf("padded span = %s, want id 0000000000000003 and no parentId", b)
		}
	}
}

// TestNativeAPI checks that a span posted over Zipkin is visible through
// clew's own API with the mapped model: resource service.name, kind,
// status, attributes and events.
func TestNativeAPI(t *testing.T) {
	srv := newTestServer(t)
	spans := loadExample(t, filepath.Join("testdata", "examples", "zipkin2-chinese.json"))
	body, _ := json.Marshal(spans)
	if code, msg := srv.post(t, "application/json", "", body); code != 202 {
		t.Fatalf("POST: %d %s", code, msg)
	}
	code, b := srv.get(t, "/api/v1/traces/4d1e00c0db9010db86154a4ba6e91385")
	if code != 200 {
		t.Fatalf("GET native trace: %d %s", code, b)
	}
	s := string(b)
	for _, want := range []string{
		`"key":"service.name","value":{"stringValue":"订单维护服务"}`,
		`"spanId":"4d1e00c0db9010db"`,
		`"parentSpanId":"86154a4ba6e91385"`,
		`"kind":3`,
		`"startTimeUnixNano":"1472470996199000000"`,
		`"endTimeUnixNano":"1472470996406000000"`,
		`"key":"peer.service","value":{"stringValue":"个人信息服务"}`,
		`"key":"net.peer.ip","value":{"stringValue":"192.168.99.101"}`,
		`"key":"net.peer.port","value":{"intValue":"9000"}`,
		`"key":"net.host.ip","value":{"stringValue":"2001:db8::c001"}`,
		`"key":"http.status_code","value":{"stringValue":"403"}`,
		`"code":2`,
		`"message":"此用户没有操作权限"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("native trace lacks %s:\n%s", want, s)
		}
	}
	// A 64-bit Zipkin ID is the 128-bit ID with zero high bits.
	if code, b := srv.get(t, "/api/v1/traces/000000000000000086154a4ba6e91385"); code != 404 {
		t.Errorf("unrelated trace: %d %s", code, b)
	}
}

// TestOTLPSpanAsZipkin encodes a span that arrived over OTLP (kind
// internal, status, resource attributes, an event with attributes).
func TestOTLPSpanAsZipkin(t *testing.T) {
	res := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("api")}, {Key: "host.name", Value: span.StringValue("h1")}}}
	tid, _ := span.ParseTraceID("5b8efff798038103d269b633813fc60c")
	sid, _ := span.ParseSpanID("eee19b7ec3c1b173")
	s := span.Span{TraceID: tid, SpanID: sid, Name: "work", Kind: span.KindInternal, StartUnixNano: 1_000_000_500, EndUnixNano: 1_000_001_000,
		Attrs:      []span.Attr{{Key: "n", Value: span.IntValue(7)}, {Key: "server.port", Value: span.IntValue(80)}},
		Events:     []span.Event{{TimeUnixNano: 1_000_000_900, Name: "ev", Attrs: []span.Attr{{Key: "k", Value: span.StringValue("v")}}}},
		StatusCode: span.StatusError, Resource: res, Scope: &span.Scope{Name: "lib", Version: "1"}}
	got := string(AppendSpanJSON(nil, &s))
	want := `{"traceId":"5b8efff798038103d269b633813fc60c","id":"eee19b7ec3c1b173","name":"work","timestamp":1000000,"duration":1,` +
		`"localEndpoint":{"serviceName":"api"},"annotations":[{"timestamp":1000000,"value":"ev|{\"k\":\"v\"}|0"}],` +
		`"tags":{"error":"true","host.name":"h1","n":"7","otel.scope.name":"lib","otel.scope.version":"1","server.port":"80","span.kind":"internal"}}`
	if got != want {
		t.Errorf("AppendSpanJSON =\n%s\nwant\n%s", got, want)
	}
	// And back: the internal kind and the error survive.
	var b span.Batch
	if _, err := DecodeJSON([]byte("["+got+"]"), ingest.DefaultConfig().Limits, &b); err != nil {
		t.Fatal(err)
	}
	if b.Spans[0].Kind != span.KindInternal || b.Spans[0].StatusCode != span.StatusError {
		t.Errorf("decoded kind %v status %v, want internal error", b.Spans[0].Kind, b.Spans[0].StatusCode)
	}
}

// overloaded refuses every append as the store does when sealed heads pile
// up.
type overloaded struct{}

func (overloaded) Append(context.Context, string, []byte, *span.Batch) error {
	return fmt.Errorf("%w: head full", ingest.ErrRetryable)
}

type broken struct{}

func (broken) Append(context.Context, string, []byte, *span.Batch) error {
	return errors.New("disk on fire")
}

func TestOverload(t *testing.T) {
	one := []byte(`[{"traceId":"1","id":"1"}]`)
	for _, c := range []struct {
		app  ingest.Appender
		code int
	}{{overloaded{}, 429}, {broken{}, 503}} {
		z := New(ingest.NewCore(ingest.DefaultConfig(), "t", c.app, nil, nil), nil, nil)
		mux := http.NewServeMux()
		z.Register(mux)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", bytes.NewReader(one))
		mux.ServeHTTP(rec, req)
		if rec.Code != c.code || rec.Header().Get("Retry-After") == "" {
			t.Errorf("POST with %T = %d (Retry-After %q), want %d", c.app, rec.Code, rec.Header().Get("Retry-After"), c.code)
		}
	}
	// The in-flight budget, shared with another receiver that holds half.
	cfg := ingest.DefaultConfig()
	cfg.MaxInflightBytes = 10
	core := ingest.NewCore(cfg, "t", overloaded{}, nil, nil)
	core.Budget().Reserve(5)
	z := New(core, nil, nil)
	mux := http.NewServeMux()
	z.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/spans", bytes.NewReader(one)))
	if rec.Code != 429 {
		t.Errorf("POST over the in-flight budget = %d, want 429", rec.Code)
	}
	// Too large.
	cfg = ingest.DefaultConfig()
	cfg.MaxRequestBytes = 8
	z = New(ingest.NewCore(cfg, "t", overloaded{}, nil, nil), nil, nil)
	mux = http.NewServeMux()
	z.Register(mux)
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v2/spans", bytes.NewReader(one)))
	if rec.Code != 413 {
		t.Errorf("POST over the size limit = %d, want 413", rec.Code)
	}
}

// TestLimits checks truncation and drops against the ingest limits.
func TestLimits(t *testing.T) {
	lim := ingest.DefaultConfig().Limits
	lim.MaxAttrValueBytes = 4
	lim.MaxAttrsPerSpan = 2
	lim.MaxEventsPerSpan = 1
	lim.MaxNameBytes = 3
	lim.MaxSpansPerRequest = 1
	var b span.Batch
	st, err := DecodeJSON([]byte(`[{"traceId":"1","id":"1","name":"héllo","tags":{"a":"ééé","b":"x","c":"y"},"annotations":[{"timestamp":1,"value":"a"},{"timestamp":2,"value":"b"}]}]`), lim, &b)
	if err != nil {
		t.Fatal(err)
	}
	s := b.Spans[0]
	if s.Name != "hé" || s.Attrs[0].Value.Str != "éé" || len(s.Attrs) != 2 || s.DroppedAttrs != 1 || len(s.Events) != 1 || s.DroppedEvents != 1 {
		t.Errorf("limited span = %+v", s)
	}
	if st.Truncated != 2 || st.TruncatedNames != 1 || st.DroppedAttrs != 1 || st.DroppedEvents != 1 || !st.Modified {
		t.Errorf("stats = %+v", st)
	}
	b = span.Batch{}
	if _, err := DecodeJSON([]byte(`[{"traceId":"1","id":"1"},{"traceId":"1","id":"2"}]`), lim, &b); !errors.Is(err, errTooManySpans) {
		t.Errorf("two spans over a limit of one: %v", err)
	}
}

// counter reads a counter from reg: the series whose first label has the
// value label, or the only series when label is empty.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}
