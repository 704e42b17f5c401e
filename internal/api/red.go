package api

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
)

// SpanMetrics serves the RED and service-graph endpoints of the native
// API over the span metrics' history (docs/api.md, "RED metrics and
// service graph").
type SpanMetrics struct {
	m   *spanmetrics.Metrics
	log *slog.Logger
	now func() time.Time
}

// NewSpanMetrics returns the endpoints over m; a nil m (span metrics
// disabled) answers 404 with a hint. A nil logger discards logs.
func NewSpanMetrics(m *spanmetrics.Metrics, logger *slog.Logger) *SpanMetrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &SpanMetrics{m: m, log: logger.With("component", "spanmetrics_api"), now: time.Now}
	if m != nil {
		h.now = m.Now
	}
	return h
}

// Register adds GET /api/v1/servicegraph and GET /api/v1/red to mux.
func (h *SpanMetrics) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/servicegraph", h.serviceGraph)
	mux.HandleFunc("GET /api/v1/red", h.red)
}

// Bounds of a RED answer: the points of one series, the points a default
// step aims at, and the window without start or since.
const (
	maxREDPoints     = 11000
	defaultREDPoints = 360
	defaultREDWindow = time.Hour
)

// redRange reads the time parameters of both endpoints (httpapi.ParseRange).
func (h *SpanMetrics) redRange(w http.ResponseWriter, r *http.Request) (httpapi.Range, bool) {
	v := r.URL.Query()
	if err := httpapi.CheckParamLen(v, maxParamLen); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return httpapi.Range{}, false
	}
	rng, err := httpapi.ParseRange(v, h.now(), httpapi.RangeOptions{Default: defaultREDWindow})
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return httpapi.Range{}, false
	}
	return rng, true
}

func (h *SpanMetrics) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteQueryError(w, r, err, "query timed out: narrow the time range", h.log)
}

func (h *SpanMetrics) disabled(w http.ResponseWriter) bool {
	if h.m != nil {
		return false
	}
	httpapi.WriteError(w, http.StatusNotFound, "span metrics are disabled: set spanmetrics.enabled: true")
	return true
}

