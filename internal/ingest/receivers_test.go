package ingest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/jaegeringest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/zipkin"
)

// tspan is one span of a test request, protocol-neutral: every protocol's
// encoder below sends it as that protocol would.
type tspan struct {
	trace [16]byte
	id    [8]byte
	name  string
	attrs [][2]string // string attributes (Zipkin tags, Jaeger tags), in order
}

// stored is what a span looks like once the core made it durable.
type stored struct {
	name    string
	attrs   [][2]string
	dropped uint32
}

// sink is an Appender that keeps copies of what it was given.
type sink struct {
	mu    sync.Mutex
	spans []stored
}

func (s *sink) Append(_ context.Context, _ string, _ []byte, b *span.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range b.Spans {
		st := stored{name: strings.Clone(sp.Name), dropped: sp.DroppedAttrs}
		for _, a := range sp.Attrs {
			st.attrs = append(st.attrs, [2]string{strings.Clone(a.Key), strings.Clone(a.Value.AsString())})
		}
		s.spans = append(s.spans, st)
	}
	return nil
}

var (
	goodTrace = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	goodID    = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	otherID   = [8]byte{8, 7, 6, 5, 4, 3, 2, 1}
)

func good(name string, attrs ...[2]string) tspan {
	return tspan{trace: goodTrace, id: goodID, name: name, attrs: attrs}
}

// testConfig has small limits, so that short inputs reach them.
func testConfig() ingest.Config {
	cfg := ingest.DefaultConfig()
	cfg.MaxRequestBytes = 4096
	cfg.MaxDecompressedBytes = 4096
	cfg.Limits.MaxAttrValueBytes = 8
	cfg.Limits.MaxNameBytes = 12 // service.name, which Jaeger's mapping adds, fits
	cfg.Limits.MaxAttrsPerSpan = 3
	return cfg
}

