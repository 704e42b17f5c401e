package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOTLPEdgeCases posts every case of the OTLP edge-case suite and checks
// the answer and, where the suite says, what is read back.
func TestOTLPEdgeCases(t *testing.T) {
	dir := filepath.Join("..", "otlp", "testdata", "edge")
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatalf("read edge cases: %v", err)
	}
	var suite struct {
		Cases []struct {
			File       string `json:"file"`
			Gzip       bool   `json:"gzip"`
			Expect     string `json:"expect"`
			TraceID    string `json:"traceId"`
			Spans      int    `json:"spans"`
			ExactStart bool   `json:"exactStart"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &suite); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, t.TempDir())
	start := time.Now().Add(-time.Minute).UnixNano()
	startNS, endNS := fmt.Sprint(start), fmt.Sprint(start+1_000_000)
	for _, c := range suite.Cases {
		t.Run(fmt.Sprintf("%s/gzip=%v", c.File, c.Gzip), func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join(dir, c.File))
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.ReplaceAll(body, []byte("__START_NS__"), []byte(startNS))
			body = bytes.ReplaceAll(body, []byte("__END_NS__"), []byte(endNS))
			enc := ""
			if c.Gzip {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(body)
				zw.Close()
				body, enc = buf.Bytes(), "gzip"
			}
			code, resp, _ := p.postOTLP("application/json", enc, body)
			switch c.Expect {
			case "accept":
				if code/100 != 2 {
					t.Fatalf("status %d (%s), want 2xx", code, resp)
				}
			case "reject":
				if code != 400 {
					t.Fatalf("status %d (%s), want 400", code, resp)
				}
				if !strings.Contains(string(resp), "message") {
					t.Fatalf("error body %q has no message", resp)
				}
			default:
				if code/100 == 5 {
					t.Fatalf("status %d (%s), want anything but 5xx", code, resp)
				}
			}
			if c.TraceID != "" && c.Spans > 0 {
				var tr otlpTrace
				if got := p.getJSON("/api/v1/traces/"+c.TraceID, &tr); got != 200 {
					t.Fatalf("read back %s: status %d", c.TraceID, got)
				}
				if n := len(tr.spanIDs()); n != c.Spans {
					t.Fatalf("read back %d spans, want %d", n, c.Spans)
				}
				if tr.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceID != c.TraceID {
					t.Fatalf("trace ID read back as %q", tr.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceID)
				}
				if c.ExactStart {
					if got := tr.ResourceSpans[0].ScopeSpans[0].Spans[0].StartTimeUnixNano; got != startNS {
						t.Fatalf("start read back as %s, want %s", got, startNS)
					}
				}
			}
		})
	}
}

// TestBadInput sends what senders and users get wrong and checks that each
// gets an answer it can act on, and that clew keeps serving.
func TestBadInput(t *testing.T) {
	p := startClew(t, t.TempDir())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"resourceSpans":[]}`))
	zw.Close()
	truncated := gz.Bytes()[:gz.Len()-6]

	cases := []struct {
		name, ctype, enc string
		body             []byte
		want             int
	}{
		{"malformed protobuf", "application/x-protobuf", "", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, 400},
		{"malformed json", "application/json", "", []byte(`{"resourceSpans":[{`), 400},
		{"wrong content type", "text/plain", "", []byte("hello"), 415},
		{"truncated gzip", "application/json", "gzip", truncated, 400},
		{"unknown encoding", "application/json", "br", []byte("x"), 415},
		{"too large", "application/x-protobuf", "", bytes.Repeat([]byte{0}, 17<<20), 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := p.postOTLP(c.ctype, c.enc, c.body)
			if code != c.want {
				t.Fatalf("status %d (%s), want %d", code, body, c.want)
			}
		})
	}
	queries := []struct {
		path string
		want int
	}{
		{"/api/v1/traces/xyz", 400},
		{"/api/v1/traces/00000000000000000000000000000000", 400},
		{"/api/v1/traces/0123456789abcdef0123456789abcdef", 404},
		{"/api/v1/search?limit=0", 400},
		{"/api/v1/search?minDuration=fast", 400},
		{"/api/v1/search?attr=x%3D~(", 400},
		{"/api/v1/search?status=broken", 400},
		{"/api/v1/search?cursor=!!", 400},
		{"/api/v1/search?start=yesterday", 400},
	}
	for _, q := range queries {
		if code, body := p.get(q.path); code != q.want {
			t.Errorf("GET %s: %d (%s), want %d", q.path, code, body, q.want)
		}
	}
	// Metrics count what was refused, and clew still serves.
	code, metrics := p.get("/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	mustContain(t, string(metrics), `clew_ingest_discarded_spans_total{reason="malformed_request"}`)
	mustContain(t, string(metrics), `clew_ingest_discarded_spans_total{reason="request_too_large"} 1`)
	if code, _ := p.get("/healthz"); code != 200 {
		t.Fatalf("healthz after bad input: %d", code)
	}
	p.stop()
}
