package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/tlsconfig/tlstest"
)

// serve accepts TLS connections on a loopback listener with cfg; after a
// handshake it writes "ok" and closes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dial handshakes with addr and reads the server's "ok"; it returns the
// serial of the server's certificate and the negotiated protocol.
func dial(addr string, cfg *tls.Config) (serial int64, proto string, err error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, "", err
	}
	if string(b) != "ok" {
		return 0, "", io.ErrUnexpectedEOF
	}
	st := c.ConnectionState()
	return st.PeerCertificates[0].SerialNumber.Int64(), st.NegotiatedProtocol, nil
}

func clientConfig(t *testing.T, c Client) *tls.Config {
	t.Helper()
	cfg, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServeAndALPN(t *testing.T) {
	f := tlstest.NewFiles(t)
	cfg, err := Server{CertFile: f.CertFile, KeyFile: f.KeyFile}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x", cfg.MinVersion)
	}
	addr := serve(t, cfg)
	cc := clientConfig(t, Client{CAFile: f.CAFile})
	cc.NextProtos = []string{"h2", "http/1.1"}
	serial, proto, err := dial(addr, cc)
	if err != nil || serial != 2 || proto != "h2" {
		t.Fatalf("dial: serial %d, proto %q, %v; want 2, h2", serial, proto, err)
	}
	cc.NextProtos = []string{"http/1.1"}
	if _, proto, err = dial(addr, cc); err != nil || proto != "http/1.1" {
		t.Fatalf("dial http/1.1: %q, %v", proto, err)
	}
	// A client that does not trust the CA is refused.
	if _, _, err := dial(addr, &tls.Config{MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("a client with the system roots accepted the test CA's certificate")
	}
	// TLS 1.1 is refused.
	old := clientConfig(t, Client{CAFile: f.CAFile})
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, _, err := dial(addr, old); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
}

// rewrite replaces a file's contents as a renewal does (write to a
// temporary file, rename).
func rewrite(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitSerial dials until the server presents want, for at most 5s.
func waitSerial(t *testing.T, addr string, cc *tls.Config, want int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var got int64
	var err error
	for time.Now().Before(deadline) {
		if got, _, err = dial(addr, cc); err == nil && got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server still presents serial %d (err %v), want %d", got, err, want)
}

func TestReload(t *testing.T) {
	f := tlstest.NewFiles(t)
	logs := &syncWriter{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg, err := Server{CertFile: f.CertFile, KeyFile: f.KeyFile}.LoadWithMetrics(log, m)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	cc := clientConfig(t, Client{CAFile: f.CAFile})
	if serial, _, err := dial(addr, cc); err != nil || serial != 2 {
		t.Fatalf("first dial: %d, %v", serial, err)
	}

	// A renewed certificate (new key too) is served without a restart.
	c, k := f.CA.Issue(t, 10, false, "127.0.0.1")
	rewrite(t, f.KeyFile, k)
	rewrite(t, f.CertFile, c)
	waitSerial(t, addr, cc, 10)
	if n := reloads(t, reg, "success"); n < 1 {
		t.Errorf("reloads{success} = %v", n)
	}

	// A broken certificate file keeps the previous certificate, with a
	// warning and a failure counted.
	rewrite(t, f.CertFile, []byte("not a certificate"))
	deadline := time.Now().Add(5 * time.Second)
	for reloads(t, reg, "failure") == 0 && time.Now().Before(deadline) {
		if serial, _, err := dial(addr, cc); err != nil || serial != 10 {
			t.Fatalf("dial with a broken file: %d, %v; want the previous certificate (10)", serial, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := reloads(t, reg, "failure"); n != 1 {
		t.Fatalf("reloads{failure} = %v, want 1", n)
	}
	if serial, _, err := dial(addr, cc); err != nil || serial != 10 {
		t.Fatalf("dial after a failed reload: %d, %v", serial, err)
	}
	out := logs.String()
	if !strings.Contains(out, "TLS reload failed") || !strings.Contains(out, f.CertFile) {
		t.Errorf("no warning naming the file:\n%s", out)
	}
	if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, string(k[40:80])) {
		t.Errorf("key material in the log:\n%s", out)
	}

	// Fixed again, it is picked up.
	c11, k11 := f.CA.Issue(t, 11, false, "127.0.0.1")
	rewrite(t, f.KeyFile, k11)
	rewrite(t, f.CertFile, c11)
	waitSerial(t, addr, cc, 11)
}

// syncWriter is a log buffer written by the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reloads reads clew_tls_reloads_total{result} from reg.
func reloads(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "clew_tls_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no clew_tls_reloads_total{result=%q}", result)
	return 0
}

func TestMTLS(t *testing.T) {
	f := tlstest.NewFiles(t)
	cfg, err := Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile, RequireClientCert: true}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	if _, _, err := dial(addr, clientConfig(t, Client{CAFile: f.CAFile})); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
	if serial, _, err := dial(addr, clientConfig(t, Client{CAFile: f.CAFile, CertFile: f.ClientCert, KeyFile: f.ClientKey})); err != nil || serial != 2 {
		t.Fatalf("client with a certificate: %d, %v", serial, err)
	}
	// A certificate from another CA is refused.
	other := tlstest.NewCA(t)
	c, k := other.Issue(t, 5, true)
	dir := t.TempDir()
	if _, _, err := dial(addr, clientConfig(t, Client{CAFile: f.CAFile, CertFile: tlstest.Write(t, dir, "c.pem", c), KeyFile: tlstest.Write(t, dir, "k.pem", k)})); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}

	// Without RequireClientCert, no certificate is fine, a bad one is not.
	cfg, err = Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr = serve(t, cfg)
	if _, _, err := dial(addr, clientConfig(t, Client{CAFile: f.CAFile})); err != nil {
		t.Fatalf("optional client certificate, none given: %v", err)
	}
	if _, _, err := dial(addr, clientConfig(t, Client{CAFile: f.CAFile, CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")})); err == nil {
		t.Fatal("optional client certificate: one of another CA was accepted")
	}
}

func TestClientCAReload(t *testing.T) {
	f := tlstest.NewFiles(t)
	cfg, err := Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile, RequireClientCert: true}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, cfg)
	other := tlstest.NewCA(t)
	c, k := other.Issue(t, 5, true)
	dir := t.TempDir()
	cc := clientConfig(t, Client{CAFile: f.CAFile, CertFile: tlstest.Write(t, dir, "c.pem", c), KeyFile: tlstest.Write(t, dir, "k.pem", k)})
	if _, _, err := dial(addr, cc); err == nil {
		t.Fatal("a client certificate of an untrusted CA was accepted")
	}
	// Trust the other CA too: its client is accepted once the bundle is
	// reloaded.
	rewrite(t, f.CAFile, append(append([]byte{}, f.CA.PEM...), other.PEM...))
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err = dial(addr, cc); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client of the added CA still refused: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestValidate(t *testing.T) {
	f := tlstest.NewFiles(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		s    Server
		want string // "" valid
	}{
		{Server{}, ""},
		{Server{CertFile: f.CertFile, KeyFile: f.KeyFile}, ""},
		{Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: f.CAFile, RequireClientCert: true}, ""},
		{Server{CertFile: f.CertFile}, "cert_file is set but key_file is not"},
		{Server{KeyFile: f.KeyFile}, "key_file is set but cert_file is not"},
		{Server{ClientCAFile: f.CAFile}, "client_ca_file needs TLS"},
		{Server{CertFile: f.CertFile, KeyFile: f.KeyFile, RequireClientCert: true}, "require_client_cert needs client_ca_file"},
		{Server{CertFile: missing, KeyFile: f.KeyFile}, `cert_file "` + missing + `" is not readable`},
		{Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: t.TempDir()}, "client_ca_file"},
	} {
		err := c.s.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.s, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
	// Readable but not a certificate: Load says so.
	bad := tlstest.Write(t, t.TempDir(), "bad.pem", []byte("junk"))
	if _, err := (Server{CertFile: bad, KeyFile: f.KeyFile}).Load(nil); err == nil {
		t.Error("Load of a junk certificate succeeded")
	}
	if _, err := (Server{CertFile: f.CertFile, KeyFile: f.KeyFile, ClientCAFile: bad}).Load(nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("Load with a junk CA: %v", err)
	}
}

func TestClientFlags(t *testing.T) {
	f := tlstest.NewFiles(t)
	var got http.Header
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = io.WriteString(w, r.Proto)
	}))
	scfg, err := Server{CertFile: f.CertFile, KeyFile: f.KeyFile}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = scfg
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	cf := ClientFlags{Client: Client{CAFile: f.CAFile}, Token: "s3cret", Tenant: "team-a"}
	if !cf.Enabled() || cf.Validate() != nil {
		t.Fatalf("Enabled %v, Validate %v", cf.Enabled(), cf.Validate())
	}
	tr, err := cf.Transport(nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" {
		t.Errorf("proto %s, want HTTP/2.0", body)
	}
	if got.Get("Authorization") != "Bearer s3cret" || got.Get("X-Scope-OrgID") != "team-a" {
		t.Errorf("headers %v", got)
	}
	md := cf.Metadata()
	if len(md) != 4 || !strings.Contains(strings.Join(md, " "), "authorization Bearer s3cret") {
		t.Errorf("metadata %q", md)
	}

	// Without a CA the system roots do not know the test CA.
	tr, _ = (&ClientFlags{TLS: true}).Transport(nil)
	if _, err := (&http.Client{Transport: tr}).Get(srv.URL); err == nil {
		t.Error("system roots trusted the test CA")
	}
	if (&ClientFlags{}).Enabled() || (&ClientFlags{}).Set() {
		t.Error("zero ClientFlags enabled")
	}
	if (&ClientFlags{Token: "a\nb"}).Validate() == nil {
		t.Error("a token with a newline accepted")
	}
	if _, err := (Client{CertFile: f.ClientCert}).Load(); err == nil {
		t.Error("a client certificate without a key accepted")
	}
}
