package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/app"
	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storeconfig"
)

// Case is one run: a topology, its traffic history, and one fault (or
// none) injected at the end of the history.
type Case struct {
	N        int     `json:"n"`
	Kind     string  `json:"fault"`
	Service  string  `json:"service,omitempty"`
	Services int     `json:"services"`
	Depth    int     `json:"depth"`
	FanOut   int     `json:"fanOut"`
	Ops      int     `json:"operations"`
	MaxOps   int     `json:"maxOperationsPerService"`
	PerMin   float64 `json:"entryRequestsPerMinute"` // the mean over the entry operations
	History  int     `json:"historyMinutes"`
	Factor   float64 `json:"factor,omitempty"`
	DelayMs  float64 `json:"delayMs,omitempty"`
	ErrP     float64 `json:"errorShare,omitempty"`
	HighRate bool    `json:"highRate"`

	topo *topology
	f    fault
	seed uint64
}

// Result is what the detector answered in one case.
type Result struct {
	Case
	Detected bool `json:"detected"`
	// TimeToDetect is from the fault's start to the first answer (an
	// anomaly, or a host stall for a host-wide fault), in seconds.
	TimeToDetect float64 `json:"timeToDetectSeconds,omitempty"`
	Top1         bool    `json:"top1"`
	Top3         bool    `json:"top3"`
	// Blamed are the first culprit services named, in order.
	Blamed []string `json:"blamed"`
	// Anomalies raised within the deadline; HostStall whether a host stall
	// was listed after the fault's start.
	Anomalies int  `json:"anomalies"`
	HostStall bool `json:"hostStall"`
	// FalseAlarms are anomalies raised before the fault (or at any time in
	// a control run) over EvalMinutes minutes of evaluated fault-free
	// traffic.
	FalseAlarms   int      `json:"falseAlarms"`
	FalseSummary  []string `json:"falseAlarmSummaries,omitempty"`
	EvalMinutes   int      `json:"fault-free evaluated minutes"`
	EvaluationsMs float64  `json:"wallMs"`
}

// t0 is the simulated start of every case's history.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// planCases draws n cases from seed: fault kinds in turn (CPU, delay,
// error, host-wide, none), a fresh topology each, short (10-30 minutes)
// or longer (45-75 minutes) history in turn, one case in six at high
// rates.
func planCases(seed uint64, n int) []*Case {
	r := rand.New(rand.NewPCG(seed, 0x70b0))
	kinds := []string{FaultCPU, FaultDelay, FaultError, FaultHost, FaultNone}
	var out []*Case
	for i := range n {
		c := &Case{N: i + 1, Kind: kinds[i%len(kinds)], seed: r.Uint64()}
		c.HighRate = r.IntN(6) == 0
		c.topo = genTopology(r, c.HighRate)
		if (i/len(kinds))%2 == 0 {
			c.History = 10 + r.IntN(21)
		} else {
			c.History = 45 + r.IntN(31)
		}
		c.f = fault{Kind: c.Kind, Start: t0.Add(time.Duration(c.History) * time.Minute)}
		var cands []*service
		for _, s := range c.topo.Services {
			if c.Kind == FaultDelay && s.Layer == 0 {
				continue // a root service has no callers to see a delay
			}
			cands = append(cands, s)
		}
		switch c.Kind {
		case FaultCPU:
			c.f.Factor = 3 + 3*r.Float64()
		case FaultDelay:
			c.f.Delay = time.Duration(50+r.IntN(250)) * time.Millisecond
		case FaultError:
			c.f.ErrP = 0.3 + 0.7*r.Float64()
		case FaultHost:
			c.f.Factor = 3 + 2*r.Float64()
			c.f.Delay = time.Duration(20+r.IntN(60)) * time.Millisecond
		}
		if c.Kind == FaultCPU || c.Kind == FaultDelay || c.Kind == FaultError {
			c.f.Service = cands[r.IntN(len(cands))].Name
		}
		c.Service, c.Factor, c.DelayMs, c.ErrP = c.f.Service, round2(c.f.Factor), float64(c.f.Delay.Milliseconds()), round2(c.f.ErrP)
		c.Services, c.Depth, c.FanOut = len(c.topo.Services), c.topo.Depth, c.topo.FanOut
		var rate float64
		for _, e := range c.topo.Entries {
			rate += e.PerMin
		}
		c.PerMin = round2(rate / float64(len(c.topo.Entries)))
		for _, s := range c.topo.Services {
			c.Ops += len(s.Ops)
			c.MaxOps = max(c.MaxOps, len(s.Ops))
		}
		out = append(out, c)
	}
	return out
}

func round2(x float64) float64 { return float64(int(x*100+0.5)) / 100 }

