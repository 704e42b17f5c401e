package spanmetrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// Handler serves the RED and service-graph endpoints of the native API
// (docs/api.md, "RED metrics and service graph").
type Handler struct {
	m   *Metrics
	log *slog.Logger
	now func() time.Time
}

// NewHandler returns the endpoints over m; a nil m (span metrics
// disabled) answers 404 with a hint. A nil logger discards logs.
func NewHandler(m *Metrics, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{m: m, log: logger.With("component", "spanmetrics_api"), now: time.Now}
	if m != nil {
		h.now = m.now
	}
	return h
}

// Register adds GET /api/v1/servicegraph and GET /api/v1/red to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/servicegraph", h.serviceGraph)
	mux.HandleFunc("GET /api/v1/red", h.red)
}

// maxPoints bounds the points of one series in a RED answer.
const (
	maxPoints     = 11000
	defaultPoints = 360
	defaultSince  = time.Hour
)

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeJSON(w, http.StatusGatewayTimeout, apiError{Error: "query timed out: narrow the time range"})
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		writeJSON(w, 499, apiError{Error: "request cancelled"})
	default:
		h.log.Error("span metrics query", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
	}
}

func (h *Handler) disabled(w http.ResponseWriter) bool {
	if h.m != nil {
		return false
	}
	writeJSON(w, http.StatusNotFound, apiError{Error: "span metrics are disabled: set spanmetrics.enabled: true"})
	return true
}

// parseRange reads start/end (RFC 3339 or a Unix time) or since (a Go
// duration before end, default 1h).
func parseRange(v url.Values, now time.Time) (time.Time, time.Time, error) {
	end := now
	if s := v.Get("end"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("end: %w", err)
		}
		end = t
	}
	var start time.Time
	switch {
	case v.Get("start") != "":
		t, err := parseTime(v.Get("start"))
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("start: %w", err)
		}
		start = t
	case v.Get("since") != "":
		d, err := time.ParseDuration(v.Get("since"))
		if err != nil || d <= 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("since %q: want a positive Go duration such as 15m or 24h", v.Get("since"))
		}
		start = end.Add(-d)
	default:
		start = end.Add(-defaultSince)
	}
	if !end.After(start) {
		return time.Time{}, time.Time{}, errors.New("end must be after start")
	}
	return start.UTC(), end.UTC(), nil
}

