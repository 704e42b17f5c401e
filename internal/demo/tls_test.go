package demo

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/clew-dev/clew/internal/tlsconfig"
	"github.com/clew-dev/clew/internal/tlsconfig/tlstest"
)

// TestExportTLS exports to a receiver that requires TLS and a client
// certificate, with the credential headers as gRPC metadata.
func TestExportTLS(t *testing.T) {
	f := tlstest.NewFiles(t)
	sc, err := tlsconfig.Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile, RequireClientCert: true}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var md metadata.MD
	r := &receiver{addr: ln.Addr().String()}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(sc)), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			mu.Lock()
			md, _ = metadata.FromIncomingContext(ctx)
			mu.Unlock()
			return h(ctx, req)
		}))
	ptraceotlp.RegisterGRPCServer(srv, r)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	cf := tlsconfig.ClientFlags{Client: tlsconfig.Client{CAFile: f.CAFile, CertFile: f.ClientCert, KeyFile: f.ClientKey}, Token: "t0k", Tenant: "acme"}
	cfg := DefaultConfig()
	cfg.Endpoint = r.addr
	if cfg.TLS, err = cf.TLSConfig(); err != nil {
		t.Fatal(err)
	}
	cfg.Headers = cf.Headers()
	cfg.Rate = 20
	cfg.ControlAddr = "127.0.0.1:0"
	cfg.GroundTruthPath = filepath.Join(t.TempDir(), "gt.jsonl")
	cfg.BatchTimeout = 100 * time.Millisecond
	dm, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dm.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	r.mu.Lock()
	n := len(r.spans)
	r.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if n == 0 {
		t.Fatal("no spans arrived over TLS")
	}
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer t0k" {
		t.Errorf("authorization %q", got)
	}
	if got := md.Get("x-scope-orgid"); len(got) != 1 || got[0] != "acme" {
		t.Errorf("x-scope-orgid %q", got)
	}
}
