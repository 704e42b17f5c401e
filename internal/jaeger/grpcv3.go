package jaeger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// api_v3's gRPC QueryService (jaeger-idl proto/api_v3/query_service.proto,
// Apache-2.0). jaeger-idl has no Go code for it, so its few small messages
// are encoded and decoded here with protowire; traces go out as OTLP
// TracesData, encoded by internal/otlp. GetTrace, FindTraces, GetServices,
// GetOperations and GetDependencies are served; FindSpans and
// FindTraceSummaries answer UNIMPLEMENTED (gRPC's answer to a method the
// service does not list).

// v3ServiceDesc describes jaeger.api_v3.QueryService.
var v3ServiceDesc = grpc.ServiceDesc{
	ServiceName: "jaeger.api_v3.QueryService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "GetServices", Handler: v3Unary(func(a *API, ctx context.Context, _ *v3Empty) (wireMessage, error) {
			return a.v3GRPCServices(ctx)
		})},
		{MethodName: "GetOperations", Handler: v3Unary(func(a *API, ctx context.Context, req *v3GetOperationsRequest) (wireMessage, error) {
			return a.v3GRPCOperations(ctx, req)
		})},
		{MethodName: "GetDependencies", Handler: v3Unary(func(a *API, ctx context.Context, req *v3GetDependenciesRequest) (wireMessage, error) {
			deps, err := a.grpcDependencies(ctx, nanosTime(req.start), nanosTime(req.end))
			return v3DependenciesResponse(deps), err
		})},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "GetTrace", ServerStreams: true, Handler: func(srv any, st grpc.ServerStream) error {
			var req v3GetTraceRequest
			if err := st.RecvMsg(&req); err != nil {
				return err
			}
			return srv.(*API).v3GRPCGetTrace(st, &req)
		}},
		{StreamName: "FindTraces", ServerStreams: true, Handler: func(srv any, st grpc.ServerStream) error {
			var req v3FindTracesRequest
			if err := st.RecvMsg(&req); err != nil {
				return err
			}
			return srv.(*API).v3GRPCFindTraces(st, &req)
		}},
	},
	Metadata: "query_service.proto",
}

// v3Unary adapts a typed unary method to grpc's handler signature.
func v3Unary[Req any, PReq interface {
	*Req
	wireMessage
}](fn func(*API, context.Context, PReq) (wireMessage, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
		req := PReq(new(Req))
		if err := dec(req); err != nil {
			return nil, err
		}
		a := srv.(*API)
		if intercept == nil {
			return fn(a, ctx, req)
		}
		return intercept(ctx, req, &grpc.UnaryServerInfo{Server: srv}, func(ctx context.Context, r any) (any, error) {
			return fn(a, ctx, r.(PReq))
		})
	}
}

func (a *API) v3GRPCServices(ctx context.Context) (wireMessage, error) {
	names, err := a.db.Services(ctx)
	if err != nil {
		return nil, a.grpcError(ctx, "GetServices", err)
	}
	return v3ServicesResponse(names), nil
}

func (a *API) v3GRPCOperations(ctx context.Context, req *v3GetOperationsRequest) (wireMessage, error) {
	ops, code, err := a.listOperations(ctx, req.service, req.spanKind)
	if err != nil {
		if code == http.StatusBadRequest {
			return nil, badRequest(err)
		}
		return nil, a.grpcError(ctx, "GetOperations", err)
	}
	return v3OperationsResponse(ops), nil
}

func (a *API) v3GRPCGetTrace(st grpc.ServerStream, req *v3GetTraceRequest) error {
	ctx := st.Context()
	id, err := parseTraceID(req.traceID)
	if err != nil {
		return badRequest(err)
	}
	b, found, err := a.db.FindTrace(ctx, id)
	if err != nil {
		return a.grpcError(ctx, "GetTrace", err)
	}
	if !found || len(b.Spans) == 0 {
		return status.Error(codes.NotFound, errNoTraces)
	}
	return sendTracesData(st, b.Spans)
}

func (a *API) v3GRPCFindTraces(st grpc.ServerStream, req *v3FindTracesRequest) error {
	ctx := st.Context()
	q := req.query
	if q == nil {
		return status.Error(codes.InvalidArgument, "missing query")
	}
	if err := checkStrings(append([]string{q.service, q.operation}, mapStrings(q.attributes)...)...); err != nil {
		return badRequest(err)
	}
	if q.durationMin < 0 || q.durationMax < 0 {
		return status.Error(codes.InvalidArgument, "durations must not be negative")
	}
	p := &findParams{limit: clampLimit(int(q.searchDepth), a.limits.MaxTracesPerSearch), raw: q.raw}
	p.query.Service, p.query.SpanName = q.service, q.operation
	p.query.Start, p.query.End = q.startMin, q.startMax
	p.query.MinDuration, p.query.MaxDuration = uint64(q.durationMin), uint64(q.durationMax)
	if len(q.attributes) > maxConds {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("at most %d attributes are allowed, got %d", maxConds, len(q.attributes)))
	}
	if err := p.finish(q.attributes); err != nil {
		return badRequest(err)
	}
	ids, _, err := a.search(ctx, p)
	if err != nil {
		return a.grpcError(ctx, "FindTraces", err)
	}
	sent := 0
	err = a.streamTraces(ctx, "FindTraces", st, ids, func(_ span.TraceID, b *span.Batch) error {
		sent++
		return sendTracesData(st, b.Spans)
	})
	if err == nil && sent == 0 {
		return status.Error(codes.NotFound, errNoTraces)
	}
	return err
}

