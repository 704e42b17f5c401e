package jaeger

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
)

// serveGRPC serves a's gRPC services as the app does: grpc.Server's
// ServeHTTP behind an HTTP server that speaks HTTP/2 without TLS, on
// loopback. It returns a client connection.
func serveGRPC(t *testing.T, a *API) *grpc.ClientConn {
	t.Helper()
	g := a.NewGRPCServer()
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: g, Protocols: &p}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = hs.Serve(ln) }()
	// jaeger-idl's generated client with a gogo codec, as Jaeger's own
	// clients register one: grpc's default codec cannot marshal gogo's
	// custom types.
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		hs.Close()
		g.Stop()
	})
	return conn
}

// grpcV2Find runs q through api_v2's FindTraces with the generated
// client.
func grpcV2Find(t *testing.T, conn *grpc.ClientConn, q jq) traceShape {
	t.Helper()
	req := &api_v2.FindTracesRequest{Query: &api_v2.TraceQueryParameters{
		ServiceName: q.Service, OperationName: q.Operation, Tags: tagStrings(t, q.Tags),
		StartTimeMin: time.Unix(0, int64(q.StartMin)), StartTimeMax: time.Unix(0, int64(q.StartMax)),
		DurationMin: time.Duration(q.DurMin), DurationMax: time.Duration(q.DurMax), SearchDepth: int32(q.Limit),
	}}
	st, err := api_v2.NewQueryServiceClient(conn).FindTraces(context.Background(), req)
	if err != nil {
		t.Fatalf("FindTraces(%+v): %v", q, err)
	}
	spans, err := recvV2(st)
	if err != nil {
		t.Fatalf("FindTraces(%+v): %v", q, err)
	}
	got := traceShape{}
	for _, s := range spans {
		got[fromModelTraceID(s.TraceID).String()]++
	}
	return got
}

// recvV2 reads a stream of SpansResponseChunk to its end.
func recvV2(st interface {
	Recv() (*api_v2.SpansResponseChunk, error)
}) ([]model.Span, error) {
	var out []model.Span
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if len(c.Spans) > spansPerChunk {
			return out, fmt.Errorf("chunk of %d spans", len(c.Spans))
		}
		out = append(out, c.Spans...)
	}
}

// rawCodec sends and receives api_v3 messages as bytes, encoded by the
// tests with protowire and decoded with the OpenTelemetry protos.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}
func (rawCodec) Unmarshal(d mem.BufferSlice, v any) error {
	*v.(*[]byte) = d.Materialize()
	return nil
}

// v3Call calls an api_v3 method with an encoded request and returns the
// encoded responses and the trailer.
func v3Call(conn *grpc.ClientConn, method string, req []byte) ([][]byte, metadata.MD, error) {
	st, err := conn.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true}, "/jaeger.api_v3.QueryService/"+method, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return nil, nil, err
	}
	if err := st.SendMsg(&req); err != nil {
		return nil, nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, nil, err
	}
	var out [][]byte
	for {
		var b []byte
		err := st.RecvMsg(&b)
		if errors.Is(err, io.EOF) {
			return out, st.Trailer(), nil
		}
		if err != nil {
			return out, st.Trailer(), err
		}
		out = append(out, b)
	}
}

// Request encoding for api_v3 (query_service.proto's field numbers).

func pbString(dst []byte, num protowire.Number, s string) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

func pbMsg(dst []byte, num protowire.Number, m []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, m)
}

func pbVarint(dst []byte, num protowire.Number, v uint64) []byte {
	dst = protowire.AppendTag(dst, num, protowire.VarintType)
	return protowire.AppendVarint(dst, v)
}

// pbSecNanos encodes a Timestamp or a Duration.
func pbSecNanos(ns int64) []byte {
	var b []byte
	b = pbVarint(b, 1, uint64(ns/1e9))
	return pbVarint(b, 2, uint64(ns%1e9))
}