// parseTime accepts RFC 3339 or a Unix time in seconds, milliseconds,
// microseconds or nanoseconds, told apart by magnitude.
func parseTime(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch {
		case n < 0:
			return time.Time{}, fmt.Errorf("%q: negative time", s)
		case n < 1e11:
			return time.Unix(n, 0), nil
		case n < 1e14:
			return time.UnixMilli(n), nil
		case n < 1e17:
			return time.UnixMicro(n), nil
		}
		return time.Unix(0, n), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e11 {
		return time.Unix(0, int64(f*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: write RFC 3339 or Unix seconds", s)
	}
	return t, nil
}

// stats is the RED summary of a set of calls over a duration.
type stats struct {
	Calls         uint64  `json:"calls"`
	Errors        uint64  `json:"errors"`
	RatePerSecond float64 `json:"ratePerSecond"`
	ErrorRate     float64 `json:"errorRate"`
	P50Ms         float64 `json:"p50Ms"`
	P90Ms         float64 `json:"p90Ms"`
	P99Ms         float64 `json:"p99Ms"`
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func ms(d time.Duration) float64 { return round3(float64(d) / 1e6) }

func makeStats(calls, errs uint64, hist []uint64, over time.Duration) stats {
	s := stats{Calls: calls, Errors: errs}
	if over > 0 {
		s.RatePerSecond = round3(float64(calls) / over.Seconds())
	}
	if calls > 0 {
		s.ErrorRate = round3(float64(errs) / float64(calls))
		s.P50Ms, s.P90Ms, s.P99Ms = ms(Quantile(hist, 0.5)), ms(Quantile(hist, 0.9)), ms(Quantile(hist, 0.99))
	}
	return s
}

type graphNode struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
}

type graphEdge struct {
	Source         string `json:"source"`
	Target         string `json:"target"`
	ConnectionType string `json:"connectionType"`
	stats
}

type graphResponse struct {
	Start string      `json:"start"`
	End   string      `json:"end"`
	Nodes []graphNode `json:"nodes"`
	Edges []graphEdge `json:"edges"`
}

// Node types of the service graph answer.
const (
	NodeService   = "service"
	NodeDatabase  = "database"
	NodeMessaging = "messaging"
	NodeExternal  = "external"
)

func (h *Handler) serviceGraph(w http.ResponseWriter, r *http.Request) {
	if h.disabled(w) {
		return
	}
	start, end, err := parseRange(r.URL.Query(), h.now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	g, err := h.m.Graph(r.Context(), start, end)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := graphResponse{Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339), Nodes: []graphNode{}, Edges: []graphEdge{}}
	over := end.Sub(start)
	for _, n := range g.Nodes {
		resp.Nodes = append(resp.Nodes, graphNode{ID: n.ID, Type: n.Type, Calls: n.Calls, Errors: n.Errors})
	}
	for _, e := range g.Edges {
		resp.Edges = append(resp.Edges, graphEdge{Source: e.Key.Client, Target: e.Key.Server, ConnectionType: e.Key.ConnectionType,
			stats: makeStats(e.Total.Calls, e.Total.Errors, e.Total.Hist, over)})
	}
	writeJSON(w, http.StatusOK, resp)
}

// Node is a node of the service graph over a time range.
type Node struct {
	ID     string // service name or virtual node name
	Type   string // NodeService, NodeDatabase, NodeMessaging or NodeExternal
	Calls  uint64 // services: server and consumer spans; virtual nodes: calls into them
	Errors uint64
}

// GraphEdge is an edge of the service graph with its totals over a range.
type GraphEdge struct {
	Key   EdgeKey
	Total Bucket // Start is the range's start
}

// Graph is the service graph over a time range.
type Graph struct {
	Nodes []Node      // sorted by ID
	Edges []GraphEdge // sorted by client, server, connection type
}

// Graph returns the service graph over the minutes that start in
// [start, end): every edge with its totals, and every node (the services
// with spans in the range and the nodes the edges name) with its calls.
func (m *Metrics) Graph(ctx context.Context, start, end time.Time) (*Graph, error) {
	step, origin := wholeRange(start, end)
	ea, err := m.edgeAcc(ctx, start, end, step, origin)
	if err != nil {
		return nil, err
	}
	ra, err := m.rangeAcc(ctx, nil, start, end, step, origin)
	if err != nil {
		return nil, err
	}
	nodes := map[string]*Node{}
	node := func(id, typ string) *Node {
		n := nodes[id]
		if n == nil {
			n = &Node{ID: id, Type: typ}
			nodes[id] = n
		} else if typ == NodeService {
			n.Type = NodeService // a real service wins over a virtual node of the same name
		}
		return n
	}
	for k, steps := range ra.byKey {
		n := node(k.Service, NodeService)
		if k.Kind != span.KindServer && k.Kind != span.KindConsumer {
			continue
		}
		for _, b := range steps {
			n.Calls += b.calls
			n.Errors += b.errors
		}
	}
	g := &Graph{}
	for _, k := range slices.SortedFunc(maps.Keys(ea.byKey), compareEdgeKey) {
		var tot minuteBucket
		for _, b := range ea.byKey[k] {
			tot.merge(b)
		}
		b := tot.bucket()
		b.Start = start
		g.Edges = append(g.Edges, GraphEdge{Key: k, Total: b})
		node(k.Client, NodeService)
	}
	for _, e := range g.Edges {
		typ := NodeService
		switch e.Key.ConnectionType {
		case ConnDatabase:
			typ = NodeDatabase
		case ConnMessaging:
			typ = NodeMessaging
		case ConnVirtual:
			typ = NodeExternal
		}
		if n := nodes[e.Key.Server]; n != nil && n.Type == NodeService {
			continue // a service: its calls are its own spans'
		}
		if typ == NodeService {
			node(e.Key.Server, typ)
			continue
		}
		n := node(e.Key.Server, typ)
		n.Calls += e.Total.Calls
		n.Errors += e.Total.Errors
	}
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		g.Nodes = append(g.Nodes, *nodes[id])
	}
	return g, nil
}

// wholeRange returns a step and origin that make [start, end) one bucket.
func wholeRange(start, end time.Time) (time.Duration, int64) {
	origin := floorDiv(start.Unix(), 60) * 60
	span := end.Unix() - origin + 60
	step := time.Duration((span+59)/60) * time.Minute
	return max(step, time.Minute), origin
}

// Dependency is one caller→callee pair with its calls over a time range,
// summed over connection types, as Jaeger's and Zipkin's dependency
// endpoints report them.
type Dependency struct {
	Parent, Child string
	CallCount     uint64
	ErrorCount    uint64
}

// Dependencies returns the caller→callee pairs of the service graph over
// [start, end), sorted by parent and child.
func (m *Metrics) Dependencies(ctx context.Context, start, end time.Time) ([]Dependency, error) {
	step, origin := wholeRange(start, end)
	ea, err := m.edgeAcc(ctx, start, end, step, origin)
	if err != nil {
		return nil, err
	}
	type pc struct{ p, c string }
	sum := map[pc]*Dependency{}
	for k, steps := range ea.byKey {
		d := sum[pc{k.Client, k.Server}]
		if d == nil {
			d = &Dependency{Parent: k.Client, Child: k.Server}
			sum[pc{k.Client, k.Server}] = d
		}
		for _, b := range steps {
			d.CallCount += b.calls
			d.ErrorCount += b.errors
		}
	}
	out := make([]Dependency, 0, len(sum))
	for _, d := range sum {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Dependency) int {
		if a.Parent != b.Parent {
			return cmpStr(a.Parent, b.Parent)
		}
		return cmpStr(a.Child, b.Child)
	})
	return out, nil
}

