package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/loadgen"
)

// options are benchrun's flags.
type options struct {
	spans       int64
	shapes      []string
	out         string
	keep        bool
	clew        string
	concurrency int
	batch       int
	queries     int
	settle      time.Duration
	seed        uint64
	// tenancy runs the server with multitenancy, a bearer token and
	// per-tenant limits on, and every client with the token and tenant.
	tenancy bool
	// telemetrygen is the OpenTelemetry Collector's telemetrygen binary,
	// the generator of the telemetrygen shape; tgRate and tgWorkers are
	// its --rate (spans per second per worker) and --workers.
	telemetrygen string
	tgRate       float64
	tgWorkers    int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Int64Var(&o.spans, "spans", 1_000_000, "spans to send per shape")
	shapes := fs.String("shapes", "bench,realistic", "comma-separated shapes to run (bench, realistic)")
	fs.StringVar(&o.out, "out", "", "also write the Markdown results to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the data directories")
	fs.StringVar(&o.clew, "clew", "", "use this clew binary instead of building ./cmd/clew")
	fs.IntVar(&o.concurrency, "concurrency", 4, "loadgen concurrent export calls")
	fs.IntVar(&o.batch, "batch", 500, "loadgen spans per request")
	fs.IntVar(&o.queries, "queries", 50, "repetitions of each search query")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait after the flush for background work (compaction)")
	fs.Uint64Var(&o.seed, "seed", 42, "loadgen seed")
	fs.StringVar(&o.telemetrygen, "telemetrygen", "", "the telemetrygen binary, for the telemetrygen shape (a generator that is not clew's: 10-span traces over OTLP/HTTP)")
	fs.Float64Var(&o.tgRate, "tg-rate", 10000, "telemetrygen --rate: spans per second per worker (its SDK drops spans when unthrottled)")
	fs.IntVar(&o.tgWorkers, "tg-workers", 4, "telemetrygen --workers")
	fs.BoolVar(&o.tenancy, "tenancy", false, "run with multitenancy, token authentication and per-tenant limits on (to measure their cost)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("parse flags: unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.spans < 1000:
		return o, fmt.Errorf("parse flags: --spans %d: want at least 1000", o.spans)
	case o.concurrency < 1, o.batch < 10, o.queries < 1, o.settle < 0:
		return o, errors.New("parse flags: --concurrency, --batch, --queries and --settle must be positive (batch at least 10)")
	}
	for _, s := range strings.Split(*shapes, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == shapeTelemetrygen && o.telemetrygen == "":
			return o, errors.New("parse flags: the telemetrygen shape needs --telemetrygen BIN")
		case s == shapeTelemetrygen && (o.tgRate <= 0 || o.tgWorkers < 1):
			return o, errors.New("parse flags: --tg-rate and --tg-workers must be positive")
		case s != loadgen.ShapeBench && s != loadgen.ShapeRealistic && s != shapeTelemetrygen:
			return o, fmt.Errorf("parse flags: unknown shape %q in --shapes (want bench, realistic, telemetrygen)", s)
		}
		o.shapes = append(o.shapes, s)
	}
	return o, nil
}

// bench runs the benchmark for every shape.
type bench struct {
	opts           options
	args           []string
	stdout, stderr io.Writer

	bin     string // clew binary
	root    string // module root
	pin     bool   // taskset is usable
	pinNote string
	clkTck  float64
}

// result holds the figures of one shape.
type result struct {
	shape      string
	report     loadgen.Report
	cpuIngest  float64 // server CPU seconds while the load ran
	cpuAll     float64 // including flush and settle
	cpuLoad    float64 // loadgen CPU seconds
	peakRSS    int64   // bytes
	blockBytes int64
	dirBytes   int64
	walBytes   int64
	ingestDir  int64 // data dir size right after ingest, before the flush
	stored     int64 // total from the search API
	byID       latencies
	needle     latencies
	broad      latencies
	flushTime  time.Duration
	serverCmd  []string
	loadCmd    []string
	failures   []string
	noNeedle   bool // the generator names no needle trace (telemetrygen)
}