func v3FindRequest(t *testing.T, q jq) []byte {
	var p []byte
	p = pbString(p, 1, q.Service)
	if q.Operation != "" {
		p = pbString(p, 2, q.Operation)
	}
	tags := tagStrings(t, q.Tags)
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		p = pbMsg(p, 3, pbString(pbString(nil, 1, k), 2, tags[k]))
	}
	p = pbMsg(p, 4, pbSecNanos(int64(q.StartMin)))
	p = pbMsg(p, 5, pbSecNanos(int64(q.StartMax)))
	if q.DurMin > 0 {
		p = pbMsg(p, 6, pbSecNanos(q.DurMin))
	}
	if q.DurMax > 0 {
		p = pbMsg(p, 7, pbSecNanos(q.DurMax))
	}
	p = pbVarint(p, 8, uint64(q.Limit))
	return pbMsg(nil, 1, p)
}

// tracesDataSpans decodes TracesData messages with the OpenTelemetry
// Collector's decoder and returns their spans.
func tracesDataSpans(t *testing.T, msgs [][]byte) []ptrace.Span {
	t.Helper()
	var out []ptrace.Span
	for _, b := range msgs {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(b)
		if err != nil {
			t.Fatalf("decode TracesData: %v", err)
		}
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					out = append(out, sp)
				}
			}
		}
	}
	return out
}

// grpcV3Find runs q through api_v3's FindTraces.
func grpcV3Find(t *testing.T, conn *grpc.ClientConn, q jq) traceShape {
	t.Helper()
	msgs, _, err := v3Call(conn, "FindTraces", v3FindRequest(t, q))
	got := traceShape{}
	if status.Code(err) == codes.NotFound {
		return got
	}
	if err != nil {
		t.Fatalf("FindTraces(%+v): %v", q, err)
	}
	for _, s := range tracesDataSpans(t, msgs) {
		got[span.TraceID(s.TraceID()).String()]++
	}
	return got
}

// uiOfModel renders api_v2 spans as the UI model so that they compare
// with the legacy HTTP API's answer (times in microseconds).
func uiOfModel(spans []model.Span) []Span {
	kvs := func(in []model.KeyValue) []KeyValue {
		out := make([]KeyValue, 0, len(in))
		for _, kv := range in {
			k := KeyValue{Key: kv.Key}
			switch kv.VType {
			case model.ValueType_STRING:
				k.Type, k.Value = "string", kv.VStr
			case model.ValueType_BOOL:
				k.Type, k.Value = "bool", kv.VBool
			case model.ValueType_INT64:
				k.Type, k.Value = "int64", float64(kv.VInt64) // as JSON decodes it
			case model.ValueType_FLOAT64:
				k.Type, k.Value = "float64", kv.VFloat64
				if kv.VFloat64 != kv.VFloat64 {
					k.Value = "NaN"
				}
			case model.ValueType_BINARY:
				k.Type, k.Value = "binary", base64.StdEncoding.EncodeToString(kv.VBinary)
			}
			out = append(out, k)
		}
		return out
	}
	out := make([]Span, len(spans))
	for i, s := range spans {
		u := Span{
			TraceID: fromModelTraceID(s.TraceID).String(), SpanID: fmt.Sprintf("%016x", uint64(s.SpanID)),
			Flags: uint32(s.Flags), OperationName: s.OperationName, References: []Reference{},
			StartTime: uint64(s.StartTime.UnixNano() / 1000), Duration: uint64(s.Duration / 1000),
			Tags: kvs(s.Tags), Logs: []Log{}, ProcessID: s.Process.ServiceName + fmt.Sprint(kvs(s.Process.Tags)),
		}
		for _, r := range s.References {
			typ := refChildOf
			if r.RefType == model.SpanRefType_FOLLOWS_FROM {
				typ = refFollowsFrom
			}
			u.References = append(u.References, Reference{RefType: typ, TraceID: fromModelTraceID(r.TraceID).String(), SpanID: fmt.Sprintf("%016x", uint64(r.SpanID))})
		}
		for _, l := range s.Logs {
			u.Logs = append(u.Logs, Log{Timestamp: uint64(l.Timestamp.UnixNano() / 1000), Fields: kvs(l.Fields)})
		}
		out[i] = u
	}
	return out
}

