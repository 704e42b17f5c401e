// Command topologyscore evaluates clew's anomaly detection and culprit
// ranking on synthetic systems it did not see while being built: from a
// seed it draws topologies (2-5 layers, fan-outs of 1-4, 4-20 services,
// several operations per service, server, client and database spans,
// 1-10 requests per minute per entry operation, some cases higher),
// feeds their traffic through the real pipeline in-process on a simulated
// clock (spans into a real store on a temporary directory, real span
// metrics, the real detector evaluating every 15 simulated seconds), and
// injects one fault per case at the end of a short (10-30 minutes) or a
// longer (45-75 minutes) history: CPU contention in one service (its self
// time scaled), network delay on the calls into one service, exceptions
// in one service (its callers then fail too), a host-wide slowdown, or
// none (control runs, for false alarms). It scores the detector's public
// answers only (Anomalies and HostStalls): Top@1 and Top@3 of the
// faulty service among the culprits of the anomalies raised within the
// deadline, detection rate, time to detect and false alarms per hour.
//
//	go run ./tools/topologyscore -seed 1 -cases 45
//	go run ./tools/topologyscore -seed 7 -cases 45 -out results.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	seed := flag.Uint64("seed", 1, "seed of the case plan (topologies, faults, traffic)")
	cases := flag.Int("cases", 45, "number of cases (fault kinds in turn: cpu, delay, error, host, none)")
	within := flag.Duration("within", 10*time.Minute, "deadline after the fault's start")
	out := flag.String("out", "", "write the results as JSON to this file")
	only := flag.Int("case", 0, "run only this case number (debugging)")
	verbose := flag.Bool("v", false, "print each case as it ends")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cases < 1 || *cases > 1000 || *within < 2*time.Minute || *within > time.Hour {
		fmt.Fprintln(os.Stderr, "topologyscore: want 1-1000 cases and a deadline of 2m-1h")
		os.Exit(2)
	}
	rep, err := Run(ctx, *seed, *cases, *within, *only, func(r *Result) {
		if *verbose {
			fmt.Fprintf(os.Stderr, "case %d %s %s: detected %v top1 %v blamed %v false %d %v (%.1fs)\n", r.N, r.Kind, r.Service, r.Detected, r.Top1, r.Blamed, r.FalseAlarms, r.FalseSummary, r.EvaluationsMs/1000)
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "topologyscore:", err)
		os.Exit(1)
	}
	rep.Print(os.Stdout)
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "topologyscore:", err)
			os.Exit(1)
		}
	}
}
