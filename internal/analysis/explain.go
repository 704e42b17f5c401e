package analysis

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// FindingType says what a finding of Explain is about.
type FindingType string

// Finding types.
const (
	// FindingCriticalPathSelf: an operation's self time on the critical
	// path is significantly above the cohort's median.
	FindingCriticalPathSelf FindingType = "critical_path_self"
	// FindingNPlusOne: the same child call (for a database, the same
	// query) repeated one after another under one parent.
	FindingNPlusOne FindingType = "n_plus_one"
	// FindingSerializedFanOut: sibling calls that ran one after another
	// where the cohort runs them concurrently.
	FindingSerializedFanOut FindingType = "serialized_fan_out"
	// FindingSequentialCalls: sibling calls to different services that ran
	// one after another and could perhaps overlap (no cohort to compare
	// with; a hint).
	FindingSequentialCalls FindingType = "sequential_calls"
	// FindingRetry: a call attempted several times.
	FindingRetry FindingType = "retry"
	// FindingNewOperation: an operation that the cohort rarely has.
	FindingNewOperation FindingType = "new_operation"
	// FindingMissingOperation: an operation that the cohort almost always
	// has and this trace does not.
	FindingMissingOperation FindingType = "missing_operation"
	// FindingMoreCalls: an operation called significantly more often than
	// in the cohort.
	FindingMoreCalls FindingType = "more_calls"
)

// Finding is one reason why a trace is slow.
type Finding struct {
	Type FindingType
	// Service and Operation name the operation the finding is about: the
	// repeated or retried call, the slow operation, or for serialized
	// calls their parent.
	Service, Operation string
	// Detail adds what tells calls apart (a query text, a URL template) or
	// lists the serialized calls.
	Detail string
	// SpanIDs are the spans involved (at most ExplainOptions.MaxSpanIDs).
	SpanIDs []span.SpanID
	// Excess is the time this trace spent on the finding beyond what the
	// cohort spends (0 when the cohort behaves the same or there is no
	// cohort); findings are ranked by it.
	Excess time.Duration
	// Saving is the time the pattern itself costs this trace: what
	// batching repeated calls, running serialized calls concurrently or
	// not retrying would save (an estimate), or the critical-path time of
	// a new operation.
	Saving time.Duration
	// Count is the number of spans involved (repeats, attempts, calls);
	// CohortCount the typical (median) number in the cohort, -1 without a
	// cohort.
	Count       int
	CohortCount float64
	// Value and Baseline compare a duration of this trace with the
	// cohort's median (critical_path_self: self time on the critical path).
	Value, Baseline time.Duration
	// InCohort is the fraction of cohort traces showing the same pattern,
	// -1 without a cohort.
	InCohort float64
	Message  string
}

// OpTime is one operation's share of a critical path.
type OpTime struct {
	Op OpKey
	// Self is the operation's self time on the critical path.
	Self time.Duration
	// CohortP50 is the cohort's median of the same (zero when the cohort
	// traces do not have the operation on their path); valid when
	// HasCohort.
	CohortP50 time.Duration
	HasCohort bool
}

// Explanation is Explain's answer.
type Explanation struct {
	TraceID                    span.TraceID
	RootService, RootOperation string
	StartUnixNano              uint64
	// Duration is the root span's duration.
	Duration time.Duration
	Spans    int
	// Cohort is the number of cohort traces compared with; CohortP50 and
	// CohortP90 are their root durations' percentiles and Excess is
	// Duration minus CohortP50 (zero without a cohort).
	Cohort               int
	CohortP50, CohortP90 time.Duration
	Excess               time.Duration
	// CriticalPath is the time per operation on the critical path, most
	// first (at most 15).
	CriticalPath []OpTime
	// Findings are ranked by Excess, then Saving.
	Findings []Finding
	// Partial is set when the answer rests on less than it should: a
	// cohort too small to compare with, or an incomplete trace. Notes say
	// why.
	Partial bool
	Notes   []string
}

// ExplainOptions tune Explain. Zero fields take their defaults.
type ExplainOptions struct {
	// MinRepeats is the number of sequential repeats of one call that
	// makes an N+1 pattern (default 5).
	MinRepeats int
	// MinCohort is the cohort size below which cohort comparisons are not
	// made (default 5).
	MinCohort int
	// MaxFindings bounds the findings returned (default 20).
	MaxFindings int
	// MaxSpanIDs bounds the span IDs per finding (default 20).
	MaxSpanIDs int
}

