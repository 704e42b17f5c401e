package detect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/spanmetrics"
)

// Signals an anomaly can show in.
const (
	SignalLatency     = "latency"
	SignalErrors      = "errors"
	SignalThroughput  = "throughput"
	SignalPropagation = "propagation"
)

// symptomKey identifies one signal of one operation.
type symptomKey struct {
	op     opKey
	signal string
}

// finding is one significant test result of one evaluation.
type finding struct {
	key       symptomKey
	confirmed bool    // needs no confirmation, or significant on fresh data too (see confirm)
	tailOnly  bool    // latency: only the tail (p99) changed
	minute    int64   // the last minute of the data tested (unix minute)
	p         float64 // corrected for the windows and tests of this signal
	magnitude float64 // log2 of the relative change (see severityOf)
	measure   string  // what observed and expected are: "p50Ms", "p90Ms", "p99Ms", "errorRate", "ratePerSecond", "rootShare"
	observed  float64
	expected  float64
	calls     uint64
	window    time.Duration
	onset     time.Time
	mode      string   // baseline mode
	versions  []string // the versions the change is confined to, if any
	exemplars []spanmetrics.Exemplar
	summary   string
}

// severityOf maps a change's magnitude (log2 of its ratio) to 0..100: a
// doubling is 63, a tenfold change 96.
func severityOf(mag float64) float64 {
	return math.Round(100 * (1 - math.Exp(-max(mag, 0))))
}

// symptomState follows one signal of one operation across evaluations.
type symptomState struct {
	consecutive int   // evaluations in a row it was significant in
	firstMinute int64 // the minute of the first of them
	clean       int   // evaluations in a row it was not
	raised      bool
	last        finding
}

// excludedSnapshot reports whether a minute of a service lies in an
// anomalous period (left out of baselines).
type excludedSnapshot map[string][]interval

type interval struct{ from, to int64 } // unix minutes, inclusive

func (e excludedSnapshot) has(service string, m int64) bool {
	for _, iv := range e[service] {
		if m >= iv.from && m <= iv.to {
			return true
		}
	}
	return false
}

func (d *Detector) excludedNow() excludedSnapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := excludedSnapshot{}
	for k, v := range d.excluded {
		out[k] = slices.Clone(v)
	}
	return out
}

func (d *Detector) excludedFor(service string, m int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return excludedSnapshot(d.excluded).has(service, m)
}

// baselinesFor returns the baselines an operation is tested against at
// now: the seasonal one and the trailing one when both have enough data
// (a change must then be significant against both), else whichever has.
// fallback says why no seasonal baseline is used.
func (d *Detector) baselinesFor(s *opSeries, seasonal map[opKey][]seasonalWindow, firstMinute int64, ex excludedSnapshot, now time.Time) (bases []*baseline, fallback string, excludedMinutes int) {
	return d.baselinesWindow(s, seasonal, firstMinute, ex, now, int(d.cfg.Window/time.Minute))
}

// baselinesWindow is baselinesFor with the trailing baseline ending
// before a tested window of win minutes.
func (d *Detector) baselinesWindow(s *opSeries, seasonal map[opKey][]seasonalWindow, firstMinute int64, ex excludedSnapshot, now time.Time, win int) (bases []*baseline, fallback string, excludedMinutes int) {
	m0 := unixMinute(now)
	w := int64(win)
	baseTo := m0 - w
	baseFrom := baseTo - int64(d.cfg.Trailing/time.Minute) + 1
	skip := func(m int64) bool {
		if ex.has(s.key.Service, m) || d.hostMinutes[m] {
			excludedMinutes++
			return true
		}
		return false
	}
	tb := trailingBaseline(s, baseFrom, baseTo, firstMinute, skip)
	sb := seasonalBaseline(seasonal[s.key], now, d.cfg)
	switch {
	case sb.usable(d.cfg) && tb.usable(d.cfg):
		return []*baseline{sb, tb}, "", excludedMinutes
	case sb.usable(d.cfg):
		return []*baseline{sb}, "", excludedMinutes
	}
	fallback = "less than 3 days (or 2 weeks) of history at this time of day"
	if have := tb.minutes + float64(excludedMinutes); have < d.cfg.Trailing.Minutes() && firstMinute > 0 && firstMinute+1 > baseFrom {
		fallback += fmt.Sprintf("; the history is %.0f minutes long, so the trailing baseline has only those", have)
	}
	return []*baseline{tb}, fallback, excludedMinutes
}

