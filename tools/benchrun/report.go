package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// markdown renders the results: a header describing the machine and one
// table per shape.
func (b *bench) markdown(results []*result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# clew end-to-end benchmark\n\n")
	fmt.Fprintf(&sb, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&sb, "- machine: %s, %d CPUs, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if rev := gitRevision(b.root); rev != "" {
		fmt.Fprintf(&sb, "- clew revision: %s\n", rev)
	}
	fmt.Fprintf(&sb, "- %s\n", b.pinNote)
	if b.opts.tenancy {
		fmt.Fprintf(&sb, "- tenancy on: multitenancy, bearer-token authentication and per-tenant limits (rates, spans per trace, attribute values, search range, concurrent queries)\n")
	}
	fmt.Fprintf(&sb, "- command: `go run ./tools/benchrun %s`\n", strings.Join(b.args, " "))
	for _, r := range results {
		rep := &r.report
		perM := func(cpu float64) string {
			if rep.AcceptedSpans == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.2f", cpu*1e6/float64(rep.AcceptedSpans))
		}
		perSpan := func(n int64) string {
			if rep.AcceptedSpans == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", float64(n)/float64(rep.AcceptedSpans))
		}
		fmt.Fprintf(&sb, "\n## Shape `%s`: %d spans in %d traces\n\n", r.shape, rep.AcceptedSpans, rep.Traces)
		fmt.Fprintf(&sb, "| Metric | Value |\n|---|---|\n")
		fmt.Fprintf(&sb, "| Accepted spans/s | %.0f |\n", rep.SpansPerSecond)
		fmt.Fprintf(&sb, "| Server CPU-s per 1 M spans (ingest / with background) | %s / %s |\n", perM(r.cpuIngest), perM(r.cpuAll))
		fmt.Fprintf(&sb, "| Peak RSS | %.0f MB |\n", float64(r.peakRSS)/(1<<20))
		fmt.Fprintf(&sb, "| Bytes per span on disk (blocks / all incl. WAL) | %s / %s |\n", perSpan(r.blockBytes), perSpan(r.dirBytes))
		fmt.Fprintf(&sb, "| Trace by ID p50 / p99 (%d IDs) | %s / %s |\n", len(r.byID), ms(r.byID.quantile(0.5)), ms(r.byID.quantile(0.99)))
		if r.noNeedle {
			fmt.Fprintf(&sb, "| Needle search p50 / p99 | n/a (the generator sends no needle trace) |\n")
		} else {
			fmt.Fprintf(&sb, "| Needle search p50 / p99 | %s / %s |\n", ms(r.needle.quantile(0.5)), ms(r.needle.quantile(0.99)))
		}
		fmt.Fprintf(&sb, "| Broad search, 20 full traces, p50 / p99 | %s / %s |\n", ms(r.broad.quantile(0.5)), ms(r.broad.quantile(0.99)))
		fmt.Fprintf(&sb, "| Stored traces / sent traces | %d / %d |\n", r.stored, rep.Traces)
		if r.shape != shapeTelemetrygen { // it reports neither
			fmt.Fprintf(&sb, "| Loadgen: rejected / failed spans, retries | %d / %d, %d |\n", rep.RejectedSpans, rep.FailedSpans, rep.Retries)
			fmt.Fprintf(&sb, "| Export call p50 / p99 | %.1f ms / %.1f ms |\n", rep.Latency.P50, rep.Latency.P99)
		}
		fmt.Fprintf(&sb, "| Generator CPU-s per 1 M spans (generation and sending) | %s |\n", perM(r.cpuLoad))
		fmt.Fprintf(&sb, "| Flush time | %s |\n", ms(r.flushTime))
		fmt.Fprintf(&sb, "| Disk after flush: blocks / WAL / total | %.1f MB / %.1f MB / %.1f MB |\n",
			float64(r.blockBytes)/(1<<20), float64(r.walBytes)/(1<<20), float64(r.dirBytes)/(1<<20))
		fmt.Fprintf(&sb, "| Disk after ingest, before flush (WAL + blocks) | %.1f MB (%s B/span) |\n",
			float64(r.ingestDir)/(1<<20), perSpan(r.ingestDir))
		fmt.Fprintf(&sb, "\n- server: `%s`\n- load: `%s`\n", strings.Join(r.serverCmd, " "), strings.Join(r.loadCmd, " "))
		if len(r.failures) == 0 {
			fmt.Fprintf(&sb, "- checks: all passed\n")
		} else {
			for _, f := range r.failures {
				fmt.Fprintf(&sb, "- **FAILED**: %s\n", f)
			}
		}
	}
	return sb.String()
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func gitRevision(root string) string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