func TestGRPCV2(t *testing.T) {
	db := openDB(t)
	srv := serve(t, db)
	conn := serveGRPC(t, New(db, nil))
	client := api_v2.NewQueryServiceClient(conn)
	ctx := context.Background()
	for _, f := range goldenFixtures {
		appendBatch(t, db, decodeFixture(t, "testdata/compat/traces/"+f+".json", 0))
	}
	rich := richTrace()
	appendBatch(t, db, rich)
	richID := rich.Spans[0].TraceID

	t.Run("GetTrace", func(t *testing.T) {
		for _, raw := range []bool{false, true} {
			st, err := client.GetTrace(ctx, &api_v2.GetTraceRequest{TraceID: toModelTraceID(richID), RawTraces: raw})
			if err != nil {
				t.Fatal(err)
			}
			spans, err := recvV2(st)
			if err != nil {
				t.Fatal(err)
			}
			// Nanosecond times, not the UI model's microseconds.
			if got, want := spans[0].StartTime.UnixNano(), int64(rich.Spans[0].StartUnixNano); got != want {
				t.Errorf("start %d, want %d", got, want)
			}
			if got, want := spans[0].Duration, time.Duration(rich.Spans[0].Duration()); got != want {
				t.Errorf("duration %v, want %v", got, want)
			}
			// Everything else as the legacy HTTP API renders it.
			_, body := get(t, srv, "/jaeger/api/traces/"+richID.String()+"?raw="+strconv.FormatBool(raw))
			var resp struct{ Data []Trace }
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			want := resp.Data[0].Spans
			for i := range want {
				p := resp.Data[0].Processes[want[i].ProcessID]
				want[i].ProcessID = p.ServiceName + fmt.Sprint(p.Tags)
				want[i].Warnings = nil
			}
			got := uiOfModel(spans)
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); g != w {
				t.Errorf("raw=%v:\n got %s\nwant %s", raw, g, w)
			}
		}
	})
	t.Run("GetTrace_missing", func(t *testing.T) {
		st, err := client.GetTrace(ctx, &api_v2.GetTraceRequest{TraceID: model.NewTraceID(0xdead, 0xbeef)})
		if err == nil {
			_, err = recvV2(st)
		}
		if status.Code(err) != codes.NotFound {
			t.Errorf("GetTrace(missing) = %v, want NotFound", err)
		}
	})
	t.Run("GetServices", func(t *testing.T) {
		resp, err := client.GetServices(ctx, &api_v2.GetServicesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := db.Services(ctx)
		if !slices.Equal(resp.Services, want) || !slices.Contains(want, "checkout") {
			t.Errorf("services %v, want %v", resp.Services, want)
		}
	})
	t.Run("GetOperations", func(t *testing.T) {
		resp, err := client.GetOperations(ctx, &api_v2.GetOperationsRequest{Service: "checkout", SpanKind: "client"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Operations) != 1 || resp.Operations[0].Name != "charge" || resp.Operations[0].SpanKind != "client" || !slices.Equal(resp.OperationNames, []string{"charge"}) {
			t.Errorf("operations %+v", resp)
		}
		_, err = client.GetOperations(ctx, &api_v2.GetOperationsRequest{Service: "checkout", SpanKind: "sideways"})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("bad kind: %v, want InvalidArgument", err)
		}
	})
	t.Run("FindTraces", func(t *testing.T) {
		got := grpcV2Find(t, conn, jq{Service: "checkout", Tags: map[string]any{"ratio": 0.25}, Limit: 10})
		if want := (traceShape{richID.String(): 2}); !maps.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
		st, err := client.FindTraces(ctx, &api_v2.FindTracesRequest{})
		if err == nil {
			_, err = recvV2(st)
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("FindTraces without a query = %v, want InvalidArgument", err)
		}
	})
	t.Run("ArchiveTrace", func(t *testing.T) {
		_, err := client.ArchiveTrace(ctx, &api_v2.ArchiveTraceRequest{TraceID: toModelTraceID(richID)})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("ArchiveTrace = %v, want Unimplemented", err)
		}
	})
	t.Run("GetDependencies", func(t *testing.T) {
		resp, err := client.GetDependencies(ctx, &api_v2.GetDependenciesRequest{StartTime: time.Now().Add(-time.Hour), EndTime: time.Now()})
		if err != nil || len(resp.Dependencies) != 0 {
			t.Errorf("GetDependencies = %+v, %v", resp, err)
		}
	})
}