// testAll tests every operation's latency, errors and throughput against
// its baselines and returns the significant findings.
func (d *Detector) testAll(ops map[opKey]*opSeries, seasonal map[opKey][]seasonalWindow, now time.Time, tested map[opKey]bool) []finding {
	ex := d.excludedNow()
	m0 := unixMinute(now)
	w := int(d.cfg.Window / time.Minute)
	// Total calls per minute, to tell a quiet system (no traffic, or clew
	// not receiving) from an operation that stopped being called.
	total := map[int64]uint64{}
	for _, s := range ops {
		for m, a := range s.minutes {
			total[m] += a.Calls
		}
	}
	type candidate struct {
		s     *opSeries
		bases []*baseline
	}
	var cands []candidate
	var sparse []*opSeries
	consider := func(s *opSeries) {
		bases, _, _ := d.baselinesFor(s, seasonal, d.cache.firstMinute, ex, now)
		// A sparse operation is tested over a longer window, its baseline
		// ending before it, and pooled with the other sparse operations of
		// its service.
		if ws := d.sparseWindow(bases[0]); ws > w {
			if !s.pooled {
				sparse = append(sparse, s)
			}
			if b2, _, _ := d.baselinesWindow(s, seasonal, d.cache.firstMinute, ex, now, ws); b2[0].usable(d.cfg) || s.pooled {
				bases, s.window = b2, ws
			}
		}
		if bases[0].usable(d.cfg) {
			cands = append(cands, candidate{s, bases})
		}
	}
	for _, s := range sortedOps(ops) {
		consider(s)
	}
	for _, s := range pooledSeries(sparse) {
		consider(s)
	}
	for m := m0 - int64(w) + 1; m <= m0; m++ {
		if d.hostMinutes[m] {
			continue
		}
		var hot, n int
		hotSvc, allSvc := map[string]bool{}, map[string]bool{}
		for _, c := range cands {
			if c.s.pooled {
				continue
			}
			a := c.s.minutes[m]
			if a == nil || a.Calls < 10 {
				continue
			}
			n++
			allSvc[c.s.key.Service] = true
			if d.hotMinute(a, c.bases[0].data) {
				hot++
				hotSvc[c.s.key.Service] = true
			}
		}
		if n >= 10 && 2*hot >= n && len(hotSvc) >= 4 && 2*len(hotSvc) >= len(allSvc) {
			d.hostMinutes[m] = true
			d.log.Info("host-wide slowdown: its minute is left out of latency and throughput tests", "minute", minuteTime(m), "operations_slower", hot, "operations", n, "services", len(hotSvc))
		}
		if d.hostMinutes[m] {
			continue
		}
		var pool []hostOp
		for _, c := range cands {
			if !c.s.pooled {
				pool = append(pool, hostOp{c.s.key.Service, c.s.minutes[m], c.bases[0].data})
			}
		}
		if host, slower, svcs := pooledHostMinute(pool); host {
			d.hostMinutes[m] = true
			d.log.Info("host-wide slowdown (pooled per service): its minute is left out of latency and throughput tests", "minute", minuteTime(m), "services_slower", slower, "services", svcs)
		}
	}
	for m := range d.hostMinutes {
		if m < m0-180 {
			delete(d.hostMinutes, m)
		}
	}
	var out []finding
	for _, c := range cands {
		s, bases := c.s, c.bases
		tested[s.key] = true
		base := bases[0]
		w := max(w, s.window)
		if f := d.testLatency(s, bases, m0, w, now); f != nil {
			f.minute, f.confirmed = m0, true
			if f.tailOnly {
				f.confirmed = d.confirm(f.key, s, m0, func(rec *agg) bool { return d.testLatencyAgg(rec, base.data, confirmAlpha).flagged })
			}
			out = append(out, *f)
		}
		if f := d.testErrors(s, bases, m0, w, now); f != nil {
			f.minute, f.confirmed = m0, true
			out = append(out, *f)
		}
		if s.pooled {
			continue // a pooled series' throughput is its operations': tested there
		}
		if f := d.testThroughput(s, bases, m0, int(d.cfg.Window/time.Minute), total); f != nil {
			f.minute, f.confirmed = m0-1, true
			out = append(out, *f)
		}
	}
	return out
}

