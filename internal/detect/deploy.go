package detect

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
)

// A deployment is a value of service.version (or of a deployment.*
// resource attribute) that a service did not have before. The tracker
// learns each service's values from the RED history (versions, back to
// DeployLookback) and from the detector's span scan (deployment.*
// attributes), and compares each new value with the previous one as its
// traffic arrives: on the same minutes when both serve at once (a canary,
// a rolling update), else the new value since it appeared against the
// previous one's last half hour before.

// Verdicts of a deployment comparison.
const (
	VerdictRegressed    = "regressed"
	VerdictImproved     = "improved"
	VerdictNoChange     = "no_change"
	VerdictInsufficient = "insufficient_data"
)

// maxComparisonsPerEval bounds the comparisons one evaluation runs (each
// scans both sides' spans); the others wait for the next evaluations.
const maxComparisonsPerEval = 4

// deployAlpha is the family-wise level of a deployment comparison: each
// of its m tests must reach deployAlpha/m (Bonferroni).
const deployAlpha = 0.01

type deployKey struct{ service, attr, value string }

type deployment struct {
	key       deployKey
	previous  string
	firstSeen time.Time
	nextEval  time.Time
	out       Deploy
}

type deployTracker struct {
	initialized bool
	versions    map[string]map[string]*valueSeen // service → version → seen (RED history)
	deploys     map[deployKey]*deployment
	order       []deployKey
}

func newDeployTracker() *deployTracker {
	return &deployTracker{versions: map[string]map[string]*valueSeen{}, deploys: map[deployKey]*deployment{}}
}

func (t *deployTracker) note(service, version string, first, last time.Time, calls uint64) {
	if version == "" {
		return
	}
	vs := t.versions[service]
	if vs == nil {
		vs = map[string]*valueSeen{}
		t.versions[service] = vs
	}
	v := vs[version]
	if v == nil {
		v = &valueSeen{first: first, last: last}
		vs[version] = v
	}
	if first.Before(v.first) {
		v.first = first
	}
	if last.After(v.last) {
		v.last = last
	}
	v.spans += calls
}

// init reads which versions each service had over the lookback: hours
// first, then the minutes of the hour a version appeared in.
func (t *deployTracker) init(ctx context.Context, h History, now time.Time, lookback time.Duration) error {
	start := now.Add(-lookback).Truncate(time.Hour)
	series, err := h.Range(ctx, nil, start, now.Add(time.Minute), time.Hour)
	if err != nil {
		return err
	}
	for _, s := range series {
		for _, b := range s.Buckets {
			last := b.Start.Add(time.Hour)
			if last.After(now) {
				last = now
			}
			t.note(s.Key.Service, s.Key.Version, b.Start, last, b.Calls)
		}
	}
	for svc, vs := range t.versions {
		if len(vs) < 2 {
			continue
		}
		for ver, v := range vs {
			if !v.first.After(start) {
				continue // there before the lookback
			}
			h0 := v.first
			fine, err := h.Range(ctx, func(k spanmetrics.Key) bool { return k.Service == svc && k.Version == ver }, h0, h0.Add(time.Hour), time.Minute)
			if err != nil {
				return err
			}
			for _, s := range fine {
				if len(s.Buckets) > 0 && s.Buckets[0].Start.After(v.first) {
					v.first = s.Buckets[0].Start
				}
			}
		}
	}
	t.initialized = true
	return nil
}

