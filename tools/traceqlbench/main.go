// Command traceqlbench measures TraceQL over a large store end to end. It
// starts the real `clew serve` on loopback ports, loads it with `clew
// loadgen` (the bench shape: four services, eight attributes a span, one
// needle user), flushes the head and waits for compaction, then times
// TraceQL queries through the Tempo HTTP API under /tempo:
//
//   - selective: the needle's rare user.id value;
//   - unselective: { status = error } and the GET method over the whole range;
//   - structural: { resource.service.name = "frontend" } >> { status = error };
//   - metrics: quantile_over_time(duration, .99) by (resource.service.name)
//     and { status = error } | rate() by (resource.service.name) over 1 h.
//
// Each query runs --runs times; it reports p50 and p90, the answer's size
// and status, and the server's peak RSS while the queries ran (VmHWM after
// resetting it through /proc/PID/clear_refs, else the highest VmRSS
// sampled). With --reuse DIR it skips the load and serves an existing data
// directory (from an earlier --keep run), so that two binaries can be
// compared on the same data.
//
// Usage:
//
//	go run ./tools/traceqlbench [--spans 10000000] [--rate 50000] [--runs 10] [--clew BIN] [--reuse DIR] [--keep] [--out FILE]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	spans       int64
	runs        int
	clew        string
	reuse       string
	keep        bool
	out         string
	settle      time.Duration
	seed        uint64
	concurrency int
	label       string
	only        string
	maxSpans    int
	rate        int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "traceqlbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("traceqlbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Int64Var(&o.spans, "spans", 10_000_000, "spans to load")
	fs.IntVar(&o.runs, "runs", 10, "runs of each query")
	fs.StringVar(&o.clew, "clew", "", "clew binary (default: build ./cmd/clew)")
	fs.StringVar(&o.reuse, "reuse", "", "serve this existing data directory instead of loading a new one")
	fs.BoolVar(&o.keep, "keep", false, "keep the data directory (printed at the end)")
	fs.StringVar(&o.out, "out", "", "also write the Markdown table to this file")
	fs.DurationVar(&o.settle, "settle", 60*time.Second, "wait after the flush for compaction")
	fs.Uint64Var(&o.seed, "seed", 42, "loadgen seed (the needle user is needle-user-SEED)")
	fs.IntVar(&o.concurrency, "concurrency", 4, "loadgen concurrent export calls")
	fs.StringVar(&o.label, "label", "", "a name for this run in the table")
	fs.StringVar(&o.only, "only", "", "run only the queries whose name contains this")
	fs.IntVar(&o.maxSpans, "max-spans", 1<<30, "query.max_spans_per_query of the server (0: its default)")
	fs.IntVar(&o.rate, "rate", 50_000, "loadgen --rate: spans per second, which also spaces the span timestamps (0: as fast as possible, timestamps at a nominal 200k spans/s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.runs < 1 || o.spans < 1000 {
		return errors.New("--runs must be positive and --spans at least 1000")
	}
	b := &bench{o: o, stderr: stderr}
	md, err := b.run(ctx)
	if md != "" {
		fmt.Fprint(stdout, md)
		if o.out != "" {
			if werr := os.WriteFile(o.out, []byte(md), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

type bench struct {
	o      options
	stderr io.Writer
	bin    string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "traceqlbench: "+format+"\n", args...)
}

// query is one measured TraceQL query.
type query struct {
	name    string
	q       string
	metrics bool
}

// measurement is the outcome of one query's runs.
type measurement struct {
	query
	durs   []time.Duration
	cpu    float64 // server CPU seconds per run
	size   string  // traces or series in the answer
	status string
	err    string
}

func (b *bench) run(ctx context.Context) (string, error) {
	tmp, err := os.MkdirTemp("", "clew-traceql-")
	if err != nil {
		return "", err
	}
	if !b.o.keep {
		defer os.RemoveAll(tmp)
	}
	b.bin = b.o.clew
	if b.bin == "" {
		b.bin = filepath.Join(tmp, "clew")
		b.logf("building ./cmd/clew")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/clew")
		cmd.Stdout, cmd.Stderr = b.stderr, b.stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("build clew: %w", err)
		}
	}
	dataDir := filepath.Join(tmp, "data")
	if b.o.reuse != "" {
		dataDir = b.o.reuse
	}
	ports, err := freePorts(3)
	if err != nil {
		return "", err
	}
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	base := "http://" + apiAddr
	serverCmd := []string{b.bin, "serve", "--data-dir", dataDir, "--otlp-grpc-addr", grpcAddr,
		"--otlp-http-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--http-addr", apiAddr}
	if b.o.maxSpans > 0 {
		cfg := filepath.Join(tmp, "clew.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, "query:\n  max_spans_per_query: %d\n", b.o.maxSpans), 0o644); err != nil {
			return "", err
		}
		serverCmd = append(serverCmd, "--config", cfg)
	}
	logFile, err := os.Create(filepath.Join(tmp, "server.log"))
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	b.logf("starting %s", strings.Join(serverCmd, " "))
	srv := exec.Command(serverCmd[0], serverCmd[1:]...)
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("start server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	}()
	if err := waitReady(ctx, base+"/readyz", exited, 5*time.Minute); err != nil {
		return "", err
	}
	pid := srv.Process.Pid

	var loadCmd []string
	var loadTime time.Duration
	if b.o.reuse == "" {
		loadCmd = []string{b.bin, "loadgen", "--endpoint", grpcAddr, "--shape", "bench",
			"--spans", strconv.FormatInt(b.o.spans, 10), "--concurrency", strconv.Itoa(b.o.concurrency),
			"--seed", strconv.FormatUint(b.o.seed, 10), "--rate", strconv.Itoa(b.o.rate), "--quiet"}
		b.logf("%s", strings.Join(loadCmd, " "))
		t0 := time.Now()
		lg := exec.CommandContext(ctx, loadCmd[0], loadCmd[1:]...)
		lg.Stdout, lg.Stderr = b.stderr, b.stderr
		if err := lg.Run(); err != nil {
			return "", fmt.Errorf("loadgen: %w", err)
		}
		loadTime = time.Since(t0)
		b.logf("loaded in %v; flushing", loadTime.Round(time.Second))
		if err := post(ctx, base+"/api/v1/admin/flush"); err != nil {
			return "", fmt.Errorf("flush: %w", err)
		}
		b.logf("waiting %v for compaction", b.o.settle)
		select {
		case <-time.After(b.o.settle):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	ingestPeak, _ := procStatus(pid, "VmHWM:")
	stored, blocks := b.stats(ctx, base)

	// Peak memory while querying: reset VmHWM when the kernel lets us,
	// and sample VmRSS besides.
	resetOK := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
	var maxRSS atomic.Int64
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if v, err := procStatus(pid, "VmRSS:"); err == nil && v > maxRSS.Load() {
				maxRSS.Store(v)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	needle := "needle-user-" + strconv.FormatUint(b.o.seed, 10)
	queries := []query{
		{name: "selective (one rare user.id)", q: `{ span.user.id = "` + needle + `" }`},
		{name: "unselective: status = error", q: `{ status = error }`},
		{name: "unselective: GET method", q: `{ span.http.request.method = "GET" }`},
		{name: "structural", q: `{ resource.service.name = "frontend" } >> { status = error }`},
		{name: "metrics: quantile_over_time p99 by service, 1 h", q: `{ } | quantile_over_time(duration, .99) by (resource.service.name)`, metrics: true},
		{name: "metrics: error rate by service, 1 h", q: `{ status = error } | rate() by (resource.service.name)`, metrics: true},
	}
	end := time.Now().Add(time.Minute)
	start := end.Add(-time.Hour)
	var ms []measurement
	for _, q := range queries {
		if b.o.only != "" && !strings.Contains(q.name, b.o.only) {
			continue
		}
		m := measurement{query: q}
		v := url.Values{"q": {q.q}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}}
		path := "/tempo/api/search"
		if q.metrics {
			path = "/tempo/api/metrics/query_range"
			v.Set("step", "60s")
		} else {
			v.Set("limit", "20")
		}
		u := base + path + "?" + v.Encode()
		cpu0, _ := cpuSeconds(pid)
		for i := range b.o.runs {
			var resp struct {
				Traces  []json.RawMessage `json:"traces"`
				Series  []json.RawMessage `json:"series"`
				Status  string            `json:"status"`
				Message string            `json:"message"`
			}
			d, err := get(ctx, u, &resp)
			if err != nil {
				m.err = err.Error()
				break
			}
			m.durs = append(m.durs, d)
			if i == 0 {
				if q.metrics {
					m.size = fmt.Sprintf("%d series", len(resp.Series))
				} else {
					m.size = fmt.Sprintf("%d traces", len(resp.Traces))
				}
				m.status = resp.Status
				if resp.Message != "" {
					m.status += " (" + resp.Message + ")"
				}
			}
		}
		if cpu1, err := cpuSeconds(pid); err == nil && len(m.durs) > 0 {
			m.cpu = (cpu1 - cpu0) / float64(len(m.durs))
		}
		b.logf("%s: p50 %v p90 %v cpu %.3fs %s %s %s", q.name, pct(m.durs, 0.5), pct(m.durs, 0.9), m.cpu, m.size, m.status, m.err)
		ms = append(ms, m)
	}
	close(stopSampling)
	wg.Wait()
	queryPeak := maxRSS.Load()
	if resetOK {
		if v, err := procStatus(pid, "VmHWM:"); err == nil {
			queryPeak = max(queryPeak, v)
		}
	}
	if b.o.keep {
		b.logf("data directory kept: %s", dataDir)
	}

	var sb strings.Builder
	label := b.o.label
	if label == "" {
		label = "clew"
	}
	fmt.Fprintf(&sb, "### %s: %s stored traces, %d blocks\n\n", label, stored, blocks)
	fmt.Fprintf(&sb, "| query | p50 | p90 | server CPU-s per run | runs | answer |\n|---|---|---|---|---|---|\n")
	for _, m := range ms {
		ans := m.size
		if m.status != "" && m.status != "COMPLETE" {
			ans += ", " + m.status
		}
		if m.err != "" {
			ans = "error: " + m.err
		}
		fmt.Fprintf(&sb, "| %s<br>`%s` | %s | %s | %.3f | %d | %s |\n", m.name, strings.ReplaceAll(m.q, "|", "\\|"), fmtDur(pct(m.durs, 0.5)), fmtDur(pct(m.durs, 0.9)), m.cpu, len(m.durs), ans)
	}
	fmt.Fprintf(&sb, "\nPeak RSS of clew while querying: %.0f MB (%s); during the load: %.0f MB.\n",
		float64(queryPeak)/1e6, map[bool]string{true: "VmHWM reset before the queries", false: "highest VmRSS sampled every 20 ms"}[resetOK], float64(ingestPeak)/1e6)
	if loadCmd != nil {
		fmt.Fprintf(&sb, "Load: `%s` in %v, then flush and %v for compaction.\n", strings.Join(loadCmd[1:], " "), loadTime.Round(time.Second), b.o.settle)
	}
	fmt.Fprintf(&sb, "Server: `%s`.\n", strings.Join(serverCmd[1:], " "))
	return sb.String(), nil
}

// stats returns the stored trace count and the number of blocks.
func (b *bench) stats(ctx context.Context, base string) (string, int) {
	var s struct {
		Total int64 `json:"total"`
	}
	stored := "?"
	if _, err := get(ctx, base+"/api/v1/search?limit=1", &s); err == nil {
		stored = strconv.FormatInt(s.Total, 10)
	}
	var st struct {
		Blocks []json.RawMessage
	}
	_, _ = get(ctx, base+"/api/v1/status", &st)
	return stored, len(st.Blocks)
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

var client = &http.Client{Timeout: 10 * time.Minute}

func get(ctx context.Context, u string, v any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return d, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300]
		}
		return d, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return d, fmt.Errorf("decode %s: %w", u, err)
		}
	}
	return d, nil
}

func post(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("POST %s: %s: %s", u, resp.Status, body)
	}
	return nil
}

// procStatus returns a "kB" field of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func waitReady(ctx context.Context, u string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", u, timeout)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("server exited early: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cpuSeconds returns the user and system CPU time of pid in seconds
// (assuming the usual 100 clock ticks a second).
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(raw), ')')
	f := strings.Fields(string(raw[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat")
	}
	return (ut + st) / 100, nil
}