// maxSparseWindow is the longest window, in minutes, an operation too
// sparse for the usual window is tested over.
const maxSparseWindow = 10

// sparseWindow is the window, in minutes, in which an operation with
// baseline b expects MinCalls calls, at most maxSparseWindow: the usual
// Window when it has that many there.
func (d *Detector) sparseWindow(b *baseline) int {
	w := int(d.cfg.Window / time.Minute)
	if b == nil || b.ratePerMin <= 0 {
		return w
	}
	need := int(math.Ceil(float64(d.cfg.MinCalls) / b.ratePerMin))
	return min(max(w, need), maxSparseWindow)
}

// isHostMinute reports whether a minute was found host-wide slow.
func (d *Detector) isHostMinute(m int64) bool { return d.hostMinutes[m] }

// hotMinute reports whether one minute of an operation is slower than its
// baseline: at least 5% (and three) of its calls beyond the baseline's
// p99, or its p90 grown by MinLatencyRatio and MinLatencyDelta.
//
// When at least half of the operations with calls in a minute are hot, in
// at least four services and half of them, the minute is host-wide slow:
// the machine (CPU starvation, a paused VM, a collector pause) rather than
// an operation, which no single change explains. Real faults slow one call
// path (a service and its callers: a fifth of the demo's operations at
// most). Such minutes are left out of the latency and throughput windows
// and baselines, and listed in the answers' hostStalls.
func (d *Detector) hotMinute(a, base *agg) bool {
	b99, b90 := base.quantile(0.99), base.quantile(0.9)
	above := histAbove(a.Hist, b99)
	if above >= 3 && above >= 0.05*float64(a.Calls) {
		return true
	}
	r90 := a.quantile(0.9)
	return float64(r90) >= float64(b90)*d.cfg.MinLatencyRatio && r90-b90 >= d.cfg.MinLatencyDelta
}

// confirmAlpha is the level at which fresh data confirms a symptom.
const confirmAlpha = 1e-3

// confirm reports whether a latency change seen in the tail alone (p99),
// already significant in an earlier evaluation, shows again on fresh data:
// the minutes after the one it was first significant in, up to to. Such a
// symptom is raised only once confirmed (with Persistence above 1): a host
// that stalls for a few seconds slows a burst of calls, which then lingers
// in the windows for minutes, and only in their tail. A shift of the
// median or p90, errors and throughput need no confirmation: a stall does
// not cause them.
func (d *Detector) confirm(k symptomKey, s *opSeries, to int64, test func(*agg) bool) bool {
	st := d.symptoms[k]
	if st == nil || st.consecutive == 0 || to <= st.firstMinute {
		return false
	}
	rec := s.sum(st.firstMinute+1, to, nil, d.isHostMinute)
	return test(rec)
}

// latencyResult is one latency test of recent data against a baseline.
type latencyResult struct {
	flagged   bool
	tailOnly  bool // flagged by the tail test alone
	p         float64
	magnitude float64
	measure   string
	obs, exp  time.Duration
}

