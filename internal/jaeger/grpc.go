package jaeger

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
)

// The gRPC query services: Jaeger's api_v2 QueryService (what Jaeger's own
// query service and Grafana's gRPC Jaeger client speak) with jaeger-idl's
// generated messages, and api_v3's QueryService (grpcv3.go) with
// hand-written messages, since jaeger-idl ships no Go code for it. Both sit
// on the query port beside the HTTP APIs (the app routes gRPC requests to
// the server NewGRPCServer returns) and answer as the HTTP APIs do, from
// the same searches and the same span mapping.

// gogoMessage is what jaeger-idl's gogo-generated messages implement.
type gogoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// wireMessage is a message clew encodes or decodes itself: api_v3's.
type wireMessage interface {
	appendProto(dst []byte) []byte
	unmarshalProto(b []byte) error
}

// codec is forced on the query gRPC server: gogo messages marshal with
// their generated code (grpc's default codec wants protobuf-go messages,
// which gogo's are not), clew's own with theirs.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	var b []byte
	switch m := v.(type) {
	case wireMessage:
		b = m.appendProto(nil)
	case gogoMessage:
		var err error
		if b, err = m.Marshal(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("jaeger query codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) (err error) {
	// A panic in generated decoding code must fail the call, not the
	// process.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed request (decoder panicked: %v)", p)
		}
	}()
	switch m := v.(type) {
	case wireMessage:
		return m.unmarshalProto(data.Materialize())
	case gogoMessage:
		return m.Unmarshal(data.Materialize())
	}
	return fmt.Errorf("jaeger query codec: cannot unmarshal into %T", v)
}

// maxGRPCRequestBytes bounds a query request; queries are small.
const maxGRPCRequestBytes = 1 << 20

// spansPerChunk is how many spans api_v2 sends per SpansResponseChunk, as
// Jaeger's query service does.
const spansPerChunk = 10

// NewGRPCServer returns a gRPC server with Jaeger's api_v2 and api_v3
// QueryService. The app serves it on the query port, handing it the
// requests whose content type is application/grpc (grpc.Server implements
// http.Handler for that), and stops it on shutdown.
func (a *API) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(maxGRPCRequestBytes),
	}, opts...)
	s := grpc.NewServer(opts...)
	api_v2.RegisterQueryServiceServer(s, v2Server{a})
	s.RegisterService(&v3ServiceDesc, a)
	return s
}

// grpcError maps an error of a query to a gRPC status through the status
// the HTTP APIs answer (httpapi.QueryStatus): a tenant's limit is
// INVALID_ARGUMENT, a deadline DEADLINE_EXCEEDED, a cancelled call
// CANCELED, anything else INTERNAL.
func (a *API) grpcError(ctx context.Context, method string, err error) error {
	code, msg, internal := httpapi.QueryStatus(ctx, err, "")
	if internal {
		a.log.Error("query", "method", method, "err", err)
	}
	switch code {
	case http.StatusBadRequest:
		return status.Error(codes.InvalidArgument, msg)
	case http.StatusGatewayTimeout:
		return status.Error(codes.DeadlineExceeded, msg)
	case httpapi.StatusClientClosed:
		return status.Error(codes.Canceled, msg)
	}
	return status.Error(codes.Internal, msg)
}

// badRequest turns a 400 of the HTTP APIs into INVALID_ARGUMENT.
func badRequest(err error) error { return status.Error(codes.InvalidArgument, err.Error()) }

// warningTrailer carries, in a streamed search's trailer, the note of an
// answer cut by a limit (query.max_spans_per_query).
const warningTrailer = "clew-warning"

// streamTraces loads the traces ids names in order, a few at a time, and
// calls send for each one found. Only the traces being sent are held, but
// the spans loaded still count against query.max_spans_per_query: past
// it the stream ends early, saying so in its trailer.
func (a *API) streamTraces(ctx context.Context, method string, st grpc.ServerStream, ids []span.TraceID, send func(span.TraceID, *span.Batch) error) error {
	loaded := 0
	for lo := 0; lo < len(ids); lo += loadConcurrency {
		win := ids[lo:min(lo+loadConcurrency, len(ids))]
		batches, err := httpapi.LoadTraces(ctx, a.db, win, loadConcurrency)
		if err != nil {
			return a.grpcError(ctx, method, err)
		}
		for i, b := range batches {
			if b == nil {
				continue
			}
			if loaded > 0 && loaded+len(b.Spans) > a.limits.MaxSpansPerQuery {
				st.SetTrailer(metadata.Pairs(warningTrailer, a.cutMessage(lo+i, len(ids))))
				return nil
			}
			loaded += len(b.Spans)
			if err := send(win[i], b); err != nil {
				return err
			}
		}
	}
	return nil
}

// v2Server is Jaeger's api_v2 QueryService over the API.
type v2Server struct{ a *API }

var _ api_v2.QueryServiceServer = v2Server{}

func (s v2Server) GetTrace(req *api_v2.GetTraceRequest, st api_v2.QueryService_GetTraceServer) error {
	ctx := st.Context()
	id := fromModelTraceID(req.TraceID)
	if id.IsZero() {
		return status.Error(codes.InvalidArgument, "trace ID must not be zero")
	}
	b, found, err := s.a.db.FindTrace(ctx, id)
	if err != nil {
		return s.a.grpcError(ctx, "GetTrace", err)
	}
	if !found || len(b.Spans) == 0 {
		return status.Error(codes.NotFound, "trace not found")
	}
	return sendModelSpans(st, toModelSpans(id, b.Spans, req.RawTraces))
}