// evaluateDeploys finds new values and (re)compares the deployments that
// are due.
func (d *Detector) evaluateDeploys(ctx context.Context, ops map[opKey]*opSeries, now time.Time) {
	t := d.deploys
	if !t.initialized {
		if err := t.init(ctx, d.hist, now, d.cfg.DeployLookback); err != nil {
			d.log.Warn("read version history", "err", err)
			return
		}
	}
	for _, s := range ops {
		for ver, mins := range s.versions {
			for m, a := range mins {
				if a.Calls > 0 {
					at := minuteTime(m)
					t.note(s.key.Service, ver, at, at.Add(time.Minute), 0)
				}
			}
		}
	}
	// Candidate values per (service, attribute).
	type sa struct{ service, attr string }
	values := map[sa]map[string]*valueSeen{}
	for svc, vs := range t.versions {
		values[sa{svc, "service.version"}] = vs
	}
	for svc, attrs := range d.prop.seen {
		for attr, vs := range attrs {
			if attr == "service.version" {
				continue
			}
			values[sa{svc, attr}] = vs
		}
	}
	horizon := now.Add(-d.cfg.DeployLookback)
	for k, vs := range values {
		if len(vs) < 2 {
			continue
		}
		earliest := time.Time{}
		for _, v := range vs {
			if earliest.IsZero() || v.first.Before(earliest) {
				earliest = v.first
			}
		}
		for val, v := range vs {
			dk := deployKey{k.service, k.attr, val}
			if t.deploys[dk] != nil || v.first.Sub(earliest) < 2*time.Minute || v.first.Before(horizon) {
				continue
			}
			prev := pickPrevious(vs, val)
			if prev == "" {
				continue
			}
			t.deploys[dk] = &deployment{key: dk, previous: prev, firstSeen: v.first}
			t.order = append(t.order, dk)
			d.log.Info("deployment seen", "service", k.service, "attribute", k.attr, "value", val, "previous", prev)
		}
	}
	var out []Deploy
	budget := maxComparisonsPerEval
	for _, dk := range t.order {
		dep := t.deploys[dk]
		if !now.Before(dep.nextEval) && budget > 0 {
			budget--
			dep.out = d.compareDeploy(ctx, dep, now)
			age := now.Sub(dep.firstSeen)
			switch {
			case age < 10*time.Minute:
				dep.nextEval = now
			case age < time.Hour:
				dep.nextEval = now.Add(2 * time.Minute)
			case age < 6*time.Hour:
				dep.nextEval = now.Add(15 * time.Minute)
			default:
				dep.nextEval = now.Add(100 * 365 * 24 * time.Hour) // settled
			}
		}
		out = append(out, dep.out)
	}
	// Forget deployments past the retention.
	t.order = slices.DeleteFunc(t.order, func(dk deployKey) bool {
		if now.Sub(t.deploys[dk].firstSeen) > max(d.cfg.Retention, d.cfg.DeployLookback) {
			delete(t.deploys, dk)
			return true
		}
		return false
	})
	d.mu.Lock()
	d.deployOut = out
	d.mu.Unlock()
}

// pickPrevious chooses the value a new one replaces: among the values seen
// before it, the busiest of those still seen in the half hour before it
// appeared, else the one seen last.
func pickPrevious(vs map[string]*valueSeen, val string) string {
	v := vs[val]
	best, bestLast := "", ""
	var bestSpans uint64
	var lastSeen time.Time
	for other, o := range vs {
		if other == val || !o.first.Before(v.first) {
			continue
		}
		if !o.last.Before(v.first.Add(-30*time.Minute)) && (best == "" || o.spans > bestSpans || o.spans == bestSpans && other < best) {
			best, bestSpans = other, o.spans
		}
		if bestLast == "" || o.last.After(lastSeen) {
			bestLast, lastSeen = other, o.last
		}
	}
	if best != "" {
		return best
	}
	return bestLast
}

// Deploy is one deployment and its comparison, as served by
// GET /api/v1/deploys.
type Deploy struct {
	Service string `json:"service"`
	// Attribute is "service.version" or a deployment.* resource attribute;
	// Value the new value, Previous the one it is compared with.
	Attribute string    `json:"attribute"`
	Value     string    `json:"value"`
	Previous  string    `json:"previous"`
	FirstSeen time.Time `json:"firstSeen"`
	// Comparison is "concurrent" (both served in the same minutes: a canary
	// or a rolling update) or "sequential" (the previous value's last half
	// hour before the new one appeared).
	Comparison     string     `json:"comparison"`
	Window         TimeWindow `json:"window"`
	PreviousWindow TimeWindow `json:"previousWindow"`
	EvaluatedAt    time.Time  `json:"evaluatedAt"`
	// Verdict is regressed, improved, no_change or insufficient_data.
	// Confidence is 1 minus the Bonferroni-corrected p-value of the test
	// that decided a regressed or improved verdict (null otherwise);
	// PValue is the smallest corrected p-value of all the tests, and Tests
	// their number.
	Verdict    string   `json:"verdict"`
	Confidence *float64 `json:"confidence"`
	PValue     float64  `json:"pValue"`
	Tests      int      `json:"tests"`
	Summary    string   `json:"summary"`
	// Calls counts the entry (server and consumer) spans of each side.
	Calls      Pair               `json:"calls"`
	Operations []DeployOperation  `json:"operations"`
	Downstream []DownstreamChange `json:"downstream"`
	NewErrors  []ErrorType        `json:"newErrors"`
	Evidence   []string           `json:"evidence"`
	// Source says where the data came from: "spans" (a scan of the
	// stored spans) or "red" (the RED history: no error types).
	Source string `json:"source"`
}

