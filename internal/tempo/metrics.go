package tempo

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/engine"
	"github.com/clew-dev/clew/internal/traceql"
)

type sampleJSON struct {
	TimestampMs string  `json:"timestampMs"`
	Value       float64 `json:"value"`
}

type exemplarJSON struct {
	Labels      []kvJSON `json:"labels"`
	Value       float64  `json:"value"`
	TimestampMs string   `json:"timestampMs"`
}

type seriesJSON struct {
	Labels     []kvJSON       `json:"labels"`
	Samples    []sampleJSON   `json:"samples"`
	Exemplars  []exemplarJSON `json:"exemplars,omitempty"`
	PromLabels string         `json:"promLabels"`
}

type rangeResponse struct {
	Series  []seriesJSON  `json:"series"`
	Metrics searchMetrics `json:"metrics"`
	Status  string        `json:"status"`
	Message string        `json:"message,omitempty"`
}

type instantSeriesJSON struct {
	Labels     []kvJSON `json:"labels"`
	Value      float64  `json:"value"`
	PromLabels string   `json:"promLabels"`
}

type instantResponse struct {
	Series  []instantSeriesJSON `json:"series"`
	Metrics searchMetrics       `json:"metrics"`
	Status  string              `json:"status"`
	Message string              `json:"message,omitempty"`
}

// metricsRequest reads q, start, end, since, step and exemplars. The range
// defaults to the last hour; step to a hundredth of the range (at least a
// second) for range queries.
func (a *API) metricsRequest(w http.ResponseWriter, r *http.Request, instant bool) (engine.MetricsRequest, bool) {
	v := r.URL.Query()
	if err := checkLengths(v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return engine.MetricsRequest{}, false
	}
	q := strings.TrimSpace(v.Get("q"))
	if q == "" {
		writeError(w, http.StatusBadRequest, "q is required: a TraceQL metrics query such as { } | rate()")
		return engine.MetricsRequest{}, false
	}
	pq, ok := parseQuery(w, q)
	if !ok {
		return engine.MetricsRequest{}, false
	}
	if !isMetrics(pq) {
		writeError(w, http.StatusBadRequest, engine.ErrNotMetricsQuery.Error())
		return engine.MetricsRequest{}, false
	}
	start, end, err := timeRange(v, a.now(), time.Hour)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return engine.MetricsRequest{}, false
	}
	if !end.After(start) {
		writeError(w, http.StatusBadRequest, "end must be after start")
		return engine.MetricsRequest{}, false
	}
	req := engine.MetricsRequest{Query: pq, Start: uint64(max(start.UnixNano(), 0)), End: uint64(max(end.UnixNano(), 0))}
	if !instant {
		step := max(end.Sub(start)/100, time.Second)
		if s := v.Get("step"); s != "" {
			step, err = parseDuration(s)
			if err != nil || step <= 0 {
				writeError(w, http.StatusBadRequest, "step "+strconv.Quote(s)+": want a positive duration such as 15s")
				return engine.MetricsRequest{}, false
			}
		}
		if n := (req.End - req.Start + uint64(step) - 1) / uint64(step); n > uint64(a.limits.MaxPointsPerSeries) {
			writeError(w, http.StatusBadRequest, "the range and step give "+strconv.FormatUint(n, 10)+" points per series, over the limit of "+
				strconv.Itoa(a.limits.MaxPointsPerSeries)+" (query.max_points_per_series): raise the step or shorten the range")
			return engine.MetricsRequest{}, false
		}
		req.Step = uint64(step)
	}
	if s := v.Get("exemplars"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "exemplars "+strconv.Quote(s)+": want a non-negative integer")
			return engine.MetricsRequest{}, false
		}
		req.Exemplars = n
		if n == 0 {
			req.Exemplars = -1
		}
	}
	return req, true
}

func isMetrics(q *traceql.Query) bool {
	for _, st := range q.Pipeline.Stages {
		if _, ok := st.(*traceql.MetricsAggregate); ok {
			return true
		}
	}
	return false
}

// queryRange serves GET /api/metrics/query_range.
func (a *API) queryRange(w http.ResponseWriter, r *http.Request) {
	req, ok := a.metricsRequest(w, r, false)
	if !ok {
		return
	}
	eng, budget := a.engine()
	res, err := eng.Metrics(r.Context(), req)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := rangeResponse{Series: make([]seriesJSON, 0, len(res.Series)), Metrics: newMetrics(res.Inspected, res.InspectedSpans), Status: "COMPLETE"}
	if msg := a.partial(budget, res.Truncated, res.SeriesLimited, res.SpansLimited); msg != "" {
		out.Status, out.Message = "PARTIAL", msg
	}
	for _, s := range res.Series {
		sj := seriesJSON{Labels: labelsJSON(s.Labels), Samples: make([]sampleJSON, 0, len(s.Samples)), PromLabels: promLabels(s.Labels)}
		for _, x := range s.Samples {
			if math.IsNaN(x.Value) || math.IsInf(x.Value, 0) {
				continue
			}
			sj.Samples = append(sj.Samples, sampleJSON{TimestampMs: strconv.FormatInt(x.TimestampMs, 10), Value: x.Value})
		}
		for _, e := range s.Exemplars {
			if math.IsNaN(e.Value) || math.IsInf(e.Value, 0) {
				continue
			}
			sj.Exemplars = append(sj.Exemplars, exemplarJSON{
				Labels:      []kvJSON{{Key: "trace:id", Value: strAny(e.TraceID.String())}, {Key: "span:id", Value: strAny(e.SpanID.String())}},
				Value:       e.Value,
				TimestampMs: strconv.FormatInt(e.TimestampMs, 10),
			})
		}
		out.Series = append(out.Series, sj)
	}
	writeJSON(w, http.StatusOK, out)
}

// queryInstant serves GET /api/metrics/query: one value per series over
// the whole range.
func (a *API) queryInstant(w http.ResponseWriter, r *http.Request) {
	req, ok := a.metricsRequest(w, r, true)
	if !ok {
		return
	}
	eng, budget := a.engine()
	res, err := eng.Metrics(r.Context(), req)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := instantResponse{Series: make([]instantSeriesJSON, 0, len(res.Series)), Metrics: newMetrics(res.Inspected, res.InspectedSpans), Status: "COMPLETE"}
	if msg := a.partial(budget, res.Truncated, res.SeriesLimited, res.SpansLimited); msg != "" {
		out.Status, out.Message = "PARTIAL", msg
	}
	for _, s := range res.Series {
		if len(s.Samples) == 0 || math.IsNaN(s.Samples[0].Value) || math.IsInf(s.Samples[0].Value, 0) {
			continue
		}
		out.Series = append(out.Series, instantSeriesJSON{Labels: labelsJSON(s.Labels), Value: s.Samples[0].Value, PromLabels: promLabels(s.Labels)})
	}
	writeJSON(w, http.StatusOK, out)
}

func labelsJSON(ls []engine.Label) []kvJSON {
	out := make([]kvJSON, len(ls))
	for i, l := range ls {
		out[i] = kvJSON{Key: l.Key, Value: toAny(l.Value)}
	}
	return out
}

// promLabels renders labels as Prometheus does: {k="v", ...}.
func promLabels(ls []engine.Label) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Key)
		b.WriteByte('=')
		if l.Value.Nil() {
			b.WriteString(`"nil"`)
		} else {
			b.WriteString(strconv.Quote(l.Value.String()))
		}
	}
	b.WriteByte('}')
	return b.String()
}
