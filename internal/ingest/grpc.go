package ingest

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // senders such as the Collector gzip by default
	"google.golang.org/grpc/mem"

	"github.com/clew-dev/clew/internal/otlp"
)

// rawCodec passes message bytes through unchanged, so that the hand-written
// OTLP decoder reads the request exactly once and nothing re-marshals the
// response. It is forced on clew's OTLP gRPC server only.
type rawCodec struct{ c *Core }

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
	b := c.c.getBuf()
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
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			if intercept == nil {
				return srv.(*Receiver).exportGRPC(ctx, dec)
			}
			// The interceptors (the tenant's resolution) run before the
			// request is read, so that a refused call costs no decoding.
			return intercept(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}, func(ctx context.Context, _ any) (any, error) {
				return srv.(*Receiver).exportGRPC(ctx, dec)
			})
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

// NewGRPCServer returns a gRPC server that serves the OTLP trace service
// and, after SetLogs, the logs service.
// The caller serves it on a listener and stops it.
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(rawCodec{r.core}),
		grpc.MaxRecvMsgSize(int(r.core.cfg.MaxDecompressedBytes)),
	}, opts...)
	s := grpc.NewServer(opts...)
	s.RegisterService(&traceServiceDesc, r)
	if r.logs != nil {
		s.RegisterService(&logsServiceDesc, r.logs)
	}
	return s
}

func (r *Receiver) exportGRPC(ctx context.Context, dec func(any) error) (any, error) {
	req := r.core.Begin(OTLPGRPC)
	defer req.End()
	var in rawMsg
	if err := dec(&in); err != nil {
		return nil, r.core.GRPCError(req.Refuse(ReasonMalformed, fmt.Sprintf("read request: %v", err)))
	}
	req.bufs = append(req.bufs, in.buf) // back to the pool at End
	body := *in.buf
	if o, ok := req.Admit(len(body), len(body)); !ok {
		return nil, r.core.GRPCError(o)
	}
	o := r.export(ctx, req, body, false)
	if o.Kind != Accepted {
		return nil, r.core.GRPCError(o)
	}
	resp := otlp.AppendExportResponseProto(nil, int64(o.Rejected), o.Msg)
	return &rawMsg{buf: &resp}, nil
}