// redStats is the RED summary of a set of calls over a duration.
type redStats struct {
	Calls         uint64  `json:"calls"`
	Errors        uint64  `json:"errors"`
	RatePerSecond float64 `json:"ratePerSecond"`
	ErrorRate     float64 `json:"errorRate"`
	P50Ms         float64 `json:"p50Ms"`
	P90Ms         float64 `json:"p90Ms"`
	P99Ms         float64 `json:"p99Ms"`
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func durMs(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func makeREDStats(calls, errs uint64, hist []uint64, over time.Duration) redStats {
	s := redStats{Calls: calls, Errors: errs}
	if over > 0 {
		s.RatePerSecond = round3(float64(calls) / over.Seconds())
	}
	if calls > 0 {
		s.ErrorRate = round3(float64(errs) / float64(calls))
		s.P50Ms = durMs(spanmetrics.Quantile(hist, 0.5))
		s.P90Ms = durMs(spanmetrics.Quantile(hist, 0.9))
		s.P99Ms = durMs(spanmetrics.Quantile(hist, 0.99))
	}
	return s
}

// GraphNode is a node of the GET /api/v1/servicegraph answer.
type GraphNode struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
}

// GraphEdge is an edge of the GET /api/v1/servicegraph answer.
type GraphEdge struct {
	Source         string `json:"source"`
	Target         string `json:"target"`
	ConnectionType string `json:"connectionType"`
	redStats
}

// GraphResponse is the answer of GET /api/v1/servicegraph.
type GraphResponse struct {
	Start string      `json:"start"`
	End   string      `json:"end"`
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

func (h *SpanMetrics) serviceGraph(w http.ResponseWriter, r *http.Request) {
	if h.disabled(w) {
		return
	}
	rng, ok := h.redRange(w, r)
	if !ok {
		return
	}
	start, end := rng.Start, rng.End
	g, err := h.m.Graph(r.Context(), start, end)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := GraphResponse{Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339), Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	over := end.Sub(start)
	for _, n := range g.Nodes {
		resp.Nodes = append(resp.Nodes, GraphNode{ID: n.ID, Type: n.Type, Calls: n.Calls, Errors: n.Errors})
	}
	for _, e := range g.Edges {
		resp.Edges = append(resp.Edges, GraphEdge{Source: e.Key.Client, Target: e.Key.Server, ConnectionType: e.Key.ConnectionType,
			redStats: makeREDStats(e.Total.Calls, e.Total.Errors, e.Total.Hist, over)})
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// REDPoint is one step of a RED series.
type REDPoint struct {
	T string `json:"t"`
	redStats
}

// REDSeries is one series of the GET /api/v1/red answer.
type REDSeries struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	Version   string `json:"version"`
	redStats
	Points []REDPoint `json:"points"`
}

// REDResponse is the answer of GET /api/v1/red.
type REDResponse struct {
	Start  string      `json:"start"`
	End    string      `json:"end"`
	Step   string      `json:"step"`
	Series []REDSeries `json:"series"`
}

var niceSteps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// redAcc sums the buckets of one step of a group of series.
type redAcc struct {
	calls, errors uint64
	hist          []uint64
}

func (a *redAcc) add(b spanmetrics.Bucket) {
	a.calls += b.Calls
	a.errors += b.Errors
	if a.hist == nil {
		a.hist = make([]uint64, len(spanmetrics.LatencyBounds)+1)
	}
	for i, c := range b.Hist {
		a.hist[i] += c
	}
}

func (a *redAcc) merge(o *redAcc) {
	a.add(spanmetrics.Bucket{Calls: o.calls, Errors: o.errors, Hist: o.hist})
}

func (h *SpanMetrics) red(w http.ResponseWriter, r *http.Request) {
	if h.disabled(w) {
		return
	}
	v := r.URL.Query()
	rng, ok := h.redRange(w, r)
	if !ok {
		return
	}
	start, end := rng.Start, rng.End
	by := v.Get("by")
	switch by {
	case "":
		by = "operation"
	case "service", "operation", "version":
	default:
		httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("by %q: want service, operation or version", by))
		return
	}
	var step time.Duration
	if s := v.Get("step"); s != "" {
		var err error
		step, err = time.ParseDuration(s)
		if err != nil || spanmetrics.CheckStep(step) != nil {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("step %q: want a whole number of minutes such as 1m or 1h", s))
			return
		}
	} else {
		step = niceSteps[len(niceSteps)-1]
		for _, s := range niceSteps {
			if end.Sub(start)/s <= defaultREDPoints {
				step = s
				break
			}
		}
	}
	if end.Sub(start)/step > maxREDPoints {
		httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s / step %s is more than %d points: raise step", end.Sub(start), step, maxREDPoints))
		return
	}
	kinds, err := parseREDKinds(v.Get("kind"), by)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	service, operation := v.Get("service"), v.Get("operation")
	match := func(k spanmetrics.Key) bool {
		return (service == "" || k.Service == service) && (operation == "" || k.Operation == operation) && kinds[k.Kind]
	}
	series, err := h.m.Range(r.Context(), match, start, end, step)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Group the series by the by parameter, step by step.
	groups := map[spanmetrics.Key]map[int64]*redAcc{}
	for _, s := range series {
		gk := s.Key
		switch by {
		case "service":
			gk = spanmetrics.Key{Service: s.Key.Service}
		case "version":
			gk = spanmetrics.Key{Service: s.Key.Service, Version: s.Key.Version}
		default:
			gk.Version = ""
		}
		steps := groups[gk]
		if steps == nil {
			steps = map[int64]*redAcc{}
			groups[gk] = steps
		}
		for _, b := range s.Buckets {
			a := steps[b.Start.Unix()]
			if a == nil {
				a = &redAcc{}
				steps[b.Start.Unix()] = a
			}
			a.add(b)
		}
	}
	resp := REDResponse{Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339), Step: step.String(), Series: []REDSeries{}}
	stepSec := int64(step / time.Second)
	first := start.Unix() / 60 * 60 / stepSec * stepSec // start is after 1970 (httpapi.ParseRange)
	for _, gk := range slices.SortedFunc(maps.Keys(groups), spanmetrics.CompareKey) {
		steps := groups[gk]
		rs := REDSeries{Service: gk.Service, Operation: gk.Operation, Version: gk.Version, Points: []REDPoint{}}
		if by == "operation" {
			rs.Kind = gk.Kind.String()
		}
		var tot redAcc
		for t := first; t < end.Unix(); t += stepSec {
			a := cmp.Or(steps[t], &redAcc{})
			tot.merge(a)
			rs.Points = append(rs.Points, REDPoint{T: time.Unix(t, 0).UTC().Format(time.RFC3339), redStats: makeREDStats(a.calls, a.errors, a.hist, step)})
		}
		rs.redStats = makeREDStats(tot.calls, tot.errors, tot.hist, end.Sub(start))
		resp.Series = append(resp.Series, rs)
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

// parseREDKinds reads kind= (comma-separated span kinds, or "all").
// Without it, by=operation takes every kind and by=service and by=version
// the spans that serve requests (server and consumer), so that a
// service's calls are the requests it served.
func parseREDKinds(s, by string) (map[span.Kind]bool, error) {
	kinds := map[span.Kind]bool{}
	if s == "" {
		if by == "operation" {
			s = "all"
		} else {
			s = "server,consumer"
		}
	}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		name = strings.TrimPrefix(name, "span_kind_")
		if name == "all" {
			for k := span.KindUnspecified; k <= span.KindConsumer; k++ {
				kinds[k] = true
			}
			continue
		}
		k, ok := span.ParseKind(name)
		if !ok {
			return nil, fmt.Errorf("kind %q: want server, client, producer, consumer, internal, unspecified or all", name)
		}
		kinds[k] = true
	}
	return kinds, nil
}