func (r *result) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "benchrun: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.root = root
	b.clkTck = clockTicks()
	authRun = b.opts.tenancy
	if _, err := exec.LookPath("taskset"); err != nil {
		b.pinNote = "taskset not found: processes not pinned"
	} else if runtime.NumCPU() < 2 {
		b.pinNote = "fewer than 2 CPUs: processes not pinned"
	} else {
		b.pin = true
		b.pinNote = "server pinned to CPU 0, loadgen to CPU 1 (taskset)"
	}

	tmp, err := os.MkdirTemp("", "clew-bench-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	if b.opts.keep {
		b.logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	b.bin = b.opts.clew
	if b.bin == "" {
		b.bin = filepath.Join(tmp, "clew")
		b.logf("building ./cmd/clew")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/clew")
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = b.stderr, b.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build clew: %w", err)
		}
	} else if b.bin, err = filepath.Abs(b.bin); err != nil {
		return fmt.Errorf("resolve --clew: %w", err)
	}

	var results []*result
	for _, shape := range b.opts.shapes {
		dir := filepath.Join(tmp, shape)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create dir: %w", err)
		}
		res, err := b.runShape(ctx, shape, dir)
		if err != nil {
			return fmt.Errorf("shape %s: %w", shape, err)
		}
		results = append(results, res)
	}

	md := b.markdown(results)
	fmt.Fprint(b.stdout, md)
	if b.opts.out != "" {
		if err := os.MkdirAll(filepath.Dir(b.opts.out), 0o755); err != nil {
			return fmt.Errorf("create output dir: %w", err)
		}
		if err := os.WriteFile(b.opts.out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		b.logf("results written to %s", b.opts.out)
	}
	var failed []string
	for _, r := range results {
		for _, f := range r.failures {
			failed = append(failed, r.shape+": "+f)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d checks failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

func (b *bench) pinned(cpu int, argv ...string) []string {
	if !b.pin {
		return argv
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
}

func (b *bench) runShape(ctx context.Context, shape, dir string) (*result, error) {
	res := &result{shape: shape}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	apiAddr := fmt.Sprintf("127.0.0.1:%d", ports[2])
	base := "http://" + apiAddr
	dataDir := filepath.Join(dir, "data")

	serve := []string{"serve", "--data-dir", dataDir,
		"--otlp-grpc-addr", grpcAddr, "--otlp-http-addr", httpAddr, "--http-addr", apiAddr}
	var clientAuth []string
	if b.opts.tenancy {
		cfg := filepath.Join(dir, "tenancy.yaml")
		if err := os.WriteFile(cfg, []byte(tenancyConfig()), 0o600); err != nil {
			return nil, err
		}
		serve = append(serve, "--config", cfg)
		clientAuth = []string{"--token", benchToken, "--tenant", benchTenant}
	}
	res.serverCmd = b.pinned(0, append([]string{b.bin}, serve...)...)
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	defer logFile.Close()
	b.logf("%s: starting %s", shape, strings.Join(res.serverCmd, " "))
	srv := exec.Command(res.serverCmd[0], res.serverCmd[1:]...)
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	stopServer := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = srv.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(60 * time.Second):
			_ = srv.Process.Kill()
			<-exited
			return errors.New("server ignored SIGTERM for 60 s; killed")
		}
	}
	defer stopServer()
	tail := func() string { return logTail(filepath.Join(dir, "server.log"), 20) }

	if err := waitReady(ctx, base+"/readyz", exited, 60*time.Second); err != nil {
		return nil, fmt.Errorf("wait for server: %w\n%s", err, tail())
	}
	pid := srv.Process.Pid

	// Ingest.
	if shape == shapeTelemetrygen {
		return b.runTelemetrygen(ctx, res, pid, httpAddr, base, dataDir, clientAuth, stopServer, tail)
	}
	idsFile := filepath.Join(dir, "trace-ids")
	reportFile := filepath.Join(dir, "loadgen.json")
	res.loadCmd = b.pinned(1, b.bin, "loadgen", "--endpoint", grpcAddr, "--shape", shape,
		"--spans", strconv.FormatInt(b.opts.spans, 10),
		"--concurrency", strconv.Itoa(b.opts.concurrency), "--batch", strconv.Itoa(b.opts.batch),
		"--seed", strconv.FormatUint(b.opts.seed, 10),
		"--trace-ids-out", idsFile, "--report-json", reportFile)
	res.loadCmd = append(res.loadCmd, clientAuth...)
	cpu0, err := b.cpuSeconds(pid)
	if err != nil {
		return nil, err
	}
	b.logf("%s: %s", shape, strings.Join(res.loadCmd, " "))
	lg := exec.CommandContext(ctx, res.loadCmd[0], res.loadCmd[1:]...)
	lg.Stdout, lg.Stderr = b.stderr, b.stderr
	lgErr := lg.Run()
	if lg.ProcessState != nil {
		res.cpuLoad = (lg.ProcessState.UserTime() + lg.ProcessState.SystemTime()).Seconds()
	}
	cpu1, err := b.cpuSeconds(pid)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail())
	}
	res.cpuIngest = cpu1 - cpu0
	if err := readJSON(reportFile, &res.report); err != nil {
		return nil, fmt.Errorf("loadgen: %v: %w", lgErr, err)
	}
	if lgErr != nil {
		res.fail("loadgen: %v", lgErr)
	}
	var sc loadgen.Sidecar
	if err := readJSON(idsFile+".json", &sc); err != nil {
		return nil, err
	}

	return b.finishShape(ctx, res, pid, cpu0, base, dataDir, &sc, stopServer, tail)
}

