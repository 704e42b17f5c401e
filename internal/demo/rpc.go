package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// jsonCodec carries gRPC messages as JSON, so that the shop's services need
// no generated protobuf code. It is forced on both ends rather than
// registered, so it never changes how the rest of the process speaks gRPC.
type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)   { return json.Marshal(v) }
func (jsonCodec) Unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
func (jsonCodec) Name() string                    { return "json" }
func (jsonCodec) String() string                  { return "json" } // for grpc's logs

// unary describes one unary method of a hand-written grpc.ServiceDesc.
func unary[Req, Resp any](service, method string, fn func(context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	full := "/" + service + "/" + method
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			if ic == nil {
				return fn(ctx, req)
			}
			return ic(ctx, req, &grpc.UnaryServerInfo{FullMethod: full}, func(ctx context.Context, r any) (any, error) {
				return fn(ctx, r.(*Req))
			})
		},
	}
}

// serviceDesc assembles a grpc.ServiceDesc; the handler type is any, so any
// value can be registered as its implementation.
func serviceDesc(name string, methods ...grpc.MethodDesc) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{ServiceName: name, HandlerType: (*any)(nil), Methods: methods, Metadata: name}
}

// newGRPCServer returns a server whose RPCs are traced by otelgrpc with the
// instance's provider and propagator.
func newGRPCServer(in *instance) *grpc.Server {
	return grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(in.tp), otelgrpc.WithPropagators(in.prop))),
		grpc.ForceServerCodec(jsonCodec{}),
	)
}

// dialGRPC connects from one instance to another; calls are traced by the
// caller's provider.
func dialGRPC(from *instance, addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithTracerProvider(from.tp), otelgrpc.WithPropagators(from.prop))),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(jsonCodec{})),
	)
	if err != nil {
		return nil, fmt.Errorf("connect %s to %s: %w", from.id, addr, err)
	}
	return cc, nil
}

// urlTemplateKey carries the route template of an outgoing HTTP request to
// the client span's name and url.template attribute.
type urlTemplateKey struct{}

// resendKey carries the number of earlier attempts of an outgoing HTTP
// request (http.request.resend_count).
type resendKey struct{}

// newHTTPClient returns a client whose requests are traced by otelhttp with
// the instance's provider and propagator. Client spans are named
// "{method} {url.template}" when the caller gives a template.
func newHTTPClient(tp trace.TracerProvider, prop propagation.TextMapPropagator) *http.Client {
	base := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64}
	return &http.Client{
		Transport: otelhttp.NewTransport(annotate{base},
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(prop),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				if t, ok := r.Context().Value(urlTemplateKey{}).(string); ok {
					return r.Method + " " + t
				}
				return r.Method
			}),
		),
	}
}

// annotate runs inside otelhttp's client span and adds the attributes
// otelhttp cannot know: the URL template and the resend count.
type annotate struct{ next http.RoundTripper }

func (a annotate) RoundTrip(r *http.Request) (*http.Response, error) {
	span := trace.SpanFromContext(r.Context())
	if t, ok := r.Context().Value(urlTemplateKey{}).(string); ok {
		span.SetAttributes(semconv.URLTemplate(t))
	}
	if n, ok := r.Context().Value(resendKey{}).(int); ok && n > 0 {
		span.SetAttributes(semconv.HTTPRequestResendCount(n))
	}
	return a.next.RoundTrip(r)
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.msg) }

// callHTTP sends one request with a JSON body (nil for none) and decodes a
// JSON answer into out (nil to discard it). tmpl is the route template,
// for example "/carts/{user}".
func callHTTP(ctx context.Context, c *http.Client, method, base, tmpl, path string, attempt int, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx = context.WithValue(ctx, urlTemplateKey{}, tmpl)
	if attempt > 0 {
		ctx = context.WithValue(ctx, resendKey{}, attempt)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{status: resp.StatusCode, msg: strings.TrimSpace(string(b))}
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}
