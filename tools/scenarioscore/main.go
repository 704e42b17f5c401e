// Command scenarioscore scores clew's anomaly and deployment detection
// against the demo's fault scenarios, end to end: it builds (or takes) the
// clew binary, starts `clew serve` and `clew demo --otlp-endpoint` on free
// loopback ports, warms up on normal traffic, checks that a quiet period
// raises no anomaly, then switches each scenario on through the demo's
// control API and polls /api/v1/anomalies and /api/v1/deploys until two
// minutes after the fault's recorded start. A scenario is a hit when, at
// that deadline, clew's top-ranked answer names the ground truth's culprit
// (see hit). It repeats for each seed and prints a table (and, with --out,
// writes the results as JSON).
//
//	go run ./tools/scenarioscore                      # every scenario, seeds 1,2,3
//	go run ./tools/scenarioscore --quick              # one seed, two scenarios, about 6 minutes
//	go run ./tools/scenarioscore --seeds 1 --scenarios bad-deployment,retry-storm --quiet 10m
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenarioscore:", err)
		os.Exit(2)
	}
	rep, err := Run(ctx, o, os.Stderr)
	if rep != nil {
		rep.Print(os.Stdout)
		if o.Out != "" {
			if werr := rep.WriteJSON(o.Out); werr != nil {
				fmt.Fprintln(os.Stderr, "scenarioscore:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenarioscore:", err)
		os.Exit(1)
	}
	if o.MinHitRate > 0 && rep.HitRate() < o.MinHitRate || o.MaxFalsePositives >= 0 && rep.FalsePositives() > o.MaxFalsePositives {
		fmt.Fprintf(os.Stderr, "scenarioscore: hit rate %.0f%% (want at least %.0f%%), %d false positives (want at most %d)\n",
			100*rep.HitRate(), 100*o.MinHitRate, rep.FalsePositives(), o.MaxFalsePositives)
		os.Exit(1)
	}
}

// Options drive one scoring run.
type Options struct {
	// Clew is the clew binary; empty builds ./cmd/clew from Repo.
	Clew string
	Repo string
	// Seeds are the demo seeds, one run each.
	Seeds []uint64
	// Scenarios to switch on, in order; nil is all of them, empty none.
	Scenarios []string
	// Rate is the demo's requests per second.
	Rate float64
	// Warmup is the normal traffic before the quiet check.
	Warmup time.Duration
	// Quiet is the period of normal traffic after the warm-up during
	// which no anomaly may be raised (0 skips it; the warm-up is still
	// checked from the moment baselines can exist).
	Quiet time.Duration
	// QuietFirst, when set, replaces Quiet for the first seed (a long quiet
	// check once, short ones after).
	QuietFirst time.Duration
	// Parallel runs the seeds at the same time (each its own clew and
	// demo on its own ports).
	Parallel bool
	// Deadline is how long after a fault's start the answer is taken (2m).
	Deadline time.Duration
	// Recover is the normal traffic after each scenario before the next
	// (then up to RecoverMax more until no anomaly is open).
	Recover    time.Duration
	RecoverMax time.Duration
	// Poll is the polling interval.
	Poll time.Duration
	// EarlyStop ends a scenario once its top answer has been right twice
	// in a row (the quick mode), instead of at the deadline.
	EarlyStop bool
	// Config is a clew configuration file (YAML text) for the server; empty
	// runs with the defaults.
	Config string
	// Out receives the results as JSON.
	Out string
	// KeepData keeps the data directories.
	KeepData bool
	// MinHitRate and MaxFalsePositives make the run fail below or above
	// them (0 and -1: no check).
	MinHitRate        float64
	MaxFalsePositives int
}

// AllScenarios are the demo's scenarios, in docs/demo.md's order.
var AllScenarios = []string{"service-latency", "operation-latency", "error-rate", "bad-deployment", "n-plus-one", "slow-dependency", "retry-storm", "drop-context"}

// QuickOptions is the quick mode: one seed, two scenarios at a higher
// rate, with a detector tuned for short baselines (1-minute windows), early
// stop; about six minutes.
func QuickOptions() Options {
	return Options{Seeds: []uint64{1}, Scenarios: []string{"service-latency", "bad-deployment"}, Rate: 50,
		Warmup: 150 * time.Second, Quiet: 0, Deadline: 2 * time.Minute, Recover: 30 * time.Second, RecoverMax: 3 * time.Minute,
		Poll: 5 * time.Second, EarlyStop: true, MaxFalsePositives: -1,
		Config: "detect:\n  window: 1m\n  min_baseline: 1m\n  interval: 10s\n"}
}

func parseFlags(args []string) (Options, error) {
	fs := flag.NewFlagSet("scenarioscore", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "quick mode: one seed, two scenarios, short warm-up, 1-minute detection windows (about 6 minutes)")
	clew := fs.String("clew", "", "clew binary (default: build ./cmd/clew)")
	repo := fs.String("repo", ".", "the clew repository, to build the binary from")
	seeds := fs.String("seeds", "1,2,3", "demo seeds, comma-separated")
	scen := fs.String("scenarios", strings.Join(AllScenarios, ","), "scenarios, comma-separated, in order (none: only the quiet check)")
	rate := fs.Float64("rate", 20, "demo requests per second")
	warm := fs.Duration("warmup", 10*time.Minute, "normal traffic before the quiet check")
	quiet := fs.Duration("quiet", 60*time.Minute, "normal traffic after the warm-up that must raise no anomaly (0: none)")
	quietFirst := fs.Duration("quiet-first", 0, "the first seed's quiet period instead of --quiet (0: --quiet)")
	parallel := fs.Bool("parallel", false, "run the seeds at the same time")
	deadline := fs.Duration("deadline", 2*time.Minute, "take the answer this long after the fault's start")
	recov := fs.Duration("recover", 4*time.Minute, "normal traffic after each scenario")
	recovMax := fs.Duration("recover-max", 4*time.Minute, "then wait up to this much more for open anomalies to resolve")
	poll := fs.Duration("poll", 5*time.Second, "polling interval")
	config := fs.String("config", "", "clew configuration file for the server")
	out := fs.String("out", "", "write the results as JSON to this file")
	keep := fs.Bool("keep", false, "keep the data directories")
	minHit := fs.Float64("min-hit-rate", 0, "exit 1 below this overall top-1 hit rate (0..1)")
	maxFP := fs.Int("max-false-positives", -1, "exit 1 above this many anomalies during the quiet periods (-1: no check)")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := Options{Rate: *rate, Warmup: *warm, Quiet: *quiet, Deadline: *deadline, Recover: *recov, RecoverMax: *recovMax,
		Poll: *poll, MaxFalsePositives: *maxFP}
	if *quick {
		o = QuickOptions()
		o.MaxFalsePositives = *maxFP
	}
	o.Clew, o.Repo, o.Out, o.KeepData, o.MinHitRate = *clew, *repo, *out, *keep, *minHit
	o.QuietFirst, o.Parallel = *quietFirst, *parallel
	// Flags given explicitly override the quick mode's choices.
	if !*quick || set["seeds"] {
		o.Seeds = nil
		for _, s := range strings.Split(*seeds, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
			if err != nil || n == 0 {
				return o, fmt.Errorf("--seeds %q: want positive integers", *seeds)
			}
			o.Seeds = append(o.Seeds, n)
		}
	}
	if !*quick || set["scenarios"] {
		o.Scenarios = nil
		for _, s := range strings.Split(*scen, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.Scenarios = append(o.Scenarios, s)
			}
		}
		if *scen == "none" {
			// Only the quiet check.
			o.Scenarios = []string{}
		}
	}
	for name, v := range map[string]*time.Duration{"warmup": &o.Warmup, "quiet": &o.Quiet, "deadline": &o.Deadline, "recover": &o.Recover, "recover-max": &o.RecoverMax, "poll": &o.Poll} {
		if set[name] {
			*v = *map[string]*time.Duration{"warmup": warm, "quiet": quiet, "deadline": deadline, "recover": recov, "recover-max": recovMax, "poll": poll}[name]
		}
	}
	if set["rate"] {
		o.Rate = *rate
	}
	if *config != "" {
		b, err := os.ReadFile(*config)
		if err != nil {
			return o, err
		}
		o.Config = string(b)
	}
	return o, nil
}

