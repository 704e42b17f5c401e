package detect

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
)

// Culprit ranking compares traces of the anomaly with traces from just
// before it, both selected the same way (the newest traces holding a span
// of an affected operation), and attributes each trace's time and errors
// to units:
//
//   - a server or consumer span is a unit (service, operation, kind): its
//     own self time on the critical path;
//   - an internal span, and a client span to a database, a cache or a
//     queue (db.system, messaging.system), belong to the unit of the
//     service's entry span above them: the service's own code, queries
//     and datastores are the service's;
//   - a client span with a server child is a unit of its own (the time on
//     the wire), named after the service called into: a slower network
//     into a service, or a service slow to accept its calls, shows as the
//     wire time of the calls into it, whoever the callers are;
//   - a client span without one calls an uninstrumented peer (a third
//     party): its change per call (the peer got slower or fails) is the
//     client operation's, while a change in how often it is called (a
//     loop, retries) is the calling entry span's.
//
// An error originates in the deepest failed span none of whose children
// failed. For each unit, the change per trace of its self time and of the
// errors originating in it is kept when a one-sided Welch test finds it
// significant (a change that is not significant counts as none); the
// culprit score is the unit's share of the total change, latency and
// errors weighted by how large each signal's symptoms are.

// unitKey is what time and errors are attributed to.
type unitKey struct {
	Service   string
	Operation string
	Kind      span.Kind
	dep       bool // a call to an uninstrumented peer
}

func (u unitKey) op() opKey { return opKey{u.Service, u.Operation, u.Kind} }

// traceProfile is one trace's attribution.
type traceProfile struct {
	self     map[unitKey]float64 // ms on the critical path (dep units: see depSelf)
	origins  map[unitKey]float64
	depCalls map[unitKey]float64
	depSelf  map[unitKey]float64 // ms on the critical path
	depEntry map[unitKey]unitKey
	detail   map[unitKey]map[string]float64 // ms per inner span name
	spans    map[unitKey][]*span.Span       // the unit's own spans
	version  map[unitKey]string
}

func isEntry(k span.Kind) bool { return k == span.KindServer || k == span.KindConsumer }

func hasAttr(s *span.Span, keys ...string) bool {
	for i := range s.Attrs {
		if slices.Contains(keys, s.Attrs[i].Key) {
			return true
		}
	}
	return false
}

func resourceAttr(r *span.Resource, key string) string {
	if r == nil {
		return ""
	}
	for i := range r.Attrs {
		if r.Attrs[i].Key == key {
			return r.Attrs[i].Value.AsString()
		}
	}
	return ""
}