// TimeWindow is a time range.
type TimeWindow struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Pair is a value on the new side and on the previous one.
type Pair struct {
	New      float64 `json:"new"`
	Previous float64 `json:"previous"`
}

// DeployOperation compares one operation of the service.
type DeployOperation struct {
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	Calls     Pair   `json:"calls"`
	P50Ms     Pair   `json:"p50Ms"`
	P90Ms     Pair   `json:"p90Ms"`
	P99Ms     Pair   `json:"p99Ms"`
	ErrorRate Pair   `json:"errorRate"`
	// Latency and Errors are "slower"/"faster", "more"/"fewer" or
	// "no_change"; the p-values are the one-sided tests' (Mann-Whitney U on
	// the histograms, Fisher's exact), uncorrected.
	Latency        string  `json:"latency"`
	LatencyPValue  float64 `json:"latencyPValue"`
	Errors         string  `json:"errors"`
	ErrorsPValue   float64 `json:"errorsPValue"`
	Verdict        string  `json:"verdict"`
	SufficientData bool    `json:"sufficientData"`
}

// DownstreamChange is a call the service makes differently per request.
type DownstreamChange struct {
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	// Change is "new", "removed", "more" or "fewer".
	Change     string  `json:"change"`
	PerRequest Pair    `json:"perRequest"`
	PValue     float64 `json:"pValue"`
}

// ErrorType is an error the new value shows and the previous did not.
type ErrorType struct {
	// Type is the exception's type and message, or the status message,
	// with numbers and identifiers replaced by placeholders.
	Type   string  `json:"type"`
	Count  uint64  `json:"count"`
	PValue float64 `json:"pValue"`
}

// versionData is one side of a comparison.
type versionData struct {
	ops      map[opKey]*agg
	entries  uint64
	errTypes map[string]uint64
}

var (
	reHexID = regexp.MustCompile(`[0-9a-fA-F]{8,}|[0-9a-fA-F-]{36}`)
	reNum   = regexp.MustCompile(`[0-9]+`)
)

// errorKey groups errors: numbers and identifiers in messages become
// placeholders, so that "order ord_1f3a9c.. failed" is one type.
func errorKey(typ, msg string) string {
	msg = reNum.ReplaceAllString(reHexID.ReplaceAllString(msg, "<id>"), "<n>")
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "")
	}
	if typ == "" {
		return msg
	}
	return typ + ": " + msg
}

// scanValue gathers one side from the stored spans.
func (d *Detector) scanValue(ctx context.Context, service, attr, value string, w TimeWindow) (*versionData, error) {
	q := &search.Query{Service: service, Start: uint64(w.Start.UnixNano()), End: uint64(w.End.UnixNano()),
		Conds: []search.Cond{{Scope: search.ScopeResource, Key: attr, Op: search.OpEq, Value: span.StringValue(value)}}}
	if err := q.Compile(); err != nil {
		return nil, err
	}
	vd := &versionData{ops: map[opKey]*agg{}, errTypes: map[string]uint64{}}
	var mu sync.Mutex
	var n int
	err := d.db.ScanSpans(ctx, q, storage.Columns{Text: true, Events: true}, func(s *span.Span) bool {
		mu.Lock()
		defer mu.Unlock()
		k := opKey{Service: service, Operation: s.Name, Kind: s.Kind}
		a := vd.ops[k]
		if a == nil {
			k.Operation = strings.Clone(k.Operation)
			a = &agg{Hist: newHist()}
			vd.ops[k] = a
		}
		dur := time.Duration(s.Duration())
		a.Calls++
		a.DurSum += dur
		a.Hist[bucketOf(dur)]++
		if isEntry(s.Kind) {
			vd.entries++
		}
		failed := s.StatusCode == span.StatusError
		if failed {
			a.Errors++
		}
		key := ""
		for _, ev := range s.Events {
			if ev.Name != "exception" {
				continue
			}
			var typ, msg string
			for _, at := range ev.Attrs {
				switch at.Key {
				case "exception.type":
					typ = at.Value.AsString()
				case "exception.message":
					msg = at.Value.AsString()
				}
			}
			key = errorKey(typ, msg)
			break
		}
		if key == "" && failed {
			key = errorKey("status", s.StatusMessage)
		}
		if key != "" {
			vd.errTypes[strings.Clone(key)]++
		}
		n++
		return n < 2_000_000 // bound the work on a very busy service
	})
	return vd, err
}

