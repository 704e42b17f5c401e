package jaegeringest

import (
	"context"
	"fmt"
	"time"

	"github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // Jaeger's and the Collector's exporters may gzip
	"google.golang.org/grpc/mem"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// gogoMessage is what jaeger-idl's gogo-generated messages implement.
type gogoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// codec is forced on the Jaeger gRPC server. It hands requests over as raw
// bytes, so that the handler can claim its in-flight budget before
// decoding, and marshals responses with their gogo-generated code (grpc's
// default codec needs protobuf-go messages, which gogo's are not).
type codec struct{}

// rawMsg is a request as received.
type rawMsg struct{ b []byte }

func (codec) Name() string { return "proto" }

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(gogoMessage)
	if !ok {
		return nil, fmt.Errorf("jaeger codec: cannot marshal %T", v)
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *rawMsg:
		m.b = data.Materialize()
		return nil
	case gogoMessage:
		return m.Unmarshal(data.Materialize())
	}
	return fmt.Errorf("jaeger codec: cannot unmarshal into %T", v)
}

// collectorServiceDesc describes jaeger.api_v2.CollectorService as
// api_v2.RegisterCollectorServiceServer would, with a handler that takes
// the request as bytes.
var collectorServiceDesc = grpc.ServiceDesc{
	ServiceName: "jaeger.api_v2.CollectorService",
	HandlerType: (*api_v2.CollectorServiceServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "PostSpans",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			if intercept == nil {
				return srv.(*Receiver).postSpansGRPC(ctx, dec)
			}
			// The interceptors (the tenant's resolution) run before the
			// request is read, so that a refused call costs no decoding.
			return intercept(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/jaeger.api_v2.CollectorService/PostSpans"}, func(ctx context.Context, _ any) (any, error) {
				return srv.(*Receiver).postSpansGRPC(ctx, dec)
			})
		},
	}},
	Metadata: "collector.proto",
}

var _ api_v2.CollectorServiceServer = (*Receiver)(nil)

// NewGRPCServer returns a gRPC server that serves Jaeger's api_v2
// CollectorService. The caller serves it on a listener and stops it.
func (r *Receiver) NewGRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(int(r.core.Config().MaxDecompressedBytes)),
	}, opts...)
	s := grpc.NewServer(opts...)
	s.RegisterService(&collectorServiceDesc, r)
	return s
}

func (r *Receiver) postSpansGRPC(ctx context.Context, dec func(any) error) (any, error) {
	rq := r.core.Begin(ingest.JaegerGRPC)
	defer rq.End()
	var in rawMsg
	if err := dec(&in); err != nil {
		return nil, r.core.GRPCError(rq.Refuse(ingest.ReasonMalformed, fmt.Sprintf("read request: %v", err)))
	}
	if o, ok := rq.Admit(len(in.b), len(in.b)); !ok {
		return nil, r.core.GRPCError(o)
	}
	var req api_v2.PostSpansRequest
	if err := unmarshalProto(in.b, &req); err != nil {
		return nil, r.core.GRPCError(rq.DecodeFailed(err, "decode PostSpansRequest"))
	}
	return r.postSpans(ctx, rq, &req)
}

// unmarshalProto decodes a request with jaeger-idl's generated code. A
// panic in that code is turned into an error: senders retry, so a crash on
// bad input would become a crash loop.
func unmarshalProto(b []byte, req *api_v2.PostSpansRequest) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("malformed request (decoder panicked: %v)", p)
		}
	}()
	return req.Unmarshal(b)
}

// PostSpans makes the request's spans durable. It implements
// api_v2.CollectorServiceServer for callers in the same process; the gRPC
// server reaches postSpans instead, after claiming the request's in-flight
// bytes.
func (r *Receiver) PostSpans(ctx context.Context, req *api_v2.PostSpansRequest) (*api_v2.PostSpansResponse, error) {
	rq := r.core.Begin(ingest.JaegerGRPC)
	defer rq.End()
	if o, ok := rq.Admit(0, req.Size()); !ok {
		return nil, r.core.GRPCError(o)
	}
	return r.postSpans(ctx, rq, req)
}