func (o ExplainOptions) withDefaults() ExplainOptions {
	if o.MinRepeats <= 1 {
		o.MinRepeats = 5
	}
	if o.MinCohort <= 0 {
		o.MinCohort = 5
	}
	if o.MaxFindings <= 0 {
		o.MaxFindings = 20
	}
	if o.MaxSpanIDs <= 0 {
		o.MaxSpanIDs = 20
	}
	return o
}

// Explain says why the trace t is slow compared with cohort, traces of the
// same root service and operation that are assumed normal (the caller
// chooses them: recent, without errors, not t itself; cohort traces with
// an error span or another root operation are skipped here too). It finds
// operations whose self time on the critical path exceeds the cohort's,
// N+1 patterns, serialized fan-out, retries and structural differences
// (operations new, missing or called more often than in the cohort), and
// ranks them by excess time over the cohort.
//
// With fewer than MinCohort cohort traces, the comparisons with the cohort
// are skipped, patterns are still reported (with Excess 0 and their
// Saving), and the answer is Partial.
func Explain(t *Tree, cohort []*Tree, opt ExplainOptions) *Explanation {
	opt = opt.withDefaults()
	e := &Explanation{Spans: t.Len()}
	root := t.Root()
	if root < 0 {
		e.Partial = true
		e.Notes = append(e.Notes, "the trace has no spans")
		return e
	}
	rs := &t.Spans[root]
	e.TraceID = rs.TraceID
	e.RootService, e.RootOperation = t.Service(root), rs.Name
	e.StartUnixNano = rs.StartUnixNano
	target := newProfile(t, true)
	e.Duration = target.dur
	e.Notes = append(e.Notes, treeNotes(t)...)
	if len(t.Orphans) > 0 || !rs.ParentSpanID.IsZero() {
		e.Partial = true
	}

	var profs []*profile
	for _, c := range cohort {
		r := c.Root()
		if r < 0 || c.Service(r) != e.RootService || c.Spans[r].Name != e.RootOperation || c.Len() > 0 && c.Spans[r].TraceID == e.TraceID {
			continue
		}
		p := newProfile(c, false)
		if p.errored {
			continue
		}
		profs = append(profs, p)
	}
	e.Cohort = len(profs)
	hasCohort := len(profs) >= opt.MinCohort
	if hasCohort {
		durs := make([]float64, len(profs))
		for i, p := range profs {
			durs[i] = float64(p.dur)
		}
		d := newDist(durs)
		e.CohortP50, e.CohortP90 = time.Duration(d.p50), time.Duration(d.p90)
		e.Excess = max(e.Duration-e.CohortP50, 0)
	} else {
		e.Partial = true
		e.Notes = append(e.Notes, fmt.Sprintf("cohort of %d similar traces, fewer than %d: no comparison with typical traces, patterns only", len(profs), opt.MinCohort))
		profs = nil
	}

	x := &explainer{t: t, p: target, cohort: profs, opt: opt, minDelta: max(float64(time.Millisecond), 0.05*float64(e.Duration))}
	x.covered, x.explained = map[OpKey]bool{}, map[OpKey]time.Duration{}
	x.retries()
	x.nPlusOne()
	x.serialized()
	x.structure()
	x.criticalPathSelf()
	e.CriticalPath = x.pathSummary()

	f := x.findings
	slices.SortStableFunc(f, func(a, b Finding) int {
		if c := cmp.Compare(b.Excess, a.Excess); c != 0 {
			return c
		}
		return cmp.Compare(b.Saving, a.Saving)
	})
	if len(f) > opt.MaxFindings {
		e.Notes = append(e.Notes, fmt.Sprintf("%d more findings left out", len(f)-opt.MaxFindings))
		f = f[:opt.MaxFindings]
	}
	e.Findings = f
	return e
}

func treeNotes(t *Tree) []string {
	var out []string
	if n := len(t.Orphans); n > 0 {
		out = append(out, fmt.Sprintf("%d spans whose parent is missing (the trace is incomplete): analysed from the root only", n))
	}
	if root := t.Root(); root >= 0 && !t.Spans[root].ParentSpanID.IsZero() {
		out = append(out, "the root span has not arrived: analysed from the earliest span whose parent is missing")
	}
	if n := len(t.CycleBreaks); n > 0 {
		out = append(out, fmt.Sprintf("%d cycles in parent links cut", n))
	}
	if n := len(t.Duplicates); n > 0 {
		out = append(out, fmt.Sprintf("%d spans with a duplicate span ID", n))
	}
	if n := len(t.Skewed); n > 0 {
		out = append(out, fmt.Sprintf("%d spans outside their parent's interval (clock skew or asynchronous work), clipped to it", n))
	}
	return out
}

