package engine

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

// MaxPoints bounds the samples per series of a range query.
const MaxPoints = 11000

// MetricsRequest is one TraceQL metrics query over [Start, End).
type MetricsRequest struct {
	Query *traceql.Query
	// Start and End bound the span start times counted, in Unix
	// nanoseconds: Start inclusive, End exclusive.
	Start, End uint64
	// Step is the width of each sample's interval in nanoseconds; 0 means
	// one interval over the whole range (an instant query).
	Step uint64
	// Exemplars bounds the exemplars per series: 0 takes the engine's
	// default, a negative value asks for none. The exemplars hint of the
	// query (false or a count) lowers it further.
	Exemplars int
}

// Sample is one point of a series: the value over [TimestampMs, TimestampMs
// + step).
type Sample struct {
	TimestampMs int64
	Value       float64
}

// Exemplar is a span that contributed to a series.
type Exemplar struct {
	TraceID     span.TraceID
	SpanID      span.SpanID
	TimestampMs int64
	Value       float64
}

// Series is one time series of a metrics result.
type Series struct {
	Labels    []Label
	Samples   []Sample
	Exemplars []Exemplar
}

// MetricsResult is the answer of Metrics.
type MetricsResult struct {
	// Series are sorted by their labels.
	Series                    []Series
	Inspected, InspectedSpans int
	Truncated                 bool
}

// bucketAcc accumulates one series.
type seriesAcc struct {
	labels    []Label
	count     []float64
	sum       []float64
	min, max  []float64
	vals      [][]float64
	exemplars []exemplarAcc
	exBucket  map[int]bool
}

type exemplarAcc struct {
	ex     Exemplar
	bucket int
}