func (r *Receiver) postSpans(ctx context.Context, rq *ingest.Request, req *api_v2.PostSpansRequest) (*api_v2.PostSpansResponse, error) {
	var b span.Batch
	st, err := mapProto(&req.Batch, r.lim, &b)
	if err != nil {
		return nil, r.core.GRPCError(rq.DecodeFailed(err, "map Jaeger batch"))
	}
	if o := rq.Store(ctx, &b, st, nil); o.Kind != ingest.Accepted {
		return nil, r.core.GRPCError(o)
	}
	return &api_v2.PostSpansResponse{}, nil
}

// mapProto maps an api_v2 batch onto b. A span's own process, when it has
// one, wins over the batch's. It fails on a span without IDs, with times
// out of range or over the span limit; what is over the other limits is
// cut or dropped and counted in the returned stats.
func mapProto(pb *model.Batch, lim otlp.Limits, b *span.Batch) (otlp.Result, error) {
	bl := newBuilder(lim, b)
	procs := map[*model.Process]*span.Resource{}
	resource := func(p *model.Process) *span.Resource {
		if r, ok := procs[p]; ok {
			return r
		}
		var r *span.Resource
		if p == nil {
			r = bl.resource("", nil)
		} else {
			r = bl.resource(p.ServiceName, bl.protoTags(nil, p.Tags))
		}
		procs[p] = r
		return r
	}
	var j jspan
	for i, ps := range pb.Spans {
		if ps == nil {
			continue
		}
		if err := bl.countSpan(); err != nil {
			return bl.st, err
		}
		if bl.rejectIDs(ps.TraceID.High, ps.TraceID.Low, uint64(ps.SpanID)) {
			continue
		}
		j.reset()
		j.traceHigh, j.traceLow = ps.TraceID.High, ps.TraceID.Low
		j.spanID = uint64(ps.SpanID)
		j.name = ps.OperationName
		start, ok := unixNanos(ps.StartTime)
		if !ok || ps.Duration < 0 || uint64(ps.Duration) > math64-start {
			return bl.st, fmt.Errorf("span %d: start time or duration out of range", i)
		}
		j.startNanos, j.endNano = start, start+uint64(ps.Duration)
		for _, ref := range ps.References {
			j.refs = append(j.refs, jref{childOf: ref.RefType == model.ChildOf, traceHigh: ref.TraceID.High, traceLow: ref.TraceID.Low, spanID: uint64(ref.SpanID)})
		}
		j.tags = bl.protoTags(nil, ps.Tags)
		for _, l := range ps.Logs {
			t, ok := unixNanos(l.Timestamp)
			if !ok {
				return bl.st, fmt.Errorf("span %d: log timestamp out of range", i)
			}
			j.logs = append(j.logs, jlog{timeNanos: t, fields: bl.protoTags(nil, l.Fields)})
		}
		if ps.Process != nil {
			j.res = resource(ps.Process)
		} else {
			j.res = resource(pb.Process)
		}
		if err := bl.add(&j, i); err != nil {
			return bl.st, err
		}
	}
	return bl.done(), nil
}

const math64 = ^uint64(0)

// unixNanos converts t to nanoseconds since the epoch. The zero time (a
// timestamp that was not sent) is 0; a time before the epoch or past 2262
// does not fit.
func unixNanos(t time.Time) (uint64, bool) {
	if t.IsZero() {
		return 0, true
	}
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, 1<<63-1)) {
		return 0, false
	}
	return uint64(t.UnixNano()), true
}

// protoTags appends kvs to dst as attributes.
func (bl *builder) protoTags(dst []span.Attr, kvs []model.KeyValue) []span.Attr {
	if len(kvs) == 0 {
		return dst
	}
	if dst == nil {
		dst = make([]span.Attr, 0, len(kvs))
	}
	for i := range kvs {
		kv := &kvs[i]
		a := span.Attr{Key: kv.Key}
		switch kv.VType {
		case model.ValueType_STRING:
			a.Value = bl.str(kv.VStr)
		case model.ValueType_BOOL:
			a.Value = span.BoolValue(kv.VBool)
		case model.ValueType_INT64:
			a.Value = span.IntValue(kv.VInt64)
		case model.ValueType_FLOAT64:
			a.Value = span.DoubleValue(kv.VFloat64)
		case model.ValueType_BINARY:
			a.Value = bl.bytes(kv.VBinary)
		default:
			a.Value = bl.unknownType(int64(kv.VType))
		}
		dst = append(dst, a)
	}
	return dst
}