// profileTrace attributes one trace.
func profileTrace(t *analysis.Tree) *traceProfile {
	p := &traceProfile{self: map[unitKey]float64{}, origins: map[unitKey]float64{}, depCalls: map[unitKey]float64{},
		depSelf: map[unitKey]float64{}, depEntry: map[unitKey]unitKey{}, detail: map[unitKey]map[string]float64{},
		spans: map[unitKey][]*span.Span{}, version: map[unitKey]string{}}
	n := t.Len()
	entry := make([]int32, n)
	for i := range entry {
		entry[i] = -1
	}
	for _, i := range t.Order() {
		s := &t.Spans[i]
		if isEntry(s.Kind) {
			entry[i] = i
			continue
		}
		if par := t.Parent(int(i)); par >= 0 && t.Service(par) == t.Service(int(i)) && entry[par] >= 0 {
			entry[i] = entry[par]
		} else {
			entry[i] = i
		}
	}
	own := func(i int) unitKey {
		s := &t.Spans[i]
		return unitKey{Service: t.Service(i), Operation: s.Name, Kind: s.Kind}
	}
	units := make([]unitKey, n)
	head := make([]bool, n) // the span is its unit's own (not folded into another)
	for _, i := range t.Order() {
		s := &t.Spans[i]
		switch s.Kind {
		case span.KindServer, span.KindConsumer:
			units[i] = own(int(i))
		case span.KindClient, span.KindProducer:
			remote, callee := false, ""
			for _, c := range t.Children(int(i)) {
				if t.Service(int(c)) != t.Service(int(i)) || isEntry(t.Spans[c].Kind) {
					remote, callee = true, t.Service(int(c))
					break
				}
			}
			switch {
			case remote:
				units[i] = own(int(i))
				units[i].Service = callee
				head[i] = true
			case hasAttr(s, "db.system", "db.system.name", "messaging.system") && entry[i] != i:
				units[i] = units[entry[i]]
			default:
				u := own(int(i))
				u.dep = true
				units[i] = u
				p.depCalls[u]++
				if entry[i] != i {
					if _, ok := p.depEntry[u]; !ok {
						p.depEntry[u] = units[entry[i]]
					}
				}
			}
		default:
			if entry[i] != i {
				units[i] = units[entry[i]]
			} else {
				units[i] = own(int(i))
			}
		}
		u := units[i]
		head[i] = head[i] || u == own(int(i)) || u.dep
		if head[i] {
			p.spans[u] = append(p.spans[u], s)
			if _, ok := p.version[u]; !ok {
				p.version[u] = resourceAttr(s.Resource, "service.version")
			}
		}
	}
	for idx, self := range analysis.PathSelfBySpan(t.CriticalPath()) {
		u := units[idx]
		ms := float64(self) / 1e6
		if u.dep {
			p.depSelf[u] += ms
			continue
		}
		p.self[u] += ms
		if name := t.Spans[idx].Name; !head[idx] {
			if p.detail[u] == nil {
				p.detail[u] = map[string]float64{}
			}
			p.detail[u][name] += ms
		}
	}
	for _, i := range t.Order() {
		if t.Spans[i].StatusCode != span.StatusError {
			continue
		}
		failedChild := false
		for _, c := range t.Children(int(i)) {
			if t.Spans[c].StatusCode == span.StatusError {
				failedChild = true
				break
			}
		}
		if !failedChild {
			p.origins[units[i]]++
		}
	}
	return p
}

// sampleState is an incident's trace sample: the baseline profiles are
// fetched once, the anomalous ones again at each ranking.
type sampleState struct {
	probes []opKey
	base   []*traceProfile
	notes  []string
}

// probesFor picks up to three affected operations to sample traces of:
// the most severe symptoms of distinct operations, propagation excluded
// (its traces are broken by definition).
func probesFor(inc *incident) []opKey {
	keys := slices.Clone(inc.order)
	slices.SortStableFunc(keys, func(a, b symptomKey) int {
		ma, mb := inc.symptoms[a].last.magnitude, inc.symptoms[b].last.magnitude
		switch {
		case ma > mb:
			return -1
		case ma < mb:
			return 1
		}
		return 0
	})
	var out []opKey
	for _, k := range keys {
		if k.signal == SignalPropagation || slices.Contains(out, k.op) {
			continue
		}
		out = append(out, k.op)
		if len(out) == 3 {
			break
		}
	}
	return out
}

// sampleTraces fetches up to limit of the newest traces with a span of
// op that started in [start, end] and profiles them, skipping the IDs in
// seen (and adding those it takes).
func (d *Detector) sampleTraces(ctx context.Context, op opKey, start, end time.Time, limit int, seen map[span.TraceID]bool) ([]*traceProfile, []string, error) {
	name := op.Operation
	if name == PooledOperation {
		name = "" // any operation of the service
	}
	q := &search.Query{Service: op.Service, SpanName: name, Kinds: []span.Kind{op.Kind},
		Start: uint64(start.UnixNano()), End: uint64(end.UnixNano())}
	if err := q.Compile(); err != nil {
		return nil, nil, err
	}
	res, err := d.db.Search(ctx, q, limit, nil)
	if err != nil {
		return nil, nil, err
	}
	var out []*traceProfile
	var notes []string
	for _, h := range res.Hits {
		if seen[h.TraceID] {
			continue
		}
		seen[h.TraceID] = true
		b, found, err := d.db.FindTrace(ctx, h.TraceID)
		if err != nil {
			return out, notes, err
		}
		if !found || b == nil || len(b.Spans) == 0 {
			notes = append(notes, "trace "+h.TraceID.String()+" not found (retention)")
			continue
		}
		spans := b.Spans
		if len(spans) > d.cfg.MaxTraceSpans {
			notes = append(notes, fmt.Sprintf("trace %s has %d spans; the ranking used the first %d", h.TraceID, len(spans), d.cfg.MaxTraceSpans))
			spans = spans[:d.cfg.MaxTraceSpans]
		}
		t := analysis.NewTree(spans)
		if len(t.CycleBreaks) > 0 {
			notes = append(notes, "trace "+h.TraceID.String()+" has parent cycles; they were cut")
		}
		out = append(out, profileTrace(t))
	}
	return out, notes, nil
}

