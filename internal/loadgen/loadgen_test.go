package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var fixedStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testConfig(shape string, spans int64) Config {
	cfg := DefaultConfig()
	cfg.Shape = shape
	cfg.Spans = spans
	cfg.Start = fixedStart
	return cfg
}

// generateAll returns every request of cfg.
func generateAll(t *testing.T, cfg Config) []*Request {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := newGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Request
	g.generate(func(r *Request) bool { out = append(out, r); return true })
	return out
}

func decode(t *testing.T, body []byte) ptrace.Traces {
	t.Helper()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatalf("decode request: %v", err)
	}
	return req.Traces()
}

func TestDeterministic(t *testing.T) {
	for _, shape := range []string{ShapeBench, ShapeRealistic} {
		t.Run(shape, func(t *testing.T) {
			a := generateAll(t, testConfig(shape, 20_000))
			b := generateAll(t, testConfig(shape, 20_000))
			if len(a) != len(b) {
				t.Fatalf("got %d and %d requests", len(a), len(b))
			}
			for i := range a {
				if !bytes.Equal(a[i].Body, b[i].Body) {
					t.Fatalf("request %d differs between runs with the same seed", i)
				}
			}
			other := testConfig(shape, 20_000)
			other.Seed++
			c := generateAll(t, other)
			if bytes.Equal(a[0].Body, c[0].Body) {
				t.Fatalf("seeds %d and %d gave the same first request", other.Seed-1, other.Seed)
			}
		})
	}
}

// walk calls fn for every span of td with its resource's service name.
func walk(td ptrace.Traces, fn func(svc string, s ptrace.Span)) {
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		svc, _ := rs.Resource().Attributes().Get("service.name")
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				fn(svc.Str(), ss.At(k))
			}
		}
	}
}

func TestBenchShape(t *testing.T) {
	cfg := testConfig(ShapeBench, 100_000)
	reqs := generateAll(t, cfg)
	if len(reqs) != 200 {
		t.Fatalf("got %d requests, want 200", len(reqs))
	}
	needles, errorsSeen, spans := 0, 0, 0
	services := map[string]int{}
	for _, r := range reqs {
		td := decode(t, r.Body)
		if td.SpanCount() != 500 || r.Spans != 500 || len(r.Traces) != 50 {
			t.Fatalf("request %d: %d spans (%d), %d traces; want 500 spans, 50 traces", r.Seq, td.SpanCount(), r.Spans, len(r.Traces))
		}
		perTrace := map[pcommon.TraceID]int{}
		byID := map[pcommon.SpanID]ptrace.Span{}
		walk(td, func(svc string, s ptrace.Span) {
			spans++
			services[svc]++
			perTrace[s.TraceID()]++
			byID[s.SpanID()] = s
			if n := s.Attributes().Len(); n != 8 {
				t.Fatalf("span %s has %d attributes, want 8", s.Name(), n)
			}
			if v, _ := s.Attributes().Get("user.id"); strings.HasPrefix(v.Str(), "needle-user-") {
				needles++
				if v.Str() != "needle-user-42" || svc != "payment" {
					t.Errorf("needle %q on %s, want needle-user-42 on payment", v.Str(), svc)
				}
			}
			if s.Status().Code() == ptrace.StatusCodeError {
				errorsSeen++
			}
		})
		if len(perTrace) != 50 {
			t.Fatalf("request %d has %d traces, want 50", r.Seq, len(perTrace))
		}
		for id, n := range perTrace {
			if n != 10 {
				t.Fatalf("trace %s has %d spans in request %d, want 10", id, n, r.Seq)
			}
		}
		for _, s := range byID {
			if s.ParentSpanID().IsEmpty() {
				continue
			}
			p, ok := byID[s.ParentSpanID()]
			if !ok {
				t.Fatalf("span %s: parent missing", s.Name())
			}
			if s.StartTimestamp() < p.StartTimestamp() || s.EndTimestamp() > p.EndTimestamp() {
				t.Fatalf("span %s [%d,%d] not inside parent %s [%d,%d]", s.Name(), s.StartTimestamp(), s.EndTimestamp(), p.Name(), p.StartTimestamp(), p.EndTimestamp())
			}
		}
	}
	if needles != 1 {
		t.Errorf("found %d needle spans, want 1", needles)
	}
	if ratio := float64(errorsSeen) / float64(spans); ratio < 0.005 || ratio > 0.015 {
		t.Errorf("error ratio %.4f, want about 0.01", ratio)
	}
	if services["frontend"] <= services["checkout"] {
		t.Errorf("frontend has %d spans, checkout %d; frontend must be the busiest", services["frontend"], services["checkout"])
	}
}

