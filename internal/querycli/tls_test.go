package querycli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/clew-dev/clew/internal/tlsconfig"
	"github.com/clew-dev/clew/internal/tlsconfig/tlstest"
)

// TestTLSAndCredentials runs clew query, explain and anomalies against an
// HTTPS server: the default http:// address becomes https:// with TLS on,
// and every request carries the token and tenant.
func TestTLSAndCredentials(t *testing.T) {
	f := tlstest.NewFiles(t)
	sc, err := tlsconfig.Server{CertFile: f.CertFile, KeyFile: f.KeyFile}.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer t0k" || r.Header.Get("X-Scope-OrgID") != "acme" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		paths = append(paths, r.URL.Path)
		_, _ = io.WriteString(w, `{"traces":[]}`)
	}))
	srv.TLS = sc
	srv.StartTLS()
	defer srv.Close()
	addr := "http://" + strings.TrimPrefix(srv.URL, "https://") // upgraded by --tls-ca-file
	conn := []string{"--addr", addr, "--tls-ca-file", f.CAFile, "--token", "t0k", "--tenant", "acme", "-o", "json"}
	ctx := context.Background()
	if err := Main(ctx, append(conn, "{ }"), io.Discard, io.Discard); err != nil {
		t.Errorf("query: %v", err)
	}
	if err := ExplainMain(ctx, append(conn, "4bf92f3577b34da6a3ce929d0e0e4736"), io.Discard, io.Discard); err != nil {
		t.Errorf("explain: %v", err)
	}
	if err := AnomaliesMain(ctx, conn, io.Discard, io.Discard); err != nil {
		t.Errorf("anomalies: %v", err)
	}
	mu.Lock()
	if got := strings.Join(paths, " "); got != "/tempo/api/search /api/v1/explain/4bf92f3577b34da6a3ce929d0e0e4736 /api/v1/anomalies" {
		t.Errorf("paths %q", got)
	}
	mu.Unlock()
	// Without the token the server refuses; without the CA the
	// certificate is not trusted.
	if err := Main(ctx, []string{"--addr", srv.URL, "--tls-ca-file", f.CAFile, "{ }"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("query without a token: %v", err)
	}
	if err := Main(ctx, []string{"--addr", srv.URL, "--token", "t0k", "--tenant", "acme", "{ }"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("query without the CA: %v", err)
	}
}
