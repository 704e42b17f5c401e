package querycli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// now is the fixed current time of the tests: 2025-11-24T16:05:00Z.
var now = time.Unix(1_764_000_300, 0)

// canned is an answer of the fake server.
type canned struct {
	code int
	body string // a file under testdata when it starts with @
}

// fakeTempo serves canned answers on the two endpoints clew query calls
// and records the request URIs it saw.
func fakeTempo(t *testing.T, search, metrics canned) (*httptest.Server, *[]string) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []string
	)
	serve := func(c canned) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.URL.RequestURI())
			mu.Unlock()
			body := []byte(c.body)
			ctype := "text/plain; charset=utf-8"
			if name, ok := strings.CutPrefix(c.body, "@"); ok {
				var err error
				if body, err = os.ReadFile(filepath.Join("testdata", name)); err != nil {
					t.Error(err)
				}
				ctype = "application/json"
			}
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(c.code)
			_, _ = w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tempo/api/search", serve(search))
	mux.HandleFunc("GET /tempo/api/metrics/query_range", serve(metrics))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &seen
}

// TestGolden runs clew query against canned Tempo answers and compares
// the request it sent, its output and its error with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	search := canned{200, "@search.json"}
	metrics := canned{200, "@metrics.json"}
	cases := []struct {
		name            string
		args            []string
		search, metrics canned
	}{
		{"search_table", []string{`{ status = error }`}, search, metrics},
		{"search_json", []string{"-o", "json", "--limit", "5", "--spss", "10", `{ status = error }`}, search, metrics},
		{"search_flags_after_query", []string{`{ status = error }`, "--start", "2025-11-24T15:00:00.5Z", "--end", "1764000000.25", "--addr", "ADDR/tempo/"}, search, metrics},
		{"search_empty", []string{"--since", "15m", "--", `{ name = "nope" }`}, canned{200, `{"traces": [], "metrics": {}}`}, metrics},
		{"search_limit_reached", []string{"--limit", "3", `{ status = error }`}, search, metrics},
		{"metrics_table", []string{"--step", "1m", `{ } | rate() by (resource.service.name)`}, search, metrics},
		{"metrics_json", []string{"-o", "json", `{ status = error } | quantile_over_time(duration, .9)`}, search, metrics},
		{"metrics_empty", []string{`{ } |count_over_time ( )`}, search, canned{200, `{"series": [], "status": "COMPLETE"}`}},
		{"bad_query", []string{"{ resource.service.name = \"x\" &&\n\tspan.a = }"},
			canned{400, "invalid TraceQL query: 2:11: unexpected \"}\" after operator \"=\", expected a value: string, number, duration, true, false, nil, status or kind\n"}, metrics},
		{"bad_step", []string{"{ } | rate()", "--step", "1ms", "--since", "24h"}, search,
			canned{400, "the range and step give 86400000 points per series, over the limit of 11000: raise the step\n"}},
		{"server_error", []string{"{ }"}, canned{500, "store closed\n"}, metrics},
		{"server_timeout", []string{"{ }"}, canned{504, "query timed out: narrow the time range or add conditions\n"}, metrics},
		{"not_json", []string{"{ }"}, canned{200, "<html>hello</html>"}, metrics},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, seen := fakeTempo(t, c.search, c.metrics)
			args := make([]string, len(c.args))
			hasAddr := false
			for i, a := range c.args {
				if strings.HasPrefix(a, "ADDR") {
					hasAddr = true
				}
				args[i] = strings.Replace(a, "ADDR", srv.URL, 1)
			}
			if !hasAddr {
				args = append([]string{"--addr", srv.URL}, args...)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, &stdout, &stderr, now, time.UTC)

			var got bytes.Buffer
			got.WriteString("# requests\n")
			for _, s := range *seen {
				got.WriteString("GET " + s + "\n")
			}
			got.WriteString("# stdout\n")
			got.Write(stdout.Bytes())
			got.WriteString("# stderr\n")
			got.WriteString(strings.ReplaceAll(stderr.String(), srv.URL, "ADDR"))
			got.WriteString("# error\n")
			if err != nil {
				got.WriteString(strings.ReplaceAll(err.Error(), srv.URL, "ADDR") + "\n")
			}
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, got.Bytes())
			}
		})
	}
}