func TestRealisticShape(t *testing.T) {
	cfg := testConfig(ShapeRealistic, 200_000)
	reqs := generateAll(t, cfg)
	needleTraces := map[pcommon.TraceID]bool{}
	services := map[string]bool{}
	var spans, events, minAttrs, maxAttrs, traces int
	minAttrs = 1 << 30
	for _, r := range reqs {
		if r.Spans > cfg.Batch || len(r.Body) > maxRequestBytes+1<<20 {
			t.Fatalf("request %d: %d spans, %d bytes", r.Seq, r.Spans, len(r.Body))
		}
		traces += len(r.Traces)
		td := decode(t, r.Body)
		if td.SpanCount() != r.Spans {
			t.Fatalf("request %d decodes to %d spans, want %d", r.Seq, td.SpanCount(), r.Spans)
		}
		walk(td, func(svc string, s ptrace.Span) {
			spans++
			services[svc] = true
			n := s.Attributes().Len()
			minAttrs, maxAttrs = min(minAttrs, n), max(maxAttrs, n)
			events += s.Events().Len()
			if v, _ := s.Attributes().Get("user.id"); v.Str() == "needle-user-42" {
				needleTraces[s.TraceID()] = true
			}
		})
	}
	if spans < 200_000 {
		t.Errorf("got %d spans, want at least 200000", spans)
	}
	if len(needleTraces) != 1 {
		t.Errorf("needle in %d traces, want 1", len(needleTraces))
	}
	if len(services) != 20 {
		t.Errorf("got %d services, want 20", len(services))
	}
	if minAttrs < 5 || maxAttrs > 30 || maxAttrs < 25 {
		t.Errorf("attributes per span in [%d, %d], want within [5, 30] and reaching near 30", minAttrs, maxAttrs)
	}
	if events == 0 {
		t.Error("no events generated")
	}
	t.Logf("%d spans in %d traces (%.1f per trace), %d requests", spans, traces, float64(spans)/float64(traces), len(reqs))
}

// testServer is an in-process OTLP gRPC receiver that counts spans.
type testServer struct {
	mu        sync.Mutex
	calls     int
	spans     int
	failFirst int        // answer failCode to this many calls first
	failCode  codes.Code // default ResourceExhausted
	reject    int64      // spans to reject per call in a partial success
}

