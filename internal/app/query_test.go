package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/jaeger"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/tempo"
	"github.com/clew-dev/clew/internal/testutil"
)

// TestQueryPort checks that the query port, built as Run builds it
// (newHTTPServer over withGRPC), serves HTTP/1.1, HTTP/2 without TLS
// (h2c with prior knowledge, as Grafana's clients speak it) and gRPC on
// one listener.
func TestQueryPort(t *testing.T) {
	db := storetest.OpenStore(t, testutil.TraceQLFixture())
	mux := http.NewServeMux()
	api.New(db, db, nil).Register(mux)
	japi := jaeger.New(db, nil)
	japi.Register(mux, "/jaeger")
	tempo.New(db, nil).Register(mux, "/tempo")
	g := japi.NewGRPCServer()
	srv := newHTTPServer(withGRPC(g, mux))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		g.Stop()
		srv.Close()
	})
	base := "http://" + ln.Addr().String()

	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	for _, c := range []struct {
		name   string
		client *http.Client
		proto  string
	}{
		{"http1", &http.Client{}, "HTTP/1.1"},
		{"h2c", &http.Client{Transport: &http.Transport{Protocols: &h2c}}, "HTTP/2.0"},
	} {
		for _, path := range []string{"/tempo/api/echo", "/jaeger/api/services", "/api/v1/services"} {
			resp, err := c.client.Get(base + path)
			if err != nil {
				t.Fatalf("%s GET %s: %v", c.name, path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Proto != c.proto {
				t.Errorf("%s GET %s: %s %d %s", c.name, path, resp.Proto, resp.StatusCode, body)
			}
		}
	}

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := api_v2.NewQueryServiceClient(conn).GetServices(context.Background(), &api_v2.GetServicesRequest{})
	if err != nil {
		t.Fatalf("gRPC GetServices: %v", err)
	}
	if !slices.Contains(resp.Services, "frontend") {
		t.Errorf("gRPC services %v", resp.Services)
	}

	// A gRPC content type over HTTP/1.1 is not gRPC: the mux answers.
	r, err := http.Post(base+"/jaeger.api_v2.QueryService/GetServices", "application/grpc", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("gRPC over HTTP/1.1: %d", r.StatusCode)
	}
}
