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
	Series []Series
	// Inspected counts the traces loaded (0 when the query streamed span
	// columns instead) and InspectedSpans the spans read.
	Inspected, InspectedSpans int
	// Truncated is set when MaxCandidates stopped the evaluation of
	// candidate traces (queries that need whole traces only).
	Truncated bool
	// SeriesLimited is set when MaxSeries left spans out.
	SeriesLimited bool
	// SpansLimited is set when MaxSpans stopped a span-column scan.
	SpansLimited bool
}

// Metrics runs a metrics query: it aggregates the spans the query's
// spanset pipeline matches that start within [Start, End) into series.
// Durations are reported in seconds. A query whose pipeline and metrics
// fields depend on each span alone (see program.spanLocal) streams the
// pushed-down spans' columns from the store, with no bound on their
// number; any other query evaluates candidate traces, up to
// MaxCandidates. Memory stays bounded either way: at most MaxSeries
// series (compare(): ten times as many attribute values) of one
// accumulator per interval, quantiles estimated with bounded sketches
// (see quantileAcc). It returns ErrNotMetricsQuery when the query has no
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
	if req.Start, req.End, err = e.boundRange(ctx, req.Start, req.End); err != nil {
		return nil, err
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
	var sink interface {
		observe(p *program, t *trace, i int, selected bool, key *[]byte)
		finish(res *MetricsResult)
	}
	if m.Func == traceql.Compare {
		sink = newCompareAcc(m, p.topk, req.Start, step, nb, 10*e.cfg.MaxSeries)
	} else {
		acc := newMetricsAcc(m, p.topk, req.Start, step, nb, maxEx, e.cfg.MaxSeries)
		sink = acc
		if _, ok := p.spanLocal(); ok && !e.noSpanScan {
			acc.cacheByResource()
		}
	}
	res := &MetricsResult{}
	inRange := func(s *span.Span) bool { return s.StartUnixNano >= req.Start && s.StartUnixNano < req.End }
	if cols, ok := p.spanLocal(); ok && !e.noSpanScan {
		read, limited, err := e.scanLocal(ctx, p, req.Start, req.End-1, cols, func(v *spanView) bool {
			if inRange(&v.t.spans[0]) {
				sel := m.Func == traceql.Compare && p.selected(&v.t, 0, true)
				sink.observe(p, &v.t, 0, sel, &v.key)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		res.InspectedSpans, res.SpansLimited = int(read), limited
	} else {
		var scanRes SearchResult
		err := e.scan(ctx, p, req.Start, req.End-1, &scanRes, nil, func(t *trace, sets []spanset) bool {
			spans := flatten(sets)
			var sel map[int32]bool
			if m.Func == traceql.Compare {
				sel = map[int32]bool{}
				for _, ss := range p.spansetExpr(t, m.Selection, &spanset{spans: spans}) {
					for _, i := range ss.spans {
						sel[i] = true
					}
				}
			}
			var key []byte
			for _, i := range spans {
				if inRange(&t.spans[i]) {
					sink.observe(p, t, int(i), sel[i] && p.selected(t, int(i), false), &key)
				}
			}
			return true
		})
		if err != nil {
			return nil, err
		}
		res.Inspected, res.InspectedSpans, res.Truncated = scanRes.Inspected, scanRes.InspectedSpans, scanRes.Truncated
	}
	sink.finish(res)
	return res, nil
}

// selected reports whether span i of a compare() query is in the
// selection: it matches the selection filter (when match is set; the
// caller evaluated it otherwise) and starts within the selection window.
func (p *program) selected(t *trace, i int, match bool) bool {
	m := p.metrics
	if match && !p.matchLocalSpanset(t, i, m.Selection) {
		return false
	}
	s := &t.spans[i]
	return !m.HasInterval || s.StartUnixNano >= uint64(m.Start) && s.StartUnixNano < uint64(m.End)
}

// metricsAcc aggregates the matched spans of a metrics function other
// than compare() into series. observe may be called concurrently.
type metricsAcc struct {
	m           *traceql.MetricsAggregate
	topk        []*traceql.TopK
	start, step uint64
	nb          int
	maxEx       int
	maxSeries   int

	mu      sync.Mutex
	series  map[string]*seriesAcc
	limited bool
	// byRes, when not nil, maps a span's resource to its series: set for
	// span scans (whose resources are the store's, a few per block) when
	// every by() field is a resource attribute, so that the labels of a
	// span are worked out once per resource.
	byRes map[*span.Resource]*seriesAcc
}

// maxResCache bounds metricsAcc.byRes.
const maxResCache = 1 << 14

// cacheByResource turns the per-resource series cache on when the by()
// fields allow it.
func (a *metricsAcc) cacheByResource() {
	if a.m.Func == traceql.HistogramOverTime || len(a.m.By) == 0 {
		return
	}
	for _, f := range a.m.By {
		if at, ok := f.(*traceql.Attribute); !ok || at.Parent || at.Scope != traceql.ScopeResource {
			return
		}
	}
	a.byRes = map[*span.Resource]*seriesAcc{}
}

// seriesAcc accumulates one series: per interval a count and, as the
// function needs, a sum, extremes or a quantile accumulator.
type seriesAcc struct {
	labels    []Label
	count     []float64
	sum       []float64
	min, max  []float64
	q         []quantileAcc
	exemplars []exemplarAcc
	exBucket  []bool
}

type exemplarAcc struct {
	ex     Exemplar
	bucket int
}

func newMetricsAcc(m *traceql.MetricsAggregate, topk []*traceql.TopK, start, step uint64, nb, maxEx, maxSeries int) *metricsAcc {
	return &metricsAcc{m: m, topk: topk, start: start, step: step, nb: nb, maxEx: maxEx, maxSeries: maxSeries, series: map[string]*seriesAcc{}}
}

// appendValueKey appends an encoding of v that tells values of all types
// apart, for grouping.
func appendValueKey(dst []byte, v Value) []byte {
	dst = append(dst, byte('a'+v.Type))
	switch {
	case len(v.multi) > 0:
		dst = append(dst, v.String()...)
	case v.Type == TypeString:
		dst = append(dst, v.Str...)
	case v.Type == TypeFloat:
		dst = strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
	default:
		dst = strconv.AppendInt(dst, v.Int, 10)
	}
	return append(dst, 0)
}

// observe adds span i of t (which the pipeline matched and which starts
// within the range) to its series.
func (a *metricsAcc) observe(p *program, t *trace, i int, _ bool, keyBuf *[]byte) {
	m := a.m
	s := &t.spans[i]
	b := int((s.StartUnixNano - a.start) / a.step)
	if a.byRes != nil && s.Resource != nil {
		v := math.NaN()
		if m.Field != nil {
			fv, ok := metricValue(p.eval(t, i, m.Field))
			if !ok {
				return
			}
			v = fv
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		acc := a.byRes[s.Resource]
		if acc == nil {
			var vals []Value
			key := (*keyBuf)[:0]
			for _, f := range m.By {
				fv := p.eval(t, i, f)
				vals = append(vals, fv)
				key = appendValueKey(key, fv)
			}
			*keyBuf = key
			if acc = a.series[string(key)]; acc == nil {
				if len(a.series) >= a.maxSeries {
					a.limited = true
					return
				}
				acc = a.newSeries(m, vals, 0)
				a.series[string(key)] = acc
			}
			if len(a.byRes) < maxResCache {
				a.byRes[s.Resource] = acc
			}
		}
		a.addLocked(acc, t, s, b, v)
		return
	}
	var byVals [4]Value
	vals := byVals[:0]
	key := (*keyBuf)[:0]
	for _, f := range m.By {
		v := p.eval(t, i, f)
		vals = append(vals, v)
		key = appendValueKey(key, v)
	}
	v := math.NaN()
	bound := 0.0
	if m.Field != nil {
		fv, ok := metricValue(p.eval(t, i, m.Field))
		if !ok {
			*keyBuf = key
			return
		}
		v = fv
		if m.Func == traceql.HistogramOverTime {
			bound = histogramBucket(fv)
			key = strconv.AppendFloat(key, bound, 'g', -1, 64)
		}
	}
	*keyBuf = key
	a.mu.Lock()
	defer a.mu.Unlock()
	acc := a.series[string(key)]
	if acc == nil {
		if len(a.series) >= a.maxSeries {
			a.limited = true
			return
		}
		acc = a.newSeries(m, vals, bound)
		a.series[string(key)] = acc
	}
	a.addLocked(acc, t, s, b, v)
}

// addLocked adds span s with value v to interval b of acc; a.mu is held.
func (a *metricsAcc) addLocked(acc *seriesAcc, t *trace, s *span.Span, b int, v float64) {
	acc.count[b]++
	switch {
	case acc.sum != nil:
		acc.sum[b] += v
	case acc.min != nil:
		if acc.count[b] == 1 || v < acc.min[b] {
			acc.min[b] = v
		}
	case acc.max != nil:
		if acc.count[b] == 1 || v > acc.max[b] {
			acc.max[b] = v
		}
	case acc.q != nil:
		acc.q[b].add(v)
	}
	if len(acc.exemplars) < a.maxEx && !acc.exBucket[b] {
		acc.exBucket[b] = true
		acc.exemplars = append(acc.exemplars, exemplarAcc{bucket: b, ex: Exemplar{
			TraceID: t.id, SpanID: s.SpanID, TimestampMs: int64(s.StartUnixNano / 1e6), Value: v}})
	}
}

// newSeries starts a series with the by() values (strings copied: the
// span's memory may belong to the store) and the histogram bucket.
func (a *metricsAcc) newSeries(m *traceql.MetricsAggregate, vals []Value, bound float64) *seriesAcc {
	var labels []Label
	for k, f := range m.By {
		labels = append(labels, Label{Key: f.String(), Value: cloneValue(vals[k])})
	}
	if m.Func == traceql.HistogramOverTime {
		labels = append(labels, Label{Key: "__bucket", Value: floatVal(bound)})
	}
	acc := &seriesAcc{labels: labels, count: make([]float64, a.nb), exBucket: make([]bool, a.nb)}
	switch m.Func {
	case traceql.SumOverTime, traceql.AvgOverTime:
		acc.sum = make([]float64, a.nb)
	case traceql.MinOverTime:
		acc.min = make([]float64, a.nb)
	case traceql.MaxOverTime:
		acc.max = make([]float64, a.nb)
	case traceql.QuantileOverTime:
		acc.q = make([]quantileAcc, a.nb)
	}
	return acc
}

// cloneValue deep-copies the strings of v.
func cloneValue(v Value) Value {
	v.Str = strings.Clone(v.Str)
	if len(v.multi) > 0 {
		multi := make([]Value, len(v.multi))
		for i := range v.multi {
			multi[i] = cloneValue(v.multi[i])
		}
		v.multi = multi
	}
	return v
}

// finish turns the accumulators into series.
func (a *metricsAcc) finish(res *MetricsResult) {
	m := a.m
	res.SeriesLimited = res.SeriesLimited || a.limited
	ts := func(b int) int64 { return int64((a.start + uint64(b)*a.step) / 1e6) }
	stepSec := float64(a.step) / 1e9
	for _, acc := range a.series {
		base := acc.labels
		if len(m.By) == 0 && m.Func != traceql.HistogramOverTime {
			base = append([]Label{{Key: "__name__", Value: strVal(m.Func.String())}}, base...)
		}
		if m.Func == traceql.QuantileOverTime {
			for _, q := range m.Quantiles {
				s := Series{Labels: append(slices.Clip(base), Label{Key: "p", Value: floatVal(q)})}
				for b := range acc.q {
					if acc.q[b].n > 0 {
						s.Samples = append(s.Samples, Sample{ts(b), acc.q[b].quantile(q)})
					}
				}
				s.Exemplars = exemplars(acc, nil)
				res.Series = append(res.Series, s)
			}
			continue
		}
		s := Series{Labels: base}
		for b := range a.nb {
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
	finishSeries(res, m, a.topk)
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
	slices.SortFunc(out, func(a, b Exemplar) int {
		return cmp.Or(cmp.Compare(a.TimestampMs, b.TimestampMs), strings.Compare(a.TraceID.String(), b.TraceID.String()))
	})
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