type explainer struct {
	t        *Tree
	p        *profile
	cohort   []*profile
	opt      ExplainOptions
	minDelta float64 // nanoseconds
	findings []Finding
	// covered lists operations a pattern finding already explains, so that
	// the structural findings do not repeat them; explained is the excess
	// the pattern findings put on each operation, which the critical-path
	// comparison subtracts before it tests what is left.
	covered   map[OpKey]bool
	explained map[OpKey]time.Duration
	opCP      map[OpKey]time.Duration
	// enter and exit number the spans in a depth-first walk (isAncestor).
	enter, exit []int32
	// inChain marks the spans of retry chains, which are not N+1 patterns
	// or serialized calls.
	inChain map[int32]bool
	incl    []time.Duration
}

func (x *explainer) add(f Finding) {
	if x.cohort == nil {
		// Nothing to exceed: the pattern's cost is in Saving.
		f.CohortCount, f.InCohort, f.Excess = -1, -1, 0
	}
	if f.Type != FindingCriticalPathSelf && f.Type != FindingSerializedFanOut && f.Type != FindingSequentialCalls {
		x.explained[OpKey{f.Service, f.Operation}] += f.Excess
	}
	x.findings = append(x.findings, f)
}

// cohortValues returns, for the cohort traces that satisfy has, value's
// results.
func (x *explainer) cohortValues(has func(*profile) bool, value func(*profile) float64) []float64 {
	var out []float64
	for _, p := range x.cohort {
		if has == nil || has(p) {
			out = append(out, value(p))
		}
	}
	return out
}

func (x *explainer) inclusive() []time.Duration {
	if x.incl == nil {
		x.incl = inclusiveCP(x.t, x.p.path)
	}
	return x.incl
}

// retries reports calls attempted several times under one parent.
func (x *explainer) retries() {
	t := x.t
	type chainAt struct {
		key   callKey
		spans []int32
	}
	var chains []chainAt
	for _, i := range t.Order() {
		if len(t.Children(int(i))) < 1 {
			continue
		}
		for _, g := range x.p.groups[i] {
			if rc := retryChain(t, &g); len(rc) > 1 {
				chains = append(chains, chainAt{g.key, rc})
			}
		}
	}
	inChain := map[int32]bool{}
	for _, c := range chains {
		for _, s := range c.spans {
			inChain[s] = true
		}
	}
	// One finding per call key, over every chain of it (a service retrying
	// the same call from several of its spans).
	type merged struct {
		key                   callKey
		spans                 []int32
		chains, fails, maxLen int
		wasted                time.Duration
		nested                []string
	}
	var order []callKey
	byKey := map[callKey]*merged{}
	for _, c := range chains {
		m := byKey[c.key]
		if m == nil {
			m = &merged{key: c.key}
			byKey[c.key] = m
			order = append(order, c.key)
		}
		first, last := c.spans[0], c.spans[len(c.spans)-1]
		m.wasted += durNs(t.start[last] - t.start[first])
		m.spans = append(m.spans, c.spans...)
		m.chains++
		m.maxLen = max(m.maxLen, len(c.spans))
		for _, s := range c.spans {
			if failed(&t.Spans[s]) {
				m.fails++
			}
		}
		// Retries inside the failed attempts (a retry storm across
		// services) are named, since they are the cause.
		if len(chains) <= maxNestedCheck {
			for _, s := range c.spans[:len(c.spans)-1] {
				for _, o := range chains {
					if o.key != c.key && x.isAncestor(s, o.spans[0]) && !slices.Contains(m.nested, o.key.Op.String()) {
						m.nested = append(m.nested, o.key.Op.String())
					}
				}
			}
		}
	}
	for _, k := range order {
		m := byKey[k]
		f := Finding{Type: FindingRetry, Service: k.Op.Service, Operation: k.Op.Operation, Detail: k.Detail,
			SpanIDs: spanIDs(t, m.spans, x.opt.MaxSpanIDs), Count: len(m.spans), Saving: m.wasted, Excess: m.wasted}
		if x.cohort != nil {
			d := newDist(x.cohortValues(nil, func(p *profile) float64 { return float64(p.retries[k]) }))
			f.CohortCount = d.p50
			f.InCohort = float64(d.present) / float64(d.n)
			if d.p50 >= float64(len(m.spans)-m.chains) {
				f.Excess = 0
			}
		}
		f.Message = fmt.Sprintf("%s called %s %d times (%d failed", k.Op.Service, describeCall(k), len(m.spans), m.fails)
		if m.chains > 1 {
			f.Message += fmt.Sprintf(", in %d series of up to %d attempts", m.chains, m.maxLen)
		}
		f.Message += fmt.Sprintf("): %s spent before the last attempts", round(m.wasted))
		if len(m.nested) > 0 {
			f.Message += "; the failed attempts themselves retried " + strings.Join(m.nested, ", ")
		}
		if f.InCohort > 0 {
			f.Message += fmt.Sprintf("; %.0f%% of similar traces retry it too", 100*f.InCohort)
		}
		x.covered[k.Op] = true
		x.add(f)
	}
	// What runs under retried calls repeats with them: the retry explains
	// it.
	for _, c := range chains {
		stack := slices.Clone(c.spans)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x.covered[t.Op(int(i))] = true
			stack = append(stack, t.Children(int(i))...)
		}
	}
	x.inChain = inChain
}