func (ts *testServer) export(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	var body []byte
	if err := dec(&body); err != nil {
		return nil, err
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.calls++
	if ts.calls <= ts.failFirst || ts.failFirst < 0 {
		code := ts.failCode
		if code == codes.OK {
			code = codes.ResourceExhausted
		}
		return nil, status.Error(code, "busy")
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ts.spans += req.Traces().SpanCount()
	if ts.reject > 0 {
		return appendPartialSuccess(nil, ts.reject, "too old"), nil
	}
	return []byte{}, nil
}

func startServer(t *testing.T, ts *testServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(RawCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Export", Handler: ts.export}},
	}, ts)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestMainGRPCWithRetries(t *testing.T) {
	ts := &testServer{failFirst: 3}
	addr := startServer(t, ts)
	dir := t.TempDir()
	ids := filepath.Join(dir, "ids")
	repPath := filepath.Join(dir, "report.json")
	var stdout, stderr bytes.Buffer
	err := Main(context.Background(), []string{
		"--endpoint", addr, "--spans", "20000", "--quiet",
		"--trace-ids-out", ids, "--report-json", repPath,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, stderr.String())
	}
	if ts.spans != 20000 {
		t.Errorf("server counted %d spans, want 20000", ts.spans)
	}
	var rep Report
	readJSON(t, repPath, &rep)
	if rep.SentSpans != 20000 || rep.AcceptedSpans != 20000 || rep.FailedSpans != 0 || rep.Traces != 2000 {
		t.Errorf("report sent %d accepted %d failed %d traces %d, want 20000 20000 0 2000", rep.SentSpans, rep.AcceptedSpans, rep.FailedSpans, rep.Traces)
	}
	if rep.Retries != 3 {
		t.Errorf("report has %d retries, want 3", rep.Retries)
	}
	if !strings.Contains(stdout.String(), "accepted   20000 spans") {
		t.Errorf("stdout lacks the accepted count:\n%s", stdout.String())
	}
	b, err := os.ReadFile(ids)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2000 || len(lines[0]) != 32 {
		t.Errorf("trace id file has %d lines (first %q), want 2000 of 32 hex digits", len(lines), lines[0])
	}
	var sc Sidecar
	readJSON(t, ids+".json", &sc)
	if sc.Needle == nil || sc.Needle.Service != "payment" || sc.Needle.Attr != "user.id=needle-user-42" || len(sc.Needle.TraceID) != 32 {
		t.Errorf("sidecar needle = %+v", sc.Needle)
	}
	if sc.Broad.Service != "frontend" || sc.Broad.Attr != "http.request.method=GET" || len(sc.SampleTraceIDs) != 50 {
		t.Errorf("sidecar broad = %+v, %d samples", sc.Broad, len(sc.SampleTraceIDs))
	}
	if !strings.Contains(string(b), sc.Needle.TraceID) {
		t.Error("needle trace id not in the id file")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func TestPartialSuccess(t *testing.T) {
	ts := &testServer{reject: 7}
	cfg := testConfig(ShapeBench, 5000)
	cfg.Endpoint = startServer(t, ts)
	cfg.Quiet = true
	rep, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RejectedSpans != 70 || rep.AcceptedSpans != 5000-70 {
		t.Errorf("rejected %d accepted %d, want 70 and 4930", rep.RejectedSpans, rep.AcceptedSpans)
	}
}

func TestGiveUp(t *testing.T) {
	ts := &testServer{failFirst: -1, failCode: codes.Unavailable}
	cfg := testConfig(ShapeBench, 5000)
	cfg.Endpoint = startServer(t, ts)
	cfg.Quiet = true
	cfg.RetryMax = 300 * time.Millisecond
	cfg.retryInitial = 20 * time.Millisecond
	rep, err := Run(context.Background(), cfg, io.Discard)
	if !errors.Is(err, errGiveUp) {
		t.Fatalf("Run error = %v, want %v", err, errGiveUp)
	}
	if rep.FailedSpans == 0 || rep.AcceptedSpans != 0 {
		t.Errorf("failed %d accepted %d", rep.FailedSpans, rep.AcceptedSpans)
	}
}

func TestPermanentErrorCountsAsFailed(t *testing.T) {
	ts := &testServer{failFirst: 2, failCode: codes.InvalidArgument}
	cfg := testConfig(ShapeBench, 5000)
	cfg.Endpoint = startServer(t, ts)
	cfg.Quiet = true
	cfg.Concurrency = 1
	rep, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailedSpans != 1000 || rep.AcceptedSpans != 4000 || rep.Retries != 0 {
		t.Errorf("failed %d accepted %d retries %d, want 1000 4000 0", rep.FailedSpans, rep.AcceptedSpans, rep.Retries)
	}
}

func TestHTTP(t *testing.T) {
	var mu sync.Mutex
	calls, spans := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if calls == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		body, _ := io.ReadAll(r.Body)
		spans += decode(t, body).SpanCount()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(appendPartialSuccess(nil, 1, "dropped one"))
	}))
	defer srv.Close()
	var stdout bytes.Buffer
	err := Main(context.Background(), []string{
		"--protocol", "http", "--endpoint", strings.TrimPrefix(srv.URL, "http://"),
		"--spans", "5000", "--quiet",
	}, &stdout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if spans != 5000 {
		t.Errorf("server counted %d spans, want 5000", spans)
	}
	for _, want := range []string{"accepted   4990 spans", "rejected   10 spans", "retried    1 requests"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestRate(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	ts := &testServer{}
	cfg := testConfig(ShapeBench, 0)
	cfg.Endpoint = startServer(t, ts)
	cfg.Quiet = true
	cfg.Rate = 20_000
	cfg.Batch = 100
	cfg.Duration = 3 * time.Second
	rep, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := float64(rep.AcceptedSpans) / cfg.Duration.Seconds()
	if got < 0.95*cfg.Rate || got > 1.05*cfg.Rate {
		t.Errorf("sent %d spans in %v: %.0f spans/s, want %.0f ± 5 %%", rep.AcceptedSpans, cfg.Duration, got, cfg.Rate)
	}
	if rep.ElapsedSeconds < 2.9 || rep.ElapsedSeconds > 3.3 {
		t.Errorf("run took %.2f s, want about 3", rep.ElapsedSeconds)
	}
}

func TestBadFlags(t *testing.T) {
	cases := map[string][]string{
		"unknown flag":        {"--nope"},
		"bad shape":           {"--shape", "round"},
		"bad protocol":        {"--protocol", "udp"},
		"malformed endpoint":  {"--endpoint", "localhost"},
		"bad port":            {"--endpoint", "127.0.0.1:99999"},
		"bad url":             {"--protocol", "http", "--endpoint", "http://"},
		"negative rate":       {"--rate", "-5"},
		"rate not a number":   {"--rate", "fast"},
		"zero concurrency":    {"--concurrency", "0"},
		"zero batch":          {"--batch", "0"},
		"batch below trace":   {"--batch", "5"},
		"error ratio":         {"--error-ratio", "1.5"},
		"bench with services": {"--services", "5"},
		"few attrs":           {"--shape", "realistic", "--attrs", "2"},
		"no stop condition":   {"--spans", "0"},
		"bad start":           {"--start", "yesterday"},
		"stray argument":      {"now"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			err := Main(context.Background(), args, io.Discard, io.Discard)
			if err == nil {
				t.Fatalf("Main(%q) = nil, want an error", args)
			}
		})
	}
	if err := Main(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Main(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestHistogram(t *testing.T) {
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.01 || d > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v within 1 %%", c.q, got, c.want)
		}
	}
}

func TestParsePartialSuccess(t *testing.T) {
	b := appendPartialSuccess(nil, 300, "spans too old")
	n, msg, err := parsePartialSuccess(b)
	if err != nil || n != 300 || msg != "spans too old" {
		t.Errorf("parsePartialSuccess = %d, %q, %v", n, msg, err)
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(b); err != nil || resp.PartialSuccess().RejectedSpans() != 300 {
		t.Errorf("pdata reads %v, %v", resp.PartialSuccess().RejectedSpans(), err)
	}
	if _, _, err := parsePartialSuccess([]byte{0x0a, 0x05, 0x08}); err == nil {
		t.Error("truncated response parsed without error")
	}
}