func TestGRPCV3(t *testing.T) {
	db := openDB(t)
	conn := serveGRPC(t, New(db, nil))
	rich := richTrace()
	appendBatch(t, db, rich)
	richID := rich.Spans[0].TraceID

	t.Run("GetTrace", func(t *testing.T) {
		msgs, _, err := v3Call(conn, "GetTrace", pbString(nil, 1, richID.String()))
		if err != nil {
			t.Fatal(err)
		}
		spans := tracesDataSpans(t, msgs)
		if len(spans) != 2 || spans[0].Name() != "POST /checkout" || uint64(spans[0].StartTimestamp()) != rich.Spans[0].StartUnixNano ||
			spans[0].Attributes().Len() != len(rich.Spans[0].Attrs) || spans[1].Status().Code() != ptrace.StatusCodeOk {
			t.Errorf("spans %v", spans)
		}
	})
	for _, c := range []struct {
		name, method string
		req          []byte
		code         codes.Code
	}{
		{"GetTrace_missing", "GetTrace", pbString(nil, 1, "1"), codes.NotFound},
		{"GetTrace_bad_id", "GetTrace", pbString(nil, 1, "xyz"), codes.InvalidArgument},
		{"GetTrace_malformed", "GetTrace", []byte{0x0a, 0x05, 'a'}, codes.Internal},
		{"FindTraces_none", "FindTraces", v3FindRequest(t, jq{Service: "nobody", Limit: 5}), codes.NotFound},
		{"FindTraces_no_query", "FindTraces", nil, codes.InvalidArgument},
		{"FindTraces_negative_duration", "FindTraces", pbMsg(nil, 1, pbMsg(nil, 6, pbVarint(nil, 1, 1<<63))), codes.Internal},
		{"GetOperations_bad_kind", "GetOperations", pbString(pbString(nil, 1, "checkout"), 2, "sideways"), codes.InvalidArgument},
		{"FindSpans", "FindSpans", nil, codes.Unimplemented},
		{"FindTraceSummaries", "FindTraceSummaries", nil, codes.Unimplemented},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := v3Call(conn, c.method, c.req)
			if status.Code(err) != c.code {
				t.Errorf("%s = %v, want %v", c.method, err, c.code)
			}
		})
	}
	t.Run("FindTraces", func(t *testing.T) {
		got := grpcV3Find(t, conn, jq{Service: "checkout", Operation: "charge", Limit: 10})
		if want := (traceShape{richID.String(): 2}); !maps.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("GetServices", func(t *testing.T) {
		msgs, _, err := v3Call(conn, "GetServices", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeStrings(t, msgs[0], 1); !slices.Equal(got, []string{"checkout"}) {
			t.Errorf("services %v", got)
		}
	})
	t.Run("GetOperations", func(t *testing.T) {
		msgs, _, err := v3Call(conn, "GetOperations", pbString(pbString(nil, 1, "checkout"), 2, "server"))
		if err != nil {
			t.Fatal(err)
		}
		ops := decodeStrings(t, msgs[0], 1)
		if len(ops) != 1 {
			t.Fatalf("operations %q", ops)
		}
		if got := decodeStrings(t, []byte(ops[0]), 1, 2); !slices.Equal(got, []string{"POST /checkout", "server"}) {
			t.Errorf("operation %q", got)
		}
	})
	t.Run("GetDependencies", func(t *testing.T) {
		msgs, _, err := v3Call(conn, "GetDependencies", nil)
		if err != nil || len(msgs) != 1 || len(msgs[0]) != 0 {
			t.Errorf("GetDependencies = %q, %v", msgs, err)
		}
	})
}

// decodeStrings returns the length-delimited fields nums of a message, in
// order.
func decodeStrings(t *testing.T, b []byte, nums ...protowire.Number) []string {
	t.Helper()
	var out []string
	err := walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if slices.Contains(nums, num) && typ == protowire.BytesType {
			out = append(out, string(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGRPCLargeTrace reads the 10,008-span trace through both gRPC
// services: api_v2 in chunks of ten spans, api_v3 in TracesData messages
// under the size clients accept by default.
func TestGRPCLargeTrace(t *testing.T) {
	db := openDB(t)
	conn := serveGRPC(t, New(db, nil))
	loadCompat(t, db, fixtureShift())
	st, err := api_v2.NewQueryServiceClient(conn).GetTrace(context.Background(), &api_v2.GetTraceRequest{TraceID: toModelTraceID(largeTraceID)})
	if err != nil {
		t.Fatal(err)
	}
	spans, err := recvV2(st)
	if err != nil || len(spans) != largeTraceSpans {
		t.Errorf("api_v2: %d spans, %v", len(spans), err)
	}
	msgs, _, err := v3Call(conn, "GetTrace", pbString(nil, 1, largeTraceID.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if len(m) > maxTracesDataBytes {
			t.Errorf("a TracesData of %d bytes", len(m))
		}
	}
	if n := len(tracesDataSpans(t, msgs)); n != largeTraceSpans {
		t.Errorf("api_v3: %d spans in %d messages", n, len(msgs))
	}
}

// TestGRPCSpanLimit checks that a streamed search stops at
// query.max_spans_per_query and says so in its trailer.
func TestGRPCSpanLimit(t *testing.T) {
	db := openDB(t)
	a := New(db, nil)
	a.SetLimits(httpapi.Limits{MaxSpansPerQuery: 1000})
	conn := serveGRPC(t, a)
	loadCompat(t, db, fixtureShift())
	// The large trace (10,008 spans) is the newest of example-service-1's;
	// example_trace follows, which the limit leaves out.
	q := jq{Service: "example-service-1", StartMin: 1, StartMax: uint64(time.Now().UnixNano()), Limit: 10}
	msgs, tr, err := v3Call(conn, "FindTraces", v3FindRequest(t, q))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tracesDataSpans(t, msgs)); n != largeTraceSpans {
		t.Errorf("got %d spans, want the large trace only", n)
	}
	if w := tr.Get(warningTrailer); len(w) != 1 || !strings.Contains(w[0], "query.max_spans_per_query") {
		t.Errorf("trailer %v", tr)
	}
}

// fakeDeps is a DependencySource that records the range it was asked.
type fakeDeps struct{ start, end time.Time }

func (f *fakeDeps) Dependencies(_ context.Context, start, end time.Time) ([]Dependency, error) {
	f.start, f.end = start, end
	return []Dependency{{Parent: "frontend", Child: "payment", CallCount: 7}, {Parent: "payment", Child: "postgresql", CallCount: 3}}, nil
}

// TestGRPCDependencies reads the service graph through both gRPC
// services from the API's DependencySource.
func TestGRPCDependencies(t *testing.T) {
	a := New(openDB(t), nil)
	deps := &fakeDeps{}
	a.SetDependencies(deps)
	conn := serveGRPC(t, a)
	start, end := time.Unix(1764000000, 0), time.Unix(1764003600, 0)
	resp, err := api_v2.NewQueryServiceClient(conn).GetDependencies(context.Background(), &api_v2.GetDependenciesRequest{StartTime: start, EndTime: end})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resp.Dependencies); got != "[{frontend payment 7  {} [] 0} {payment postgresql 3  {} [] 0}]" || !deps.start.Equal(start) || !deps.end.Equal(end) {
		t.Errorf("api_v2: %s over [%v, %v)", got, deps.start, deps.end)
	}
	msgs, _, err := v3Call(conn, "GetDependencies", pbMsg(pbMsg(nil, 1, pbSecNanos(start.UnixNano())), 2, pbSecNanos(end.UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	links := decodeStrings(t, msgs[0], 1)
	if len(links) != 2 || !deps.start.Equal(start) || !deps.end.Equal(end) {
		t.Fatalf("api_v3: %q over [%v, %v)", links, deps.start, deps.end)
	}
	if got := decodeStrings(t, []byte(links[0]), 1, 2); !slices.Equal(got, []string{"frontend", "payment"}) {
		t.Errorf("api_v3 first link %q", got)
	}
	if n, _ := protowire.ConsumeVarint([]byte(links[0])[len(links[0])-1:]); n != 7 {
		t.Errorf("api_v3 first link call count %d", n)
	}
	_, err = api_v2.NewQueryServiceClient(conn).GetDependencies(context.Background(), &api_v2.GetDependenciesRequest{StartTime: end, EndTime: start})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("reversed range: %v", err)
	}
}