// testLatencyAgg tests whether rec is slower than base: a shift of the
// distribution (Mann-Whitney U on the histogram counts, with the p50 or
// p90 grown by MinLatencyDelta and MinLatencyRatio) or of its tail alone
// (more calls above the baseline's p99 than the 1% expected, Fisher's
// exact test, with p99 grown by twice as much). alpha is the level each
// test must reach after the correction for both tests.
func (d *Detector) testLatencyAgg(rec, base *agg, alpha float64) latencyResult {
	n1, n2 := histTotal(rec.Hist), histTotal(base.Hist)
	if n1 < uint64(d.cfg.MinCalls) || n2 < 50 {
		return latencyResult{p: 1}
	}
	R, D := d.cfg.MinLatencyRatio, d.cfg.MinLatencyDelta
	r50, r90, r99 := rec.quantile(0.5), rec.quantile(0.9), rec.quantile(0.99)
	b50, b90, b99 := base.quantile(0.5), base.quantile(0.9), base.quantile(0.99)
	grew := func(r, b time.Duration, f float64) bool {
		return float64(r) >= float64(b)*math.Pow(R, f) && r-b >= time.Duration(f*float64(D))
	}
	res := latencyResult{p: 1}
	mw := mannWhitney(rec.Hist, base.Hist)
	shift := false
	if (grew(r50, b50, 1) || grew(r90, b90, 1)) && mw.Superiority >= 0.55 {
		res.p = min(res.p, 2*mw.P)
		shift = res.p < alpha
	}
	if grew(r99, b99, 2) {
		// The tail alone counts when at least 5% of the calls (five times
		// the 1% expected) are beyond the baseline's p99: a host that
		// stalls for a second or two slows a handful of calls, which is no
		// change of the operation.
		k1, k2 := histAbove(rec.Hist, b99), histAbove(base.Hist, b99)
		if k1 >= max(5, 0.05*float64(n1)) {
			res.p = min(res.p, 2*fisherUpper(uint64(math.Round(k1)), n1, uint64(math.Round(k2)), n2))
		}
	}
	res.flagged = res.p < alpha
	res.tailOnly = res.flagged && !shift
	ratio := func(r, b time.Duration) float64 {
		if b <= 0 {
			return 0
		}
		return math.Log2(float64(r) / float64(b))
	}
	res.magnitude, res.measure, res.obs, res.exp = ratio(r50, b50), "p50Ms", r50, b50
	if m := ratio(r90, b90); m > res.magnitude {
		res.magnitude, res.measure, res.obs, res.exp = m, "p90Ms", r90, b90
	}
	if m := ratio(r99, b99) / 2; m > res.magnitude {
		res.magnitude, res.measure, res.obs, res.exp = m, "p99Ms", r99, b99
	}
	return res
}

// windowFrom is the first minute of the window of the last n minutes up
// to m0, the current one included.
func windowFrom(m0 int64, n int) int64 { return m0 - int64(n) + 1 }

func (d *Detector) testLatency(s *opSeries, bases []*baseline, m0 int64, w int, now time.Time) *finding {
	alpha := d.cfg.Alpha / float64(w)
	var best *finding
	for n := 1; n <= w; n++ {
		from := windowFrom(m0, n)
		rec := s.sum(from, m0, nil, d.isHostMinute)
		var res latencyResult
		flagged := true
		for i, b := range bases {
			r := d.testLatencyAgg(rec, b.data, alpha)
			if !r.flagged {
				flagged = false
				break
			}
			if i == 0 || r.p > res.p {
				res = r
			}
		}
		if !flagged {
			continue
		}
		if best == nil || res.p < best.p {
			best = &finding{key: symptomKey{s.key, SignalLatency}, p: res.p, tailOnly: res.tailOnly, magnitude: res.magnitude, measure: res.measure,
				observed: msOf(res.obs), expected: msOf(res.exp), calls: rec.Calls, window: now.Sub(minuteTime(from)), mode: bases[0].mode}
			best.exemplars = pickExemplars(rec.Exemplars, false)
			best.summary = fmt.Sprintf("%s %s: %s %.1fms, expected %.1fms", s.key.Service, s.key.Operation, res.measure[:3], best.observed, best.expected)
			best.versions = d.confine(s, from, m0, func(v *agg) bool { return d.testLatencyAgg(v, bases[0].data, 1e-3).flagged })
			// A minute shows the change when its calls are at least half as
			// much slower than the baseline's as the window's are.
			base := bases[0].data
			sup := mannWhitney(rec.Hist, base.Hist).Superiority
			best.onset = onset(s, m0, w, func(a *agg) bool {
				return a.Calls >= 3 && mannWhitney(a.Hist, base.Hist).Superiority >= 0.5+(sup-0.5)/2
			})
		}
	}
	return best
}

// testErrorsAgg tests whether rec's error rate exceeds base's: Fisher's
// exact test, with the rate at least twice the baseline's and MinErrorDelta
// above it, and at least MinErrors errors.
func (d *Detector) testErrorsAgg(rec, base *agg, alpha float64) (bool, float64) {
	if rec.Calls < uint64(d.cfg.MinCalls) || base.Calls == 0 {
		return false, 1
	}
	r1, r2 := rec.errorRate(), base.errorRate()
	if rec.Errors < uint64(d.cfg.MinErrors) || r1 < 2*r2 || r1-r2 < d.cfg.MinErrorDelta {
		return false, 1
	}
	p := fisherUpper(rec.Errors, rec.Calls, base.Errors, base.Calls)
	return p < alpha, p
}