// maxTracesDataBytes bounds one streamed TracesData message, well under
// the 4 MiB clients accept by default; a trace larger than that is sent
// in several messages.
const maxTracesDataBytes = 2 << 20

// sendTracesData sends spans as one or more TracesData messages of at most
// maxTracesDataBytes each (or one span, when a span alone is larger).
func sendTracesData(st grpc.ServerStream, spans []span.Span) error {
	msg := otlp.AppendSpansProto(nil, spans)
	if len(msg) > maxTracesDataBytes && len(spans) > 1 {
		half := len(spans) / 2
		if err := sendTracesData(st, spans[:half]); err != nil {
			return err
		}
		return sendTracesData(st, spans[half:])
	}
	return st.SendMsg(v3Encoded(msg))
}

// Messages.

// v3Encoded is a message already encoded: a TracesData.
type v3Encoded []byte

func (m v3Encoded) appendProto(dst []byte) []byte { return append(dst, m...) }
func (v3Encoded) unmarshalProto([]byte) error     { return errors.New("BUG: v3Encoded is never decoded") }

// v3Empty is GetServicesRequest.
type v3Empty struct{}

func (*v3Empty) appendProto(dst []byte) []byte { return dst }
func (*v3Empty) unmarshalProto(b []byte) error {
	return walkFields(b, func(protowire.Number, protowire.Type, []byte) error { return nil })
}

// v3ServicesResponse is GetServicesResponse: repeated string services = 1.
type v3ServicesResponse []string

func (m v3ServicesResponse) appendProto(dst []byte) []byte {
	for _, s := range m {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendString(dst, s)
	}
	return dst
}
func (v3ServicesResponse) unmarshalProto([]byte) error {
	return errors.New("BUG: responses are never decoded")
}

// v3OperationsResponse is GetOperationsResponse: repeated Operation
// operations = 1, each {string name = 1; string span_kind = 2}.
type v3OperationsResponse []Operation

func (m v3OperationsResponse) appendProto(dst []byte) []byte {
	for _, op := range m {
		var inner []byte
		inner = appendStringField(inner, 1, op.Name)
		inner = appendStringField(inner, 2, op.SpanKind)
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, inner)
	}
	return dst
}
func (v3OperationsResponse) unmarshalProto([]byte) error {
	return errors.New("BUG: responses are never decoded")
}

func appendStringField(dst []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return dst
	}
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendString(dst, s)
}

// v3DependenciesResponse is DependenciesResponse: repeated Dependency
// dependencies = 1, each {string parent = 1; string child = 2; uint64
// call_count = 3}.
type v3DependenciesResponse []Dependency

func (m v3DependenciesResponse) appendProto(dst []byte) []byte {
	for _, d := range m {
		var inner []byte
		inner = appendStringField(inner, 1, d.Parent)
		inner = appendStringField(inner, 2, d.Child)
		if d.CallCount != 0 {
			inner = protowire.AppendTag(inner, 3, protowire.VarintType)
			inner = protowire.AppendVarint(inner, d.CallCount)
		}
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, inner)
	}
	return dst
}
func (v3DependenciesResponse) unmarshalProto([]byte) error {
	return errors.New("BUG: responses are never decoded")
}

// nanosTime converts Unix nanoseconds to a time; 0 is the zero time.
func nanosTime(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns))
}

// v3GetOperationsRequest: string service = 1; string span_kind = 2.
type v3GetOperationsRequest struct{ service, spanKind string }

func (v3GetOperationsRequest) appendProto(dst []byte) []byte { return dst }
func (m *v3GetOperationsRequest) unmarshalProto(b []byte) error {
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			return stringField(typ, v, &m.service)
		case 2:
			return stringField(typ, v, &m.spanKind)
		}
		return nil
	})
}

// v3GetDependenciesRequest: Timestamp start_time = 1, end_time = 2.
type v3GetDependenciesRequest struct{ start, end uint64 }

func (v3GetDependenciesRequest) appendProto(dst []byte) []byte { return dst }
func (m *v3GetDependenciesRequest) unmarshalProto(b []byte) error {
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			return timestampField(typ, v, &m.start)
		case 2:
			return timestampField(typ, v, &m.end)
		}
		return nil
	})
}

// v3GetTraceRequest: string trace_id = 1; Timestamp start_time = 2,
// end_time = 3; bool raw_traces = 4. The times are hints clew does not
// need, checked like the HTTP API's.
type v3GetTraceRequest struct {
	traceID    string
	start, end uint64
	raw        bool
}

