package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got (JSON) with testdata/name.golden.json, indented.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(buf.Bytes())) {
		t.Errorf("%s differs from %s (run with -update to accept):\n%s", name, path, buf.String())
	}
}

func get(t *testing.T, h http.Handler, target string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Body)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", target, ct)
	}
	return rec.Code, body
}

// TestHTTPGolden pins every response shape: a bad canary's anomaly and
// deployment, the baselines of one service, the empty answers, the errors.
func TestHTTPGolden(t *testing.T) {
	e := newEnv(t, 7, Config{})
	e.sim.rate = 120
	mux := http.NewServeMux()
	NewHandler(e.det).Register(mux)

	e.run(0, 20, 14)
	for _, c := range []struct{ name, target string }{
		{"anomalies_none", "/api/v1/anomalies?since=1h"},
		{"deploys_none", "/api/v1/deploys"},
	} {
		code, body := get(t, mux, c.target)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", c.target, code, body)
		}
		golden(t, c.name, body)
	}
	e.sim.canary, e.sim.canaryExtra, e.sim.canaryErr = "2.0.0", 250*time.Millisecond, 0.1
	e.run(20, 23, 20)
	end := e.clk.now().UTC().Format(time.RFC3339)
	for _, c := range []struct{ name, target string }{
		{"anomalies", "/api/v1/anomalies?since=1h"},
		{"anomalies_range", "/api/v1/anomalies?start=" + t0.Format(time.RFC3339) + "&end=" + end},
		{"deploys", "/api/v1/deploys?since=30m"},
		{"baselines", "/api/v1/baselines?service=checkout&kind=server"},
	} {
		code, body := get(t, mux, c.target)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", c.target, code, body)
		}
		golden(t, c.name, body)
	}
	for _, c := range []struct {
		name, target string
		code         int
	}{
		{"error_since", "/api/v1/anomalies?since=yesterday", http.StatusBadRequest},
		{"error_range", "/api/v1/deploys?start=2026-03-02T12:00:00Z&end=2026-03-02T11:00:00Z", http.StatusBadRequest},
		{"error_kind", "/api/v1/baselines?kind=sideways", http.StatusBadRequest},
		{"error_both", "/api/v1/anomalies?since=1h&start=1700000000", http.StatusBadRequest},
	} {
		code, body := get(t, mux, c.target)
		if code != c.code {
			t.Errorf("GET %s: %d, want %d", c.target, code, c.code)
		}
		golden(t, c.name, body)
	}
	off := http.NewServeMux()
	NewHandler(nil).Register(off)
	code, body := get(t, off, "/api/v1/anomalies")
	if code != http.StatusServiceUnavailable {
		t.Errorf("disabled: %d, want 503", code)
	}
	golden(t, "error_disabled", body)
}

// TestCLI runs clew anomalies and clew deploys against the handler.
func TestCLI(t *testing.T) {
	e := newEnv(t, 8, Config{})
	e.sim.rate = 120
	e.run(0, 20, 14)
	e.sim.canary, e.sim.canaryExtra = "2.0.0", 250*time.Millisecond
	e.run(20, 23, 20)
	mux := http.NewServeMux()
	h := NewHandler(e.det)
	h.now = e.clk.now
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		main func(context.Context, []string, io.Writer, io.Writer) error
		args []string
		want []string
	}{
		{AnomaliesMain, []string{"--addr", srv.URL}, []string{"OPEN", "culprits:", "1. checkout PlaceOrder (server) version 2.0.0", "example traces:"}},
		{AnomaliesMain, []string{"--addr", strings.TrimPrefix(srv.URL, "http://"), "-o", "json"}, []string{`"anomalies": [`, `"culprits": [`}},
		{DeploysMain, []string{"--addr", srv.URL, "--since", "2h"}, []string{"VERDICT", "checkout  service.version  2.0.0", "regressed", "downstream new SELECT promotions"}},
		{DeploysMain, []string{"--addr", srv.URL, "-o", "json"}, []string{`"verdict": "regressed"`}},
	} {
		var out, errb bytes.Buffer
		if err := c.main(context.Background(), c.args, &out, &errb); err != nil {
			t.Fatalf("%v: %v (%s)", c.args, err, errb.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out.String())
			}
		}
	}
	for _, args := range [][]string{{"-o", "yaml"}, {"--since", "0s"}, {"extra"}, {"--addr", "ftp://x"}} {
		if err := AnomaliesMain(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := AnomaliesMain(context.Background(), []string{"--addr", "127.0.0.1:1", "--timeout", "2s"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "is it running") {
		t.Errorf("unreachable clew: %v", err)
	}
}