// finishShape flushes, lets background work settle, measures the server
// and the disk, runs the queries and stops the server.
func (b *bench) finishShape(ctx context.Context, res *result, pid int, cpu0 float64, base, dataDir string, sc *loadgen.Sidecar, stopServer func() error, tail func() string) (*result, error) {
	shape := res.shape
	res.ingestDir = dirSize(dataDir)

	// Flush the head into a block and let background work settle.
	b.logf("%s: flushing", shape)
	t0 := time.Now()
	if err := post(ctx, base+"/api/v1/admin/flush", 10*time.Minute); err != nil {
		res.fail("flush: %v", err)
	}
	res.flushTime = time.Since(t0)
	select {
	case <-time.After(b.opts.settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu2, err := b.cpuSeconds(pid)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail())
	}
	res.cpuAll = cpu2 - cpu0
	res.peakRSS, err = peakRSS(pid)
	if err != nil {
		return nil, err
	}
	res.blockBytes = dirSize(filepath.Join(dataDir, "blocks"))
	res.walBytes = dirSize(filepath.Join(dataDir, "wal"))
	res.dirBytes = dirSize(dataDir)

	// Read side.
	if sc == nil { // a generator without a sidecar: sample the store
		s, err := sampleStore(ctx, base, res)
		if err != nil {
			res.fail("sample trace IDs: %v", err)
		}
		sc = s
	}
	b.queries(ctx, base, sc, res)

	if err := stopServer(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 0 {
			res.fail("server exit: %v", err)
		}
	}
	if len(res.failures) > 0 {
		b.logf("%s: server log tail:\n%s", shape, tail())
	}
	return res, nil
}

// cpuSeconds returns utime+stime of pid in seconds.
func (b *bench) cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read server cpu: %w", err)
	}
	// Fields after the parenthesized command name start at field 3 (state);
	// utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(raw, ')')
	f := strings.Fields(string(raw[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, errors.New("read server cpu: malformed /proc stat")
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("read server cpu: malformed /proc stat")
	}
	return (ut + st) / b.clkTck, nil
}

// peakRSS returns VmHWM of pid in bytes.
func peakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read server rss: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
		}
	}
	return 0, errors.New("read server rss: no VmHWM")
}

// clockTicks returns the kernel clock ticks per second (CLK_TCK).
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// dirSize sums the sizes of the regular files under dir; 0 when missing.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find module root: run benchrun inside the clew module")
	}
	return filepath.Dir(gomod), nil
}

// freePorts returns n distinct free loopback TCP ports.
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
			return nil, fmt.Errorf("find free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady polls url until it answers 200, the server exits or timeout.
func waitReady(ctx context.Context, url string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", url, timeout)
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

func post(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	setAuth(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", filepath.Base(path), err)
	}
	return nil
}

func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// The tenant and token of a --tenancy run.
const (
	benchTenant = "bench"
	benchToken  = "benchrun-token-7d1e6c0b5f3a49d28e0c4b9a1f6e2d73"
)

// tenancyConfig is the server's configuration of a --tenancy run:
// multitenancy, one token for the tenant with every right, and limits
// high enough never to refuse the load but on, so that every check runs
// (rates, spans per trace, attribute values below the receivers' cap).
func tenancyConfig() string {
	return fmt.Sprintf(`multitenancy: true
auth:
  tokens:
    - name: benchrun
      sha256: %s
      tenant: %s
      rights: [write, read, admin]
overrides:
  defaults:
    ingestion_rate_spans: 100000000
    ingestion_rate_bytes: 100000000000
    max_spans_per_trace: 1000000
    max_attribute_value_bytes: 32768
    max_search_duration: 8760h
    max_concurrent_queries: 64
`, auth.HashToken(benchToken), benchTenant)
}

// authRun is set by a --tenancy run: every query carries the token and
// tenant.
var authRun bool

func setAuth(req *http.Request) {
	if authRun {
		req.Header.Set("Authorization", "Bearer "+benchToken)
		req.Header.Set("X-Scope-OrgID", benchTenant)
	}
}