// maxNestedCheck bounds the retry chains compared pairwise for nesting.
const maxNestedCheck = 200

// isAncestor reports whether a is an ancestor of b, by the spans' entry
// and exit numbers in a depth-first walk (computed once).
func (x *explainer) isAncestor(a, b int32) bool {
	if x.enter == nil {
		t := x.t
		x.enter, x.exit = make([]int32, t.Len()), make([]int32, t.Len())
		clock := int32(0)
		type frame struct {
			node int32
			next int
		}
		var stack []frame
		for _, r := range t.Roots() {
			x.enter[r] = clock
			clock++
			stack = append(stack[:0], frame{node: r})
			for len(stack) > 0 {
				f := &stack[len(stack)-1]
				kids := t.Children(int(f.node))
				if f.next == len(kids) {
					x.exit[f.node] = clock
					stack = stack[:len(stack)-1]
					continue
				}
				c := kids[f.next]
				f.next++
				x.enter[c] = clock
				clock++
				stack = append(stack, frame{node: c})
			}
		}
	}
	return a != b && x.enter[a] <= x.enter[b] && x.exit[b] <= x.exit[a]
}

func describeCall(k callKey) string {
	if k.Detail != "" && k.Detail != k.Op.Operation {
		return fmt.Sprintf("%q (%s)", k.Op.Operation, shorten(k.Detail, 80))
	}
	return fmt.Sprintf("%q", k.Op.Operation)
}

// nPlusOne reports one child call repeated sequentially at least
// MinRepeats times under one parent.
func (x *explainer) nPlusOne() {
	t := x.t
	for _, i := range t.Order() {
		if len(t.Children(int(i))) < x.opt.MinRepeats {
			continue
		}
		parent := t.Op(int(i))
		for _, g := range x.p.groups[i] {
			if g.seq < x.opt.MinRepeats || x.inChain[g.kids[0]] {
				continue
			}
			durs := make([]float64, len(g.kids))
			for n, c := range g.kids {
				durs[n] = float64(t.end[c] - t.start[c])
			}
			slices.Sort(durs)
			med := quantile(durs, 0.5)
			f := Finding{Type: FindingNPlusOne, Service: g.key.Op.Service, Operation: g.key.Op.Operation, Detail: g.key.Detail,
				SpanIDs: spanIDs(t, g.kids, x.opt.MaxSpanIDs), Count: g.seq,
				Saving: time.Duration(float64(g.seq-1) * med)}
			f.Excess = f.Saving
			k := patKey{Parent: parent, A: g.key}
			msg := fmt.Sprintf("%s %q ran %s %d times one after another (median %s each, %s in all)",
				parent.Service, parent.Operation, describeCall(g.key), g.seq, round(time.Duration(med)), round(durNs(g.sum)))
			if x.cohort != nil {
				vals := x.cohortValues(func(p *profile) bool { return p.parents[parent] > 0 },
					func(p *profile) float64 { return float64(p.repeats[k]) })
				d := newDist(vals)
				if d.n > 0 {
					f.CohortCount = d.p50
					n := 0
					for _, v := range vals {
						if v >= float64(x.opt.MinRepeats) {
							n++
						}
					}
					f.InCohort = float64(n) / float64(d.n)
					f.Excess = time.Duration(max(float64(g.seq)-max(d.p50, 1), 0) * med)
					if d.p50 == 0 {
						msg += fmt.Sprintf("; most similar traces do not make this call there (%d of %d do)", d.present, d.n)
					} else {
						msg += fmt.Sprintf("; similar traces make it %s times in a row (median)", trimFloat(d.p50))
					}
				} else {
					f.InCohort = 0
					msg += "; similar traces never call it from there"
				}
			}
			f.Message = msg + ": an N+1 pattern, batch it into one call"
			x.covered[g.key.Op] = true
			x.add(f)
		}
	}
}

