package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/clew-dev/clew/internal/tlsconfig"
	"github.com/clew-dev/clew/internal/tlsconfig/tlstest"
)

// TestTLSEndToEnd runs the real clew binary with TLS on every listener
// (client certificates required on ingest) and checks that clew loadgen
// sends OTLP over gRPC and HTTP with TLS, that the query port answers
// HTTPS and gRPC over TLS, that clew query works with TLS, that plain
// text and clients without a certificate are refused, and that a renewed
// certificate is served without a restart.
func TestTLSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs clew")
	}
	bin := filepath.Join(t.TempDir(), "clew")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/clew-dev/clew/cmd/clew").CombinedOutput(); err != nil {
		t.Fatalf("build clew: %v\n%s", err, out)
	}
	f := tlstest.NewFiles(t)
	cfgPath := tlstest.Write(t, t.TempDir(), "clew.yaml", []byte(`tls:
  ingest:
    cert_file: `+f.CertFile+`
    key_file: `+f.KeyFile+`
    client_ca_file: `+f.CAFile+`
    require_client_cert: true
  query:
    cert_file: `+f.CertFile+`
    key_file: `+f.KeyFile+`
`))
	addrs := map[string]string{}
	for _, k := range []string{"otlp-grpc-addr", "otlp-http-addr", "http-addr", "zipkin-addr", "jaeger-grpc-addr", "jaeger-http-addr"} {
		addrs[k] = freeAddr(t)
	}
	args := []string{"--config", cfgPath}
	for k, v := range addrs {
		args = append(args, "--"+k, v)
	}
	clew := startServe(t, bin, args...)

	cc, err := tlsconfig.Client{CAFile: f.CAFile}.Load()
	if err != nil {
		t.Fatal(err)
	}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: cc, ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	query := "https://" + addrs["http-addr"]
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := https.Get(query + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-clew.exited:
			t.Fatalf("clew exited at start:\n%s", clew.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("clew not ready over HTTPS after 60s (%v):\n%s", err, clew.out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	mtls := []string{"--tls-ca-file", f.CAFile, "--tls-cert-file", f.ClientCert, "--tls-key-file", f.ClientKey}
	lg := []string{"loadgen", "--spans", "100", "--quiet", "--retry-max", "2s"}
	// OTLP over gRPC and over HTTP, with TLS and a client certificate.
	if out, err := run(append(append(lg, "--endpoint", addrs["otlp-grpc-addr"], "--seed", "1"), mtls...)...); err != nil {
		t.Fatalf("loadgen gRPC over TLS: %v\n%s", err, out)
	}
	if out, err := run(append(append(lg, "--protocol", "http", "--endpoint", addrs["otlp-http-addr"], "--seed", "2"), mtls...)...); err != nil {
		t.Fatalf("loadgen HTTP over TLS: %v\n%s", err, out)
	}
	// Plain text, and TLS without the client certificate, are refused.
	for _, c := range []struct {
		name string
		args []string
	}{
		{"gRPC plain text", []string{"--endpoint", addrs["otlp-grpc-addr"]}},
		{"HTTP plain text", []string{"--protocol", "http", "--endpoint", addrs["otlp-http-addr"]}},
		{"gRPC without a client certificate", []string{"--endpoint", addrs["otlp-grpc-addr"], "--tls-ca-file", f.CAFile}},
		{"HTTP without a client certificate", []string{"--protocol", "http", "--endpoint", addrs["otlp-http-addr"], "--tls-ca-file", f.CAFile}},
	} {
		if out, err := run(append(lg, c.args...)...); err == nil {
			t.Errorf("loadgen %s succeeded:\n%s", c.name, out)
		}
	}

	// The query port over HTTPS sees the spans.
	var services struct {
		Services []string `json:"services"`
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := https.Get(query + "/api/v1/services")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
			t.Fatalf("GET /api/v1/services: %s %d %s", resp.Proto, resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &services); err != nil {
			t.Fatal(err)
		}
		if len(services.Services) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no services over HTTPS after 30s: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// gRPC (Jaeger QueryService) on the same TLS port.
	conn, err := grpc.NewClient(addrs["http-addr"], grpc.WithTransportCredentials(credentials.NewTLS(cc.Clone())))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gs, err := api_v2.NewQueryServiceClient(conn).GetServices(ctx, &api_v2.GetServicesRequest{})
	if err != nil || len(gs.Services) != len(services.Services) {
		t.Errorf("gRPC GetServices over TLS: %v, %v; HTTP has %v", gs, err, services.Services)
	}
	// clew query with TLS.
	if out, err := run("query", "--addr", query, "--tls-ca-file", f.CAFile, "-o", "json", "{ }"); err != nil || !strings.Contains(out, "traces") {
		t.Errorf("clew query over TLS: %v\n%s", err, out)
	}
	if out, err := run("query", "--addr", "http://"+addrs["http-addr"], "{ }"); err == nil {
		t.Errorf("clew query in plain text succeeded:\n%s", out)
	}
	// Plain HTTP on the query port gets no answer of the API.
	if resp, err := http.Get("http://" + addrs["http-addr"] + "/api/v1/services"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP on the TLS query port answered 200")
		}
	}
	// Every ingest port speaks TLS with h2 by ALPN and wants a client
	// certificate.
	withCert, err := tlsconfig.Client{CAFile: f.CAFile, CertFile: f.ClientCert, KeyFile: f.ClientKey}.Load()
	if err != nil {
		t.Fatal(err)
	}
	withCert.NextProtos = []string{"h2"}
	for _, k := range []string{"otlp-grpc-addr", "otlp-http-addr", "zipkin-addr", "jaeger-grpc-addr", "jaeger-http-addr"} {
		c, err := tls.Dial("tcp", addrs[k], withCert)
		if err != nil {
			t.Errorf("%s: TLS with a client certificate: %v", k, err)
			continue
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("%s: ALPN %q, want h2", k, p)
		}
		c.Close()
	}
	// Zipkin over TLS (HTTP/1.1 and a client certificate).
	zc := &http.Client{Transport: &http.Transport{TLSClientConfig: withCert.Clone()}, Timeout: 10 * time.Second}
	zc.Transport.(*http.Transport).TLSClientConfig.NextProtos = nil
	resp, err := zc.Post("https://"+addrs["zipkin-addr"]+"/api/v2/spans", "application/json",
		strings.NewReader(`[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","name":"get","localEndpoint":{"serviceName":"zipkin-tls"},"timestamp":`+strconv.FormatInt(time.Now().Add(-time.Second).UnixMicro(), 10)+`,"duration":1000}]`))
	if err != nil {
		t.Fatalf("Zipkin over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("Zipkin over TLS: %d %s", resp.StatusCode, body)
	}

	// A renewed certificate is served without a restart.
	c, k := f.CA.Issue(t, 20, false, "127.0.0.1")
	for _, w := range []struct {
		path string
		b    []byte
	}{{f.KeyFile, k}, {f.CertFile, c}} {
		if err := os.WriteFile(w.path+".new", w.b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(w.path+".new", w.path); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := tls.Dial("tcp", addrs["http-addr"], cc)
		if err == nil {
			serial := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
			c.Close()
			if serial == 20 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the query port still serves the old certificate after 10s (%v):\n%s", err, clew.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-clew.exited:
		t.Fatalf("clew exited:\n%s", clew.out)
	default:
	}
}
