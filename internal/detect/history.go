package detect

import (
	"context"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
)

// opKey identifies one operation: the RED series of every version of it.
type opKey struct {
	Service   string
	Operation string
	Kind      span.Kind
}

func (k opKey) String() string { return k.Service + " " + k.Operation + " (" + k.Kind.String() + ")" }

// agg is RED data summed over minutes (and versions).
type agg struct {
	Calls, Errors uint64
	DurSum        time.Duration
	Hist          []uint64
	Exemplars     []spanmetrics.Exemplar
}

func newHist() []uint64 { return make([]uint64, len(spanmetrics.LatencyBounds)+1) }

func (a *agg) add(calls, errs uint64, dur time.Duration, hist []uint64) {
	a.Calls += calls
	a.Errors += errs
	a.DurSum += dur
	if a.Hist == nil {
		a.Hist = newHist()
	}
	for i, c := range hist {
		if i < len(a.Hist) {
			a.Hist[i] += c
		}
	}
}

func (a *agg) addAgg(o *agg) {
	if o == nil {
		return
	}
	a.add(o.Calls, o.Errors, o.DurSum, o.Hist)
	a.Exemplars = append(a.Exemplars, o.Exemplars...)
}

func (a *agg) errorRate() float64 {
	if a.Calls == 0 {
		return 0
	}
	return float64(a.Errors) / float64(a.Calls)
}

func (a *agg) quantile(q float64) time.Duration {
	if a.Hist == nil {
		return 0
	}
	return spanmetrics.Quantile(a.Hist, q)
}

// opSeries is the per-minute history of one operation, all versions
// summed, and per version.
type opSeries struct {
	key opKey
	// pooled is set for the sum of a service's operations of one kind
	// (Operation PooledOperation); window is the tested window in minutes
	// when longer than Window (a sparse operation, see sparseWindow).
	pooled   bool
	window   int
	minutes  map[int64]*agg            // unix minute → data
	versions map[string]map[int64]*agg // version → unix minute → data
}

// sum adds the minutes [from, to] of the operation (of one version when
// version is set) that skip does not reject.
func (s *opSeries) sum(from, to int64, version *string, skip func(int64) bool) *agg {
	src := s.minutes
	if version != nil {
		src = s.versions[*version]
	}
	out := &agg{Hist: newHist()}
	for m := from; m <= to; m++ {
		if skip != nil && skip(m) {
			continue
		}
		out.addAgg(src[m])
	}
	return out
}

// historyCache keeps the RED minutes the detector needs in memory, so
// that an evaluation reads only the minutes that can still change.
type historyCache struct {
	raw         map[spanmetrics.Key]map[int64]spanmetrics.Bucket
	closedUntil int64 // minutes before it are final in raw
	firstMinute int64 // the earliest minute with any data (0: none yet)
}

func newHistoryCache() *historyCache {
	return &historyCache{raw: map[spanmetrics.Key]map[int64]spanmetrics.Bucket{}}
}

func unixMinute(t time.Time) int64 { return t.Unix() / 60 }

func minuteTime(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

// load refreshes the cache to hold the minutes of [now-span, now] and
// returns them per operation.
func (c *historyCache) load(ctx context.Context, h History, now time.Time, span time.Duration) (map[opKey]*opSeries, error) {
	first := unixMinute(now.Add(-span))
	cur := unixMinute(now)
	from := max(c.closedUntil, first)
	series, err := h.Range(ctx, nil, minuteTime(from), minuteTime(cur+1), time.Minute)
	if err != nil {
		return nil, err
	}
	for k, mins := range c.raw {
		for m := range mins {
			if m < first || m >= from {
				delete(mins, m)
			}
		}
		if len(mins) == 0 {
			delete(c.raw, k)
		}
	}
	for _, s := range series {
		mins := c.raw[s.Key]
		if mins == nil {
			mins = map[int64]spanmetrics.Bucket{}
			c.raw[s.Key] = mins
		}
		for _, b := range s.Buckets {
			m := unixMinute(b.Start)
			mins[m] = b
			if c.firstMinute == 0 || m < c.firstMinute {
				c.firstMinute = m
			}
		}
	}
	// A minute is final once it ended more than a minute ago (spans
	// arrive within seconds of their end; span metrics have written it).
	c.closedUntil = cur - 1
	out := map[opKey]*opSeries{}
	for k, mins := range c.raw {
		ok := opKey{Service: k.Service, Operation: k.Operation, Kind: k.Kind}
		s := out[ok]
		if s == nil {
			s = &opSeries{key: ok, minutes: map[int64]*agg{}, versions: map[string]map[int64]*agg{}}
			out[ok] = s
		}
		vm := s.versions[k.Version]
		if vm == nil {
			vm = map[int64]*agg{}
			s.versions[k.Version] = vm
		}
		for m, b := range mins {
			a := s.minutes[m]
			if a == nil {
				a = &agg{Hist: newHist()}
				s.minutes[m] = a
			}
			a.add(b.Calls, b.Errors, b.DurationSum, b.Hist)
			a.Exemplars = append(a.Exemplars, b.Exemplars...)
			v := &agg{Hist: newHist()}
			v.add(b.Calls, b.Errors, b.DurationSum, b.Hist)
			v.Exemplars = b.Exemplars
			vm[m] = v
		}
	}
	return out, nil
}

// sortedOps returns the operations in a stable order.
func sortedOps(ops map[opKey]*opSeries) []*opSeries {
	out := make([]*opSeries, 0, len(ops))
	for _, s := range ops {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *opSeries) int { return compareOp(a.key, b.key) })
	return out
}

func compareOp(a, b opKey) int {
	if a.Service != b.Service {
		if a.Service < b.Service {
			return -1
		}
		return 1
	}
	if a.Operation != b.Operation {
		if a.Operation < b.Operation {
			return -1
		}
		return 1
	}
	return int(a.Kind) - int(b.Kind)
}

// PooledOperation names, in a symptom, the sum of every operation of one
// kind of a service: tested when the service has several, so that a
// change of the whole service shows even when each operation alone has
// too few calls.
const PooledOperation = "*"

// pooledSeries sums, per service, the server and consumer operations of
// ops when it has at least two of a kind.
func pooledSeries(ops []*opSeries) []*opSeries {
	groups := map[opKey][]*opSeries{}
	for _, s := range ops {
		k := s.key
		if (k.Kind == span.KindServer || k.Kind == span.KindConsumer) && k.Operation != PooledOperation {
			g := opKey{Service: k.Service, Operation: PooledOperation, Kind: k.Kind}
			groups[g] = append(groups[g], s)
		}
	}
	var out []*opSeries
	for g, members := range groups {
		if len(members) < 2 {
			continue
		}
		p := &opSeries{key: g, pooled: true, minutes: map[int64]*agg{}, versions: map[string]map[int64]*agg{}}
		for _, s := range members {
			for m, a := range s.minutes {
				pa := p.minutes[m]
				if pa == nil {
					pa = &agg{Hist: newHist()}
					p.minutes[m] = pa
				}
				pa.addAgg(a)
			}
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *opSeries) int { return compareOp(a.key, b.key) })
	return out
}
