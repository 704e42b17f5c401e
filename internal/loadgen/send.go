package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clew-dev/clew/internal/tlsconfig"
)

// ExportMethod is the full gRPC method name of OTLP trace export.
const ExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// callTimeout bounds one export call; a call that times out is retried.
const callTimeout = 30 * time.Second

// exportResult is the outcome of one export call.
type exportResult struct {
	rejected   int64         // spans refused in a partial success
	message    string        // the partial success message
	err        error         // nil when the request was delivered
	retryable  bool          // err is an overload or transient error
	retryAfter time.Duration // server-suggested wait, 0 when none
}

// exporter sends encoded ExportTraceServiceRequests. It is safe for
// concurrent use.
type exporter interface {
	export(ctx context.Context, body []byte) exportResult
	close() error
}

func newExporter(cfg Config) (exporter, error) {
	target, err := cfg.target()
	if err != nil {
		return nil, err
	}
	if cfg.Protocol == ProtocolHTTP {
		return newHTTPExporter(target, cfg.Concurrency, &cfg.Conn)
	}
	return newGRPCExporter(target, &cfg.Conn)
}

// RawCodec is a gRPC codec that passes []byte messages through unchanged, so
// that pre-encoded requests are sent without re-marshalling. It names itself
// "proto", the content subtype OTLP receivers expect. Marshal accepts []byte
// or *[]byte; Unmarshal fills a *[]byte.
type RawCodec struct{}

// Marshal returns the bytes of v.
func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch b := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
	}
	return nil, fmt.Errorf("marshal %T: raw codec takes []byte", v)
}

// Unmarshal copies data into v, which must be a *[]byte.
func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("unmarshal into %T: raw codec takes *[]byte", v)
	}
	*p = data.Materialize()
	return nil
}

// Name returns "proto".
func (RawCodec) Name() string { return "proto" }

type grpcExporter struct {
	conn *grpc.ClientConn
	md   metadata.MD // --token, --tenant; nil when neither
}

func newGRPCExporter(target string, cf *tlsconfig.ClientFlags) (*grpcExporter, error) {
	creds := insecure.NewCredentials()
	tc, err := cf.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	e := &grpcExporter{conn: conn}
	if kv := cf.Metadata(); len(kv) > 0 {
		e.md = metadata.Pairs(kv...)
	}
	return e, nil
}

func (e *grpcExporter) export(parent context.Context, body []byte) exportResult {
	ctx, cancel := context.WithTimeout(parent, callTimeout)
	defer cancel()
	if e.md != nil {
		ctx = metadata.NewOutgoingContext(ctx, e.md)
	}
	var resp []byte
	err := e.conn.Invoke(ctx, ExportMethod, body, &resp, grpc.ForceCodecV2(RawCodec{}))
	if err != nil {
		c := status.Code(err)
		// A call that ran into callTimeout (not the caller's cancellation)
		// is retried like an overload.
		retry := c == codes.ResourceExhausted || c == codes.Unavailable ||
			(c == codes.DeadlineExceeded && parent.Err() == nil)
		return exportResult{err: fmt.Errorf("export: %w", err), retryable: retry}
	}
	rejected, msg, err := parsePartialSuccess(resp)
	if err != nil {
		return exportResult{err: fmt.Errorf("read export response: %w", err)}
	}
	return exportResult{rejected: rejected, message: msg}
}

func (e *grpcExporter) close() error { return e.conn.Close() }

type httpExporter struct {
	url    string
	client *http.Client
}

func newHTTPExporter(url string, conns int, cf *tlsconfig.ClientFlags) (*httpExporter, error) {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	rt, err := cf.Transport(tr)
	if err != nil {
		return nil, err
	}
	return &httpExporter{url: url, client: &http.Client{Transport: rt, Timeout: callTimeout}}, nil
}

func (e *httpExporter) export(ctx context.Context, body []byte) exportResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return exportResult{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		// Connection refused, reset or timed out: transient.
		return exportResult{err: fmt.Errorf("export: %w", err), retryable: ctx.Err() == nil}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return exportResult{err: fmt.Errorf("read export response: %w", err), retryable: true}
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") || len(b) == 0 {
			return exportResult{}
		}
		rejected, msg, err := parsePartialSuccess(b)
		if err != nil {
			return exportResult{err: fmt.Errorf("read export response: %w", err)}
		}
		return exportResult{rejected: rejected, message: msg}
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return exportResult{
			err:        fmt.Errorf("export: HTTP %d", code),
			retryable:  true,
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	default:
		snippet := string(b)
		if len(snippet) > 200 {
			snippet = snippet[:200]
		}
		return exportResult{err: fmt.Errorf("export: HTTP %d: %s", code, strings.TrimSpace(snippet))}
	}
}

func (e *httpExporter) close() error {
	e.client.CloseIdleConnections()
	return nil
}

// parseRetryAfter reads a Retry-After header in seconds or as an HTTP date.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
