package engine

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/clew-dev/clew/internal/traceql"
)

// compareAcc runs compare({selection}, topN, start, end): for every
// attribute of the matched spans (span and resource attributes, and the
// intrinsics name, status and kind), the number of spans per value over
// time, split into the spans that match the selection ("selection") and
// the others ("baseline"), keeping the topN values (default 10) of each
// attribute and side; per attribute and side the totals
// ("selection_total", "baseline_total"); and, for an attribute with more
// than topN values on a side, a series labelled
// __meta_error="__too_many_values__" (its samples count all the
// attribute's spans). The side is the label __meta_type. With start and
// end, only spans starting within [start, end) count as selected.
// observe may be called concurrently.
type compareAcc struct {
	m           *traceql.MetricsAggregate
	topk        []*traceql.TopK
	start, step uint64
	nb          int
	maxValues   int

	mu      sync.Mutex
	counts  map[compareKey][]float64
	valueOf map[compareKey]Value
	totals  map[[2]string][]float64
	limited bool
}

type compareKey struct {
	side, attr, val string
}

func newCompareAcc(m *traceql.MetricsAggregate, topk []*traceql.TopK, start, step uint64, nb, maxValues int) *compareAcc {
	return &compareAcc{m: m, topk: topk, start: start, step: step, nb: nb, maxValues: maxValues,
		counts: map[compareKey][]float64{}, valueOf: map[compareKey]Value{}, totals: map[[2]string][]float64{}}
}

func (a *compareAcc) observe(p *program, t *trace, i int, selected bool, _ *[]byte) {
	s := &t.spans[i]
	side := "baseline"
	if selected {
		side = "selection"
	}
	b := int((s.StartUnixNano - a.start) / a.step)
	a.mu.Lock()
	defer a.mu.Unlock()
	add := func(attr string, v Value) {
		if v.Nil() || len(v.multi) > 0 {
			return
		}
		tk := [2]string{side, attr}
		tot := a.totals[tk]
		if tot == nil {
			if len(a.totals) >= a.maxValues {
				a.limited = true
				return
			}
			tot = make([]float64, a.nb)
			a.totals[[2]string{side, strings.Clone(attr)}] = tot
		}
		tot[b]++
		k := compareKey{side: side, attr: attr, val: v.key()}
		c := a.counts[k]
		if c == nil {
			if len(a.counts) >= a.maxValues {
				a.limited = true
				return
			}
			c = make([]float64, a.nb)
			k.attr = strings.Clone(k.attr)
			a.counts[k] = c
			a.valueOf[k] = cloneValue(v)
		}
		c[b]++
	}
	add("name", strVal(s.Name))
	add("status", Value{Type: TypeStatus, Int: int64(s.StatusCode)})
	add("kind", Value{Type: TypeKind, Int: int64(s.Kind)})
	for _, at := range s.Attrs {
		add("span."+at.Key, fromSpan(at.Value))
	}
	if s.Resource != nil {
		for _, at := range s.Resource.Attrs {
			add("resource."+at.Key, fromSpan(at.Value))
		}
	}
}

func (a *compareAcc) finish(res *MetricsResult) {
	res.SeriesLimited = res.SeriesLimited || a.limited
	topN := 10
	if a.m.HasTopN {
		topN = int(a.m.TopN)
	}
	ts := func(b int) int64 { return int64((a.start + uint64(b)*a.step) / 1e6) }
	samples := func(c []float64) []Sample {
		var out []Sample
		for b, v := range c {
			if v > 0 {
				out = append(out, Sample{ts(b), v})
			}
		}
		return out
	}
	sum := func(c []float64) (s float64) {
		for _, v := range c {
			s += v
		}
		return s
	}
	groups := map[[2]string][]compareKey{}
	for k := range a.counts {
		g := [2]string{k.side, k.attr}
		groups[g] = append(groups[g], k)
	}
	tooMany := map[string]bool{}
	for g, ks := range groups {
		slices.SortFunc(ks, func(x, y compareKey) int {
			return cmp.Or(cmp.Compare(sum(a.counts[y]), sum(a.counts[x])), cmp.Compare(x.val, y.val))
		})
		if len(ks) > max(topN, 0) {
			tooMany[g[1]] = true
		}
		for _, k := range ks[:min(len(ks), max(topN, 0))] {
			res.Series = append(res.Series, Series{
				Labels:  []Label{{Key: "__meta_type", Value: strVal(k.side)}, {Key: k.attr, Value: a.valueOf[k]}},
				Samples: samples(a.counts[k]),
			})
		}
	}
	for g, tot := range a.totals {
		res.Series = append(res.Series, Series{
			Labels:  []Label{{Key: "__meta_type", Value: strVal(g[0] + "_total")}, {Key: g[1]}},
			Samples: samples(tot),
		})
	}
	for attr := range tooMany {
		all := make([]float64, a.nb)
		for _, side := range []string{"selection", "baseline"} {
			for b, v := range a.totals[[2]string{side, attr}] {
				all[b] += v
			}
		}
		res.Series = append(res.Series, Series{
			Labels:  []Label{{Key: "__meta_error", Value: strVal("__too_many_values__")}, {Key: attr}},
			Samples: samples(all),
		})
	}
	finishSeries(res, a.m, a.topk)
}