// serialized reports sibling calls that ran one after another where the
// cohort runs them concurrently; without a cohort, sequential calls to
// different services under one parent are a hint.
func (x *explainer) serialized() {
	t := x.t
	for _, i := range t.Order() {
		if len(t.Children(int(i))) < 2 {
			continue
		}
		parent := t.Op(int(i))
		gs := x.p.groups[i]
		// The same call several times, one after another.
		for _, g := range gs {
			if len(g.kids) < 2 || g.seq < len(g.kids) || g.seq >= x.opt.MinRepeats || x.inChain[g.kids[0]] || x.cohort == nil {
				continue
			}
			k := patKey{Parent: parent, A: g.key}
			var seen, overlapped int
			for _, p := range x.cohort {
				if ov, ok := p.sameOverlap[k]; ok {
					seen++
					if ov {
						overlapped++
					}
				}
			}
			if seen == 0 || 2*overlapped < seen {
				continue
			}
			save := durNs(g.sum - g.max)
			x.covered[g.key.Op] = true
			x.explained[g.key.Op] += save
			x.add(Finding{Type: FindingSerializedFanOut, Service: parent.Service, Operation: parent.Operation, Detail: g.key.String(),
				SpanIDs: spanIDs(t, g.kids, x.opt.MaxSpanIDs), Count: len(g.kids), Excess: save, Saving: save,
				CohortCount: float64(seen), InCohort: float64(seen-overlapped) / float64(seen),
				Message: fmt.Sprintf("%s %q called %s %d times one after another; %d of %d similar traces make these calls concurrently: about %s lost",
					parent.Service, parent.Operation, describeCall(g.key), len(g.kids), overlapped, seen, round(save))})
		}
		// Calls to different services, one after another.
		var remotes []int
		for j := range gs {
			if remote(t, int(gs[j].kids[0])) && !x.inChain[gs[j].kids[0]] && len(remotes) < maxKeysPerParent {
				remotes = append(remotes, j)
			}
		}
		if len(remotes) < 2 {
			continue
		}
		var involved []int
		for a := 0; a < len(remotes); a++ {
			for b := a + 1; b < len(remotes); b++ {
				ga, gb := &gs[remotes[a]], &gs[remotes[b]]
				if ga.lo < gb.hi && gb.lo < ga.hi {
					continue // they overlap here
				}
				if x.cohort == nil {
					if isDB(&t.Spans[ga.kids[0]]) || isDB(&t.Spans[gb.kids[0]]) {
						continue
					}
				} else {
					k := pairKey(parent, ga.key, gb.key)
					var seen, overlapped int
					for _, p := range x.cohort {
						if ov, ok := p.pairOverlap[k]; ok {
							seen++
							if ov {
								overlapped++
							}
						}
					}
					if seen == 0 || 2*overlapped < seen {
						continue
					}
				}
				for _, j := range []int{remotes[a], remotes[b]} {
					if !slices.Contains(involved, j) {
						involved = append(involved, j)
					}
				}
			}
		}
		if len(involved) < 2 {
			continue
		}
		var names []string
		var ids []int32
		var sum, longest uint64
		for _, j := range involved {
			g := &gs[j]
			x.covered[g.key.Op] = true
			if x.cohort != nil {
				// Each call may be the one the critical path waited on: allow
				// the whole loss on each.
				x.explained[g.key.Op] += durNs(sumEnvelopes(gs, involved) - longestEnvelope(gs, involved))
			}
			names = append(names, describeCall(g.key))
			ids = append(ids, g.kids...)
			sum += g.hi - g.lo
			longest = max(longest, g.hi-g.lo)
		}
		save := durNs(sum - longest)
		f := Finding{Service: parent.Service, Operation: parent.Operation, Detail: strings.Join(names, ", "),
			SpanIDs: spanIDs(t, ids, x.opt.MaxSpanIDs), Count: len(involved), Saving: save}
		if x.cohort == nil {
			if float64(save) < 0.1*float64(x.p.dur) {
				continue
			}
			f.Type = FindingSequentialCalls
			f.Message = fmt.Sprintf("%s %q called %s one after another; if they are independent, running them concurrently would save about %s",
				parent.Service, parent.Operation, strings.Join(names, ", "), round(save))
		} else {
			f.Type = FindingSerializedFanOut
			f.Excess = save
			f.Message = fmt.Sprintf("%s %q called %s one after another where similar traces make these calls concurrently: about %s lost",
				parent.Service, parent.Operation, strings.Join(names, ", "), round(save))
		}
		x.add(f)
	}
}

