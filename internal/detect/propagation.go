package detect

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
)

// Broken context propagation leaves latency and errors alone: a service
// whose propagator stops reading trace context starts a new trace for
// every request it serves. The RED history cannot show it, so the
// detector scans the server and consumer spans stored since its last
// evaluation (only their parent IDs) and counts, per operation and minute,
// how many are roots. An operation whose spans had parents and now start
// traces is a propagation anomaly, and its own culprit. The same scan
// notes each service's resource identity (service.version and
// deployment.* attributes) for the deployment tracker.

// propSettle is how long after a span's start the scan waits for it to
// arrive (batching and export take a second or two).
const propSettle = 10 * time.Second

// propBackfill bounds the first scan's look back.
const propBackfill = 15 * time.Minute

// Bounds on what the scan keeps: spans per scan (beyond, it stops early
// and counts only part of the interval; shares of root spans stay valid on
// a part), and the services, deployment attributes per service and values
// per attribute tracked for the deployment tracker.
const (
	maxScanSpans       = 500_000
	maxTrackedServices = 1000
	maxTrackedAttrs    = 16
	maxTrackedValues   = 64
)

type propMinute struct {
	total, roots uint64
	exemplars    []spanmetrics.Exemplar // a few root spans
}

// propagation holds the root counts per operation and minute.
type propagation struct {
	scanned time.Time // spans that started before it have been counted
	minutes map[opKey]map[int64]*propMinute
	// seen is the resource identity per service: attribute → value →
	// when seen, for the deployment tracker.
	seen map[string]map[string]map[string]*valueSeen
}

// valueSeen is when one resource attribute value of a service was seen.
type valueSeen struct {
	first, last time.Time
	spans       uint64
}

func newPropagation() *propagation {
	return &propagation{minutes: map[opKey]map[int64]*propMinute{}, seen: map[string]map[string]map[string]*valueSeen{}}
}

// trackedAttr reports whether a resource attribute is part of a service's
// deployed identity.
func trackedAttr(key string) bool {
	return key == "service.version" || strings.HasPrefix(key, "deployment.") && key != "deployment.environment" && key != "deployment.environment.name"
}

// update scans the server and consumer spans that started since the last
// scan, up to propSettle ago.
func (p *propagation) update(ctx context.Context, sc storage.Reader, now time.Time) error {
	end := now.Add(-propSettle)
	start := p.scanned
	if start.IsZero() || end.Sub(start) > propBackfill {
		start = end.Add(-propBackfill)
	}
	if !end.After(start) {
		return nil
	}
	q := &search.Query{Kinds: []span.Kind{span.KindServer, span.KindConsumer},
		Start: uint64(start.UnixNano()), End: uint64(end.UnixNano()) - 1}
	if err := q.Compile(); err != nil {
		return err
	}
	type resInfo struct {
		service string
		attrs   [][2]string
	}
	resCache := map[*span.Resource]*resInfo{}
	// Counted as the spans come, into a delta merged once the scan is
	// whole (a failed scan leaves p as it was, to be scanned again):
	// memory follows the operations and minutes, not the spans.
	delta := newPropagation()
	n := 0
	// ScanSpans may call back concurrently: count under a lock.
	var mu sync.Mutex
	err := sc.ScanSpans(ctx, q, storage.Columns{Parent: true}, func(s *span.Span) bool {
		mu.Lock()
		defer mu.Unlock()
		ri := resCache[s.Resource]
		if ri == nil {
			ri = &resInfo{service: strings.Clone(s.Resource.ServiceName())}
			if s.Resource != nil {
				for _, a := range s.Resource.Attrs {
					if trackedAttr(a.Key) {
						ri.attrs = append(ri.attrs, [2]string{strings.Clone(a.Key), strings.Clone(a.Value.AsString())})
					}
				}
			}
			resCache[s.Resource] = ri
		}
		at := time.Unix(0, int64(s.StartUnixNano))
		pm := delta.minute(opKey{Service: ri.service, Operation: s.Name, Kind: s.Kind}, unixMinute(at))
		pm.total++
		if s.ParentSpanID.IsZero() {
			pm.roots++
			if len(pm.exemplars) < 3 {
				pm.exemplars = append(pm.exemplars, spanmetrics.Exemplar{TraceID: s.TraceID, SpanID: s.SpanID, Duration: time.Duration(s.Duration()), Error: s.StatusCode == span.StatusError})
			}
		}
		for _, kv := range ri.attrs {
			if vs := delta.value(ri.service, kv[0], kv[1], at); vs != nil {
				vs.spans++
			}
		}
		n++
		return n < maxScanSpans
	})
	if err != nil {
		return err
	}
	p.merge(delta)
	p.scanned = end
	// Keep two hours of minutes.
	oldest := unixMinute(now.Add(-2 * time.Hour))
	for k, mins := range p.minutes {
		for m := range mins {
			if m < oldest {
				delete(mins, m)
			}
		}
		if len(mins) == 0 {
			delete(p.minutes, k)
		}
	}
	return nil
}

