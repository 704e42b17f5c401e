package jaegeringest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

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

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/store/storetest"
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

// failingAppender refuses every batch with err.
type failingAppender struct{ err error }

func (a failingAppender) Append(context.Context, string, []byte, *span.Batch) error { return a.err }

// metricValue reads the counter or gauge name{labels} (label, value
// pairs) from reg; 0 when the series does not exist.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
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

func openStore(t *testing.T) *store.DB { return storetest.OpenStore(t) }

// servers runs a Receiver's gRPC server and HTTP handler on loopback.
type servers struct {
	r        *Receiver
	reg      *prometheus.Registry
	grpcAddr string
	httpURL  string
}

func startServers(t *testing.T, cfg ingest.Config, app ingest.Appender) *servers {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := New(ingest.NewCore(cfg, "t", app, nil, reg))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := r.NewGRPCServer()
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	hs := httptest.NewServer(r.HTTPHandler())
	t.Cleanup(hs.Close)
	return &servers{r: r, reg: reg, grpcAddr: ln.Addr().String(), httpURL: hs.URL}
}

func (s *servers) client(t *testing.T) api_v2.CollectorServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api_v2.NewCollectorServiceClient(conn)
}

func (s *servers) postThrift(t *testing.T, contentType string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.httpURL+"/api/traces", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// The test traces: a 128-bit trace with a root and a child (which also
// follows from a span of a 64-bit trace), and a 64-bit trace whose span
// has a process of its own.
const (
	hi128, lo128 = 0x0102030405060708, 0x090a0b0c0d0e0f10
	lo64         = 0x1112131415161718
	rootID       = 0xa1
	childID      = 0xa2
	otherID      = 0xb1
	startMicros  = 1_700_000_000_000_000
)

var (
	trace128 = span.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	trace64  = span.TraceID{8: 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}
	startNs  = uint64(startMicros) * 1000
)

func sid(v uint64) span.SpanID {
	var id span.SpanID
	for i := 7; i >= 0; i-- {
		id[i] = byte(v)
		v >>= 8
	}
	return id
}

// wantSpans is what both protocols must store for the test batch.
func wantSpans() map[span.SpanID]span.Span {
	checkout := &span.Resource{Attrs: []span.Attr{
		{Key: "service.name", Value: span.StringValue("checkout")},
		{Key: "host.name", Value: span.StringValue("box-1")},
		{Key: "opencensus.exporterversion", Value: span.StringValue("Jaeger-Go-2.30.0")},
		{Key: "ip", Value: span.StringValue("10.0.0.1")},
		{Key: "pid", Value: span.IntValue(42)},
	}}
	inventory := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("inventory")}}}
	return map[span.SpanID]span.Span{
		sid(rootID): {
			TraceID: trace128, SpanID: sid(rootID), Name: "GET /cart", Kind: span.KindServer,
			StartUnixNano: startNs, EndUnixNano: startNs + 5_000_000,
			Attrs: []span.Attr{
				{Key: "s", Value: span.StringValue("v")},
				{Key: "i", Value: span.IntValue(-7)},
				{Key: "d", Value: span.DoubleValue(2.5)},
				{Key: "b", Value: span.BoolValue(true)},
				{Key: "bin", Value: span.BytesValue([]byte{0, 1, 0xff})},
			},
			StatusCode: span.StatusError, StatusMessage: "boom",
			Events: []span.Event{
				{TimeUnixNano: startNs + 1000, Name: "retry", Attrs: []span.Attr{{Key: "attempt", Value: span.IntValue(2)}}},
				{TimeUnixNano: startNs + 2000, Attrs: []span.Attr{{Key: "message", Value: span.StringValue("slow")}}},
			},
			Resource: checkout,
		},
		sid(childID): {
			TraceID: trace128, SpanID: sid(childID), ParentSpanID: sid(rootID), Name: "SELECT", Kind: span.KindClient,
			StartUnixNano: startNs + 1_000_000, EndUnixNano: startNs + 3_000_000,
			StatusCode: span.StatusOK,
			Links:      []span.Link{{TraceID: trace64, SpanID: sid(otherID), Attrs: []span.Attr{{Key: "opentracing.ref_type", Value: span.StringValue("follows_from")}}}},
			Resource:   checkout,
		},
		sid(otherID): {
			TraceID: trace64, SpanID: sid(otherID), Name: "publish", Kind: span.KindProducer,
			StartUnixNano: startNs, EndUnixNano: startNs + 1_000,
			Attrs:      []span.Attr{{Key: "http.status_code", Value: span.IntValue(503)}},
			StatusCode: span.StatusError,
			Resource:   inventory,
		},
	}
}

