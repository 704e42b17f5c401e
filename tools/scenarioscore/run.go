package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// GroundTruth is one scenario episode as the demo records it.
type GroundTruth struct {
	Scenario  string     `json:"scenario"`
	Service   string     `json:"service"`
	Operation string     `json:"operation"`
	Version   string     `json:"version"`
	Attribute string     `json:"attribute"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
}

// The parts of clew's answers the harness reads (docs/api.md).
type anomaly struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Start      time.Time  `json:"start"`
	DetectedAt time.Time  `json:"detectedAt"`
	Severity   float64    `json:"severity"`
	Summary    string     `json:"summary"`
	Culprits   []culprit  `json:"culprits"`
	End        *time.Time `json:"end"`
}

type culprit struct {
	Service   string  `json:"service"`
	Operation string  `json:"operation"`
	Kind      string  `json:"kind"`
	Version   string  `json:"version"`
	Attribute string  `json:"attribute"`
	Score     float64 `json:"score"`
}

type deploy struct {
	Service   string    `json:"service"`
	Attribute string    `json:"attribute"`
	Value     string    `json:"value"`
	Previous  string    `json:"previous"`
	FirstSeen time.Time `json:"firstSeen"`
	Verdict   string    `json:"verdict"`
	Summary   string    `json:"summary"`
}

func (c culprit) String() string {
	s := c.Service + " " + c.Operation + " (" + c.Kind + ")"
	if c.Version != "" {
		s += " version " + c.Version
	}
	if c.Attribute != "" {
		s += " where " + c.Attribute
	}
	return s
}

// normAttr compares attribute conditions without their quotes.
func normAttr(s string) string {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return s
	}
	if u, err := strconv.Unquote(v); err == nil {
		v = u
	}
	return k + "=" + v
}

// hit reports whether a culprit names the ground truth: the same service
// and the same operation ("*" takes any of the service's), or the version
// the fault is confined to, or the attribute condition that selects the
// affected spans.
func hit(gt GroundTruth, c culprit) bool {
	if c.Service != gt.Service {
		return false
	}
	switch {
	case gt.Operation == "*" || c.Operation == gt.Operation:
		return true
	case gt.Version != "" && c.Version == gt.Version:
		return true
	case gt.Attribute != "" && c.Attribute != "" && normAttr(c.Attribute) == normAttr(gt.Attribute):
		return true
	}
	return false
}

// deployHit reports whether a regressed deployment names the ground
// truth's version.
func deployHit(gt GroundTruth, d deploy) bool {
	return gt.Version != "" && d.Service == gt.Service && d.Attribute == "service.version" && d.Value == gt.Version && d.Verdict == "regressed"
}

// logger writes timestamped progress lines.
type logger struct{ w io.Writer }

func (l logger) printf(format string, args ...any) {
	fmt.Fprintf(l.w, "%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Run runs the scoring and returns its report (also when it fails part
// way: the report then holds what was done).
func Run(ctx context.Context, o Options, logw io.Writer) (*Report, error) {
	log := logger{logw}
	if o.Scenarios == nil {
		o.Scenarios = AllScenarios
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Minute
	}
	rep := &Report{Options: o, Started: time.Now().UTC()}
	defer func() { rep.Ended = time.Now().UTC() }()
	work, err := os.MkdirTemp("", "scenarioscore-")
	if err != nil {
		return rep, err
	}
	if !o.KeepData {
		defer os.RemoveAll(work)
	} else {
		log.printf("data in %s", work)
	}
	bin := o.Clew
	if bin == "" {
		bin = filepath.Join(work, "clew")
		log.printf("building clew")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/clew")
		cmd.Dir = o.Repo
		cmd.Stdout, cmd.Stderr = logw, logw
		if err := cmd.Run(); err != nil {
			return rep, fmt.Errorf("build clew: %w", err)
		}
	}
	runs := make([]SeedRun, len(o.Seeds))
	errs := make([]error, len(o.Seeds))
	var wg sync.WaitGroup
	for i, seed := range o.Seeds {
		so := o
		if i == 0 && o.QuietFirst > 0 {
			so.Quiet = o.QuietFirst
		}
		one := func() {
			runs[i], errs[i] = runSeed(ctx, so, bin, filepath.Join(work, "seed"+strconv.FormatUint(seed, 10)), seed, log)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("seed %d: %w", seed, errs[i])
			}
		}
		if o.Parallel {
			wg.Go(one)
			continue
		}
		one()
		if errs[i] != nil {
			break
		}
	}
	wg.Wait()
	for i := range runs {
		if runs[i].Seed != 0 {
			rep.Runs = append(rep.Runs, runs[i])
		}
	}
	return rep, errors.Join(errs...)
}

// freePorts returns n free loopback ports.
func freePorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// proc is a started child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func start(ctx context.Context, name, logPath, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), log: f}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// stop interrupts the process and waits up to 30s before killing it.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

func (p *proc) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = errors.New("exited")
		}
		return fmt.Errorf("%s stopped: %w (see %s)", p.name, err, p.log.Name())
	default:
		return nil
	}
}

var client = &http.Client{Timeout: 20 * time.Second}

func getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

func post(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d", u, resp.StatusCode)
	}
	return nil
}

// sleep waits d or until ctx is done or a process exits.
func sleep(ctx context.Context, d time.Duration, procs ...*proc) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, p := range procs {
			if err := p.exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Until(end), time.Second)):
		}
	}
	return nil
}

func waitHTTP(ctx context.Context, u string, p *proc) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s not ready at %s", p.name, u)
}

type anomaliesResp struct {
	Anomalies []anomaly `json:"anomalies"`
}

type deploysResp struct {
	Deploys []deploy `json:"deploys"`
}

func rfc(t time.Time) string { return url.QueryEscape(t.UTC().Format(time.RFC3339Nano)) }

func runSeed(ctx context.Context, o Options, bin, dir string, seed uint64, log logger) (SeedRun, error) {
	run := SeedRun{Seed: seed, FalsePositives: []json.RawMessage{}, FalseDeploys: []json.RawMessage{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return run, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return run, err
	}
	grpcAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	httpOTLP := fmt.Sprintf("127.0.0.1:%d", ports[1])
	query := fmt.Sprintf("127.0.0.1:%d", ports[2])
	control := fmt.Sprintf("127.0.0.1:%d", ports[3])
	args := []string{"serve", "--data-dir", filepath.Join(dir, "clew"), "--otlp-grpc-addr", grpcAddr, "--otlp-http-addr", httpOTLP,
		"--http-addr", query, "--zipkin-addr=", "--jaeger-grpc-addr=", "--jaeger-http-addr=", "--log-level", "info"}
	if o.Config != "" {
		cfg := filepath.Join(dir, "clew.yaml")
		// A configuration file takes the defaults for whatever it does not
		// set, flags included: pass the addresses as flags anyway.
		if err := os.WriteFile(cfg, []byte(o.Config), 0o644); err != nil {
			return run, err
		}
		args = append(args, "--config", cfg)
	}
	log.printf("seed %d: clew on %s, demo control on %s, rate %g", seed, query, control, o.Rate)
	srv, err := start(ctx, "clew serve", filepath.Join(dir, "serve.log"), bin, args...)
	if err != nil {
		return run, err
	}
	defer srv.stop()
	base := "http://" + query
	if err := waitHTTP(ctx, base+"/readyz", srv); err != nil {
		return run, err
	}
	dm, err := start(ctx, "clew demo", filepath.Join(dir, "demo.log"), bin, "demo", "--otlp-endpoint", grpcAddr,
		"--control-addr", control, "--seed", strconv.FormatUint(seed, 10), "--rate", strconv.FormatFloat(o.Rate, 'g', -1, 64),
		"--data-dir", filepath.Join(dir, "demo"), "--log-level", "warn")
	if err != nil {
		return run, err
	}
	defer dm.stop()
	ctl := "http://" + control
	if err := waitHTTP(ctx, ctl+"/scenarios", dm); err != nil {
		return run, err
	}
	demoStart := time.Now()
	log.printf("seed %d: warming up for %s", seed, o.Warmup)
	if err := sleep(ctx, o.Warmup, srv, dm); err != nil {
		return run, err
	}
	if o.Quiet > 0 {
		log.printf("seed %d: quiet period of %s", seed, o.Quiet)
		if err := sleep(ctx, o.Quiet, srv, dm); err != nil {
			return run, err
		}
	}
	// Everything raised from the start to now is a false positive: no
	// fault was on.
	run.QuietFrom, run.QuietTo = demoStart.UTC(), time.Now().UTC()
	var fp struct {
		Anomalies []json.RawMessage `json:"anomalies"`
	}
	if err := getJSON(ctx, base+"/api/v1/anomalies?start="+rfc(demoStart)+"&end="+rfc(run.QuietTo), &fp); err != nil {
		return run, err
	}
	run.FalsePositives = append(run.FalsePositives, fp.Anomalies...)
	var fd struct {
		Deploys []json.RawMessage `json:"deploys"`
	}
	if err := getJSON(ctx, base+"/api/v1/deploys?start="+rfc(demoStart)+"&end="+rfc(run.QuietTo), &fd); err != nil {
		return run, err
	}
	run.FalseDeploys = append(run.FalseDeploys, fd.Deploys...)
	log.printf("seed %d: %d anomalies and %d deployments during %s of normal traffic", seed, len(fp.Anomalies), len(fd.Deploys), run.QuietTo.Sub(demoStart).Round(time.Second))

	for _, name := range o.Scenarios {
		if err := waitResolved(ctx, base, o.RecoverMax, log, srv, dm); err != nil {
			return run, err
		}
		res, err := runScenario(ctx, o, base, ctl, name, log, srv, dm)
		run.Scenarios = append(run.Scenarios, res)
		if err != nil {
			return run, err
		}
		log.printf("seed %d: %s: hit=%v (any time %v) detected after %s, right after %s: %s", seed, name, res.Hit, res.HitAnyTime,
			res.DetectedAfter.Round(time.Second), res.FirstHitAfter.Round(time.Second), res.Answer)
		if err := post(ctx, ctl+"/scenarios/"+name+"?enable=false"); err != nil {
			return run, err
		}
		if err := sleep(ctx, o.Recover, srv, dm); err != nil {
			return run, err
		}
	}
	return run, nil
}

// waitResolved waits up to max for every anomaly to be resolved.
func waitResolved(ctx context.Context, base string, max time.Duration, log logger, procs ...*proc) error {
	end := time.Now().Add(max)
	for {
		var r anomaliesResp
		if err := getJSON(ctx, base+"/api/v1/anomalies?since=3h", &r); err != nil {
			return err
		}
		open := 0
		for _, a := range r.Anomalies {
			if a.Status == "open" {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(end) {
			log.printf("%d anomalies still open; going on", open)
			return nil
		}
		if err := sleep(ctx, 5*time.Second, procs...); err != nil {
			return err
		}
	}
}

// runScenario switches one scenario on and follows clew's answers until
// the deadline.
func runScenario(ctx context.Context, o Options, base, ctl, name string, log logger, procs ...*proc) (ScenarioResult, error) {
	res := ScenarioResult{Scenario: name}
	if err := post(ctx, ctl+"/scenarios/"+name+"?enable=true"); err != nil {
		return res, err
	}
	var gt struct {
		GroundTruth []GroundTruth `json:"groundTruth"`
	}
	if err := getJSON(ctx, ctl+"/ground-truth", &gt); err != nil {
		return res, err
	}
	for _, g := range gt.GroundTruth {
		if g.Scenario == name && g.EndedAt == nil {
			res.Truth = g
		}
	}
	if res.Truth.StartedAt.IsZero() {
		return res, fmt.Errorf("no open ground-truth episode for %s", name)
	}
	start := res.Truth.StartedAt
	deadline := start.Add(o.Deadline)
	streak := 0
	for {
		ans, via, ok, detected := answer(ctx, base, res.Truth)
		now := time.Now()
		if detected && res.DetectedAfter == 0 {
			res.DetectedAfter = now.Sub(start)
		}
		if ok {
			streak++
			res.HitAnyTime = true
			if res.FirstHitAfter == 0 {
				res.FirstHitAfter = now.Sub(start)
			}
		} else {
			streak = 0
		}
		if ans != res.Answer {
			res.History = append(res.History, fmt.Sprintf("+%s %s", now.Sub(start).Round(time.Second), ans))
		}
		res.Answer, res.Via, res.Hit = ans, via, ok
		if o.EarlyStop && streak >= 2 {
			res.Notes = "stopped early: right twice in a row"
			return res, nil
		}
		if !now.Add(o.Poll).Before(deadline) {
			return res, nil
		}
		if err := sleep(ctx, o.Poll, procs...); err != nil {
			return res, err
		}
	}
}

// answer returns clew's current top-ranked answer about a fault: the top
// culprit of the most severe anomaly raised since the fault started, and
// for a fault confined to a version, a regressed deployment of it.
func answer(ctx context.Context, base string, gt GroundTruth) (ans, via string, ok, detected bool) {
	from := gt.StartedAt.Add(-time.Minute)
	var ar anomaliesResp
	if err := getJSON(ctx, base+"/api/v1/anomalies?start="+rfc(from), &ar); err != nil {
		return "error: " + err.Error(), "", false, false
	}
	var cands []anomaly
	for _, a := range ar.Anomalies {
		// Raised after the fault started (not an earlier one still open).
		if !a.DetectedAt.Before(gt.StartedAt) && len(a.Culprits) > 0 {
			cands = append(cands, a)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Severity > cands[j].Severity })
	if len(cands) > 0 {
		detected = true
		c := cands[0].Culprits[0]
		ans, via, ok = c.String(), "anomaly", hit(gt, c)
	} else {
		ans = "(nothing)"
	}
	if ok || gt.Version == "" {
		return ans, via, ok, detected
	}
	var dr deploysResp
	if err := getJSON(ctx, base+"/api/v1/deploys?start="+rfc(from), &dr); err != nil {
		return ans, via, ok, detected
	}
	for _, d := range dr.Deploys {
		if d.Verdict == "regressed" && !d.FirstSeen.Before(from) {
			detected = true
			if deployHit(gt, d) {
				return "deployment " + d.Service + " " + d.Attribute + "=" + d.Value + " regressed", "deploy", true, true
			}
		}
	}
	return ans, via, ok, detected
}
