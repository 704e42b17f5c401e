package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Report is one evaluation: every case's result and the summary by fault
// kind.
type Report struct {
	Seed    uint64    `json:"seed"`
	Cases   int       `json:"cases"`
	Within  string    `json:"deadline"`
	Results []*Result `json:"results"`
	Rows    []Row     `json:"summary"`
	WallSec float64   `json:"wallSeconds"`
}

// Row sums the results of one fault kind (or "all service faults", or
// "low rates": the service faults at 1-10 requests per minute).
type Row struct {
	Kind     string  `json:"fault"`
	Cases    int     `json:"cases"`
	Detected float64 `json:"detectionRate"`
	Top1     float64 `json:"top1"`
	Top3     float64 `json:"top3"`
	// MedianTTD is the median time to detect, in seconds, of the detected
	// cases.
	MedianTTD float64 `json:"medianTimeToDetectSeconds"`
	// FalsePerHour: anomalies raised on fault-free traffic per hour of it
	// (control runs, and every case's history before its fault).
	FalseAlarms  int     `json:"falseAlarms"`
	FaultFreeH   float64 `json:"faultFreeHours"`
	FalsePerHour float64 `json:"falseAlarmsPerHour"`
}

// Run plans and runs the cases of seed (only one when only is set), in
// order, calling done after each.
func Run(ctx context.Context, seed uint64, n int, within time.Duration, only int, done func(*Result)) (*Report, error) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "topologyscore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rep := &Report{Seed: seed, Cases: n, Within: within.String()}
	for _, c := range planCases(seed, n) {
		if only > 0 && c.N != only {
			continue
		}
		r, err := runCase(ctx, c, within, dir)
		if err != nil {
			return nil, fmt.Errorf("case %d: %w", c.N, err)
		}
		rep.Results = append(rep.Results, r)
		done(r)
	}
	rep.Rows = summarize(rep.Results)
	rep.WallSec = time.Since(start).Seconds()
	return rep, nil
}

func summarize(rs []*Result) []Row {
	service := func(r *Result) bool { return r.Kind == FaultCPU || r.Kind == FaultDelay || r.Kind == FaultError }
	groups := []struct {
		name string
		in   func(*Result) bool
	}{
		{FaultCPU, func(r *Result) bool { return r.Kind == FaultCPU }},
		{FaultDelay, func(r *Result) bool { return r.Kind == FaultDelay }},
		{FaultError, func(r *Result) bool { return r.Kind == FaultError }},
		{FaultHost, func(r *Result) bool { return r.Kind == FaultHost }},
		{"service faults", service},
		{"service faults, low rates", func(r *Result) bool { return service(r) && !r.HighRate }},
		{"service faults, short history", func(r *Result) bool { return service(r) && r.History <= 30 }},
		{FaultNone, func(r *Result) bool { return r.Kind == FaultNone }},
	}
	var rows []Row
	var allFalse int
	var allMin int
	for _, r := range rs {
		allFalse += r.FalseAlarms
		allMin += r.EvalMinutes
	}
	for _, g := range groups {
		row := Row{Kind: g.name}
		var ttd []float64
		var fmin int
		for _, r := range rs {
			if !g.in(r) {
				continue
			}
			row.Cases++
			row.FalseAlarms += r.FalseAlarms
			fmin += r.EvalMinutes
			if r.Kind == FaultNone {
				continue
			}
			if r.Detected {
				row.Detected++
				ttd = append(ttd, r.TimeToDetect)
			}
			if r.Top1 {
				row.Top1++
			}
			if r.Top3 {
				row.Top3++
			}
		}
		if row.Cases == 0 {
			continue
		}
		if g.name != FaultNone {
			row.Detected /= float64(row.Cases)
			row.Top1 /= float64(row.Cases)
			row.Top3 /= float64(row.Cases)
		}
		if len(ttd) > 0 {
			slices.Sort(ttd)
			row.MedianTTD = ttd[len(ttd)/2]
		}
		row.FaultFreeH = float64(fmin) / 60
		if fmin > 0 {
			row.FalsePerHour = round2(float64(row.FalseAlarms) / row.FaultFreeH)
		}
		rows = append(rows, row)
	}
	all := Row{Kind: "all (false alarms)", Cases: len(rs), FalseAlarms: allFalse, FaultFreeH: float64(allMin) / 60}
	if allMin > 0 {
		all.FalsePerHour = round2(float64(allFalse) / all.FaultFreeH)
	}
	return append(rows, all)
}

// Print writes the summary table, then one line per case.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n## Topology scores (seed %d, %d cases, deadline %s, %.0fs)\n\n", r.Seed, r.Cases, r.Within, r.WallSec)
	fmt.Fprintln(w, "| fault | cases | detected | Top@1 | Top@3 | median time to detect | false alarms / fault-free hours |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, row := range r.Rows {
		if row.Kind == FaultNone || row.Kind == "all (false alarms)" {
			fmt.Fprintf(w, "| %s | %d | — | — | — | — | %d / %.1f h (%.2f/h) |\n", row.Kind, row.Cases, row.FalseAlarms, row.FaultFreeH, row.FalsePerHour)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.0f%% | %.0f%% | %.0f%% | %.0fs | %d / %.1f h |\n", row.Kind, row.Cases, 100*row.Detected, 100*row.Top1, 100*row.Top3, row.MedianTTD, row.FalseAlarms, row.FaultFreeH)
	}
	fmt.Fprintln(w, "\n| case | fault | service | services | depth | fan-out | ops (max/service) | req/min | history | detected | Top@1 | blamed | false alarms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range r.Results {
		bl := c.Blamed[:min(3, len(c.Blamed))]
		fmt.Fprintf(w, "| %d | %s | %s | %d | %d | %d | %d (%d) | %.1f | %dm | %v | %v | %v | %d |\n", c.N, c.Kind, c.Service, c.Services, c.Depth, c.FanOut, c.Ops, c.MaxOps, c.PerMin, c.History, c.Detected, c.Top1, bl, c.FalseAlarms)
	}
}
