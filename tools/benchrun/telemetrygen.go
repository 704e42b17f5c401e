package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/loadgen"
)

// shapeTelemetrygen is the shape whose spans come from the OpenTelemetry
// Collector's telemetrygen, a generator clew's authors did not write:
// traces of a root and 9 children over OTLP/HTTP, at a fixed rate.
const shapeTelemetrygen = "telemetrygen"

// tgSpansPerTrace is the root and its --child-spans.
const tgSpansPerTrace = 10

// runTelemetrygen drives the server with telemetrygen instead of loadgen
// and finishes the shape as runShape does. telemetrygen reports neither
// delivered spans nor trace IDs: the spans accepted are read from the
// server's own counter, every sent span must be accepted and stored, and
// the trace-by-ID sample is taken from the store over the run's time.
func (b *bench) runTelemetrygen(ctx context.Context, res *result, pid int, httpAddr, base, dataDir string, clientAuth []string, stopServer func() error, tail func() string) (*result, error) {
	res.noNeedle = true
	workers := b.opts.tgWorkers
	perWorker := (b.opts.spans + int64(tgSpansPerTrace*workers) - 1) / int64(tgSpansPerTrace*workers)
	args := []string{b.opts.telemetrygen, "traces", "--otlp-endpoint", httpAddr, "--otlp-http", "--otlp-insecure",
		"--traces", strconv.FormatInt(perWorker, 10), "--child-spans", strconv.Itoa(tgSpansPerTrace - 1),
		"--workers", strconv.Itoa(workers), "--rate", strconv.FormatFloat(b.opts.tgRate, 'f', -1, 64)}
	if len(clientAuth) > 0 {
		args = append(args, "--otlp-header", `Authorization="Bearer `+benchToken+`"`, "--otlp-header", `X-Scope-OrgID="`+benchTenant+`"`)
	}
	res.loadCmd = b.pinned(1, args...)
	cpu0, err := b.cpuSeconds(pid)
	if err != nil {
		return nil, err
	}
	before, err := acceptedSpans(ctx, base)
	if err != nil {
		return nil, err
	}
	b.logf("%s: %s", res.shape, strings.Join(res.loadCmd, " "))
	t0 := time.Now()
	tg := exec.CommandContext(ctx, res.loadCmd[0], res.loadCmd[1:]...)
	tg.Stdout, tg.Stderr = nil, nil // it logs every second; the log is not a figure
	tgErr := tg.Run()
	elapsed := time.Since(t0)
	if tg.ProcessState != nil {
		res.cpuLoad = (tg.ProcessState.UserTime() + tg.ProcessState.SystemTime()).Seconds()
	}
	if tgErr != nil {
		res.fail("telemetrygen: %v", tgErr)
	}
	cpu1, err := b.cpuSeconds(pid)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, tail())
	}
	res.cpuIngest = cpu1 - cpu0
	after, err := acceptedSpans(ctx, base)
	if err != nil {
		return nil, err
	}
	sent := perWorker * int64(workers) * tgSpansPerTrace
	rep := &res.report
	rep.Shape, rep.Protocol, rep.Endpoint = shapeTelemetrygen, "http", httpAddr
	rep.Traces = perWorker * int64(workers)
	rep.SentSpans = sent
	rep.AcceptedSpans = after - before
	rep.ElapsedSeconds = elapsed.Seconds()
	rep.SpansPerSecond = float64(rep.AcceptedSpans) / elapsed.Seconds()
	if rep.AcceptedSpans != sent {
		res.fail("the server accepted %d spans of the %d telemetrygen generated (it drops spans its exporter queue cannot hold: lower --tg-rate)", rep.AcceptedSpans, sent)
	}
	return b.finishShape(ctx, res, pid, cpu0, base, dataDir, nil, stopServer, tail)
}

// acceptedSpans reads the server's clew_receiver_spans_total of accepted
// OTLP/HTTP spans.
func acceptedSpans(ctx context.Context, base string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := queryClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "clew_receiver_spans_total{") && strings.Contains(line, `outcome="accepted"`) && strings.Contains(line, `protocol="otlp_http"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				return 0, fmt.Errorf("parse %q: %w", line, err)
			}
			return int64(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no clew_receiver_spans_total of accepted OTLP/HTTP spans on %s/metrics", base)
}

// sampleStore builds the query plan of a generator without a sidecar: 50
// trace IDs spread over the stored time (one per slice of it, so that
// every block is read, not only the newest), and a broad search over the
// generator's service.
func sampleStore(ctx context.Context, base string, res *result) (*loadgen.Sidecar, error) {
	sc := &loadgen.Sidecar{Shape: res.shape, Broad: loadgen.Query{Service: "telemetrygen"}}
	var newest searchResponse
	if _, _, err := get(ctx, base+"/api/v1/search?limit=1", &newest); err != nil {
		return sc, err
	}
	if len(newest.Traces) == 0 {
		return sc, fmt.Errorf("nothing stored")
	}
	// The run's spans started within its elapsed time before the flush.
	end := time.Now().Add(time.Second)
	start := end.Add(-time.Duration(res.report.ElapsedSeconds*float64(time.Second)) - 15*time.Second)
	const n = 50
	step := end.Sub(start) / n
	seen := map[string]bool{}
	for i := range n {
		lo, hi := start.Add(time.Duration(i)*step), start.Add(time.Duration(i+1)*step)
		q := url.Values{"limit": {"1"}, "start": {strconv.FormatInt(lo.UnixNano(), 10)}, "end": {strconv.FormatInt(hi.UnixNano(), 10)}}
		var sr searchResponse
		if _, _, err := get(ctx, base+"/api/v1/search?"+q.Encode(), &sr); err != nil {
			return sc, err
		}
		for _, t := range sr.Traces {
			if !seen[t.TraceID] {
				seen[t.TraceID] = true
				sc.SampleTraceIDs = append(sc.SampleTraceIDs, t.TraceID)
				sc.SampleTraceSpans = append(sc.SampleTraceSpans, t.SpanCount)
			}
		}
	}
	return sc, nil
}
