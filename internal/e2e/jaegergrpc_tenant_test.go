package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/auth"
)

// gogoCodec marshals jaeger-idl's api_v2 messages (gogo-generated, with
// their own Marshal and Unmarshal) as Jaeger's clients do, and passes
// api_v3 messages through as bytes (*[]byte).
type gogoCodec struct{}

func (gogoCodec) Name() string { return "proto" }

func (gogoCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	case interface{ Marshal() ([]byte, error) }:
		b, err := m.Marshal()
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	return nil, fmt.Errorf("gogoCodec: cannot marshal %T", v)
}

func (gogoCodec) Unmarshal(d mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *[]byte:
		*m = d.Materialize()
		return nil
	case interface{ Unmarshal([]byte) error }:
		return m.Unmarshal(d.Materialize())
	}
	return fmt.Errorf("gogoCodec: cannot unmarshal %T", v)
}

// jaegerQueryConn dials the Jaeger gRPC QueryService on clew's query port.
func jaegerQueryConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(gogoCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// v3Stream calls a (server-streaming or unary) api_v3 method with an
// encoded request and returns the encoded answers.
func v3Stream(ctx context.Context, conn *grpc.ClientConn, method string, req []byte) ([][]byte, error) {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/jaeger.api_v3.QueryService/"+method)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(&req); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		var b []byte
		err := st.RecvMsg(&b)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
}

// v2Spans drains an api_v2 span stream.
func v2Spans(st interface {
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
		out = append(out, c.Spans...)
	}
}

// jaegerGRPCView is what one caller sees through the Jaeger gRPC query
// APIs: services, operations and the service names of the spans of the
// traces it finds and fetches, all in one string to search.
func jaegerGRPCView(ctx context.Context, conn *grpc.ClientConn, ownService, ownTrace string) (string, error) {
	var view strings.Builder
	c := api_v2.NewQueryServiceClient(conn)
	svcs, err := c.GetServices(ctx, &api_v2.GetServicesRequest{})
	if err != nil {
		return "", fmt.Errorf("v2 GetServices: %w", err)
	}
	fmt.Fprintln(&view, "v2 services:", svcs.Services)
	ops, err := c.GetOperations(ctx, &api_v2.GetOperationsRequest{Service: ownService})
	if err != nil {
		return "", fmt.Errorf("v2 GetOperations: %w", err)
	}
	fmt.Fprintln(&view, "v2 operations of", ownService+":", len(ops.Operations))
	tid, err := model.TraceIDFromString(ownTrace)
	if err != nil {
		return "", err
	}
	st, err := c.GetTrace(ctx, &api_v2.GetTraceRequest{TraceID: tid})
	if err != nil {
		return "", fmt.Errorf("v2 GetTrace: %w", err)
	}
	spans, err := v2Spans(st)
	if err != nil {
		return "", fmt.Errorf("v2 GetTrace: %w", err)
	}
	for _, s := range spans {
		fmt.Fprintln(&view, "v2 trace span:", s.TraceID.String(), s.Process.ServiceName)
	}
	fst, err := c.FindTraces(ctx, &api_v2.FindTracesRequest{Query: &api_v2.TraceQueryParameters{
		ServiceName: ownService, StartTimeMin: time.Now().Add(-time.Hour), StartTimeMax: time.Now().Add(time.Minute), SearchDepth: 100}})
	if err != nil {
		return "", fmt.Errorf("v2 FindTraces: %w", err)
	}
	if spans, err = v2Spans(fst); err != nil {
		return "", fmt.Errorf("v2 FindTraces: %w", err)
	}
	for _, s := range spans {
		fmt.Fprintln(&view, "v2 found span:", s.TraceID.String(), s.Process.ServiceName)
	}
	// api_v3: GetServices (an empty request) and GetTrace (trace_id = 1).
	msgs, err := v3Stream(ctx, conn, "GetServices", nil)
	if err != nil {
		return "", fmt.Errorf("v3 GetServices: %w", err)
	}
	for _, m := range msgs {
		for len(m) > 0 { // GetServicesResponse: repeated string services = 1
			num, typ, n := protowire.ConsumeTag(m)
			if n < 0 || num != 1 || typ != protowire.BytesType {
				return "", fmt.Errorf("v3 GetServices: unexpected answer %x", m)
			}
			s, k := protowire.ConsumeString(m[n:])
			if k < 0 {
				return "", fmt.Errorf("v3 GetServices: unexpected answer %x", m)
			}
			fmt.Fprintln(&view, "v3 service:", s)
			m = m[n+k:]
		}
	}
	req := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), ownTrace)
	if msgs, err = v3Stream(ctx, conn, "GetTrace", req); err != nil {
		return "", fmt.Errorf("v3 GetTrace: %w", err)
	}
	for _, m := range msgs {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(m)
		if err != nil {
			return "", fmt.Errorf("v3 GetTrace: %w", err)
		}
		for _, rs := range td.ResourceSpans().All() {
			svc, _ := rs.Resource().Attributes().Get("service.name")
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					fmt.Fprintln(&view, "v3 trace span:", s.TraceID().String(), svc.Str())
				}
			}
		}
	}
	return view.String(), nil
}

