package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// HitRate is the share of scenario runs that were hits.
func (r *Report) HitRate() float64 {
	var n, h int
	for _, run := range r.Runs {
		for _, s := range run.Scenarios {
			n++
			if s.Hit {
				h++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float64(h) / float64(n)
}

// FalsePositives counts the anomalies and deployments raised during the
// quiet periods.
func (r *Report) FalsePositives() int {
	n := 0
	for _, run := range r.Runs {
		n += len(run.FalsePositives) + len(run.FalseDeploys)
	}
	return n
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Print writes the tables: per scenario over the seeds, then every run.
func (r *Report) Print(w io.Writer) {
	var seeds []string
	for _, run := range r.Runs {
		seeds = append(seeds, fmt.Sprint(run.Seed))
	}
	fmt.Fprintf(w, "\n## Scenario scores (seeds %s, rate %g/s, deadline %s)\n\n", strings.Join(seeds, ", "), r.Options.Rate, r.Options.Deadline)
	fmt.Fprintln(w, "| scenario | hits (top-1 at the deadline) | right at some point | median time to first anomaly | median time to right answer |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	order := []string{}
	per := map[string][]ScenarioResult{}
	for _, run := range r.Runs {
		for _, s := range run.Scenarios {
			if per[s.Scenario] == nil {
				order = append(order, s.Scenario)
			}
			per[s.Scenario] = append(per[s.Scenario], s)
		}
	}
	var total, hits int
	for _, name := range order {
		rs := per[name]
		var h, any int
		var det, right []time.Duration
		for _, s := range rs {
			if s.Hit {
				h++
			}
			if s.HitAnyTime {
				any++
			}
			if s.DetectedAfter > 0 {
				det = append(det, s.DetectedAfter)
			}
			if s.FirstHitAfter > 0 {
				right = append(right, s.FirstHitAfter)
			}
		}
		total += len(rs)
		hits += h
		fmt.Fprintf(w, "| %s | %d/%d | %d/%d | %s | %s |\n", name, h, len(rs), any, len(rs), medianDur(det), medianDur(right))
	}
	rate := 0.0
	if total > 0 {
		rate = 100 * float64(hits) / float64(total)
	}
	fmt.Fprintf(w, "| **all** | **%d/%d (%.0f%%)** | | | |\n", hits, total, rate)
	fmt.Fprintln(w, "\n| seed | normal traffic checked | anomalies raised | deployments raised |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, run := range r.Runs {
		fmt.Fprintf(w, "| %d | %s | %d | %d |\n", run.Seed, run.QuietTo.Sub(run.QuietFrom).Round(time.Second), len(run.FalsePositives), len(run.FalseDeploys))
	}
	fmt.Fprintln(w, "\n| seed | scenario | hit | answer at the deadline |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, run := range r.Runs {
		for _, s := range run.Scenarios {
			mark := "no"
			if s.Hit {
				mark = "yes"
			}
			fmt.Fprintf(w, "| %d | %s | %s | %s |\n", run.Seed, s.Scenario, mark, strings.ReplaceAll(s.Answer, "|", `\|`))
		}
	}
}

func medianDur(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2].Round(time.Second).String()
}