func protoBatch() *model.Batch {
	t0 := time.UnixMicro(startMicros).UTC()
	return &model.Batch{
		Process: &model.Process{ServiceName: "checkout", Tags: []model.KeyValue{
			model.String("hostname", "box-1"),
			model.String("jaeger.version", "Go-2.30.0"),
			model.String("ip", "10.0.0.1"),
			model.Int64("pid", 42),
		}},
		Spans: []*model.Span{
			{
				TraceID: model.NewTraceID(hi128, lo128), SpanID: rootID, OperationName: "GET /cart",
				StartTime: t0, Duration: 5 * time.Millisecond,
				Tags: []model.KeyValue{
					model.String("span.kind", "server"),
					model.String("s", "v"),
					model.Int64("i", -7),
					model.Float64("d", 2.5),
					model.Bool("b", true),
					model.Binary("bin", []byte{0, 1, 0xff}),
					model.Bool("error", true),
					model.String("otel.status_description", "boom"),
				},
				Logs: []model.Log{
					{Timestamp: t0.Add(time.Microsecond), Fields: []model.KeyValue{model.String("event", "retry"), model.Int64("attempt", 2)}},
					{Timestamp: t0.Add(2 * time.Microsecond), Fields: []model.KeyValue{model.String("message", "slow")}},
				},
			},
			{
				TraceID: model.NewTraceID(hi128, lo128), SpanID: childID, OperationName: "SELECT",
				StartTime: t0.Add(time.Millisecond), Duration: 2 * time.Millisecond,
				References: []model.SpanRef{
					{TraceID: model.NewTraceID(hi128, lo128), SpanID: rootID, RefType: model.ChildOf},
					{TraceID: model.NewTraceID(0, lo64), SpanID: otherID, RefType: model.FollowsFrom},
				},
				Tags: []model.KeyValue{model.String("span.kind", "client"), model.String("otel.status_code", "OK")},
			},
			{
				TraceID: model.NewTraceID(0, lo64), SpanID: otherID, OperationName: "publish",
				StartTime: t0, Duration: time.Microsecond,
				Tags:    []model.KeyValue{model.String("span.kind", "producer"), model.Int64("http.status_code", 503)},
				Process: &model.Process{ServiceName: "inventory"},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func thriftBatch() *jaeger.Batch {
	str := func(k, v string) *jaeger.Tag { return &jaeger.Tag{Key: k, VType: jaeger.TagType_STRING, VStr: ptr(v)} }
	long := func(k string, v int64) *jaeger.Tag {
		return &jaeger.Tag{Key: k, VType: jaeger.TagType_LONG, VLong: ptr(v)}
	}
	return &jaeger.Batch{
		Process: &jaeger.Process{ServiceName: "checkout", Tags: []*jaeger.Tag{
			str("hostname", "box-1"), str("jaeger.version", "Go-2.30.0"), str("ip", "10.0.0.1"), long("pid", 42),
		}},
		Spans: []*jaeger.Span{
			{
				TraceIdHigh: hi128, TraceIdLow: lo128, SpanId: rootID, OperationName: "GET /cart",
				StartTime: startMicros, Duration: 5000,
				Tags: []*jaeger.Tag{
					str("span.kind", "server"), str("s", "v"), long("i", -7),
					{Key: "d", VType: jaeger.TagType_DOUBLE, VDouble: ptr(2.5)},
					{Key: "b", VType: jaeger.TagType_BOOL, VBool: ptr(true)},
					{Key: "bin", VType: jaeger.TagType_BINARY, VBinary: []byte{0, 1, 0xff}},
					{Key: "error", VType: jaeger.TagType_BOOL, VBool: ptr(true)},
					str("otel.status_description", "boom"),
				},
				Logs: []*jaeger.Log{
					{Timestamp: startMicros + 1, Fields: []*jaeger.Tag{str("event", "retry"), long("attempt", 2)}},
					{Timestamp: startMicros + 2, Fields: []*jaeger.Tag{str("message", "slow")}},
				},
			},
			{
				// The parent comes from parentSpanId here, as older Jaeger
				// clients send it; the FOLLOWS_FROM reference stays a link.
				TraceIdHigh: hi128, TraceIdLow: lo128, SpanId: childID, ParentSpanId: rootID, OperationName: "SELECT",
				StartTime: startMicros + 1000, Duration: 2000,
				References: []*jaeger.SpanRef{
					{RefType: jaeger.SpanRefType_CHILD_OF, TraceIdHigh: hi128, TraceIdLow: lo128, SpanId: rootID},
					{RefType: jaeger.SpanRefType_FOLLOWS_FROM, TraceIdLow: lo64, SpanId: otherID},
				},
				Tags: []*jaeger.Tag{str("span.kind", "client"), str("otel.status_code", "OK")},
			},
		},
	}
}

// thriftBatchOther is the 64-bit trace's span: Thrift has one process per
// batch, so it travels in a batch of its own.
func thriftBatchOther() *jaeger.Batch {
	return &jaeger.Batch{
		Process: &jaeger.Process{ServiceName: "inventory"},
		Spans: []*jaeger.Span{{
			TraceIdLow: lo64, SpanId: otherID, OperationName: "publish", StartTime: startMicros, Duration: 1,
			Tags: []*jaeger.Tag{
				{Key: "span.kind", VType: jaeger.TagType_STRING, VStr: ptr("producer")},
				{Key: "http.status_code", VType: jaeger.TagType_LONG, VLong: ptr(int64(503))},
			},
		}},
	}
}

func encodeThrift(t testing.TB, b *jaeger.Batch) []byte {
	t.Helper()
	buf := thrift.NewTMemoryBuffer()
	if err := b.Write(context.Background(), thrift.NewTBinaryProtocolConf(buf, nil)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkStored reads both traces back from the store and compares every
// span with wantSpans, field by field.
func checkStored(t *testing.T, db *store.DB) {
	t.Helper()
	want := wantSpans()
	seen := 0
	for _, id := range []span.TraceID{trace128, trace64} {
		b, ok, err := db.FindTrace(context.Background(), id)
		if err != nil || !ok {
			t.Fatalf("FindTrace(%s) = %v, %v", id, ok, err)
		}
		for i := range b.Spans {
			got := &b.Spans[i]
			w, ok := want[got.SpanID]
			if !ok {
				t.Errorf("unexpected span %s", got.SpanID)
				continue
			}
			seen++
			checkSpan(t, got, &w)
		}
	}
	if seen != len(want) {
		t.Errorf("read back %d spans, want %d", seen, len(want))
	}
}

func checkSpan(t *testing.T, got, want *span.Span) {
	t.Helper()
	p := "span " + want.SpanID.String() + ": "
	if got.TraceID != want.TraceID {
		t.Errorf("%strace ID %s, want %s", p, got.TraceID, want.TraceID)
	}
	if got.ParentSpanID != want.ParentSpanID {
		t.Errorf("%sparent %s, want %s", p, got.ParentSpanID, want.ParentSpanID)
	}
	if got.Name != want.Name {
		t.Errorf("%sname %q, want %q", p, got.Name, want.Name)
	}
	if got.Kind != want.Kind {
		t.Errorf("%skind %v, want %v", p, got.Kind, want.Kind)
	}
	if got.StartUnixNano != want.StartUnixNano || got.EndUnixNano != want.EndUnixNano {
		t.Errorf("%stimes %d..%d, want %d..%d", p, got.StartUnixNano, got.EndUnixNano, want.StartUnixNano, want.EndUnixNano)
	}
	if got.StatusCode != want.StatusCode || got.StatusMessage != want.StatusMessage {
		t.Errorf("%sstatus %v %q, want %v %q", p, got.StatusCode, got.StatusMessage, want.StatusCode, want.StatusMessage)
	}
	if got.TraceState != want.TraceState {
		t.Errorf("%strace state %q, want %q", p, got.TraceState, want.TraceState)
	}
	checkAttrs(t, p+"attributes", got.Attrs, want.Attrs)
	if got.Resource == nil {
		t.Errorf("%sno resource", p)
	} else {
		checkAttrs(t, p+"resource", got.Resource.Attrs, want.Resource.Attrs)
	}
	if len(got.Events) != len(want.Events) {
		t.Errorf("%s%d events, want %d", p, len(got.Events), len(want.Events))
	} else {
		for i := range want.Events {
			g, w := &got.Events[i], &want.Events[i]
			if g.TimeUnixNano != w.TimeUnixNano || g.Name != w.Name {
				t.Errorf("%sevent %d: %d %q, want %d %q", p, i, g.TimeUnixNano, g.Name, w.TimeUnixNano, w.Name)
			}
			checkAttrs(t, fmt.Sprintf("%sevent %d", p, i), g.Attrs, w.Attrs)
		}
	}
	if len(got.Links) != len(want.Links) {
		t.Errorf("%s%d links, want %d", p, len(got.Links), len(want.Links))
	} else {
		for i := range want.Links {
			g, w := &got.Links[i], &want.Links[i]
			if g.TraceID != w.TraceID || g.SpanID != w.SpanID {
				t.Errorf("%slink %d: %s/%s, want %s/%s", p, i, g.TraceID, g.SpanID, w.TraceID, w.SpanID)
			}
			checkAttrs(t, fmt.Sprintf("%slink %d", p, i), g.Attrs, w.Attrs)
		}
	}
}

// checkAttrs compares attributes regardless of order.
func checkAttrs(t *testing.T, what string, got, want []span.Attr) {
	t.Helper()
	render := func(as []span.Attr) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = fmt.Sprintf("%s=%v:%q", a.Key, a.Value.Type, a.Value.AsString())
		}
		slices.Sort(out)
		return out
	}
	if g, w := render(got), render(want); !slices.Equal(g, w) {
		t.Errorf("%s:\n got %v\nwant %v", what, g, w)
	}
}

func TestGRPCPostSpans(t *testing.T) {
	db := openStore(t)
	s := startServers(t, ingest.DefaultConfig(), storeAppender{db})
	resp, err := s.client(t).PostSpans(context.Background(), &api_v2.PostSpansRequest{Batch: *protoBatch()})
	if err != nil {
		t.Fatalf("PostSpans: %v", err)
	}
	if resp == nil {
		t.Fatal("PostSpans: nil response")
	}
	checkStored(t, db)
	if got := metricValue(t, s.reg, "clew_receiver_spans_total", "protocol", "jaeger_grpc", "outcome", "accepted"); got != 3 {
		t.Errorf("spans accepted = %v, want 3", got)
	}
	if got := metricValue(t, s.reg, "clew_jaeger_spans_received_total", "protocol", "grpc"); got != 3 {
		t.Errorf("deprecated clew_jaeger_spans_received_total = %v, want 3", got)
	}
}

func TestThriftPostTraces(t *testing.T) {
	db := openStore(t)
	s := startServers(t, ingest.DefaultConfig(), storeAppender{db})
	for _, b := range []*jaeger.Batch{thriftBatch(), thriftBatchOther()} {
		if code, msg := s.postThrift(t, "application/x-thrift", encodeThrift(t, b)); code != http.StatusAccepted {
			t.Fatalf("POST /api/traces = %d %s, want 202", code, msg)
		}
	}
	checkStored(t, db)
	if got := metricValue(t, s.reg, "clew_receiver_spans_total", "protocol", "jaeger_thrift_http", "outcome", "accepted"); got != 3 {
		t.Errorf("spans accepted = %v, want 3", got)
	}
	if got := metricValue(t, s.reg, "clew_jaeger_spans_received_total", "protocol", "thrift_http"); got != 3 {
		t.Errorf("deprecated clew_jaeger_spans_received_total = %v, want 3", got)
	}
}

// rawCodec lets a test send arbitrary bytes as a gRPC request.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func TestGRPCMalformed(t *testing.T) {
	s := startServers(t, ingest.DefaultConfig(), failingAppender{errors.New("must not be reached")})
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	marshal := func(b *model.Batch) []byte {
		req := api_v2.PostSpansRequest{Batch: *b}
		out, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	badDuration := protoBatch()
	badDuration.Spans[0].Duration = -time.Second
	valid := marshal(protoBatch())
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"garbage", []byte("\xff\xff\xff\xff not protobuf")},
		{"truncated", valid[:len(valid)-3]},
		{"bad_trace_id_length", []byte{0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0x01, 0x02}},
		{"negative_duration", marshal(badDuration)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out []byte
			err := conn.Invoke(context.Background(), "/jaeger.api_v2.CollectorService/PostSpans", &tc.body, &out, grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("PostSpans(%s) = %v, want InvalidArgument", tc.name, err)
			}
		})
	}
	// Zero IDs are no longer request errors: such spans are rejected one
	// by one, as OTLP rejects them (TestSameBadInput in internal/ingest).
	if got := metricValue(t, s.reg, "clew_receiver_requests_refused_total", "protocol", "jaeger_grpc", "reason", "malformed"); got != 4 {
		t.Errorf("refused malformed = %v, want 4", got)
	}
	if got := metricValue(t, s.reg, "clew_jaeger_discarded_spans_total", "reason", "malformed_request"); got != 4 {
		t.Errorf("deprecated discarded malformed = %v, want 4", got)
	}
}

func TestThriftMalformed(t *testing.T) {
	cfg := ingest.DefaultConfig()
	cfg.Limits.MaxSpansPerRequest = 1
	s := startServers(t, cfg, failingAppender{errors.New("must not be reached")})
	valid := encodeThrift(t, thriftBatchOther())
	zero := thriftBatchOther()
	zero.Spans[0].TraceIdLow = 0
	badTime := thriftBatchOther()
	badTime.Spans[0].StartTime = -1
	// A list header claiming a billion spans in a few bytes.
	hugeList := []byte{0x0c, 0x00, 0x01, 0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x02, 0x0c, 0x3b, 0x9a, 0xca, 0x00}
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		code              int
	}{
		{"garbage", "application/x-thrift", []byte("not thrift at all"), http.StatusBadRequest},
		{"empty", "application/x-thrift", nil, http.StatusBadRequest},
		{"truncated", "application/x-thrift", valid[:len(valid)-5], http.StatusBadRequest},
		{"huge_list", "application/x-thrift", hugeList, http.StatusBadRequest},
		{"zero_trace_id", "application/x-thrift", encodeThrift(t, zero), http.StatusBadRequest},
		{"negative_start", "application/x-thrift", encodeThrift(t, badTime), http.StatusBadRequest},
		{"too_many_spans", "application/x-thrift", encodeThrift(t, thriftBatch()), http.StatusBadRequest},
		{"json", "application/json", []byte(`{}`), http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := s.postThrift(t, tc.contentType, tc.body); code != tc.code {
				t.Fatalf("POST %s = %d %s, want %d", tc.name, code, msg, tc.code)
			}
		})
	}
	// The batch whose only span has a zero trace ID is refused as
	// invalid_spans (nothing valid to store), the others as malformed.
	for reason, want := range map[string]float64{"malformed": 5, "invalid_spans": 1, "too_many_spans": 1, "unsupported_media_type": 1} {
		if got := metricValue(t, s.reg, "clew_receiver_requests_refused_total", "protocol", "jaeger_thrift_http", "reason", reason); got != want {
			t.Errorf("refused %s = %v, want %v", reason, got, want)
		}
	}
	if got := metricValue(t, s.reg, "clew_receiver_spans_refused_total", "protocol", "jaeger_thrift_http", "reason", "invalid_trace_id"); got != 1 {
		t.Errorf("spans refused invalid_trace_id = %v, want 1", got)
	}
	if got := metricValue(t, s.reg, "clew_jaeger_discarded_spans_total", "reason", "malformed_request"); got != 6 {
		t.Errorf("deprecated discarded malformed = %v, want 6", got)
	}
	if got := metricValue(t, s.reg, "clew_jaeger_discarded_spans_total", "reason", "too_many_spans"); got != 1 {
		t.Errorf("deprecated discarded too_many_spans = %v, want 1", got)
	}
}

