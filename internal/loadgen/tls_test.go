package loadgen

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/clew-dev/clew/internal/tlsconfig"
	"github.com/clew-dev/clew/internal/tlsconfig/tlstest"
)

// TestTLSAndCredentials sends over gRPC and HTTP with TLS, a client
// certificate the server requires, a token and a tenant.
func TestTLSAndCredentials(t *testing.T) {
	f := tlstest.NewFiles(t)
	sc, err := tlsconfig.Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile, RequireClientCert: true}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--tls-ca-file", f.CAFile, "--tls-cert-file", f.ClientCert, "--tls-key-file", f.ClientKey, "--token", "t0k", "--tenant", "acme", "--spans", "100", "--quiet", "--retry-max", "1s"}

	// gRPC.
	ts := &testServer{}
	var mu sync.Mutex
	var md metadata.MD
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(RawCodec{}), grpc.Creds(credentials.NewTLS(sc)))
	export := func(s any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		mu.Lock()
		md, _ = metadata.FromIncomingContext(ctx)
		mu.Unlock()
		return ts.export(s, ctx, dec, ic)
	}
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: export}},
	}, ts)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	if err := Main(context.Background(), append([]string{"--endpoint", lis.Addr().String()}, flags...), io.Discard, io.Discard); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	mu.Lock()
	if ts.spans != 100 || strings.Join(md["authorization"], "") != "Bearer t0k" || strings.Join(md["x-scope-orgid"], "") != "acme" {
		t.Errorf("gRPC: %d spans, metadata %v", ts.spans, md)
	}
	mu.Unlock()
	// Plain text to a TLS server fails.
	if err := Main(context.Background(), []string{"--endpoint", lis.Addr().String(), "--spans", "10", "--quiet", "--retry-max", "1s"}, io.Discard, io.Discard); err == nil {
		t.Error("plain-text gRPC to a TLS server succeeded")
	}

	// HTTP.
	var got http.Header
	var proto string
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got, proto = r.Header.Clone(), r.Proto
		mu.Unlock()
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	hs.TLS, hs.EnableHTTP2 = sc, true
	hs.StartTLS()
	defer hs.Close()
	hostport := strings.TrimPrefix(hs.URL, "https://")
	if err := Main(context.Background(), append([]string{"--protocol", "http", "--endpoint", hostport}, flags...), io.Discard, io.Discard); err != nil {
		t.Fatalf("HTTP over TLS: %v", err)
	}
	mu.Lock()
	if got.Get("Authorization") != "Bearer t0k" || got.Get("X-Scope-OrgID") != "acme" || proto != "HTTP/2.0" {
		t.Errorf("HTTP: %s, headers %v", proto, got)
	}
	mu.Unlock()
	// Without the client certificate the server refuses.
	if err := Main(context.Background(), []string{"--protocol", "http", "--endpoint", hostport, "--tls-ca-file", f.CAFile, "--spans", "10", "--quiet", "--retry-max", "1s"}, io.Discard, io.Discard); err == nil {
		t.Error("HTTP without the required client certificate succeeded")
	}
}
