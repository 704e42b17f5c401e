package e2e

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLoadgenRateAndCounts runs `clew loadgen` against a real clew for 30 s
// at a target rate and checks that the rate is met within 5 % and that the
// report's counts match what clew stored.
func TestLoadgenRateAndCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s run")
	}
	p := startClew(t, t.TempDir())
	dir := t.TempDir()
	reportPath := filepath.Join(dir, "report.json")
	const rate = 4000
	cmd := exec.Command(clewBin, "loadgen", "--endpoint", p.grpcAddr, "--shape", "realistic",
		"--rate", "4000", "--duration", "30s", "--spans", "100000000", "--batch", "200",
		"--seed", "7", "--quiet", "--report-json", reportPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loadgen: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Traces         int64   `json:"traces"`
		SentSpans      int64   `json:"sentSpans"`
		AcceptedSpans  int64   `json:"acceptedSpans"`
		FailedSpans    int64   `json:"failedSpans"`
		SpansPerSecond float64 `json:"spansPerSecond"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if dev := math.Abs(rep.SpansPerSecond-rate) / rate; dev > 0.05 {
		t.Errorf("loadgen rate %.0f spans/s, want %d ±5%%", rep.SpansPerSecond, rate)
	}
	if rep.FailedSpans != 0 || rep.AcceptedSpans != rep.SentSpans {
		t.Errorf("report: sent %d, accepted %d, failed %d", rep.SentSpans, rep.AcceptedSpans, rep.FailedSpans)
	}
	var sr searchResp
	p.getJSON("/api/v1/search?limit=1", &sr)
	if int64(sr.Total) != rep.Traces {
		t.Errorf("clew stored %d traces, loadgen reports %d delivered", sr.Total, rep.Traces)
	}
	if code, body := p.post("/api/v1/admin/flush", "", nil); code != 200 {
		t.Fatalf("flush: %d %s", code, body)
	}
	var after struct {
		Blocks []struct{ Spans int64 }
	}
	p.getJSON("/api/v1/status", &after)
	var stored int64
	for _, b := range after.Blocks {
		stored += b.Spans
	}
	if stored != rep.AcceptedSpans {
		t.Errorf("clew holds %d spans in blocks, loadgen reports %d accepted", stored, rep.AcceptedSpans)
	}
	p.stop()
}