// Report is the result of a run.
type Report struct {
	Options Options   `json:"options"`
	Runs    []SeedRun `json:"runs"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// SeedRun is one seed's run.
type SeedRun struct {
	Seed uint64 `json:"seed"`
	// QuietFrom and QuietTo bound the period checked for false positives;
	// FalsePositives are the anomalies raised in it (and FalseDeploys the
	// deployments, of which there are none in the demo's normal traffic).
	QuietFrom      time.Time         `json:"quietFrom"`
	QuietTo        time.Time         `json:"quietTo"`
	FalsePositives []json.RawMessage `json:"falsePositives"`
	FalseDeploys   []json.RawMessage `json:"falseDeploys"`
	Scenarios      []ScenarioResult  `json:"scenarios"`
}

// ScenarioResult is one scenario of one seed.
type ScenarioResult struct {
	Scenario string      `json:"scenario"`
	Truth    GroundTruth `json:"truth"`
	// Hit: the answer at the deadline names the culprit. HitAnyTime: some
	// answer before the deadline did.
	Hit        bool `json:"hit"`
	HitAnyTime bool `json:"hitAnyTime"`
	// DetectedAfter is the time from the fault's start to the first new
	// anomaly (or regressed deployment); FirstHitAfter to the first right
	// answer. Zero when none.
	DetectedAfter time.Duration `json:"detectedAfter"`
	FirstHitAfter time.Duration `json:"firstHitAfter"`
	// Answer is the top-ranked answer at the deadline.
	Answer string `json:"answer"`
	// Via is "anomaly" or "deploy": what gave the answer.
	Via string `json:"via,omitempty"`
	// History lists each change of the answer, with the time since the
	// fault's start.
	History []string `json:"history,omitempty"`
	Notes   string   `json:"notes,omitempty"`
}