func (d *Detector) testErrors(s *opSeries, bases []*baseline, m0 int64, w int, now time.Time) *finding {
	alpha := d.cfg.Alpha / float64(w)
	var best *finding
	for n := 1; n <= w; n++ {
		from := windowFrom(m0, n)
		rec := s.sum(from, m0, nil, nil)
		flagged, p := true, 0.0
		for _, b := range bases {
			ok, pb := d.testErrorsAgg(rec, b.data, alpha)
			if !ok {
				flagged = false
				break
			}
			p = max(p, pb)
		}
		if !flagged || best != nil && p >= best.p {
			continue
		}
		r1, r2 := rec.errorRate(), bases[0].data.errorRate()
		best = &finding{key: symptomKey{s.key, SignalErrors}, p: p, magnitude: math.Log2((r1 + 0.01) / (r2 + 0.01)), measure: "errorRate",
			observed: round4(r1), expected: round4(r2), calls: rec.Calls, window: now.Sub(minuteTime(from)), mode: bases[0].mode}
		best.exemplars = pickExemplars(rec.Exemplars, true)
		best.summary = fmt.Sprintf("%s %s: error rate %.1f%%, expected %.2f%%", s.key.Service, s.key.Operation, 100*r1, 100*r2)
		base := bases[0].data
		best.versions = d.confine(s, from, m0, func(v *agg) bool { ok, _ := d.testErrorsAgg(v, base, 1e-3); return ok })
		best.onset = onset(s, m0, w, func(a *agg) bool {
			return a.Calls >= 3 && a.errorRate() >= r2+(r1-r2)/3
		})
	}
	return best
}

// testThroughput compares the calls of the last full minutes with the
// baseline's rate: a Poisson test, its variance widened by the baseline's
// own spread between minutes (quasi-Poisson). A drop is not reported when
// the whole system went quiet (no traffic, or nothing received).
func (d *Detector) testThroughput(s *opSeries, bases []*baseline, m0 int64, w int, total map[int64]uint64) *finding {
	n := max(w-1, 1)
	alpha := d.cfg.Alpha / float64(n)
	var best *finding
	for k := 1; k <= n; k++ {
		from, to := m0-int64(k), m0-1
		rec := s.sum(from, to, nil, d.isHostMinute)
		used := 0
		for m := from; m <= to; m++ {
			if !d.isHostMinute(m) {
				used++
			}
		}
		if used == 0 {
			continue
		}
		flagged, p := true, 0.0
		var lambda float64
		for i, b := range bases {
			l := b.ratePerMin * float64(used)
			if i == 0 {
				lambda = l
			}
			phi := 1.0
			if b.ratePerMin > 0 {
				phi = max(1, b.rateVar/b.ratePerMin)
			}
			c := float64(rec.Calls)
			var pb float64
			switch {
			case l < 20 && c < 20:
				pb = 1
			case c >= l*d.cfg.ThroughputRatio:
				pb = poissonUpper(uint64(math.Round(c/phi)), l/phi)
			case c <= l/d.cfg.ThroughputRatio:
				pb = poissonLower(uint64(math.Round(c/phi)), l/phi)
				if quietSystem(total, from, to) {
					pb = 1
				}
			default:
				pb = 1
			}
			if pb >= alpha {
				flagged = false
				break
			}
			p = max(p, pb)
		}
		if !flagged || best != nil && p >= best.p {
			continue
		}
		c := float64(rec.Calls)
		best = &finding{key: symptomKey{s.key, SignalThroughput}, p: p, magnitude: math.Abs(math.Log2((c + 1) / (lambda + 1))),
			measure: "ratePerSecond", observed: round4(c / 60 / float64(used)), expected: round4(lambda / 60 / float64(used)),
			calls: rec.Calls, window: time.Duration(used) * time.Minute, mode: bases[0].mode}
		best.exemplars = pickExemplars(rec.Exemplars, false)
		best.summary = fmt.Sprintf("%s %s: %.2f calls/s, expected %.2f", s.key.Service, s.key.Operation, best.observed, best.expected)
		perMin := bases[0].ratePerMin
		spike := c >= lambda
		best.onset = onset(s, m0-1, w, func(a *agg) bool {
			if spike {
				return float64(a.Calls) >= perMin*math.Sqrt(d.cfg.ThroughputRatio)
			}
			return float64(a.Calls) <= perMin/math.Sqrt(d.cfg.ThroughputRatio)
		})
	}
	return best
}