// Metrics runs a metrics query: it evaluates the query's spanset pipeline
// on every candidate trace (up to MaxCandidates) and aggregates the
// matched spans that start within [Start, End) into series. Durations are
// reported in seconds. It returns ErrNotMetricsQuery when the query has no
// metrics function.
func (e *Engine) Metrics(ctx context.Context, req MetricsRequest) (*MetricsResult, error) {
	p, err := compile(req.Query)
	if err != nil {
		return nil, err
	}
	m := p.metrics
	if m == nil {
		return nil, ErrNotMetricsQuery
	}
	if req.End <= req.Start {
		return nil, fmt.Errorf("end must be after start")
	}
	step := req.Step
	if step == 0 {
		step = req.End - req.Start
	}
	nb := int((req.End - req.Start + step - 1) / step)
	if nb > MaxPoints || nb <= 0 {
		return nil, fmt.Errorf("%d points per series is over the limit of %d: raise the step", nb, MaxPoints)
	}
	maxEx := e.cfg.MaxExemplars
	if req.Exemplars > 0 {
		maxEx = req.Exemplars
	} else if req.Exemplars < 0 {
		maxEx = 0
	}
	for _, h := range req.Query.Hints {
		if h.Key == "exemplars" {
			switch h.Value.Type {
			case traceql.StaticBool:
				if !h.Value.Bool {
					maxEx = 0
				}
			case traceql.StaticInt:
				maxEx = min(maxEx, int(h.Value.Int))
			}
		}
	}
	if m.Func == traceql.Compare {
		return e.compare(ctx, p, req, step, nb)
	}
	var mu sync.Mutex
	series := map[string]*seriesAcc{}
	res := &MetricsResult{}
	var scanRes SearchResult
	err = e.scan(ctx, p, req.Start, req.End-1, &scanRes, func(t *trace, sets []spanset) bool {
		spans := flatten(sets)
		type point struct {
			key    string
			labels []Label
			bucket int
			v      float64
			i      int32
		}
		var pts []point
		for _, i := range spans {
			s := &t.spans[i]
			if s.StartUnixNano < req.Start || s.StartUnixNano >= req.End {
				continue
			}
			b := int((s.StartUnixNano - req.Start) / step)
			var labels []Label
			var kb strings.Builder
			for _, f := range m.By {
				v := p.eval(t, int(i), f)
				kb.WriteString(v.key())
				kb.WriteByte(0)
				labels = append(labels, Label{Key: f.String(), Value: v})
			}
			v := math.NaN()
			if m.Field != nil {
				fv, ok := metricValue(p.eval(t, int(i), m.Field))
				if !ok {
					continue
				}
				v = fv
				if m.Func == traceql.HistogramOverTime {
					bound := histogramBucket(fv)
					labels = append(labels, Label{Key: "__bucket", Value: floatVal(bound)})
					kb.WriteString(strconv.FormatFloat(bound, 'g', -1, 64))
				}
			}
			pts = append(pts, point{key: kb.String(), labels: labels, bucket: b, v: v, i: i})
		}
		mu.Lock()
		defer mu.Unlock()
		for _, pt := range pts {
			acc := series[pt.key]
			if acc == nil {
				acc = &seriesAcc{labels: pt.labels, count: make([]float64, nb), exBucket: map[int]bool{}}
				switch m.Func {
				case traceql.SumOverTime, traceql.AvgOverTime:
					acc.sum = make([]float64, nb)
				case traceql.MinOverTime:
					acc.min = make([]float64, nb)
				case traceql.MaxOverTime:
					acc.max = make([]float64, nb)
				case traceql.QuantileOverTime:
					acc.vals = make([][]float64, nb)
				}
				series[pt.key] = acc
			}
			b := pt.bucket
			acc.count[b]++
			switch {
			case acc.sum != nil:
				acc.sum[b] += pt.v
			case acc.min != nil:
				if acc.count[b] == 1 || pt.v < acc.min[b] {
					acc.min[b] = pt.v
				}
			case acc.max != nil:
				if acc.count[b] == 1 || pt.v > acc.max[b] {
					acc.max[b] = pt.v
				}
			case acc.vals != nil:
				acc.vals[b] = append(acc.vals[b], pt.v)
			}
			if len(acc.exemplars) < maxEx && !acc.exBucket[b] {
				acc.exBucket[b] = true
				s := &t.spans[pt.i]
				acc.exemplars = append(acc.exemplars, exemplarAcc{bucket: b, ex: Exemplar{
					TraceID: t.id, SpanID: s.SpanID, TimestampMs: int64(s.StartUnixNano / 1e6), Value: pt.v}})
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	res.Inspected, res.InspectedSpans, res.Truncated = scanRes.Inspected, scanRes.InspectedSpans, scanRes.Truncated
	ts := func(b int) int64 { return int64((req.Start + uint64(b)*step) / 1e6) }
	stepSec := float64(step) / 1e9
	for _, acc := range series {
		base := acc.labels
		if len(m.By) == 0 && m.Func != traceql.HistogramOverTime {
			base = append([]Label{{Key: "__name__", Value: strVal(m.Func.String())}}, base...)
		}
		switch m.Func {
		case traceql.QuantileOverTime:
			for _, q := range m.Quantiles {
				s := Series{Labels: append(slices.Clip(base), Label{Key: "p", Value: floatVal(q)})}
				for b, vs := range acc.vals {
					if len(vs) > 0 {
						s.Samples = append(s.Samples, Sample{ts(b), quantile(vs, q)})
					}
				}
				s.Exemplars = exemplars(acc, nil)
				res.Series = append(res.Series, s)
			}
			continue
		}
		s := Series{Labels: base}
		for b := range nb {
			c := acc.count[b]
			var v float64
			switch m.Func {
			case traceql.Rate:
				v = c / stepSec
			case traceql.CountOverTime, traceql.HistogramOverTime:
				v = c
			case traceql.SumOverTime:
				v = acc.sum[b]
			case traceql.AvgOverTime:
				v = acc.sum[b] / c
			case traceql.MinOverTime:
				v = acc.min[b]
			case traceql.MaxOverTime:
				v = acc.max[b]
			}
			if c == 0 && m.Func != traceql.Rate && m.Func != traceql.CountOverTime && m.Func != traceql.HistogramOverTime {
				continue
			}
			s.Samples = append(s.Samples, Sample{ts(b), v})
		}
		var byBucket func(int) float64
		if m.Field == nil {
			byBucket = func(b int) float64 {
				if m.Func == traceql.Rate {
					return acc.count[b] / stepSec
				}
				return acc.count[b]
			}
		}
		s.Exemplars = exemplars(acc, byBucket)
		res.Series = append(res.Series, s)
	}
	finishSeries(res, m, p.topk)
	return res, nil
}

// exemplars returns acc's exemplars in time order; value, when set, gives
// each the value of its sample (for rate and count, which have no field).
func exemplars(acc *seriesAcc, value func(b int) float64) []Exemplar {
	out := make([]Exemplar, 0, len(acc.exemplars))
	for _, e := range acc.exemplars {
		ex := e.ex
		if value != nil {
			ex.Value = value(e.bucket)
		}
		out = append(out, ex)
	}
	slices.SortFunc(out, func(a, b Exemplar) int { return cmp.Compare(a.TimestampMs, b.TimestampMs) })
	return out
}

// metricValue returns the numeric value of v for aggregation: durations in
// seconds.
func metricValue(v Value) (float64, bool) {
	if len(v.multi) > 0 {
		return 0, false
	}
	switch v.Type {
	case TypeDuration:
		return float64(v.Int) / 1e9, true
	case TypeInt:
		return float64(v.Int), true
	case TypeFloat:
		if math.IsNaN(v.Float) {
			return 0, false
		}
		return v.Float, true
	}
	return 0, false
}

// histogramBucket returns the upper bound of v's bucket: the smallest
// power of two at or above v (0 for v <= 0).
func histogramBucket(v float64) float64 {
	if v <= 0 {
		return 0
	}
	return math.Pow(2, math.Ceil(math.Log2(v)))
}

// quantile returns the q-quantile of vs (sorted in place), interpolating
// linearly between the closest ranks.
func quantile(vs []float64, q float64) float64 {
	slices.Sort(vs)
	if len(vs) == 1 {
		return vs[0]
	}
	pos := q * float64(len(vs)-1)
	lo := int(math.Floor(pos))
	if lo >= len(vs)-1 {
		return vs[len(vs)-1]
	}
	frac := pos - float64(lo)
	return vs[lo] + (vs[lo+1]-vs[lo])*frac
}

// finishSeries sorts the series by labels, applies the threshold filter
// and topk/bottomk (ties go to the series sorting first), and drops the
// series they empty.
func finishSeries(res *MetricsResult, m *traceql.MetricsAggregate, topk []*traceql.TopK) {
	// Sorting first also makes ties in topk/bottomk deterministic.
	slices.SortFunc(res.Series, func(a, b Series) int { return cmp.Compare(labelsKey(a.Labels), labelsKey(b.Labels)) })
	filtered := false
	if f := m.Filter; f != nil {
		filtered = true
		th := fromStatic(f.Value)
		if th.Type == TypeDuration {
			th = floatVal(float64(th.Int) / 1e9)
		}
		for k := range res.Series {
			s := &res.Series[k]
			s.Samples = slices.DeleteFunc(s.Samples, func(x Sample) bool { return !compare(f.Op, floatVal(x.Value), th, nil) })
		}
	}
	for _, t := range topk {
		filtered = true
		// Per timestamp, as PromQL's topk: keep the samples of the n
		// highest (lowest) series at that time.
		byTs := map[int64][]int{}
		for k := range res.Series {
			for _, x := range res.Series[k].Samples {
				byTs[x.TimestampMs] = append(byTs[x.TimestampMs], k)
			}
		}
		keep := map[int64]map[int]bool{}
		valueAt := func(k int, ts int64) float64 {
			for _, x := range res.Series[k].Samples {
				if x.TimestampMs == ts {
					return x.Value
				}
			}
			return math.NaN()
		}
		for ts, ks := range byTs {
			slices.SortStableFunc(ks, func(a, b int) int {
				c := cmp.Compare(valueAt(b, ts), valueAt(a, ts))
				if t.Bottom {
					c = -c
				}
				return c
			})
			keep[ts] = map[int]bool{}
			for _, k := range ks[:min(len(ks), max(int(t.N), 0))] {
				keep[ts][k] = true
			}
		}
		for k := range res.Series {
			s := &res.Series[k]
			s.Samples = slices.DeleteFunc(s.Samples, func(x Sample) bool { return !keep[x.TimestampMs][k] })
		}
	}
	if filtered {
		res.Series = slices.DeleteFunc(res.Series, func(s Series) bool { return len(s.Samples) == 0 })
	}
}

func labelsKey(ls []Label) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l.Key)
		b.WriteByte(0)
		b.WriteString(l.Value.key())
		b.WriteByte(0)
	}
	return b.String()
}

// compare runs compare({selection}, topN, start, end): for every attribute
// of the matched spans (span and resource attributes, and the intrinsics
// name, status and kind), the number of spans per value over time, split
// into the spans that match the selection ("selection") and the others
// ("baseline"), keeping the topN values (default 10) of each attribute;
// and per attribute the totals of each side ("selection_total",
// "baseline_total"). The side is the label __meta_type. With start and
// end, only spans starting within [start, end) count as selected.
func (e *Engine) compare(ctx context.Context, p *program, req MetricsRequest, step uint64, nb int) (*MetricsResult, error) {
	m := p.metrics
	topN := 10
	if m.HasTopN {
		topN = int(m.TopN)
	}
	type key struct {
		side, attr, val string
	}
	counts := map[key][]float64{}
	valueOf := map[key]Value{}
	totals := map[[2]string][]float64{}
	var mu sync.Mutex
	var scanRes SearchResult
	err := e.scan(ctx, p, req.Start, req.End-1, &scanRes, func(t *trace, sets []spanset) bool {
		spans := flatten(sets)
		sel := map[int32]bool{}
		for _, ss := range p.spansetExpr(t, m.Selection, &spanset{spans: spans}) {
			for _, i := range ss.spans {
				sel[i] = true
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, i := range spans {
			s := &t.spans[i]
			if s.StartUnixNano < req.Start || s.StartUnixNano >= req.End {
				continue
			}
			side := "baseline"
			if sel[i] && (!m.HasInterval || s.StartUnixNano >= uint64(m.Start) && s.StartUnixNano < uint64(m.End)) {
				side = "selection"
			}
			b := int((s.StartUnixNano - req.Start) / step)
			add := func(attr string, v Value) {
				if v.Nil() || len(v.multi) > 0 {
					return
				}
				k := key{side: side, attr: attr, val: v.key()}
				if counts[k] == nil {
					counts[k] = make([]float64, nb)
					valueOf[k] = v
				}
				counts[k][b]++
				tk := [2]string{side, attr}
				if totals[tk] == nil {
					totals[tk] = make([]float64, nb)
				}
				totals[tk][b]++
			}
			add("name", strVal(s.Name))
			add("status", Value{Type: TypeStatus, Int: int64(s.StatusCode)})
			add("kind", Value{Type: TypeKind, Int: int64(s.Kind)})
			for _, a := range s.Attrs {
				add("span."+a.Key, fromSpan(a.Value))
			}
			if s.Resource != nil {
				for _, a := range s.Resource.Attrs {
					add("resource."+a.Key, fromSpan(a.Value))
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	res := &MetricsResult{Inspected: scanRes.Inspected, InspectedSpans: scanRes.InspectedSpans, Truncated: scanRes.Truncated}
	ts := func(b int) int64 { return int64((req.Start + uint64(b)*step) / 1e6) }
	samples := func(c []float64) []Sample {
		var out []Sample
		for b, v := range c {
			if v > 0 {
				out = append(out, Sample{ts(b), v})
			}
		}
		return out
	}
	// Keep the topN values of each side and attribute by total count.
	groups := map[[2]string][]key{}
	for k := range counts {
		g := [2]string{k.side, k.attr}
		groups[g] = append(groups[g], k)
	}
	sum := func(c []float64) (s float64) {
		for _, v := range c {
			s += v
		}
		return s
	}
	for g, ks := range groups {
		slices.SortFunc(ks, func(a, b key) int {
			if c := cmp.Compare(sum(counts[b]), sum(counts[a])); c != 0 {
				return c
			}
			return cmp.Compare(a.val, b.val)
		})
		for _, k := range ks[:min(len(ks), max(topN, 0))] {
			res.Series = append(res.Series, Series{
				Labels:  []Label{{Key: "__meta_type", Value: strVal(k.side)}, {Key: k.attr, Value: valueOf[k]}},
				Samples: samples(counts[k]),
			})
		}
		res.Series = append(res.Series, Series{
			Labels:  []Label{{Key: "__meta_type", Value: strVal(g[0] + "_total")}, {Key: g[1]}},
			Samples: samples(totals[g]),
		})
	}
	finishSeries(res, m, p.topk)
	return res, nil
}