// minute returns the counts of op in minute m, creating them (the
// operation name cloned: the caller's may be a scan's borrowed string).
func (p *propagation) minute(op opKey, m int64) *propMinute {
	mins := p.minutes[op]
	if mins == nil {
		op.Operation = strings.Clone(op.Operation)
		mins = map[int64]*propMinute{}
		p.minutes[op] = mins
	}
	pm := mins[m]
	if pm == nil {
		pm = &propMinute{}
		mins[m] = pm
	}
	return pm
}

// value returns when the service's attribute value was seen, widened to
// at, creating it within the tracking bounds; nil beyond them (hostile or
// runaway services, attributes or values: the first ones are enough).
func (p *propagation) value(service, key, val string, at time.Time) *valueSeen {
	svc := p.seen[service]
	if svc == nil {
		if len(p.seen) >= maxTrackedServices {
			return nil
		}
		svc = map[string]map[string]*valueSeen{}
		p.seen[service] = svc
	}
	vals := svc[key]
	if vals == nil {
		if len(svc) >= maxTrackedAttrs {
			return nil
		}
		vals = map[string]*valueSeen{}
		svc[key] = vals
	}
	vs := vals[val]
	if vs == nil {
		if len(vals) >= maxTrackedValues {
			return nil
		}
		vs = &valueSeen{first: at, last: at}
		vals[val] = vs
	}
	if at.Before(vs.first) {
		vs.first = at
	}
	if at.After(vs.last) {
		vs.last = at
	}
	return vs
}

// merge adds the counts of d, one scan's, into p.
func (p *propagation) merge(d *propagation) {
	for op, mins := range d.minutes {
		for m, dm := range mins {
			pm := p.minute(op, m)
			pm.total += dm.total
			pm.roots += dm.roots
			for _, ex := range dm.exemplars {
				if len(pm.exemplars) < 3 {
					pm.exemplars = append(pm.exemplars, ex)
				}
			}
		}
	}
	for service, attrs := range d.seen {
		for key, vals := range attrs {
			for val, dv := range vals {
				if vs := p.value(service, key, val, dv.first); vs != nil {
					if dv.last.After(vs.last) {
						vs.last = dv.last
					}
					vs.spans += dv.spans
				}
			}
		}
	}
}

// test compares each operation's share of root spans over the recent
// window with its baseline: spans that had parents and now start traces.
func (p *propagation) test(cfg Config, now time.Time, excluded func(string, int64) bool, tested map[opKey]bool) []finding {
	m0 := unixMinute(now.Add(-propSettle))
	w := int64(cfg.Window / time.Minute)
	alpha := cfg.Alpha / float64(w)
	var out []finding
	for k, mins := range p.minutes {
		var base propMinute
		for m := m0 - w - int64(cfg.Trailing/time.Minute); m <= m0-w; m++ {
			if pm := mins[m]; pm != nil && !excluded(k.Service, m) {
				base.total += pm.total
				base.roots += pm.roots
			}
		}
		if base.total < 50 {
			continue
		}
		s2 := float64(base.roots) / float64(base.total)
		// Windows of the last 1..w minutes, as for the RED signals: the
		// shortest shows a change soonest.
		var best *finding
		for n := int64(1); n <= w; n++ {
			var rec propMinute
			var exemplars []spanmetrics.Exemplar
			for m := m0 - n + 1; m <= m0; m++ {
				if pm := mins[m]; pm != nil {
					rec.total += pm.total
					rec.roots += pm.roots
					exemplars = append(exemplars, pm.exemplars...)
				}
			}
			if rec.total < uint64(cfg.MinCalls) {
				continue
			}
			tested[k] = true
			s1 := float64(rec.roots) / float64(rec.total)
			if s2 > 0.5 || s1-s2 < 0.5 {
				continue
			}
			pv := fisherUpper(rec.roots, rec.total, base.roots, base.total)
			if pv >= alpha || best != nil && pv >= best.p {
				continue
			}
			first := m0
			for m := m0; m > m0-w-3; m-- {
				pm := mins[m]
				if pm == nil || pm.total == 0 || float64(pm.roots)/float64(pm.total) < s2+(s1-s2)/3 {
					if m == m0 {
						continue // the current minute may hold seconds of data
					}
					break
				}
				first = m
			}
			// A stalled host does not make spans start traces: no
			// confirmation on fresh data is needed (see confirm).
			best = &finding{key: symptomKey{k, SignalPropagation}, confirmed: true, minute: m0, p: pv, magnitude: math.Log2((s1 + 0.05) / (s2 + 0.05)),
				measure: "rootShare", observed: round4(s1), expected: round4(s2), calls: rec.total, window: time.Duration(n) * time.Minute,
				onset: minuteTime(first), mode: ModeTrailing, exemplars: exemplars[:min(3, len(exemplars))],
				summary: fmt.Sprintf("%s %s: %.0f%% of its spans start a new trace (expected %.0f%%): trace context is not propagated to it", k.Service, k.Operation, 100*s1, 100*s2)}
		}
		if best != nil {
			out = append(out, *best)
		}
	}
	return out
}
