package querycli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil"
)

func TestExplainCLI(t *testing.T) {
	db := storetest.OpenStore(t, testutil.AnalysisFixture())
	mux := http.NewServeMux()
	api.NewAnalysis(db, api.AnalysisConfig{Now: func() time.Time { return testutil.AnalysisNow }}, nil).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"explain_cli_text", []string{"--addr", srv.URL, testutil.TID(41).String()}, ""},
		{"explain_cli_json", []string{testutil.TID(42).String(), "-o", "json", "--addr", srv.URL + "/"}, ""},
		{"", []string{"--addr", srv.URL, testutil.TID(99).String()}, "trace 00000000000000000000000000000063 not found (HTTP 404)"},
		{"", []string{"--addr", srv.URL}, "missing the trace ID"},
		{"", []string{"--addr", srv.URL, "a", "b"}, "want one trace ID"},
		{"", []string{"--addr", "ftp://x", "a"}, "want a URL"},
		{"", []string{"-o", "yaml", "a"}, "want text or json"},
		{"", []string{"--addr", "http://127.0.0.1:1", "a"}, "connection refused"},
	} {
		var out, errOut bytes.Buffer
		err := ExplainMain(context.Background(), c.args, &out, &errOut)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		golden := filepath.Join("testdata", c.name+".golden")
		if *update {
			if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden (run go test -update): %v", err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%q:\n%s\nwant:\n%s", c.args, out.Bytes(), want)
		}
	}
}
