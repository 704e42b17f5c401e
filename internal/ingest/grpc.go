package ingest

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // senders such as the Collector gzip by default
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/clew-dev/clew/internal/otlp"
)

// rawCodec passes message bytes through unchanged, so that the hand-written
// OTLP decoder reads the request exactly once and nothing re-marshals the
// response. It is forced on clew's OTLP gRPC server only.
type rawCodec struct{ r *Receiver }

// rawMsg is a request or response as bytes; buf comes from the receiver's
// pool and goes back to it when the handler is done.
type rawMsg struct{ buf *[]byte }

func (rawCodec) Name() string { return "proto" }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*m.buf)}, nil
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	b := c.r.getBuf()
	n := data.Len()
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	data.CopyTo(*b)
	m.buf = b
	return nil
}

// traceServiceDesc describes opentelemetry.proto.collector.trace.v1.TraceService.
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			return srv.(*Receiver).exportGRPC(ctx, dec)
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// NewGRPCServer returns a gRPC server that serves the OTLP trace service.
// The caller serves it on a listener and stops it.
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(rawCodec{r}),
		grpc.MaxRecvMsgSize(int(r.cfg.MaxDecompressedBytes)),
	}, opts...)
	s := grpc.NewServer(opts...)
	s.RegisterService(&traceServiceDesc, r)
	return s
}

func (r *Receiver) exportGRPC(ctx context.Context, dec func(any) error) (any, error) {
	start := time.Now()
	const protocol = "grpc"
	defer func() { r.m.duration.WithLabelValues(protocol).Observe(time.Since(start).Seconds()) }()
	var in rawMsg
	if err := dec(&in); err != nil {
		r.m.requests.WithLabelValues(protocol, "bad_encoding").Inc()
		r.m.discarded.WithLabelValues(ReasonMalformed).Inc()
		return nil, status.Errorf(codes.InvalidArgument, "read request: %v", err)
	}
	defer r.putBuf(in.buf)
	body := *in.buf
	r.m.bytes.WithLabelValues(protocol).Add(float64(len(body)))
	n := int64(len(body))
	if !r.reserve(n) {
		r.m.requests.WithLabelValues(protocol, outcomeOverloaded.String()).Inc()
		r.m.discarded.WithLabelValues(ReasonOverloaded).Inc()
		return nil, r.retryStatus(codes.ResourceExhausted, "too many bytes in flight, retry later")
	}
	defer r.unreserve(n)
	out := r.export(ctx, protocol, body, false)
	r.m.requests.WithLabelValues(protocol, out.kind.String()).Inc()
	switch out.kind {
	case outcomeOK:
		resp := otlp.AppendExportResponseProto(nil, out.rejected, out.msg)
		return &rawMsg{buf: &resp}, nil
	case outcomeBadRequest:
		return nil, status.Error(codes.InvalidArgument, out.msg)
	case outcomeOverloaded:
		return nil, r.retryStatus(codes.ResourceExhausted, out.msg)
	default:
		return nil, r.retryStatus(codes.Unavailable, out.msg)
	}
}

// retryStatus builds an error status carrying RetryInfo: OTLP senders treat
// RESOURCE_EXHAUSTED as retryable only when it is present.
func (r *Receiver) retryStatus(c codes.Code, msg string) error {
	st := status.New(c, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(r.cfg.RetryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}