// TestFlagErrors checks that bad command lines are refused before any
// request, with a message naming the problem.
func TestFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "missing the TraceQL query"},
		{[]string{"  "}, "the TraceQL query is empty"},
		{[]string{"{ }", "{ .a }"}, "want one TraceQL query, got 2 arguments"},
		{[]string{"-o", "yaml", "{ }"}, `-o "yaml": want table or json`},
		{[]string{"--limit", "0", "{ }"}, "--limit 0: want at least 1"},
		{[]string{"--spss", "-1", "{ }"}, "--spss -1: want at least 1"},
		{[]string{"--limit", "x", "{ }"}, `invalid value "x" for flag -limit`},
		{[]string{"--timeout", "0s", "{ }"}, "--timeout 0s: want a positive duration"},
		{[]string{"--since", "-1h", "{ }"}, "--since -1h0m0s: want a positive duration"},
		{[]string{"--since", "1h", "--start", "1764000000", "{ }"}, "give --since or --start, not both"},
		{[]string{"--start", "yesterday", "{ }"}, `--start: "yesterday" is not a time`},
		{[]string{"--end", "2025-13-01", "{ }"}, `--end: "2025-13-01" is not a time`},
		{[]string{"--start", "1764000300", "--end", "1764000000", "{ }"}, "the range is empty: --end 2025-11-24T16:00:00Z is not after --start 2025-11-24T16:05:00Z"},
		{[]string{"--step", "15s", "{ }"}, "--step applies to metrics queries"},
		{[]string{"--step", "0", "{ } | rate()"}, `--step "0": want a positive duration`},
		{[]string{"--step", "soon", "{ } | rate()"}, `--step "soon": want a duration`},
		{[]string{"--limit", "5", "{ } | rate()"}, "--limit applies to searches"},
		{[]string{"--spss", "5", "{ } | count_over_time() by (name)"}, "--spss applies to searches"},
		{[]string{"--addr", "ftp://host:21", "{ }"}, `--addr "ftp://host:21": want http://HOST:PORT`},
		{[]string{"--addr", "http://", "{ }"}, `--addr "http://": want http://HOST:PORT`},
		{[]string{"--nope", "{ }"}, "flag provided but not defined: -nope"},
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		err := run(context.Background(), c.args, &stderr, &stderr, now, time.UTC)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("clew query %q: error %v, want one containing %q", c.args, err, c.want)
		}
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &stderr, &stderr, now, time.UTC); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("clew query -h: error %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "Usage: clew query") || !strings.Contains(stderr.String(), "-since") {
		t.Errorf("clew query -h printed %q, want the usage and the flags", stderr.String())
	}
}

func TestParseAddr(t *testing.T) {
	cases := []struct{ in, addr, base string }{
		{"http://127.0.0.1:3200", "http://127.0.0.1:3200", "http://127.0.0.1:3200/tempo"},
		{"localhost:3200", "http://localhost:3200", "http://localhost:3200/tempo"},
		{"https://clew.example/", "https://clew.example", "https://clew.example/tempo"},
		{"http://h:3200/tempo", "http://h:3200", "http://h:3200/tempo"},
		{"http://proxy/clew/tempo/", "http://proxy/clew", "http://proxy/clew/tempo"},
	}
	for _, c := range cases {
		addr, base, err := parseAddr(c.in)
		if err != nil || addr != c.addr || base != c.base {
			t.Errorf("parseAddr(%q) = %q, %q, %v, want %q, %q", c.in, addr, base, err, c.addr, c.base)
		}
	}
}

func TestMetricsDetection(t *testing.T) {
	cases := map[string]bool{
		`{ } | rate()`:                             true,
		`{ .a } | count_over_time() by (name)`:     true,
		`{ }|quantile_over_time(duration, .5, .9)`: true,
		`{ } | histogram_over_time ( duration )`:   true,
		`{ } | compare({ status = error })`:        true,
		`{ } | rate() by (name) | topk(5)`:         true,
		`{ }`:                                      false,
		`{ name = "rate()" }`:                      false,
		`{ } | count() > 2`:                        false,
		`{ } | select(span.rate)`:                  false,
		`{ span.count_over_time = 1 } | by(name)`:  false,
	}
	for q, want := range cases {
		if got := metricsQuery.MatchString(q); got != want {
			t.Errorf("metrics(%q) = %v, want %v", q, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	cases := map[time.Duration]string{
		42 * time.Millisecond:  "42ms",
		39_123_456:             "39.12ms",
		1_234_567_890:          "1.235s",
		500 * time.Microsecond: "500µs",
		999:                    "999ns",
		90*time.Second + 123:   "1m30s",
	}
	for d, want := range cases {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

// TestConnectionRefused checks the hint when nothing listens at --addr.
func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	err = run(context.Background(), []string{"--addr", addr, "{ }"}, &out, &out, now, time.UTC)
	want := "is clew running at " + addr + "?"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

// TestTimeout checks that --timeout bounds a server that does not answer.
func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	var out bytes.Buffer
	err := run(context.Background(), []string{"--addr", srv.URL, "--timeout", "50ms", "{ }"}, &out, &out, now, time.UTC)
	want := "no answer from " + srv.URL + " within 50ms"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func TestCaret(t *testing.T) {
	cases := []struct{ query, msg, want string }{
		{`{ .a = }`, "invalid TraceQL query: 1:8: unexpected", "\n  { .a = }\n         ^"},
		{"{ .a\n\t= }", "2:4: unexpected", "\n  \t= }\n  \t  ^"},
		{`{ "é" = }`, "1:9: x", "\n  { \"é\" = }\n          ^"},
		{`{ }`, "1:9: past the end", ""},
		{`{ }`, "no position", ""},
		{`{ }`, "3:1: no such line", ""},
	}
	for _, c := range cases {
		if got := caret(c.query, c.msg); got != c.want {
			t.Errorf("caret(%q, %q) = %q, want %q", c.query, c.msg, got, c.want)
		}
	}
}