// rank ranks the culprits of inc. It takes d.mu only to read and write the
// incident.
func (d *Detector) rank(ctx context.Context, inc *incident, ops map[opKey]*opSeries, now time.Time) {
	d.mu.Lock()
	weights := map[string]float64{}
	var prop []finding
	symptomOps := map[opKey]float64{}
	for k, r := range inc.symptoms {
		weights[k.signal] = max(weights[k.signal], r.last.magnitude)
		symptomOps[k.op] = max(symptomOps[k.op], r.last.magnitude)
		if k.signal == SignalPropagation && r.active {
			prop = append(prop, r.last)
		}
	}
	probes := probesFor(inc)
	st := inc.sample
	start := inc.start
	nSymptoms := len(inc.symptoms)
	versionsOf := map[opKey][]string{}
	for k, r := range inc.symptoms {
		if len(r.last.versions) > 0 && (k.signal == SignalLatency || k.signal == SignalErrors) {
			versionsOf[k.op] = r.last.versions
		}
	}
	d.mu.Unlock()

	var notes []string
	partial := false
	var anom []*traceProfile
	if d.db != nil && len(probes) > 0 {
		if st == nil || !slices.Equal(st.probes, probes) {
			st = &sampleState{probes: probes}
			seen := map[span.TraceID]bool{}
			for _, op := range probes {
				ps, ns, err := d.sampleTraces(ctx, op, start.Add(-30*time.Minute), start.Add(-time.Minute), d.cfg.TracesPerProbe, seen)
				st.base = append(st.base, ps...)
				st.notes = append(st.notes, ns...)
				if err != nil {
					st.notes = append(st.notes, "baseline traces: "+err.Error())
				}
			}
		}
		seen := map[span.TraceID]bool{}
		for _, op := range probes {
			ps, ns, err := d.sampleTraces(ctx, op, start, now.Add(-2*time.Second), d.cfg.TracesPerProbe, seen)
			anom = append(anom, ps...)
			notes = append(notes, ns...)
			if err != nil {
				notes = append(notes, "anomalous traces: "+err.Error())
			}
		}
		notes = append(notes, st.notes...)
		if len(notes) > 0 {
			partial = true
		}
	}
	var culprits []Culprit
	var strength float64
	if st != nil && len(anom) >= 5 && len(st.base) >= 5 {
		culprits, strength = scoreUnits(anom, st.base, weights, symptomOps)
	} else if len(probes) > 0 {
		partial = true
		notes = append(notes, fmt.Sprintf("too few traces to compare (%d anomalous, %d baseline): ranked by the service graph only", len(anom), lenBase(st)))
	}
	fromTraces := len(culprits) > 0
	d.mu.Lock()
	prevStrength := inc.rankStrength
	kept := inc.traceRanked && strength < prevStrength/2 && len(prop) == 0
	if kept {
		// The traces show the change much less than they did (the fault is
		// over while its symptoms fade from the windows): keep the ranking
		// made while they showed it.
		inc.rankedAt, inc.rankedWith = now, nSymptoms
	}
	d.mu.Unlock()
	if kept {
		return
	}
	culprits = mergePropagation(culprits, prop, weights)
	if len(culprits) == 0 {
		culprits = graphRanking(symptomOps, d.lastEdges)
	}
	for i := range culprits {
		c := &culprits[i]
		c.Rank = i + 1
		k := opKey{c.Service, c.Operation, kindOf(c.Kind)}
		if vs := versionsOf[k]; len(vs) == 1 {
			c.Version = vs[0]
			c.Evidence = append(c.Evidence, "confined to version "+vs[0]+": the other versions' calls are as usual")
		}
		if st != nil && i == 0 {
			if attr, ev := explainAttribute(k, c.Kind == "client" && !isEntry(k.Kind), anom, st.base, c.Version); attr != "" {
				c.Attribute = attr
				c.Evidence = append(c.Evidence, ev)
			}
		}
	}
	if len(notes) > 10 {
		notes = append(notes[:10], fmt.Sprintf("and %d more notes", len(notes)-10))
	}
	d.mu.Lock()
	inc.culprits, inc.rankedAt, inc.rankedWith, inc.sample = culprits, now, nSymptoms, st
	inc.traceRanked = inc.traceRanked || fromTraces
	if fromTraces {
		inc.rankStrength = strength
	}
	inc.partial, inc.notes = partial, notes
	d.mu.Unlock()
}