// criticalPathSelf reports operations whose self time on the critical path
// is significantly above the cohort's.
func (x *explainer) criticalPathSelf() {
	if x.cohort == nil {
		return
	}
	t := x.t
	ops := map[OpKey]bool{}
	for op := range x.p.cpSelf {
		ops[op] = true
	}
	bySpan := PathSelfBySpan(x.p.path)
	opSpans := map[OpKey][]int32{}
	for i := range bySpan {
		op := t.Op(i)
		opSpans[op] = append(opSpans[op], int32(i))
	}
	for _, op := range sortedKeys(ops, cmpOp) {
		v := x.p.cpSelf[op]
		d := newDist(x.cohortValues(nil, func(p *profile) float64 { return float64(p.cpSelf[op]) }))
		if !d.exceeds(float64(v-x.explained[op]), x.minDelta) {
			continue
		}
		idx := opSpans[op]
		slices.SortFunc(idx, func(a, b int32) int {
			if c := cmp.Compare(bySpan[int(b)], bySpan[int(a)]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		base := time.Duration(d.p50)
		ex := v - x.explained[op] - base
		msg := fmt.Sprintf("%s %q spent %s of its own time on the critical path; similar traces spend %s (median of %d): %s more",
			op.Service, op.Operation, round(v), round(base), d.n, round(v-base))
		if x.explained[op] > 0 {
			msg += fmt.Sprintf(", %s of it beyond the patterns above", round(ex))
		}
		x.add(Finding{Type: FindingCriticalPathSelf, Service: op.Service, Operation: op.Operation,
			SpanIDs: spanIDs(t, idx, x.opt.MaxSpanIDs), Count: len(idx), Excess: ex, Value: v, Baseline: base,
			CohortCount: float64(d.n), InCohort: float64(d.present) / float64(d.n), Message: msg})
	}
}

// structure reports operations new, missing or called more often than in
// the cohort.
func (x *explainer) structure() {
	if x.cohort == nil {
		return
	}
	t := x.t
	ops := map[OpKey]bool{}
	for op := range x.p.counts {
		ops[op] = true
	}
	for _, p := range x.cohort {
		for op := range p.counts {
			ops[op] = true
		}
	}
	byOp := map[OpKey][]int32{}
	for _, i := range t.Order() {
		op := t.Op(int(i))
		byOp[op] = append(byOp[op], i)
	}
	var out []Finding
	for _, op := range sortedKeys(ops, cmpOp) {
		if x.covered[op] {
			continue
		}
		n := x.p.counts[op]
		d := newDist(x.cohortValues(nil, func(p *profile) float64 { return float64(p.counts[op]) }))
		presence := float64(d.present) / float64(d.n)
		spans := byOp[op]
		switch {
		case n > 0 && presence < 0.1:
			cp := x.cpIn(op)
			out = append(out, Finding{Type: FindingNewOperation, Service: op.Service, Operation: op.Operation,
				SpanIDs: spanIDs(t, spans, x.opt.MaxSpanIDs), Count: n, Excess: cp, Saving: cp, CohortCount: d.p50, InCohort: presence,
				Message: fmt.Sprintf("%s %q (%d spans) appears in %.0f%% of similar traces only; %s of the critical path is in it",
					op.Service, op.Operation, n, 100*presence, round(cp))})
		case n == 0 && presence >= 0.9:
			out = append(out, Finding{Type: FindingMissingOperation, Service: op.Service, Operation: op.Operation,
				CohortCount: d.p50, InCohort: presence,
				Message: fmt.Sprintf("%s %q is missing, while %.0f%% of similar traces have it (a different code path, or lost spans)",
					op.Service, op.Operation, 100*presence)})
		case n > 0 && float64(n) > d.p90 && float64(n)-d.p50 >= 2 && float64(n) >= 2*d.p50:
			cp := x.cpIn(op)
			ex := time.Duration(float64(cp) * (float64(n) - d.p50) / float64(n))
			out = append(out, Finding{Type: FindingMoreCalls, Service: op.Service, Operation: op.Operation,
				SpanIDs: spanIDs(t, spans, x.opt.MaxSpanIDs), Count: n, Excess: ex, Saving: ex, CohortCount: d.p50, InCohort: presence,
				Message: fmt.Sprintf("%s %q ran %d times; similar traces run it %s times (median)", op.Service, op.Operation, n, trimFloat(d.p50))})
		}
	}
	const maxStructural = 10
	slices.SortStableFunc(out, func(a, b Finding) int { return cmp.Compare(b.Excess, a.Excess) })
	if len(out) > maxStructural {
		out = out[:maxStructural]
	}
	for _, f := range out {
		if f.Type != FindingMissingOperation {
			x.covered[OpKey{f.Service, f.Operation}] = true
		}
		x.add(f)
	}
}

// cpIn returns the critical-path time spent in the subtrees of the spans
// of op, counting spans nested in a span of the same operation once.
func (x *explainer) cpIn(op OpKey) time.Duration {
	if x.opCP == nil {
		x.opCP = opCriticalTime(x.t, x.inclusive())
	}
	return x.opCP[op]
}

// opCriticalTime sums incl over the outermost spans of each operation: a
// depth-first walk keeps the operations on the current path.
func opCriticalTime(t *Tree, incl []time.Duration) map[OpKey]time.Duration {
	out := map[OpKey]time.Duration{}
	onPath := map[OpKey]int{}
	type frame struct {
		node int32
		op   OpKey
		next int
	}
	var stack []frame
	for _, r := range t.Roots() {
		stack = append(stack[:0], frame{node: r, op: t.Op(int(r))})
		if onPath[stack[0].op] == 0 {
			out[stack[0].op] += incl[r]
		}
		onPath[stack[0].op]++
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			kids := t.Children(int(f.node))
			if f.next == len(kids) {
				onPath[f.op]--
				stack = stack[:len(stack)-1]
				continue
			}
			c := kids[f.next]
			f.next++
			op := t.Op(int(c))
			if onPath[op] == 0 {
				out[op] += incl[c]
			}
			onPath[op]++
			stack = append(stack, frame{node: c, op: op})
		}
	}
	return out
}

// pathSummary returns the time per operation on the critical path, most
// first, with the cohort's medians.
func (x *explainer) pathSummary() []OpTime {
	out := make([]OpTime, 0, len(x.p.cpSelf))
	for op, v := range x.p.cpSelf {
		ot := OpTime{Op: op, Self: v}
		if x.cohort != nil {
			d := newDist(x.cohortValues(nil, func(p *profile) float64 { return float64(p.cpSelf[op]) }))
			ot.CohortP50, ot.HasCohort = time.Duration(d.p50), true
		}
		out = append(out, ot)
	}
	slices.SortFunc(out, func(a, b OpTime) int {
		if c := cmp.Compare(b.Self, a.Self); c != 0 {
			return c
		}
		return cmpOp(a.Op, b.Op)
	})
	if len(out) > 15 {
		out = out[:15]
	}
	return out
}

func cmpOp(a, b OpKey) int {
	if c := cmp.Compare(a.Service, b.Service); c != 0 {
		return c
	}
	return cmp.Compare(a.Operation, b.Operation)
}

// round renders d with a precision that suits its size.
func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", f), "0"), ".")
}

func sumEnvelopes(gs []group, idx []int) uint64 {
	var sum uint64
	for _, j := range idx {
		sum += gs[j].hi - gs[j].lo
	}
	return sum
}

func longestEnvelope(gs []group, idx []int) uint64 {
	var m uint64
	for _, j := range idx {
		m = max(m, gs[j].hi-gs[j].lo)
	}
	return m
}