// clock is the simulated clock every component reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// runCase feeds a case's traffic through a real store, real span metrics
// and the real detector on a simulated clock, evaluating every 15
// simulated seconds, and scores the detector's public answers.
func runCase(ctx context.Context, c *Case, within time.Duration, dir string) (*Result, error) {
	start := time.Now()
	res := &Result{Case: *c, Blamed: []string{}}
	dir, err := os.MkdirTemp(dir, fmt.Sprintf("case%d-", c.N))
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	clk := &clock{t: t0}
	scfg := storeconfig.DefaultConfig()
	scfg.WALSync = "none"
	db, err := app.OpenStore(ctx, scfg, "eval", dir, nil, nil)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	sm, err := spanmetrics.Open(spanmetrics.DefaultConfig(), spanmetrics.Options{Dir: filepath.Join(dir, "spanmetrics"), Now: clk.now})
	if err != nil {
		return nil, err
	}
	defer sm.Close()
	det := detect.New(detect.DefaultConfig(), sm, db, detect.Options{Now: clk.now})
	defer det.Close()
	g := &gen{t: c.topo, r: rand.New(rand.NewPCG(c.seed, 7)), f: c.f}
	end := c.f.Start.Add(within)
	if c.Kind == FaultNone {
		end = c.f.Start.Add(within) // a control run is as long, with nothing injected
	}
	const evalFrom = 5 // minutes: no baseline can exist before
	for m := t0; m.Before(end); m = m.Add(time.Minute) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b := g.minute(m)
		for q := range 4 {
			lo, hi := m.Add(time.Duration(q)*15*time.Second), m.Add(time.Duration(q+1)*15*time.Second)
			part := quarter(b, lo, hi)
			// Spans arrive once their trace is done, a little after the
			// quarter; the clock then allows for the propagation scan's
			// settling time.
			clk.set(hi.Add(12 * time.Second))
			if len(part.Spans) > 0 {
				if err := db.Append(ctx, otlp.MarshalProto(nil, part), part); err != nil {
					return nil, fmt.Errorf("append: %w", err)
				}
				sm.Observe(part)
			}
			if m.Sub(t0) >= evalFrom*time.Minute {
				if err := det.Evaluate(ctx); err != nil {
					return nil, fmt.Errorf("evaluate: %w", err)
				}
			}
		}
	}
	score(res, det.Anomalies(t0, clk.now()), det.HostStalls(), c, within, evalFrom)
	res.EvaluationsMs = float64(time.Since(start).Milliseconds())
	return res, nil
}

// quarter returns the traces whose root starts in [lo, hi).
func quarter(b *span.Batch, lo, hi time.Time) *span.Batch {
	part := &span.Batch{Resources: b.Resources}
	roots := map[span.TraceID]bool{}
	for i := range b.Spans {
		sp := &b.Spans[i]
		st := time.Unix(0, int64(sp.StartUnixNano))
		if sp.ParentSpanID.IsZero() && !st.Before(lo) && st.Before(hi) {
			roots[sp.TraceID] = true
		}
	}
	for i := range b.Spans {
		if roots[b.Spans[i].TraceID] {
			part.Spans = append(part.Spans, b.Spans[i])
		}
	}
	return part
}

// score reads the detector's public answers for one case. An anomaly
// raised before the fault's start (any, in a control run) is a false
// alarm. The anomalies raised from the fault's start to the deadline, in
// the order they were raised, name the culprits: their services, each
// anomaly's culprits in rank order, form the blamed list. A service fault
// is a top-1 (top-3) hit when its service is first (among the first
// three) of that list. A host-wide fault is a hit when a host stall is
// listed after its start and no anomaly blames a service.
func score(res *Result, as []detect.Anomaly, stalls []time.Time, c *Case, within time.Duration, evalFrom int) {
	fs := c.f.Start
	if c.Kind == FaultNone {
		fs = c.f.Start.Add(within)
	}
	res.EvalMinutes = int(fs.Sub(t0).Minutes()) - evalFrom
	var during []detect.Anomaly
	for _, a := range as {
		if a.DetectedAt.Before(fs) {
			res.FalseAlarms++
			res.FalseSummary = append(res.FalseSummary, a.DetectedAt.Sub(t0).String()+" "+a.Summary)
			continue
		}
		if !a.DetectedAt.After(c.f.Start.Add(within)) {
			during = append(during, a)
		}
	}
	if c.Kind == FaultNone {
		return
	}
	slices.SortStableFunc(during, func(a, b detect.Anomaly) int { return a.DetectedAt.Compare(b.DetectedAt) })
	res.Anomalies = len(during)
	first := time.Time{}
	if len(during) > 0 {
		first = during[0].DetectedAt
	}
	for _, s := range stalls {
		if !s.Before(c.f.Start.Truncate(time.Minute)) {
			res.HostStall = true
			// A stall minute is known once it is over and evaluated.
			if at := s.Add(time.Minute); first.IsZero() || at.Before(first) {
				if c.Kind == FaultHost {
					first = at
				}
			}
			break
		}
	}
	seen := map[string]bool{}
	for _, a := range during {
		for _, cu := range a.Culprits {
			if !seen[cu.Service] {
				seen[cu.Service] = true
				res.Blamed = append(res.Blamed, cu.Service)
			}
		}
	}
	res.Detected = !first.IsZero() && (c.Kind != FaultHost || res.HostStall || len(during) > 0)
	if res.Detected {
		res.TimeToDetect = max(first.Sub(c.f.Start), 0).Seconds()
	}
	if c.Kind == FaultHost {
		res.Top1 = res.HostStall && len(res.Blamed) == 0
		res.Top3 = res.Top1
		return
	}
	for i, s := range res.Blamed {
		if s == c.f.Service {
			res.Top1 = i == 0
			res.Top3 = i < 3
		}
	}
}