func lenBase(st *sampleState) int {
	if st == nil {
		return 0
	}
	return len(st.base)
}

func kindOf(s string) span.Kind {
	k, _ := span.ParseKind(s)
	return k
}

// The smallest changes per trace a unit is credited with: a significant
// change of a tenth of a millisecond is real but explains nothing.
const (
	minSelfDelta   = 1.0  // ms of self time on the critical path
	minOriginDelta = 0.01 // errors originating in it
	// errorWorthMs weighs an error per trace against latency when rankings
	// are compared (see rank).
	errorWorthMs = 100.0
)

// unitChange is one unit's change between the samples.
type unitChange struct {
	unit     unitKey
	latency  float64 // ms per trace, significant part only
	errors   float64 // error origins per trace, significant part only
	evidence []string
	latShare float64
	errShare float64
	score    float64
}

// scoreUnits compares the anomalous and baseline profiles and returns the
// units ranked by their share of the change.
func scoreUnits(anom, base []*traceProfile, weights map[string]float64, symptomOps map[opKey]float64) ([]Culprit, float64) {
	const sigLevel = 0.01
	units := map[unitKey]bool{}
	for _, set := range [][]*traceProfile{anom, base} {
		for _, p := range set {
			for u := range p.self {
				units[u] = true
			}
			for u := range p.origins {
				units[u] = true
			}
			for u := range p.depCalls {
				units[u] = true
			}
		}
	}
	changes := map[unitKey]*unitChange{}
	get := func(u unitKey) *unitChange {
		c := changes[u]
		if c == nil {
			c = &unitChange{unit: u}
			changes[u] = c
		}
		return c
	}
	values := func(set []*traceProfile, f func(*traceProfile) float64) []float64 {
		out := make([]float64, len(set))
		for i, p := range set {
			out[i] = f(p)
		}
		return out
	}
	na, nb := len(anom), len(base)
	sortedUnits := make([]unitKey, 0, len(units))
	for u := range units {
		sortedUnits = append(sortedUnits, u)
	}
	slices.SortFunc(sortedUnits, func(a, b unitKey) int {
		if c := compareOp(a.op(), b.op()); c != 0 {
			return c
		}
		switch {
		case a.dep == b.dep:
			return 0
		case a.dep:
			return 1
		}
		return -1
	})
	for _, u := range sortedUnits {
		if !u.dep {
			diff, p := welch(values(anom, func(t *traceProfile) float64 { return t.self[u] }), values(base, func(t *traceProfile) float64 { return t.self[u] }))
			if p < sigLevel && diff >= minSelfDelta {
				c := get(u)
				c.latency += diff
				c.evidence = append(c.evidence, fmt.Sprintf("self time on the critical path %+.1fms per trace (%d traces vs %d before, p=%.2g)", diff, na, nb, p)+innerDetail(u, anom, base))
			}
		} else {
			calls := func(t *traceProfile) float64 { return t.depCalls[u] }
			ca, cb := values(anom, calls), values(base, calls)
			nA, _ := meanVar(ca)
			nB, _ := meanVar(cb)
			perCall := func(set []*traceProfile) (vals []float64, mean float64) {
				var sum, n float64
				for _, t := range set {
					if t.depCalls[u] > 0 {
						vals = append(vals, t.depSelf[u]/t.depCalls[u])
						sum += t.depSelf[u]
						n += t.depCalls[u]
					}
				}
				if n > 0 {
					mean = sum / n
				}
				return vals, mean
			}
			va, mA := perCall(anom)
			vb, mB := perCall(base)
			if _, p := welch(va, vb); p < sigLevel && nA*(mA-mB) >= minSelfDelta {
				c := get(u)
				c.latency += nA * (mA - mB)
				c.evidence = append(c.evidence, fmt.Sprintf("each call to the uninstrumented peer %+.1fms (%.1fms vs %.1fms, p=%.2g), %.1f calls per trace", mA-mB, mA, mB, p, nA))
			}
			if _, p := welch(ca, cb); p < sigLevel && (nA-nB)*mB >= minSelfDelta {
				e := unitKey{}
				for _, t := range anom {
					if x, ok := t.depEntry[u]; ok {
						e = x
						break
					}
				}
				if e != (unitKey{}) {
					c := get(e)
					c.latency += (nA - nB) * mB
					c.evidence = append(c.evidence, fmt.Sprintf("calls %s %.1f times per trace instead of %.1f (p=%.2g)", u.Operation, nA, nB, p))
				}
			}
		}
		diff, p := welch(values(anom, func(t *traceProfile) float64 { return t.origins[u] }), values(base, func(t *traceProfile) float64 { return t.origins[u] }))
		if p < sigLevel && diff >= minOriginDelta {
			c := get(u)
			c.errors += diff
			ma, _ := meanVar(values(anom, func(t *traceProfile) float64 { return t.origins[u] }))
			mb, _ := meanVar(values(base, func(t *traceProfile) float64 { return t.origins[u] }))
			c.evidence = append(c.evidence, fmt.Sprintf("errors originating here: %.2f per trace vs %.2f before (p=%.2g)", ma, mb, p))
		}
	}
	var totLat, totErr float64
	for _, c := range changes {
		totLat += c.latency
		totErr += c.errors
	}
	strength := totLat + errorWorthMs*totErr
	wl, we := weights[SignalLatency], weights[SignalErrors]
	if totLat == 0 {
		wl = 0
	}
	if totErr == 0 {
		we = 0
	}
	if wl+we == 0 {
		wl, we = 1, 1
	}
	list := make([]*unitChange, 0, len(changes))
	for _, c := range changes {
		if totLat > 0 {
			c.latShare = c.latency / totLat
		}
		if totErr > 0 {
			c.errShare = c.errors / totErr
		}
		c.score = (wl*c.latShare + we*c.errShare) / (wl + we)
		// A unit whose own operation shows the anomaly is a little more
		// likely than one only the traces point at.
		if symptomOps[c.unit.op()] > 0 {
			c.score = math.Min(1, c.score+0.02)
		}
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b *unitChange) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return compareOp(a.unit.op(), b.unit.op())
	})
	var out []Culprit
	for _, c := range list {
		if c.score < 0.05 || len(out) == 5 {
			break
		}
		out = append(out, Culprit{Service: c.unit.Service, Operation: c.unit.Operation, Kind: c.unit.Kind.String(),
			Score: math.Round(c.score*1000) / 1000, SelfTimeDeltaMs: math.Round(c.latency*10) / 10,
			ErrorOriginDelta: round4(c.errors), Evidence: c.evidence})
	}
	return out, strength
}