// TestNotDurableNotAcknowledged checks that a batch the appender did not
// make durable is answered with a retryable error on both protocols.
func TestNotDurableNotAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		grpcCode codes.Code
		httpCode int
	}{
		{"overloaded", fmt.Errorf("%w: full", ingest.ErrRetryable), codes.ResourceExhausted, http.StatusTooManyRequests},
		{"storage", errors.New("disk on fire"), codes.Unavailable, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServers(t, ingest.DefaultConfig(), failingAppender{tc.err})
			_, err := s.client(t).PostSpans(context.Background(), &api_v2.PostSpansRequest{Batch: *protoBatch()})
			if status.Code(err) != tc.grpcCode {
				t.Errorf("PostSpans = %v, want %v", err, tc.grpcCode)
			}
			if code, msg := s.postThrift(t, "application/x-thrift", encodeThrift(t, thriftBatch())); code != tc.httpCode {
				t.Errorf("POST /api/traces = %d %s, want %d", code, msg, tc.httpCode)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	lim := ingest.DefaultConfig().Limits
	lim.MaxAttrsPerSpan = 2
	lim.MaxEventsPerSpan = 1
	lim.MaxLinksPerSpan = 0
	lim.MaxAttrValueBytes = 4
	lim.MaxNameBytes = 3
	var b span.Batch
	st, err := mapProto(protoBatch(), lim, &b)
	if err != nil {
		t.Fatal(err)
	}
	root := &b.Spans[0]
	if len(root.Attrs) != 2 || root.DroppedAttrs != 3 {
		t.Errorf("root attrs %v dropped %d, want 2 kept and 3 dropped", root.Attrs, root.DroppedAttrs)
	}
	if len(root.Events) != 1 || root.DroppedEvents != 1 {
		t.Errorf("root events %d dropped %d, want 1 and 1", len(root.Events), root.DroppedEvents)
	}
	if root.Name != "GET" {
		t.Errorf("root name %q, want it cut to %q", root.Name, "GET")
	}
	if st.DroppedAttrs == 0 || st.DroppedEvents != 1 || st.Truncated == 0 || st.TruncatedNames == 0 {
		t.Errorf("stats %+v", st)
	}
	// Invalid UTF-8 is replaced, never stored as is.
	pb := protoBatch()
	pb.Spans[0].OperationName = "a\xffb"
	b = span.Batch{}
	if _, err := mapProto(pb, ingest.DefaultConfig().Limits, &b); err != nil {
		t.Fatal(err)
	}
	if got := b.Spans[0].Name; got != "a\uFFFDb" {
		t.Errorf("name %q, want invalid UTF-8 replaced", got)
	}
}

func TestUnknownEndpoint(t *testing.T) {
	s := startServers(t, ingest.DefaultConfig(), failingAppender{errors.New("unused")})
	resp, err := http.Get(s.httpURL + "/api/traces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /api/traces = %d", resp.StatusCode)
	}
}
