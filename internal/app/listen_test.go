package app

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// clewProc is a running clew serve.
type clewProc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
}

func startServe(t *testing.T, bin string, args ...string) *clewProc {
	t.Helper()
	p := &clewProc{cmd: exec.Command(bin, append([]string{"serve", "--data-dir", t.TempDir(), "--wal-sync", "none"}, args...)...), out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
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
	})
	return p
}

// waitReady waits until the query port answers /readyz with 200, or the
// process exits.
func (p *clewProc) waitReady(t *testing.T, httpAddr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("clew exited at start:\n%s", p.out)
		default:
		}
		if resp, err := http.Get("http://" + httpAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("clew not ready after 60s:\n%s", p.out)
}

// TestTwoClewsOnOneMachine starts two real clew binaries on loopback with
// different main ports. A second clew that clashes on a receiver port
// exits non-zero naming the listener, the address, the flag and YAML key
// that move it and how to turn it off; with the clashing receivers
// turned off it starts.
func TestTwoClewsOnOneMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs clew")
	}
	bin := filepath.Join(t.TempDir(), "clew")
	build := exec.Command("go", "build", "-o", bin, "github.com/clew-dev/clew/cmd/clew")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build clew: %v\n%s", err, out)
	}
	mainPorts := func() (string, []string) {
		httpAddr := freeAddr(t)
		return httpAddr, []string{"--otlp-grpc-addr", freeAddr(t), "--otlp-http-addr", freeAddr(t), "--http-addr", httpAddr}
	}
	zipkin, jaegerGRPC, jaegerHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	firstHTTP, firstArgs := mainPorts()
	first := startServe(t, bin, append(firstArgs, "--zipkin-addr", zipkin, "--jaeger-grpc-addr", jaegerGRPC, "--jaeger-http-addr", jaegerHTTP)...)
	first.waitReady(t, firstHTTP)

	cases := []struct {
		name string
		args []string // besides fresh main ports
		want []string // in the error; nil: starts
		not  []string
	}{
		{"same Zipkin port", []string{"--zipkin-addr", zipkin, "--jaeger-grpc-addr", freeAddr(t), "--jaeger-http-addr", freeAddr(t)},
			[]string{"Zipkin receiver cannot listen on " + zipkin, "address already in use", "another clew", "--zipkin-addr HOST:PORT", "zipkin_addr in the config file", "--zipkin-addr '' (zipkin_addr: \"\")"}, nil},
		{"same Jaeger gRPC port", []string{"--zipkin-addr", "", "--jaeger-grpc-addr", jaegerGRPC, "--jaeger-http-addr", freeAddr(t)},
			[]string{"Jaeger gRPC receiver cannot listen on " + jaegerGRPC, "--jaeger-grpc-addr HOST:PORT", "jaeger_grpc_addr", "--jaeger-grpc-addr ''"}, nil},
		{"same Jaeger HTTP port", []string{"--zipkin-addr", "", "--jaeger-grpc-addr", "", "--jaeger-http-addr", jaegerHTTP},
			[]string{"Jaeger HTTP receiver cannot listen on " + jaegerHTTP, "--jaeger-http-addr HOST:PORT", "jaeger_http_addr", "--jaeger-http-addr ''"}, nil},
		{"same query port", []string{"--http-addr", firstHTTP, "--zipkin-addr", "", "--jaeger-grpc-addr", "", "--jaeger-http-addr", ""},
			[]string{"query API cannot listen on " + firstHTTP, "--http-addr HOST:PORT", "http_addr in the config file"}, []string{"turn it off"}},
		{"receivers off", []string{"--zipkin-addr", "", "--jaeger-grpc-addr", "", "--jaeger-http-addr", ""}, nil, nil},
		{"receivers moved", []string{"--zipkin-addr", freeAddr(t), "--jaeger-grpc-addr", freeAddr(t), "--jaeger-http-addr", freeAddr(t)}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			httpAddr, args := mainPorts()
			// A later --http-addr wins over the fresh one.
			second := startServe(t, bin, append(args, c.args...)...)
			if c.want == nil {
				second.waitReady(t, httpAddr)
				_ = second.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-second.exited:
				case <-time.After(60 * time.Second):
					t.Fatalf("second clew did not stop:\n%s", second.out)
				}
				if code := second.cmd.ProcessState.ExitCode(); code != 0 {
					t.Fatalf("second clew exited with %d:\n%s", code, second.out)
				}
				return
			}
			select {
			case <-second.exited:
			case <-time.After(60 * time.Second):
				t.Fatalf("second clew still running, want it to exit:\n%s", second.out)
			}
			if code := second.cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("second clew exited with 0, want non-zero")
			}
			out := second.out.String()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
	select {
	case <-first.exited:
		t.Fatalf("first clew exited:\n%s", first.out)
	default:
	}
}