// TestSameBadInput sends the same inputs through every protocol and
// checks that each stores the same spans and counts the same metrics under
// its own protocol label, and that the deprecated per-receiver families
// still count.
func TestSameBadInput(t *testing.T) {
	kv := func(k, v string) [2]string { return [2]string{k, v} }
	type metric struct {
		name, labelKey, labelValue string
		want                       float64
	}
	cases := []struct {
		name  string
		spans []tspan
		want  []stored
		// metrics are clew_receiver_* series, labelled with the protocol
		// besides the label given.
		metrics []metric
		// accepted: the request is answered with success. allRejected:
		// success on OTLP (partial success), 400 elsewhere.
		accepted, allRejected, tooLarge bool
	}{
		{name: "valid", spans: []tspan{good("op", kv("k", "v"))}, accepted: true,
			want:    []stored{{name: "op", attrs: [][2]string{kv("k", "v")}}},
			metrics: []metric{{"clew_receiver_spans_total", "outcome", "accepted", 1}, {"clew_receiver_requests_total", "outcome", "accepted", 1}}},
		{name: "value_too_long", spans: []tspan{good("op", kv("k", "abcdefghij"))}, accepted: true,
			want:    []stored{{name: "op", attrs: [][2]string{kv("k", "abcdefgh")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "value_too_long", 1}}},
		{name: "value_cut_at_rune", spans: []tspan{good("op", kv("k", "abcdefgé"))}, accepted: true,
			want:    []stored{{name: "op", attrs: [][2]string{kv("k", "abcdefg")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "value_too_long", 1}}},
		{name: "name_too_long", spans: []tspan{good("operation-name", kv("k", "v"))}, accepted: true,
			want:    []stored{{name: "operation-na", attrs: [][2]string{kv("k", "v")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "name_too_long", 1}}},
		{name: "key_too_long", spans: []tspan{good("op", kv("keykeykeykeykey", "v"))}, accepted: true,
			want:    []stored{{name: "op", attrs: [][2]string{kv("keykeykeykey", "v")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "name_too_long", 1}}},
		{name: "invalid_utf8_value", spans: []tspan{good("op", kv("k", "a\xffb"))}, accepted: true,
			want:    []stored{{name: "op", attrs: [][2]string{kv("k", "a\uFFFDb")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "invalid_utf8", 1}}},
		{name: "invalid_utf8_name", spans: []tspan{good("o\xc3\xff", kv("k", "v"))}, accepted: true,
			want:    []stored{{name: "o\uFFFD", attrs: [][2]string{kv("k", "v")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "invalid_utf8", 1}}},
		// Repaired first, then cut: the replacement does not fit.
		{name: "invalid_utf8_then_cut", spans: []tspan{good("op", kv("k", "abcdef\xff\xff"))}, accepted: true,
			want: []stored{{name: "op", attrs: [][2]string{kv("k", "abcdef")}}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "invalid_utf8", 1},
				{"clew_receiver_truncated_total", "reason", "value_too_long", 1}}},
		{name: "too_many_attributes", spans: []tspan{good("op", kv("a", "1"), kv("b", "2"), kv("c", "3"), kv("d", "4"), kv("e", "5"))}, accepted: true,
			want:    []stored{{name: "op", attrs: [][2]string{kv("a", "1"), kv("b", "2"), kv("c", "3")}, dropped: 2}},
			metrics: []metric{{"clew_receiver_truncated_total", "reason", "attribute_dropped", 2}}},
		{name: "zero_trace_id", spans: []tspan{good("op"), {id: otherID, name: "bad"}}, accepted: true,
			want: []stored{{name: "op"}},
			metrics: []metric{{"clew_receiver_spans_refused_total", "reason", "invalid_trace_id", 1},
				{"clew_receiver_spans_total", "outcome", "refused", 1}, {"clew_receiver_spans_total", "outcome", "accepted", 1}}},
		{name: "zero_span_id", spans: []tspan{good("op"), {trace: goodTrace, name: "bad"}}, accepted: true,
			want:    []stored{{name: "op"}},
			metrics: []metric{{"clew_receiver_spans_refused_total", "reason", "invalid_span_id", 1}}},
		{name: "every_span_invalid", spans: []tspan{{id: goodID, name: "bad"}}, allRejected: true,
			metrics: []metric{{"clew_receiver_spans_refused_total", "reason", "invalid_trace_id", 1}}},
		{name: "oversized_body", spans: []tspan{good("op", kv("k", strings.Repeat("x", 5000)))}, tooLarge: true},
	}
	for _, tc := range cases {
		for _, p := range ingest.Protocols {
			t.Run(tc.name+"/"+string(p), func(t *testing.T) {
				reg := prometheus.NewRegistry()
				sk := &sink{}
				core := ingest.NewCore(testConfig(), "t", sk, nil, reg)
				res := send(t, core, p, tc.spans)
				partial := p == ingest.OTLPGRPC || p == ingest.OTLPHTTP
				switch {
				case tc.tooLarge:
					if !res.tooLarge {
						t.Fatalf("answer %+v, want too large", res)
					}
				case tc.accepted || tc.allRejected && partial:
					if !res.ok {
						t.Fatalf("answer %+v, want success", res)
					}
				default:
					if res.ok || res.code != http.StatusBadRequest && res.grpc != codes.InvalidArgument {
						t.Fatalf("answer %+v, want 400 / INVALID_ARGUMENT", res)
					}
				}
				if !equalStored(sk.spans, tc.want) {
					t.Errorf("stored %+q, want %+q", fmtStored(sk.spans), fmtStored(tc.want))
				}
				for _, m := range tc.metrics {
					if got := value(t, reg, m.name, "protocol", string(p), m.labelKey, m.labelValue); got != m.want {
						t.Errorf("%s{protocol=%q,%s=%q} = %v, want %v", m.name, p, m.labelKey, m.labelValue, got, m.want)
					}
				}
				if tc.allRejected && !partial {
					if got := value(t, reg, "clew_receiver_requests_refused_total", "protocol", string(p), "reason", "invalid_spans"); got != 1 {
						t.Errorf("requests refused invalid_spans = %v, want 1", got)
					}
				}
				// gRPC refuses an oversized message in its transport,
				// before the core sees it; HTTP bodies are counted.
				if tc.tooLarge && (p == ingest.OTLPHTTP || p == ingest.ZipkinJSON || p == ingest.ZipkinProto || p == ingest.JaegerThriftHTTP) {
					if got := value(t, reg, "clew_receiver_requests_refused_total", "protocol", string(p), "reason", "too_large"); got != 1 {
						t.Errorf("requests refused too_large = %v, want 1", got)
					}
					fam := legacyFamily(p)
					if got := value(t, reg, "clew_"+fam+"_discarded_spans_total", "reason", "request_too_large"); got != 1 {
						t.Errorf("deprecated clew_%s_discarded_spans_total{reason=request_too_large} = %v, want 1", fam, got)
					}
				}
				// The deprecated families count the same events.
				fam := legacyFamily(p)
				var truncated float64
				for _, m := range tc.metrics {
					if m.name == "clew_receiver_truncated_total" && (m.labelValue == "value_too_long" || m.labelValue == "name_too_long") {
						truncated += m.want
					}
				}
				if got := value(t, reg, "clew_"+fam+"_truncated_values_total"); got != truncated {
					t.Errorf("deprecated clew_%s_truncated_values_total = %v, want %v", fam, got, truncated)
				}
				if got := value(t, reg, "clew_"+fam+"_spans_received_total", legacyLabel(p)...); got != float64(len(tc.want)) {
					t.Errorf("deprecated clew_%s_spans_received_total = %v, want %d", fam, got, len(tc.want))
				}
			})
		}
	}
}

func legacyFamily(p ingest.Protocol) string {
	switch p {
	case ingest.OTLPGRPC, ingest.OTLPHTTP:
		return "ingest"
	case ingest.ZipkinJSON, ingest.ZipkinProto:
		return "zipkin"
	}
	return "jaeger"
}

// legacyLabel is the protocol label of p in its deprecated family.
func legacyLabel(p ingest.Protocol) []string {
	switch p {
	case ingest.OTLPGRPC, ingest.JaegerGRPC:
		return []string{"protocol", "grpc"}
	case ingest.OTLPHTTP:
		return []string{"protocol", "http"}
	case ingest.JaegerThriftHTTP:
		return []string{"protocol", "thrift_http"}
	}
	return nil // Zipkin's counted spans without labels
}

func equalStored(a, b []stored) bool {
	return slices.EqualFunc(a, b, func(x, y stored) bool {
		return x.name == y.name && x.dropped == y.dropped && slices.Equal(x.attrs, y.attrs)
	})
}

// answer is what a receiver answered.
type answer struct {
	ok       bool
	tooLarge bool
	code     int
	grpc     codes.Code
}

// send encodes spans for protocol p and sends them to the receiver of p
// built on core, over loopback.
func send(t *testing.T, core *ingest.Core, p ingest.Protocol, spans []tspan) answer {
	t.Helper()
	switch p {
	case ingest.OTLPHTTP:
		srv := httptest.NewServer(ingest.NewReceiver(core).HTTPHandler())
		defer srv.Close()
		return postHTTP(t, srv.URL+"/v1/traces", "application/x-protobuf", otlpBody(spans), http.StatusOK)
	case ingest.OTLPGRPC:
		gs := ingest.NewReceiver(core).NewGRPCServer()
		return invoke(t, gs, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", otlpBody(spans))
	case ingest.ZipkinJSON, ingest.ZipkinProto:
		mux := http.NewServeMux()
		zipkin.New(core, nil, nil).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()
		if p == ingest.ZipkinJSON {
			return postHTTP(t, srv.URL+"/api/v2/spans", "application/json", zipkinJSON(spans), http.StatusAccepted)
		}
		return postHTTP(t, srv.URL+"/api/v2/spans", "application/x-protobuf", zipkinProto(spans), http.StatusAccepted)
	case ingest.JaegerGRPC:
		gs := jaegeringest.New(core).NewGRPCServer()
		return invoke(t, gs, "/jaeger.api_v2.CollectorService/PostSpans", jaegerProto(t, spans))
	case ingest.JaegerThriftHTTP:
		srv := httptest.NewServer(jaegeringest.New(core).HTTPHandler())
		defer srv.Close()
		return postHTTP(t, srv.URL+"/api/traces", "application/x-thrift", jaegerThrift(t, spans), http.StatusAccepted)
	}
	t.Fatalf("no sender for %s", p)
	return answer{}
}

func postHTTP(t *testing.T, url, ct string, body []byte, okCode int) answer {
	t.Helper()
	resp, err := http.Post(url, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return answer{ok: resp.StatusCode == okCode, tooLarge: resp.StatusCode == http.StatusRequestEntityTooLarge, code: resp.StatusCode}
}

// rawCodec sends and receives bytes as they are.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func invoke(t *testing.T, gs *grpc.Server, method string, body []byte) answer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var out []byte
	err = conn.Invoke(context.Background(), method, &body, &out, grpc.ForceCodecV2(rawCodec{}))
	c := status.Code(err)
	return answer{ok: c == codes.OK, tooLarge: c == codes.ResourceExhausted, grpc: c}
}

func otlpBody(spans []tspan) []byte {
	res := &span.Resource{}
	var b span.Batch
	b.Resources = append(b.Resources, res)
	for _, ts := range spans {
		s := span.Span{TraceID: ts.trace, SpanID: ts.id, Name: ts.name, Resource: res}
		for _, a := range ts.attrs {
			s.Attrs = append(s.Attrs, span.Attr{Key: a[0], Value: span.StringValue(a[1])})
		}
		b.Spans = append(b.Spans, s)
	}
	return otlp.MarshalProto(nil, &b)
}

// zipkinJSON writes strings byte for byte (the test strings need no
// escaping), so that invalid UTF-8 reaches the decoder as sent.
func zipkinJSON(spans []tspan) []byte {
	var b []byte
	b = append(b, '[')
	for i, ts := range spans {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"traceId":"`+hex.EncodeToString(ts.trace[:])+`","id":"`+hex.EncodeToString(ts.id[:])+`","name":"`+ts.name+`","tags":{`...)
		for j, a := range ts.attrs {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `"`+a[0]+`":"`+a[1]+`"`...)
		}
		b = append(b, "}}"...)
	}
	return append(b, ']')
}

// zipkinProto encodes a zipkin.proto ListOfSpans.
func zipkinProto(spans []tspan) []byte {
	var out []byte
	for _, ts := range spans {
		var s []byte
		s = protowire.AppendTag(s, 1, protowire.BytesType)
		s = protowire.AppendBytes(s, ts.trace[:])
		s = protowire.AppendTag(s, 3, protowire.BytesType)
		s = protowire.AppendBytes(s, ts.id[:])
		s = protowire.AppendTag(s, 5, protowire.BytesType)
		s = protowire.AppendString(s, ts.name)
		for _, a := range ts.attrs {
			var e []byte
			e = protowire.AppendTag(e, 1, protowire.BytesType)
			e = protowire.AppendString(e, a[0])
			e = protowire.AppendTag(e, 2, protowire.BytesType)
			e = protowire.AppendString(e, a[1])
			s = protowire.AppendTag(s, 11, protowire.BytesType)
			s = protowire.AppendBytes(s, e)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, s)
	}
	return out
}

func jaegerProto(t *testing.T, spans []tspan) []byte {
	t.Helper()
	req := api_v2.PostSpansRequest{Batch: model.Batch{Process: &model.Process{ServiceName: "svc"}}}
	for _, ts := range spans {
		s := &model.Span{
			TraceID:       model.TraceID{High: binary.BigEndian.Uint64(ts.trace[:8]), Low: binary.BigEndian.Uint64(ts.trace[8:])},
			SpanID:        model.SpanID(binary.BigEndian.Uint64(ts.id[:])),
			OperationName: ts.name,
		}
		for _, a := range ts.attrs {
			s.Tags = append(s.Tags, model.KeyValue{Key: a[0], VType: model.ValueType_STRING, VStr: a[1]})
		}
		req.Batch.Spans = append(req.Batch.Spans, s)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jaegerThrift(t *testing.T, spans []tspan) []byte {
	t.Helper()
	tb := &jaeger.Batch{Process: &jaeger.Process{ServiceName: "svc"}}
	for _, ts := range spans {
		s := &jaeger.Span{
			TraceIdHigh:   int64(binary.BigEndian.Uint64(ts.trace[:8])),
			TraceIdLow:    int64(binary.BigEndian.Uint64(ts.trace[8:])),
			SpanId:        int64(binary.BigEndian.Uint64(ts.id[:])),
			OperationName: ts.name,
		}
		for _, a := range ts.attrs {
			v := a[1]
			s.Tags = append(s.Tags, &jaeger.Tag{Key: a[0], VType: jaeger.TagType_STRING, VStr: &v})
		}
		tb.Spans = append(tb.Spans, s)
	}
	buf := thrift.NewTMemoryBuffer()
	if err := tb.Write(context.Background(), thrift.NewTBinaryProtocolConf(buf, nil)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// value reads the counter or gauge name{labels} (label, value pairs) from
// reg; 0 when the series does not exist.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k {
			return l.GetValue() == v
		}
	}
	return false
}

func fmtStored(ss []stored) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.name+" "+strings.Join(slices.Concat(flat(s.attrs)...), ",")+" dropped="+string(rune('0'+s.dropped)))
	}
	return out
}

func flat(kvs [][2]string) [][]string {
	var out [][]string
	for _, kv := range kvs {
		out = append(out, []string{kv[0] + "=" + kv[1]})
	}
	return out
}