// sendModelSpans sends spans in chunks of spansPerChunk.
func sendModelSpans(st grpc.ServerStream, spans []model.Span) error {
	for lo := 0; lo < len(spans); lo += spansPerChunk {
		if err := st.SendMsg(&api_v2.SpansResponseChunk{Spans: spans[lo:min(lo+spansPerChunk, len(spans))]}); err != nil {
			return err
		}
	}
	return nil
}

func (s v2Server) ArchiveTrace(context.Context, *api_v2.ArchiveTraceRequest) (*api_v2.ArchiveTraceResponse, error) {
	return nil, status.Error(codes.Unimplemented, "clew has no archive storage: every trace is kept for the retention period")
}

func (s v2Server) FindTraces(req *api_v2.FindTracesRequest, st api_v2.QueryService_FindTracesServer) error {
	ctx := st.Context()
	q := req.Query
	if q == nil {
		return status.Error(codes.InvalidArgument, "missing query")
	}
	if q.DurationMin < 0 || q.DurationMax < 0 {
		return status.Error(codes.InvalidArgument, "durations must not be negative")
	}
	p := &findParams{limit: clampLimit(int(q.SearchDepth), s.a.limits.MaxTracesPerSearch), raw: q.RawTraces}
	p.query.Service, p.query.SpanName = q.ServiceName, q.OperationName
	p.query.Start, p.query.End = timeNanos(q.StartTimeMin), timeNanos(q.StartTimeMax)
	p.query.MinDuration, p.query.MaxDuration = uint64(q.DurationMin), uint64(q.DurationMax)
	if err := checkStrings(append([]string{q.ServiceName, q.OperationName}, mapStrings(q.Tags)...)...); err != nil {
		return badRequest(err)
	}
	if err := p.finish(q.Tags); err != nil {
		return badRequest(err)
	}
	ids, _, err := s.a.search(ctx, p)
	if err != nil {
		return s.a.grpcError(ctx, "FindTraces", err)
	}
	return s.a.streamTraces(ctx, "FindTraces", st, ids, func(id span.TraceID, b *span.Batch) error {
		return sendModelSpans(st, toModelSpans(id, b.Spans, p.raw))
	})
}

func (s v2Server) GetServices(ctx context.Context, _ *api_v2.GetServicesRequest) (*api_v2.GetServicesResponse, error) {
	names, err := s.a.db.Services(ctx)
	if err != nil {
		return nil, s.a.grpcError(ctx, "GetServices", err)
	}
	return &api_v2.GetServicesResponse{Services: nonNil(names)}, nil
}

func (s v2Server) GetOperations(ctx context.Context, req *api_v2.GetOperationsRequest) (*api_v2.GetOperationsResponse, error) {
	ops, code, err := s.a.listOperations(ctx, req.Service, req.SpanKind)
	if err != nil {
		if code == http.StatusBadRequest {
			return nil, badRequest(err)
		}
		return nil, s.a.grpcError(ctx, "GetOperations", err)
	}
	out := &api_v2.GetOperationsResponse{OperationNames: make([]string, len(ops)), Operations: make([]*api_v2.Operation, len(ops))}
	for i, op := range ops {
		out.OperationNames[i] = op.Name
		out.Operations[i] = &api_v2.Operation{Name: op.Name, SpanKind: op.SpanKind}
	}
	return out, nil
}

// GetDependencies answers the service dependency graph, as the HTTP
// endpoint does.
func (s v2Server) GetDependencies(ctx context.Context, req *api_v2.GetDependenciesRequest) (*api_v2.GetDependenciesResponse, error) {
	deps, err := s.a.grpcDependencies(ctx, req.StartTime, req.EndTime)
	if err != nil {
		return nil, err
	}
	out := &api_v2.GetDependenciesResponse{Dependencies: make([]model.DependencyLink, len(deps))}
	for i, d := range deps {
		out.Dependencies[i] = model.DependencyLink{Parent: d.Parent, Child: d.Child, CallCount: d.CallCount}
	}
	return out, nil
}

// grpcDependencies reads the dependency graph over [start, end) from the
// API's DependencySource (none: no dependencies). A zero end is now, a
// zero start a day before the end, as on the HTTP endpoint.
func (a *API) grpcDependencies(ctx context.Context, start, end time.Time) ([]Dependency, error) {
	if end.IsZero() {
		end = time.Now()
	}
	if start.IsZero() {
		start = end.Add(-defaultDependencyLookback)
	}
	if end.Before(start) {
		return nil, status.Error(codes.InvalidArgument, "end_time is before start_time")
	}
	if a.deps == nil {
		return nil, nil
	}
	deps, err := a.deps.Dependencies(ctx, start, end)
	if err != nil {
		return nil, a.grpcError(ctx, "GetDependencies", err)
	}
	return deps, nil
}

// timeNanos converts a request time to Unix nanoseconds; the zero time
// and times before 1970 are unbounded (0).
func timeNanos(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() <= 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// checkStrings bounds the strings of a gRPC search as checkLengths bounds
// the HTTP parameters.
func checkStrings(ss ...string) error {
	for _, s := range ss {
		if len(s) > maxParamLen {
			return fmt.Errorf("a query value is longer than %d bytes", maxParamLen)
		}
	}
	return nil
}

func mapStrings(m map[string]string) []string {
	out := make([]string, 0, 2*len(m))
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}
