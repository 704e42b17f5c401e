package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/clew-dev/clew/internal/logs"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/storage"
)

// LogsAppender makes a batch of log records durable and searchable. It
// returns nil only once the batch is durable, an error wrapping
// ErrRetryable when the sender should retry later. It must not retain
// batch's slice (the records' strings it may keep).
type LogsAppender interface {
	AppendLogs(ctx context.Context, tenant string, batch *logs.Batch) error
}

// logsReceiver is the OTLP logs service on the receiver's ports.
type logsReceiver struct {
	core     *Core
	app      LogsAppender
	decoders sync.Pool // *logs.Decoder
}

// SetLogs makes the receiver serve OTLP logs (LogsService/Export on its
// gRPC server, POST /v1/logs on its HTTP handler), appending to app. Call
// it before NewGRPCServer and HTTPHandler.
func (r *Receiver) SetLogs(app LogsAppender) {
	lim := r.core.Limits()
	r.logs = &logsReceiver{core: r.core, app: app}
	r.logs.decoders.New = func() any { return logs.NewDecoder(lim) }
}

// export decodes body and stores it.
func (l *logsReceiver) export(ctx context.Context, req *Request, body []byte, isJSON bool) Outcome {
	dec := l.decoders.Get().(*logs.Decoder)
	defer l.decoders.Put(dec)
	var b logs.Batch
	var res logs.Result
	var err error
	if isJSON {
		res, err = dec.DecodeJSON(body, &b)
	} else {
		res, err = dec.DecodeProto(body, &b)
	}
	if err != nil {
		return req.DecodeFailed(err, "decode OTLP logs request")
	}
	return req.StoreLogs(ctx, l.app, &b, res)
}

// StoreLogs makes the decoded log records durable through app and counts
// the outcome, as Store does for spans. Log records count against the
// tenant's ingestion rate as spans do (records and bytes).
func (r *Request) StoreLogs(ctx context.Context, app LogsAppender, b *logs.Batch, res logs.Result) Outcome {
	r.c.m.limited(r.proto, res.OTLP())
	if res.UnknownSeverity > 0 {
		r.c.m.truncated.WithLabelValues(string(r.proto), TruncSeverity).Add(float64(res.UnknownSeverity))
	}
	o := Outcome{Result: res.OTLP()}
	if len(b.Records) == 0 {
		r.count(o)
		return o
	}
	tenant, ok := storage.TenantFrom(ctx)
	if !ok {
		tenant = r.c.tenant
	}
	if r.c.lim != nil {
		size := 0
		for i := range b.Records {
			size += 64 + len(b.Records[i].Body)
		}
		if wait, ok := r.c.lim.AllowIngest(tenant, len(b.Records), size); !ok {
			o.Kind, o.Reason, o.RetryAfter = Overloaded, ReasonTenantRateLimited, wait
			o.Msg = fmt.Sprintf("tenant %s is over its ingestion rate (overrides): retry in %s", tenant, wait.Round(time.Millisecond))
			r.c.m.spansLost(r.proto, o.Reason, len(b.Records))
			r.count(o)
			return o
		}
	}
	err := app.AppendLogs(ctx, tenant, b)
	switch {
	case err == nil:
		o.Stored = len(b.Records)
	case errors.Is(err, ErrRetryable):
		o.Kind, o.Reason, o.Msg = Overloaded, ReasonStoreOverloaded, err.Error()
	case ctx.Err() != nil:
		o.Kind, o.Reason, o.Msg = Unavailable, ReasonCancelled, "request cancelled before its log records were durable: "+ctx.Err().Error()
	default:
		o.Kind, o.Reason, o.Msg = Unavailable, ReasonStoreError, "store log records: "+err.Error()
		r.c.log.Error("append log records", "protocol", string(r.proto), "err", err)
	}
	if o.Kind != Accepted {
		r.c.m.spansLost(r.proto, o.Reason, len(b.Records))
	}
	r.count(o)
	return o
}

// logsServiceDesc describes opentelemetry.proto.collector.logs.v1.LogsService.
var logsServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.logs.v1.LogsService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			l := srv.(*logsReceiver)
			if intercept == nil {
				return l.exportGRPC(ctx, dec)
			}
			return intercept(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}, func(ctx context.Context, _ any) (any, error) {
				return l.exportGRPC(ctx, dec)
			})
		},
	}},
	Metadata: "opentelemetry/proto/collector/logs/v1/logs_service.proto",
}

func (l *logsReceiver) exportGRPC(ctx context.Context, dec func(any) error) (any, error) {
	req := l.core.Begin(OTLPLogsGRPC)
	defer req.End()
	var in rawMsg
	if err := dec(&in); err != nil {
		return nil, l.core.GRPCError(req.Refuse(ReasonMalformed, fmt.Sprintf("read request: %v", err)))
	}
	req.bufs = append(req.bufs, in.buf)
	body := *in.buf
	if o, ok := req.Admit(len(body), len(body)); !ok {
		return nil, l.core.GRPCError(o)
	}
	o := l.export(ctx, req, body, false)
	if o.Kind != Accepted {
		return nil, l.core.GRPCError(o)
	}
	// ExportLogsServiceResponse has the trace response's shape
	// (partial_success = 1 {rejected_log_records = 1, error_message = 2}).
	resp := otlp.AppendExportResponseProto(nil, int64(o.Rejected), o.Msg)
	return &rawMsg{buf: &resp}, nil
}

func (l *logsReceiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	serveOTLPHTTP(l.core, OTLPLogsHTTP, w, req, l.answer, l.export)
}

// answer writes o as an ExportLogsServiceResponse or a google.rpc.Status.
func (l *logsReceiver) answer(w http.ResponseWriter, isJSON bool, o Outcome) {
	if o.Kind != Accepted {
		l.core.SetRetryAfter(w, o)
		writeHTTPStatus(w, isJSON, o.HTTPStatus(http.StatusOK), o.Msg)
		return
	}
	var resp []byte
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		resp = []byte("{}")
		if o.Rejected > 0 {
			resp = []byte(`{"partialSuccess":{"rejectedLogRecords":"` + strconv.Itoa(o.Rejected) + `"}}`)
		}
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		resp = otlp.AppendExportResponseProto(nil, int64(o.Rejected), o.Msg)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}
