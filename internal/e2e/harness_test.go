package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var clewBin string

func TestMain(m *testing.M) {
	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "clew-e2e-bin")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	clewBin = filepath.Join(dir, "clew")
	args := []string{"build", "-o", clewBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/clew-dev/clew/cmd/clew")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("build clew: %w", err)
	}
	return m.Run(), nil
}

// proc is a running clew.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	dataDir  string
	grpcAddr string
	otlpHTTP string
	httpAddr string
	logs     *syncBuffer
	exited   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// handedOut holds the ports freePort returned: the kernel may offer a
// port again once its listener is closed, and two listeners of one clew
// on the same port make it refuse to start.
var (
	portsMu   sync.Mutex
	handedOut = map[string]bool{}
)

func freePort(t *testing.T) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !handedOut[addr] {
			handedOut[addr] = true
			return addr
		}
	}
	t.Fatal("no free port not handed out before")
	return ""
}

// startClew starts clew on dataDir with fresh loopback ports and waits until
// it is ready.
func startClew(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, dataDir: dataDir, grpcAddr: freePort(t), otlpHTTP: freePort(t), httpAddr: freePort(t), logs: &syncBuffer{}, exited: make(chan struct{})}
	args := append([]string{"serve", "--data-dir", dataDir, "--otlp-grpc-addr", p.grpcAddr,
		"--otlp-http-addr", p.otlpHTTP, "--http-addr", p.httpAddr, "--zipkin-addr", freePort(t), "--jaeger-grpc-addr", freePort(t), "--jaeger-http-addr", freePort(t), "--log-level", "debug"}, extra...)
	p.cmd = exec.Command(clewBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start clew: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("clew logs:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("clew exited at start:\n%s", p.logs.String())
		default:
		}
		resp, err := http.Get("http://" + p.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("clew not ready after 60s:\n%s", p.logs.String())
	return nil
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("clew did not stop within 60s:\n%s", p.logs.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("clew exited with %d:\n%s", code, p.logs.String())
	}
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (p *proc) url(path string) string { return "http://" + p.httpAddr + path }

// get fetches a query URL and returns status and body.
func (p *proc) get(path string) (int, []byte) {
	p.t.Helper()
	resp, err := http.Get(p.url(path))
	if err != nil {
		p.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *proc) getJSON(path string, v any) int {
	p.t.Helper()
	code, b := p.get(path)
	if code == 200 && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			p.t.Fatalf("GET %s: decode %q: %v", path, b, err)
		}
	}
	return code
}

func (p *proc) post(path, ctype string, body []byte) (int, []byte) {
	p.t.Helper()
	resp, err := http.Post(p.url(path), ctype, bytes.NewReader(body))
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// postOTLP posts an OTLP/HTTP request with the given content type and
// encoding.
func (p *proc) postOTLP(ctype, encoding string, body []byte) (int, []byte, http.Header) {
	p.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+p.otlpHTTP+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST /v1/traces: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// otlpTrace is the subset of OTLP JSON the tests read back.
type otlpTrace struct {
	ResourceSpans []struct {
		Resource struct {
			Attributes []otlpAttr `json:"attributes"`
		} `json:"resource"`
		ScopeSpans []struct {
			Spans []struct {
				TraceID           string     `json:"traceId"`
				SpanID            string     `json:"spanId"`
				ParentSpanID      string     `json:"parentSpanId"`
				Name              string     `json:"name"`
				StartTimeUnixNano string     `json:"startTimeUnixNano"`
				EndTimeUnixNano   string     `json:"endTimeUnixNano"`
				Attributes        []otlpAttr `json:"attributes"`
			} `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

type otlpAttr struct {
	Key   string         `json:"key"`
	Value map[string]any `json:"value"`
}

func (t *otlpTrace) spanIDs() []string {
	var out []string
	for _, rs := range t.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out = append(out, s.SpanID)
			}
		}
	}
	return out
}

type searchResp struct {
	Traces []struct {
		TraceID           string          `json:"traceID"`
		RootServiceName   string          `json:"rootServiceName"`
		RootName          string          `json:"rootName"`
		StartTimeUnixNano string          `json:"startTimeUnixNano"`
		DurationNanos     string          `json:"durationNanos"`
		SpanCount         int             `json:"spanCount"`
		ErrorCount        int             `json:"errorCount"`
		Trace             json.RawMessage `json:"trace"`
	} `json:"traces"`
	Total      int    `json:"total"`
	NextCursor string `json:"nextCursor"`
}

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%q does not contain %q", s, sub)
	}
}