// quietSystem reports whether every operation together received less than
// half of its usual calls in [from, to]: the traffic stopped or clew was
// not receiving, which is no operation's fault.
func quietSystem(total map[int64]uint64, from, to int64) bool {
	var recent, before float64
	var nb int
	for m := from; m <= to; m++ {
		recent += float64(total[m])
	}
	for m := from - 30; m < from; m++ {
		if c, ok := total[m]; ok {
			before += float64(c)
			nb++
		}
	}
	if nb == 0 {
		return true
	}
	return recent/float64(to-from+1) < 0.5*before/float64(nb)
}

// confine tests each version of the operation with enough calls in the
// window: when some are anomalous and others, with enough calls too, are
// not, the change is confined to the former.
func (d *Detector) confine(s *opSeries, from, to int64, anomalous func(*agg) bool) []string {
	if len(s.versions) < 2 {
		return nil
	}
	var bad, good []string
	for v := range s.versions {
		rec := s.sum(from, to, &v, nil)
		if rec.Calls < uint64(max(5, d.cfg.MinCalls/4)) {
			continue
		}
		if anomalous(rec) {
			bad = append(bad, v)
		} else {
			good = append(good, v)
		}
	}
	if len(bad) == 0 || len(good) == 0 {
		return nil
	}
	slices.Sort(bad)
	return bad
}

// onset walks back from the current minute while each minute shows the
// change, and returns the start of the earliest such minute.
func onset(s *opSeries, m0 int64, w int, shows func(*agg) bool) time.Time {
	first := m0
	for m := m0; m > m0-int64(w)-3; m-- {
		a := s.minutes[m]
		if a == nil || !shows(a) {
			if m == m0 {
				continue // the current minute has seconds of data: no verdict
			}
			break
		}
		first = m
	}
	return minuteTime(first)
}

// pickExemplars picks up to three exemplars: errors first when errs, else
// the slowest.
func pickExemplars(xs []spanmetrics.Exemplar, errs bool) []spanmetrics.Exemplar {
	c := slices.Clone(xs)
	slices.SortStableFunc(c, func(a, b spanmetrics.Exemplar) int {
		if errs && a.Error != b.Error {
			if a.Error {
				return -1
			}
			return 1
		}
		switch {
		case a.Duration > b.Duration:
			return -1
		case a.Duration < b.Duration:
			return 1
		}
		return 0
	})
	c = slices.CompactFunc(c, func(a, b spanmetrics.Exemplar) bool { return a.SpanID == b.SpanID })
	return c[:min(3, len(c))]
}

// track updates the symptom states with this evaluation's findings: a
// symptom is raised once significant in Persistence evaluations in a row,
// the last of them confirmed on fresh data (see confirm), and cleared
// after two evaluations without.
func (d *Detector) track(found []finding, tested map[opKey]bool, now time.Time) {
	seen := map[symptomKey]bool{}
	for _, f := range found {
		seen[f.key] = true
		st := d.symptoms[f.key]
		if st == nil {
			st = &symptomState{}
			d.symptoms[f.key] = st
		}
		if st.consecutive == 0 {
			st.firstMinute = f.minute
		}
		st.consecutive++
		st.clean = 0
		st.last = f
		if st.consecutive >= d.cfg.Persistence && (d.cfg.Persistence <= 1 || f.confirmed || st.raised) {
			st.raised = true
		}
	}
	for k, st := range d.symptoms {
		if seen[k] || !tested[k.op] {
			// Not tested this time (too little baseline left, say, once the
			// anomalous minutes are left out of it): no news either way.
			continue
		}
		st.consecutive = 0
		st.clean++
		if st.clean >= 2 {
			if st.raised {
				st.raised = false
			}
			delete(d.symptoms, k)
		}
	}
}