func (v3GetTraceRequest) appendProto(dst []byte) []byte { return dst }
func (m *v3GetTraceRequest) unmarshalProto(b []byte) error {
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			return stringField(typ, v, &m.traceID)
		case 2:
			return timestampField(typ, v, &m.start)
		case 3:
			return timestampField(typ, v, &m.end)
		case 4:
			return boolField(typ, v, &m.raw)
		}
		return nil
	})
}

// v3FindTracesRequest: TraceQueryParameters query = 1.
type v3FindTracesRequest struct{ query *v3TraceQuery }

// v3TraceQuery is TraceQueryParameters: string service_name = 1;
// string operation_name = 2; map<string, string> attributes = 3;
// Timestamp start_time_min = 4, start_time_max = 5; Duration
// duration_min = 6, duration_max = 7; int32 search_depth = 8; bool
// raw_traces = 9. The filter (10) and pagination (11) are ignored.
type v3TraceQuery struct {
	service, operation       string
	attributes               map[string]string
	startMin, startMax       uint64
	durationMin, durationMax int64
	searchDepth              int32
	raw                      bool
}

func (v3FindTracesRequest) appendProto(dst []byte) []byte { return dst }
func (m *v3FindTracesRequest) unmarshalProto(b []byte) error {
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 {
			return nil
		}
		if typ != protowire.BytesType {
			return errWireType
		}
		if m.query == nil {
			m.query = &v3TraceQuery{attributes: map[string]string{}}
		}
		return m.query.unmarshal(v)
	})
}

func (q *v3TraceQuery) unmarshal(b []byte) error {
	return walkFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			return stringField(typ, v, &q.service)
		case 2:
			return stringField(typ, v, &q.operation)
		case 3:
			if typ != protowire.BytesType {
				return errWireType
			}
			var k, val string
			err := walkFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				switch num {
				case 1:
					return stringField(typ, v, &k)
				case 2:
					return stringField(typ, v, &val)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(q.attributes) > maxConds {
				return fmt.Errorf("at most %d attributes are allowed", maxConds)
			}
			q.attributes[k] = val
			return nil
		case 4:
			return timestampField(typ, v, &q.startMin)
		case 5:
			return timestampField(typ, v, &q.startMax)
		case 6:
			return durationField(typ, v, &q.durationMin)
		case 7:
			return durationField(typ, v, &q.durationMax)
		case 8:
			if typ != protowire.VarintType {
				return errWireType
			}
			n, _ := protowire.ConsumeVarint(v)
			q.searchDepth = int32(n)
		case 9:
			return boolField(typ, v, &q.raw)
		}
		return nil
	})
}

// Wire decoding helpers.

var errWireType = errors.New("a field has the wrong wire type")

// maxSeconds is the largest number of seconds whose nanoseconds fit an
// int64.
const maxSeconds = math.MaxInt64/1_000_000_000 - 1

// walkFields calls fn for each field of a message with its number, wire
// type and value: the varint's or fixed bytes for scalars, the contents
// for length-delimited fields. Groups are skipped.
func walkFields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("malformed message: %w", protowire.ParseError(n))
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return fmt.Errorf("malformed field %d: %w", num, protowire.ParseError(m))
		}
		v := b[:m]
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(v)
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[m:]
	}
	return nil
}

func stringField(typ protowire.Type, v []byte, dst *string) error {
	if typ != protowire.BytesType {
		return errWireType
	}
	*dst = string(v)
	return nil
}

func boolField(typ protowire.Type, v []byte, dst *bool) error {
	if typ != protowire.VarintType {
		return errWireType
	}
	n, _ := protowire.ConsumeVarint(v)
	*dst = n != 0
	return nil
}

// secondsNanos decodes a google.protobuf.Timestamp or Duration: int64
// seconds = 1; int32 nanos = 2.
func secondsNanos(typ protowire.Type, v []byte) (sec, nanos int64, err error) {
	if typ != protowire.BytesType {
		return 0, 0, errWireType
	}
	err = walkFields(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != 1 && num != 2 {
			return nil
		}
		if typ != protowire.VarintType {
			return errWireType
		}
		n, _ := protowire.ConsumeVarint(v)
		if num == 1 {
			sec = int64(n)
		} else {
			nanos = int64(int32(n))
		}
		return nil
	})
	return sec, nanos, err
}

// timestampField decodes a Timestamp into Unix nanoseconds; before 1970
// (or unset) is 0, unbounded.
func timestampField(typ protowire.Type, v []byte, dst *uint64) error {
	sec, nanos, err := secondsNanos(typ, v)
	if err != nil {
		return err
	}
	if sec < 0 || sec > maxSeconds || nanos < 0 || nanos >= 1e9 {
		return errors.New("a timestamp is out of range")
	}
	*dst = uint64(sec)*1e9 + uint64(nanos)
	return nil
}

// durationField decodes a Duration into nanoseconds.
func durationField(typ protowire.Type, v []byte, dst *int64) error {
	sec, nanos, err := secondsNanos(typ, v)
	if err != nil {
		return err
	}
	if sec < 0 || nanos < 0 || sec > maxSeconds || nanos >= 1e9 {
		return errors.New("a duration is negative or out of range")
	}
	*dst = sec*1e9 + nanos
	return nil
}