// innerDetail names the inner spans (queries, internal spans) whose self
// time grew the most inside a unit.
func innerDetail(u unitKey, anom, base []*traceProfile) string {
	mean := func(set []*traceProfile) map[string]float64 {
		out := map[string]float64{}
		for _, t := range set {
			for k, v := range t.detail[u] {
				out[k] += v / float64(len(set))
			}
		}
		return out
	}
	ma, mb := mean(anom), mean(base)
	type kv struct {
		k string
		v float64
	}
	var list []kv
	for k, v := range ma {
		if d := v - mb[k]; d >= 1 {
			list = append(list, kv{k, d})
		}
	}
	slices.SortFunc(list, func(a, b kv) int {
		switch {
		case a.v > b.v:
			return -1
		case a.v < b.v:
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	if len(list) == 0 {
		return ""
	}
	parts := []string{}
	for _, x := range list[:min(3, len(list))] {
		s := fmt.Sprintf("%s %+.1fms", x.k, x.v)
		if mb[x.k] == 0 {
			s += " (new)"
		}
		parts = append(parts, s)
	}
	return "; inside it: " + strings.Join(parts, ", ")
}

// mergePropagation adds the operations whose spans lost their parents:
// broken propagation is its own cause, found directly.
func mergePropagation(cs []Culprit, prop []finding, weights map[string]float64) []Culprit {
	if len(prop) == 0 {
		return cs
	}
	wp := weights[SignalPropagation]
	var wo float64
	for s, w := range weights {
		if s != SignalPropagation {
			wo = max(wo, w)
		}
	}
	if len(cs) == 0 {
		wo = 0
	}
	share := wp / (wp + wo)
	for i := range cs {
		cs[i].Score = math.Round(cs[i].Score*(1-share)*1000) / 1000
	}
	var total float64
	for _, f := range prop {
		total += f.magnitude
	}
	for _, f := range prop {
		cs = append(cs, Culprit{Service: f.key.op.Service, Operation: f.key.op.Operation, Kind: f.key.op.Kind.String(),
			Score:    math.Round(share*f.magnitude/total*1000) / 1000,
			Evidence: []string{f.summary}})
	}
	slices.SortStableFunc(cs, func(a, b Culprit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return cs
}

// graphRanking ranks the affected operations when no traces can be
// compared: an operation of a service none of whose callees (in the
// service graph) is affected comes first, the larger change first among
// equals.
func graphRanking(symptomOps map[opKey]float64, edges []spanmetrics.EdgeSeries) []Culprit {
	affected := map[string]bool{}
	for k := range symptomOps {
		affected[k.Service] = true
	}
	callees := map[string][]string{}
	hasDB, hasPeer := map[string]bool{}, map[string]bool{}
	for _, e := range edges {
		callees[e.Key.Client] = append(callees[e.Key.Client], e.Key.Server)
		switch e.Key.ConnectionType {
		case spanmetrics.ConnDatabase, spanmetrics.ConnMessaging:
			hasDB[e.Key.Client] = true
		case spanmetrics.ConnVirtual:
			hasPeer[e.Key.Client] = true
		}
	}
	// A service that calls only datastores of its own: its affected calls
	// belong to its affected entry operation (as the trace attribution
	// has it).
	entry := map[string]opKey{}
	for k, m := range symptomOps {
		if isEntry(k.Kind) && (entry[k.Service] == opKey{} || m > symptomOps[entry[k.Service]]) {
			entry[k.Service] = k
		}
	}
	folded := map[opKey]float64{}
	for k, m := range symptomOps {
		if e, ok := entry[k.Service]; ok && !isEntry(k.Kind) && hasDB[k.Service] && !hasPeer[k.Service] {
			folded[e] = max(folded[e], m)
			continue
		}
		folded[k] = max(folded[k], m)
	}
	symptomOps = folded
	type cand struct {
		k     opKey
		deep  bool
		score float64
	}
	var list []cand
	for k, m := range symptomOps {
		deep := true
		for _, c := range callees[k.Service] {
			if affected[c] && c != k.Service {
				deep = false
			}
		}
		list = append(list, cand{k, deep, m})
	}
	slices.SortFunc(list, func(a, b cand) int {
		wa, wb := a.score, b.score
		if !a.deep {
			wa /= 2
		}
		if !b.deep {
			wb /= 2
		}
		switch {
		case wa > wb:
			return -1
		case wa < wb:
			return 1
		}
		return compareOp(a.k, b.k)
	})
	// Scores: the change's share, halved for an operation whose service
	// calls an affected one.
	var total float64
	weight := func(c cand) float64 {
		if c.deep {
			return c.score
		}
		return c.score / 2
	}
	for _, c := range list {
		total += weight(c)
	}
	var out []Culprit
	for _, c := range list[:min(5, len(list))] {
		ev := "affected, and none of the services it calls is"
		if !c.deep {
			ev = "affected, as is a service it calls"
		}
		score := 0.0
		if total > 0 {
			score = math.Round(weight(c)/total*1000) / 1000
		}
		out = append(out, Culprit{Service: c.k.Service, Operation: c.k.Operation, Kind: c.k.Kind.String(), Score: score, Evidence: []string{ev}})
	}
	return out
}

// explainAttribute looks for one attribute value that sets the unit's
// affected spans (failed, or slower than the baseline's p90) apart from
// the others (BubbleUp-style, analysis.RankAttributes): present on at
// least 80% of them and at most 20% of the rest.
func explainAttribute(k opKey, dep bool, anom, base []*traceProfile, version string) (string, string) {
	u := unitKey{Service: k.Service, Operation: k.Operation, Kind: k.Kind, dep: dep}
	var baseSpans []*span.Span
	var durs []float64
	for _, t := range base {
		for _, s := range t.spans[u] {
			baseSpans = append(baseSpans, s)
			durs = append(durs, float64(s.Duration()))
		}
	}
	if len(durs) < 5 {
		return "", ""
	}
	slices.Sort(durs)
	p90 := durs[int(0.9*float64(len(durs)-1))]
	var bad, good []*span.Span
	for _, t := range anom {
		for _, s := range t.spans[u] {
			if s.StatusCode == span.StatusError || float64(s.Duration()) > p90*1.25 {
				bad = append(bad, s)
			} else {
				good = append(good, s)
			}
		}
	}
	if len(bad) < 5 {
		return "", ""
	}
	r := analysis.RankAttributes(bad, append(good, baseSpans...), analysis.RankOptions{Alpha: 0.01, MinDiff: 0.5})
	for _, a := range r.Attributes {
		if a.Missing || a.SelectionShare < 0.8 || a.BaselineShare > 0.2 {
			continue
		}
		if a.Key == "name" || a.Key == "kind" || a.Key == "status" || a.Key == "resource.service.name" ||
			a.Key == "resource.service.instance.id" || a.Key == "resource.host.name" {
			continue
		}
		if version != "" && a.Key != "resource.service.version" {
			// With the version known, only an attribute beyond it is news.
			if strings.HasPrefix(a.Key, "resource.") {
				continue
			}
		}
		cond := searchCond(a.Key, a.Value)
		return cond, fmt.Sprintf("%s on %.0f%% of its slow or failed spans and %.0f%% of the others", cond, 100*a.SelectionShare, 100*a.BaselineShare)
	}
	return "", ""
}

// searchCond writes key=value as /api/v1/search's attr parameter takes it:
// resource attributes with the resource: scope, strings quoted unless they
// are plain words, paths or numbers.
func searchCond(key, value string) string {
	k := key
	switch {
	case strings.HasPrefix(key, "resource."):
		k = "resource:" + strings.TrimPrefix(key, "resource.")
	case strings.HasPrefix(key, "span."):
		k = strings.TrimPrefix(key, "span.")
	}
	v := value
	plain := v != ""
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-:", r)) {
			plain = false
			break
		}
	}
	if !plain {
		v = strconv.Quote(v)
	}
	return k + "=" + v
}