// redValue gathers one side (a service.version) from the RED history.
func (d *Detector) redValue(ctx context.Context, service, version string, w TimeWindow) (*versionData, error) {
	series, err := d.hist.Range(ctx, func(k spanmetrics.Key) bool { return k.Service == service && k.Version == version },
		w.Start, w.End.Add(time.Minute), time.Minute)
	if err != nil {
		return nil, err
	}
	vd := &versionData{ops: map[opKey]*agg{}, errTypes: map[string]uint64{}}
	for _, s := range series {
		k := opKey{Service: s.Key.Service, Operation: s.Key.Operation, Kind: s.Key.Kind}
		a := vd.ops[k]
		if a == nil {
			a = &agg{Hist: newHist()}
			vd.ops[k] = a
		}
		for _, b := range s.Buckets {
			a.add(b.Calls, b.Errors, b.DurationSum, b.Hist)
			if isEntry(k.Kind) {
				vd.entries += b.Calls
			}
		}
	}
	return vd, nil
}

// deployTest is one test of a comparison.
type deployTest struct {
	p       float64
	worse   bool // a regression if significant
	better  bool // an improvement if significant
	what    string
	applyOp func(verdict string)
}

// compareDeploy compares a deployment's new value with its previous one.
func (d *Detector) compareDeploy(ctx context.Context, dep *deployment, now time.Time) Deploy {
	k := dep.key
	out := Deploy{Service: k.service, Attribute: k.attr, Value: k.value, Previous: dep.previous, FirstSeen: dep.firstSeen,
		EvaluatedAt: now, Window: TimeWindow{dep.firstSeen, now}, Operations: []DeployOperation{},
		Downstream: []DownstreamChange{}, NewErrors: []ErrorType{}, Evidence: []string{}, Verdict: VerdictInsufficient}
	// Concurrent when the previous value still serves after the new one
	// appeared (a canary, a rolling update under way: enough calls, or as
	// many as the new value), else sequential: the previous value's last
	// half hour before.
	gather := func(value string, w TimeWindow) (*versionData, error) {
		switch {
		case d.db != nil:
			out.Source = "spans"
			return d.scanValue(ctx, k.service, k.attr, value, w)
		case k.attr == "service.version":
			out.Source = "red"
			return d.redValue(ctx, k.service, value, w)
		}
		return nil, fmt.Errorf("comparing %s needs the span scan", k.attr)
	}
	nd, err := gather(k.value, out.Window)
	var pd *versionData
	if err == nil {
		out.Comparison, out.PreviousWindow = "concurrent", out.Window
		pd, err = gather(dep.previous, out.Window)
		if err == nil && pd.entries < uint64(d.cfg.MinCalls) && pd.entries < nd.entries {
			out.Comparison, out.PreviousWindow = "sequential", TimeWindow{dep.firstSeen.Add(-30 * time.Minute), dep.firstSeen}
			pd, err = gather(dep.previous, out.PreviousWindow)
		}
	}
	if err != nil {
		out.Summary = "comparison failed: " + err.Error()
		return out
	}
	out.Calls = Pair{float64(nd.entries), float64(pd.entries)}
	minCalls := uint64(d.cfg.MinCalls)
	if nd.entries < minCalls || pd.entries < minCalls {
		out.Summary = fmt.Sprintf("%s %s=%s: %d calls so far against %d of %s; at least %d each are needed", k.service, k.attr, k.value, nd.entries, pd.entries, dep.previous, minCalls)
		return out
	}
	var tests []deployTest
	keys := map[opKey]bool{}
	for op := range nd.ops {
		keys[op] = true
	}
	for op := range pd.ops {
		keys[op] = true
	}
	sorted := make([]opKey, 0, len(keys))
	for op := range keys {
		sorted = append(sorted, op)
	}
	slices.SortFunc(sorted, compareOp)
	for _, op := range sorted {
		na, pa := nd.ops[op], pd.ops[op]
		if na == nil {
			na = &agg{Hist: newHist()}
		}
		if pa == nil {
			pa = &agg{Hist: newHist()}
		}
		if !isEntry(op.Kind) {
			// A downstream call: compare how often each request makes it.
			rn, rp := float64(na.Calls)/float64(nd.entries), float64(pa.Calls)/float64(pd.entries)
			var change string
			var p float64
			switch {
			case pa.Calls == 0 && na.Calls >= 5 && rn >= 0.05:
				change, p = "new", math.Exp(-rn*float64(pd.entries))
			case na.Calls == 0 && pa.Calls >= 5 && rp >= 0.05:
				change, p = "removed", math.Exp(-rp*float64(nd.entries))
			case pa.Calls > 0 && na.Calls > 0 && rn >= 1.5*rp:
				change, p = "more", poissonUpper(na.Calls, rp*float64(nd.entries))
			case pa.Calls > 0 && na.Calls > 0 && rn <= rp/1.5:
				change, p = "fewer", poissonLower(na.Calls, rp*float64(nd.entries))
			}
			if change != "" {
				out.Downstream = append(out.Downstream, DownstreamChange{Operation: op.Operation, Kind: op.Kind.String(), Change: change,
					PerRequest: Pair{round4(rn), round4(rp)}, PValue: sigP(p)})
				tests = append(tests, deployTest{p: p, what: fmt.Sprintf("%s %s calls per request: %.2f vs %.2f", change, op.Operation, rn, rp)})
			}
			if na.Calls < 10 || pa.Calls < 10 {
				continue
			}
		}
		o := DeployOperation{Operation: op.Operation, Kind: op.Kind.String(), Calls: Pair{float64(na.Calls), float64(pa.Calls)},
			P50Ms: Pair{msOf(na.quantile(0.5)), msOf(pa.quantile(0.5))}, P90Ms: Pair{msOf(na.quantile(0.9)), msOf(pa.quantile(0.9))},
			P99Ms: Pair{msOf(na.quantile(0.99)), msOf(pa.quantile(0.99))}, ErrorRate: Pair{round4(na.errorRate()), round4(pa.errorRate())},
			Latency: "no_change", Errors: "no_change", Verdict: VerdictNoChange, LatencyPValue: 1, ErrorsPValue: 1}
		if na.Calls < 10 || pa.Calls < 10 {
			o.Verdict = VerdictInsufficient
			if isEntry(op.Kind) {
				out.Operations = append(out.Operations, o)
			}
			continue
		}
		o.SufficientData = true
		idx := len(out.Operations)
		setVerdict := func(v string) {
			cur := out.Operations[idx].Verdict
			if cur != VerdictRegressed {
				out.Operations[idx].Verdict = v
			}
		}
		changed := func(a, b time.Duration) bool {
			return float64(a) >= 1.1*float64(b) && a-b >= time.Millisecond
		}
		slower := mannWhitney(na.Hist, pa.Hist)
		faster := mannWhitney(pa.Hist, na.Hist)
		if changed(na.quantile(0.5), pa.quantile(0.5)) || changed(na.quantile(0.9), pa.quantile(0.9)) {
			o.LatencyPValue = sigP(slower.P)
			tests = append(tests, deployTest{p: slower.P, worse: true, what: fmt.Sprintf("%s slower: p50 %.1fms vs %.1fms, p90 %.1fms vs %.1fms",
				op.Operation, o.P50Ms.New, o.P50Ms.Previous, o.P90Ms.New, o.P90Ms.Previous),
				applyOp: func(v string) { out.Operations[idx].Latency = "slower"; setVerdict(v) }})
		} else if changed(pa.quantile(0.5), na.quantile(0.5)) || changed(pa.quantile(0.9), na.quantile(0.9)) {
			o.LatencyPValue = sigP(faster.P)
			tests = append(tests, deployTest{p: faster.P, better: true, what: fmt.Sprintf("%s faster: p50 %.1fms vs %.1fms, p90 %.1fms vs %.1fms",
				op.Operation, o.P50Ms.New, o.P50Ms.Previous, o.P90Ms.New, o.P90Ms.Previous),
				applyOp: func(v string) { out.Operations[idx].Latency = "faster"; setVerdict(v) }})
		}
		rn, rp := na.errorRate(), pa.errorRate()
		switch {
		case rn >= 1.5*rp && rn-rp >= 0.005:
			p := fisherUpper(na.Errors, na.Calls, pa.Errors, pa.Calls)
			o.ErrorsPValue = sigP(p)
			tests = append(tests, deployTest{p: p, worse: true, what: fmt.Sprintf("%s error rate %.2f%% vs %.2f%%", op.Operation, 100*rn, 100*rp),
				applyOp: func(v string) { out.Operations[idx].Errors = "more"; setVerdict(v) }})
		case rp >= 1.5*rn && rp-rn >= 0.005:
			p := fisherUpper(pa.Errors, pa.Calls, na.Errors, na.Calls)
			o.ErrorsPValue = sigP(p)
			tests = append(tests, deployTest{p: p, better: true, what: fmt.Sprintf("%s error rate %.2f%% vs %.2f%%", op.Operation, 100*rn, 100*rp),
				applyOp: func(v string) { out.Operations[idx].Errors = "fewer"; setVerdict(v) }})
		}
		out.Operations = append(out.Operations, o)
	}
	types := make([]string, 0, len(nd.errTypes))
	for t := range nd.errTypes {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		c := nd.errTypes[t]
		if c < 3 || pd.errTypes[t] > 0 {
			continue
		}
		// The chance the previous value shows none of it if it were as
		// common there: Poisson with the new value's rate per request.
		p := math.Exp(-float64(c) / float64(nd.entries) * float64(pd.entries))
		out.NewErrors = append(out.NewErrors, ErrorType{Type: t, Count: c, PValue: sigP(p)})
		tests = append(tests, deployTest{p: p, worse: true, what: fmt.Sprintf("new error %q (%d times)", t, c)})
	}
	out.Tests = len(tests)
	m := float64(max(len(tests), 1))
	minP := 1.0
	var worst, best float64 = 1, 1
	for _, t := range tests {
		adj := min(1, t.p*m)
		minP = min(minP, adj)
		if adj >= deployAlpha {
			continue
		}
		switch {
		case t.worse:
			worst = min(worst, adj)
			out.Evidence = append(out.Evidence, fmt.Sprintf("%s (p=%.2g)", t.what, adj))
			if t.applyOp != nil {
				t.applyOp(VerdictRegressed)
			}
		case t.better:
			best = min(best, adj)
			out.Evidence = append(out.Evidence, fmt.Sprintf("%s (p=%.2g)", t.what, adj))
			if t.applyOp != nil {
				t.applyOp(VerdictImproved)
			}
		default:
			out.Evidence = append(out.Evidence, fmt.Sprintf("%s (p=%.2g)", t.what, adj))
		}
	}
	out.PValue = sigP(minP)
	var conf float64
	switch {
	case worst < deployAlpha:
		out.Verdict, conf = VerdictRegressed, 1-worst
	case best < deployAlpha:
		out.Verdict, conf = VerdictImproved, 1-best
	default:
		out.Verdict = VerdictNoChange
	}
	if out.Verdict == VerdictRegressed || out.Verdict == VerdictImproved {
		c := math.Floor(conf*1e6) / 1e6
		out.Confidence = &c
	}
	out.Summary = fmt.Sprintf("%s %s=%s vs %s (%s, %d vs %d calls): %s", k.service, k.attr, k.value, dep.previous, out.Comparison,
		nd.entries, pd.entries, strings.ReplaceAll(out.Verdict, "_", " "))
	if len(out.Evidence) > 0 {
		out.Summary += ": " + out.Evidence[0]
	}
	return out
}

// Deploys returns the deployments first seen in [start, end], newest
// first.
func (d *Detector) Deploys(start, end time.Time) []Deploy {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []Deploy{}
	for i := len(d.deployOut) - 1; i >= 0; i-- {
		x := d.deployOut[i]
		if x.FirstSeen.Before(start) || x.FirstSeen.After(end) {
			continue
		}
		out = append(out, x)
	}
	slices.SortStableFunc(out, func(a, b Deploy) int { return b.FirstSeen.Compare(a.FirstSeen) })
	return out
}
