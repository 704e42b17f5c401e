package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"os"
	"time"
)

// Report is the outcome of a run. It is printed as text by WriteText and
// written as JSON (the field names below) by WriteJSONFile.
type Report struct {
	Shape    string `json:"shape"`
	Protocol string `json:"protocol"`
	Endpoint string `json:"endpoint"`
	Seed     uint64 `json:"seed"`

	// Requests counts requests sent at least once.
	Requests int64 `json:"requests"`
	// Traces counts traces whose first span was delivered.
	Traces int64 `json:"traces"`
	// SentSpans counts spans in requests sent at least once.
	SentSpans int64 `json:"sentSpans"`
	// AcceptedSpans counts delivered spans minus those rejected.
	AcceptedSpans int64 `json:"acceptedSpans"`
	// RejectedSpans counts spans refused in a partial success.
	RejectedSpans int64 `json:"rejectedSpans"`
	// FailedSpans counts spans whose request was never delivered.
	FailedSpans    int64 `json:"failedSpans"`
	FailedRequests int64 `json:"failedRequests"`
	// RetriedRequests counts requests retried at least once; Retries
	// counts retry attempts.
	RetriedRequests int64 `json:"retriedRequests"`
	Retries         int64 `json:"retries"`

	ElapsedSeconds float64 `json:"elapsedSeconds"`
	// SpansPerSecond is AcceptedSpans over ElapsedSeconds.
	SpansPerSecond float64 `json:"spansPerSecond"`
	// Latency summarizes the duration of export calls, retries included.
	Latency LatencySummary `json:"latencyMs"`
	// Errors holds the first distinct error messages.
	Errors []string `json:"errors,omitempty"`
}

// LatencySummary holds latency quantiles in milliseconds.
type LatencySummary struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "loadgen: shape %s, protocol %s, endpoint %s, seed %d\n", r.Shape, r.Protocol, r.Endpoint, r.Seed)
	fmt.Fprintf(w, "  sent       %d spans in %d requests (%d traces delivered)\n", r.SentSpans, r.Requests, r.Traces)
	fmt.Fprintf(w, "  accepted   %d spans\n", r.AcceptedSpans)
	fmt.Fprintf(w, "  rejected   %d spans (partial success)\n", r.RejectedSpans)
	fmt.Fprintf(w, "  failed     %d spans in %d requests (not delivered)\n", r.FailedSpans, r.FailedRequests)
	fmt.Fprintf(w, "  retried    %d requests (%d retries)\n", r.RetriedRequests, r.Retries)
	fmt.Fprintf(w, "  elapsed    %.3f s\n", r.ElapsedSeconds)
	fmt.Fprintf(w, "  rate       %.0f spans/s accepted\n", r.SpansPerSecond)
	fmt.Fprintf(w, "  latency    export call p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error      %s\n", e)
	}
}

// WriteJSONFile writes the report as indented JSON to path.
func (r *Report) WriteJSONFile(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// histogram records durations in log-linear buckets with under 1 % relative
// error, in bounded memory whatever the run length. It is not safe for
// concurrent use; each sender owns one and they are merged at the end.
type histogram struct {
	counts []uint64
	n      uint64
	max    int64
}

const (
	histLinear = 128 // values below are exact
	histSub    = 64  // buckets per power of two above
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histLinear+histSub*64)}
}

func histIndex(v int64) int {
	if v < histLinear {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 7 // v>>e is in [64, 128)
	return histLinear + (e-1)*histSub + int(v>>e) - histSub
}

// histValue returns the middle of bucket i.
func histValue(i int) int64 {
	if i < histLinear {
		return int64(i)
	}
	e := (i-histLinear)/histSub + 1
	m := int64((i-histLinear)%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *histogram) record(d time.Duration) {
	h.counts[histIndex(int64(d))]++
	h.n++
	h.max = max(h.max, int64(d))
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q <= 1), or 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(histValue(i), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *histogram) summary() LatencySummary {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return LatencySummary{
		P50: ms(h.quantile(0.50)),
		P90: ms(h.quantile(0.90)),
		P99: ms(h.quantile(0.99)),
		Max: ms(time.Duration(h.max)),
	}
}