type redPoint struct {
	T string `json:"t"`
	stats
}

type redSeries struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	Version   string `json:"version"`
	stats
	Points []redPoint `json:"points"`
}

type redResponse struct {
	Start  string      `json:"start"`
	End    string      `json:"end"`
	Step   string      `json:"step"`
	Series []redSeries `json:"series"`
}

var niceSteps = []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

func (h *Handler) red(w http.ResponseWriter, r *http.Request) {
	if h.disabled(w) {
		return
	}
	v := r.URL.Query()
	start, end, err := parseRange(v, h.now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	by := v.Get("by")
	switch by {
	case "":
		by = "operation"
	case "service", "operation", "version":
	default:
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("by %q: want service, operation or version", by)})
		return
	}
	var step time.Duration
	if s := v.Get("step"); s != "" {
		step, err = time.ParseDuration(s)
		if err != nil || checkStep(step) != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("step %q: want a whole number of minutes such as 1m or 1h", s)})
			return
		}
	} else {
		step = niceSteps[len(niceSteps)-1]
		for _, s := range niceSteps {
			if end.Sub(start)/s <= defaultPoints {
				step = s
				break
			}
		}
	}
	if end.Sub(start)/step > maxPoints {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("%s / step %s is more than %d points: raise step", end.Sub(start), step, maxPoints)})
		return
	}
	kinds, err := parseKinds(v.Get("kind"), by)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	service, operation := v.Get("service"), v.Get("operation")
	match := func(k Key) bool {
		return (service == "" || k.Service == service) && (operation == "" || k.Operation == operation) && kinds[k.Kind]
	}
	series, err := h.m.Range(r.Context(), match, start, end, step)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Group.
	type group struct {
		key   Key
		steps map[int64]*minuteBucket
	}
	groups := map[Key]*group{}
	for _, s := range series {
		gk := s.Key
		switch by {
		case "service":
			gk = Key{Service: s.Key.Service}
		case "version":
			gk = Key{Service: s.Key.Service, Version: s.Key.Version}
		default:
			gk.Version = ""
		}
		g := groups[gk]
		if g == nil {
			g = &group{key: gk, steps: map[int64]*minuteBucket{}}
			groups[gk] = g
		}
		for _, b := range s.Buckets {
			t := b.Start.Unix()
			mb := g.steps[t]
			if mb == nil {
				mb = &minuteBucket{}
				g.steps[t] = mb
			}
			mb.calls += b.Calls
			mb.errors += b.Errors
			mb.durSum += b.DurationSum
			for i, c := range b.Hist {
				mb.hist[i] += c
			}
		}
	}
	resp := redResponse{Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339), Step: step.String(), Series: []redSeries{}}
	stepSec := int64(step / time.Second)
	first := floorDiv(floorDiv(start.Unix(), 60)*60, stepSec) * stepSec
	for _, gk := range slices.SortedFunc(maps.Keys(groups), compareKey) {
		g := groups[gk]
		rs := redSeries{Service: gk.Service, Operation: gk.Operation, Version: gk.Version, Points: []redPoint{}}
		if by == "operation" {
			rs.Kind = gk.Kind.String()
		}
		var tot minuteBucket
		for t := first; t < end.Unix(); t += stepSec {
			mb := g.steps[t]
			if mb == nil {
				mb = &minuteBucket{}
			}
			tot.merge(mb)
			rs.Points = append(rs.Points, redPoint{T: time.Unix(t, 0).UTC().Format(time.RFC3339), stats: makeStats(mb.calls, mb.errors, mb.hist[:], step)})
		}
		rs.stats = makeStats(tot.calls, tot.errors, tot.hist[:], end.Sub(start))
		resp.Series = append(resp.Series, rs)
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseKinds reads kind= (comma-separated span kinds, or "all"). Without
// it, by=operation takes every kind and by=service and by=version the
// spans that serve requests (server and consumer), so that a service's
// calls are the requests it served.
func parseKinds(s, by string) (map[span.Kind]bool, error) {
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