// otherTraceCodes asks for a trace of another tenant through api_v2 and
// api_v3 GetTrace and returns the codes: NotFound each, when tenants are
// apart.
func otherTraceCodes(ctx context.Context, conn *grpc.ClientConn, trace string) (codes.Code, codes.Code) {
	tid, _ := model.TraceIDFromString(trace)
	var v2 codes.Code
	st, err := api_v2.NewQueryServiceClient(conn).GetTrace(ctx, &api_v2.GetTraceRequest{TraceID: tid})
	if err == nil {
		var spans []model.Span
		spans, err = v2Spans(st)
		if err == nil && len(spans) > 0 {
			v2 = codes.OK
		}
	}
	if err != nil {
		v2 = status.Code(err)
	}
	req := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), trace)
	msgs, err := v3Stream(ctx, conn, "GetTrace", req)
	v3 := status.Code(err)
	if err == nil && len(msgs) == 0 {
		v3 = codes.NotFound
	}
	return v2, v3
}

// TestJaegerGRPCTenants: two tenants write; through Jaeger's gRPC query
// APIs (api_v2 and api_v3 QueryService on the query port), each sees its
// own services, operations and traces and nothing of the other's, by its
// x-scope-orgid metadata or, with authentication, by its bearer token; a
// call without a tenant (or token) is UNAUTHENTICATED, one naming another
// tenant than its token's PERMISSION_DENIED. A read across tenants (a|b)
// is INVALID_ARGUMENT without cross_tenant_reads, and with it answers both
// tenants to a token allowed both, PERMISSION_DENIED to one allowed one.
func TestJaegerGRPCTenants(t *testing.T) {
	type caller struct{ tenant, token, own, other, ownTrace, otherTrace string }
	callers := []caller{
		{"team-a", "token-a", "alpha-", "bravo-", traceHex(1, 0), traceHex(2, 0)},
		{"team-b", "token-b", "bravo-", "alpha-", traceHex(2, 0), traceHex(1, 0)},
	}
	for _, withAuth := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", withAuth), func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--multitenancy"}
			if withAuth {
				cfg := filepath.Join(dir, "clew.yaml")
				yaml := "cross_tenant_reads: true\nauth:\n  tokens:\n" + tokenYAML("a", "token-a", "team-a", "read, write") + tokenYAML("b", "token-b", "team-b", "read, write") +
					"    - {name: ops, sha256: " + auth.HashToken("token-ops") + ", tenants: [team-a, team-b], rights: [read]}\n"
				if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			p := startClew(t, filepath.Join(dir, "data"), args...)
			for i, c := range callers {
				body, err := ptraceotlp.NewExportRequestFromTraces(tenantTraces(c.own, uint64(i+1), 3)).MarshalProto()
				if err != nil {
					t.Fatal(err)
				}
				token := ""
				if withAuth {
					token = c.token
				}
				if code := authDo(t, "POST", "http://"+p.otlpHTTP+"/v1/traces", token, c.tenant, body); code != 200 {
					t.Fatalf("%s write: %d", c.tenant, code)
				}
			}
			conn := jaegerQueryConn(t, p.httpAddr)
			md := func(c caller) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t.Cleanup(cancel)
				if withAuth {
					return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
				}
				return metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", c.tenant)
			}
			for _, c := range callers {
				view, err := jaegerGRPCView(md(c), conn, c.own+"frontend", c.ownTrace)
				if err != nil {
					t.Fatalf("%s: %v", c.tenant, err)
				}
				for _, want := range []string{"v2 services: [" + c.own, "v2 trace span: " + c.ownTrace, "v2 found span: " + c.ownTrace, "v3 service: " + c.own, "v3 trace span: " + c.ownTrace} {
					if !strings.Contains(view, want) {
						t.Errorf("%s: %q is missing from what it sees:\n%s", c.tenant, want, view)
					}
				}
				if strings.Contains(view, c.other) || strings.Contains(view, c.otherTrace) {
					t.Errorf("%s sees the other tenant's data:\n%s", c.tenant, view)
				}
				if strings.Contains(view, "operations of "+c.own+"frontend: 0") {
					t.Errorf("%s: no operations of its own service:\n%s", c.tenant, view)
				}
				if v2, v3 := otherTraceCodes(md(c), conn, c.otherTrace); v2 != codes.NotFound || v3 != codes.NotFound {
					t.Errorf("%s GetTrace of the other tenant's trace: api_v2 %s, api_v3 %s; want NotFound", c.tenant, v2, v3)
				}
			}
			// Neither tenant nor token: UNAUTHENTICATED on every method.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := api_v2.NewQueryServiceClient(conn).GetServices(ctx, &api_v2.GetServicesRequest{}); status.Code(err) != codes.Unauthenticated {
				t.Errorf("api_v2 GetServices without a tenant: %v, want Unauthenticated", err)
			}
			if _, err := v3Stream(ctx, conn, "GetServices", nil); status.Code(err) != codes.Unauthenticated {
				t.Errorf("api_v3 GetServices without a tenant: %v, want Unauthenticated", err)
			}
			// Reads across tenants (a|b): refused without cross_tenant_reads;
			// with it (and auth), for a token allowed both tenants only.
			both := "team-a|team-b"
			if !withAuth {
				across := metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", both)
				if _, err := v3Stream(across, conn, "GetServices", nil); status.Code(err) != codes.InvalidArgument {
					t.Errorf("api_v3 GetServices for %s without cross_tenant_reads: %v, want InvalidArgument", both, err)
				}
			} else {
				ops := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer token-ops", "x-scope-orgid", both)
				resp, err := api_v2.NewQueryServiceClient(conn).GetServices(ops, &api_v2.GetServicesRequest{})
				if err != nil || !strings.Contains(fmt.Sprint(resp.Services), "alpha-") || !strings.Contains(fmt.Sprint(resp.Services), "bravo-") {
					t.Errorf("api_v2 GetServices for %s with the operator token: %v %v, want both tenants' services", both, resp, err)
				}
				onlyA := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer token-a", "x-scope-orgid", both)
				if _, err := v3Stream(onlyA, conn, "GetServices", nil); status.Code(err) != codes.PermissionDenied {
					t.Errorf("api_v3 GetServices for %s with token a: %v, want PermissionDenied", both, err)
				}
			}
			if withAuth {
				// A tenant but no token; a token naming the other tenant.
				noToken := metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", "team-a")
				if _, err := v3Stream(noToken, conn, "GetServices", nil); status.Code(err) != codes.Unauthenticated {
					t.Errorf("api_v3 GetServices with a tenant and no token: %v, want Unauthenticated", err)
				}
				cross := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer token-a", "x-scope-orgid", "team-b")
				if _, err := api_v2.NewQueryServiceClient(conn).GetServices(cross, &api_v2.GetServicesRequest{}); status.Code(err) != codes.PermissionDenied {
					t.Errorf("api_v2 GetServices with token a naming team-b: %v, want PermissionDenied", err)
				}
				unknown := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer nope")
				if _, err := v3Stream(unknown, conn, "GetServices", nil); status.Code(err) != codes.Unauthenticated {
					t.Errorf("api_v3 GetServices with an unknown token: %v, want Unauthenticated", err)
				}
			}
			p.stop()
		})
	}
}
