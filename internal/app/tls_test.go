package app

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/jaeger"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil"
	"github.com/clew-dev/clew/internal/tlsconfig"
	"github.com/clew-dev/clew/internal/tlsconfig/tlstest"
)

// TestQueryPortTLS checks that the query port, built as Run builds it
// (newHTTPServer over withGRPC) on a TLS listener, serves HTTP/1.1,
// HTTP/2 and gRPC over TLS on one listener.
func TestQueryPortTLS(t *testing.T) {
	f := tlstest.NewFiles(t)
	db := storetest.OpenStore(t, testutil.TraceQLFixture())
	mux := http.NewServeMux()
	api.New(db, db, nil).Register(mux)
	japi := jaeger.New(db, nil)
	g := japi.NewGRPCServer()
	srv := newHTTPServer(withGRPC(g, mux))
	sc, err := tlsconfig.Server{CertFile: f.CertFile, KeyFile: f.KeyFile}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(tls.NewListener(ln, sc)) }()
	t.Cleanup(func() {
		g.Stop()
		srv.Close()
	})
	base := "https://" + ln.Addr().String()
	cc, err := tlsconfig.Client{CAFile: f.CAFile}.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		h2    bool
		proto string
	}{{"http1", false, "HTTP/1.1"}, {"h2", true, "HTTP/2.0"}} {
		tr := &http.Transport{TLSClientConfig: cc.Clone(), ForceAttemptHTTP2: c.h2}
		resp, err := (&http.Client{Transport: tr}).Get(base + "/api/v1/services")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != c.proto {
			t.Errorf("%s: %s %d %s", c.name, resp.Proto, resp.StatusCode, body)
		}
	}
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cc.Clone())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := api_v2.NewQueryServiceClient(conn).GetServices(context.Background(), &api_v2.GetServicesRequest{})
	if err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	if !slices.Contains(resp.Services, "frontend") {
		t.Errorf("gRPC services %v", resp.Services)
	}
	// Plain text is refused.
	if r, err := http.Get("http://" + ln.Addr().String() + "/api/v1/services"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS port")
		}
	}
}
