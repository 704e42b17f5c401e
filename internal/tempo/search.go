package tempo

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/engine"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// noRoot is what Tempo shows as the root service of a trace whose root span
// has not arrived.
const noRoot = "<root span not yet received>"

// searchResponse is the answer of GET /api/search. Status and Message,
// clew's additions, say when a limit cut the search short (as the
// metrics answers do); they are left out of a complete answer.
type searchResponse struct {
	Traces  []traceJSON   `json:"traces"`
	Metrics searchMetrics `json:"metrics"`
	Status  string        `json:"status,omitempty"`
	Message string        `json:"message,omitempty"`
}

// searchMetrics reports the work a search did; 64-bit counters are strings
// as in protobuf JSON.
type searchMetrics struct {
	InspectedTraces int    `json:"inspectedTraces"`
	InspectedBytes  string `json:"inspectedBytes"`
	InspectedSpans  string `json:"inspectedSpans"`
	TotalBlocks     int    `json:"totalBlocks"`
	CompletedJobs   int    `json:"completedJobs"`
	TotalJobs       int    `json:"totalJobs"`
}

func newMetrics(traces, spans int) searchMetrics {
	return searchMetrics{InspectedTraces: traces, InspectedBytes: "0", InspectedSpans: strconv.Itoa(spans), CompletedJobs: 1, TotalJobs: 1}
}

type traceJSON struct {
	TraceID           string                  `json:"traceID"`
	RootServiceName   string                  `json:"rootServiceName"`
	RootTraceName     string                  `json:"rootTraceName,omitempty"`
	StartTimeUnixNano string                  `json:"startTimeUnixNano"`
	DurationMs        uint64                  `json:"durationMs"`
	SpanSet           *spansetJSON            `json:"spanSet,omitempty"`
	SpanSets          []spansetJSON           `json:"spanSets"`
	ServiceStats      map[string]serviceStats `json:"serviceStats,omitempty"`
}

type serviceStats struct {
	SpanCount  int `json:"spanCount"`
	ErrorCount int `json:"errorCount,omitempty"`
}

type spansetJSON struct {
	Spans      []spanJSON `json:"spans"`
	Matched    int        `json:"matched"`
	Attributes []kvJSON   `json:"attributes,omitempty"`
}

type spanJSON struct {
	SpanID            string   `json:"spanID"`
	Name              string   `json:"name"`
	StartTimeUnixNano string   `json:"startTimeUnixNano"`
	DurationNanos     string   `json:"durationNanos"`
	Attributes        []kvJSON `json:"attributes,omitempty"`
}

// kvJSON is an OTLP KeyValue in protobuf JSON.
type kvJSON struct {
	Key   string   `json:"key"`
	Value anyValue `json:"value"`
}

// anyValue is an OTLP AnyValue in protobuf JSON: ints as strings; statuses,
// kinds and durations as strings ("error", "server", "1.5ms").
type anyValue struct {
	StringValue *string     `json:"stringValue,omitempty"`
	IntValue    *string     `json:"intValue,omitempty"`
	DoubleValue *float64    `json:"doubleValue,omitempty"`
	BoolValue   *bool       `json:"boolValue,omitempty"`
	ArrayValue  *arrayValue `json:"arrayValue,omitempty"`
}

type arrayValue struct {
	Values []anyValue `json:"values"`
}

func strAny(s string) anyValue { return anyValue{StringValue: &s} }

// toAny converts an engine value; nil becomes an empty AnyValue.
func toAny(v engine.Value) anyValue {
	if vs := v.Values(); len(vs) > 0 {
		arr := &arrayValue{}
		for _, e := range vs {
			arr.Values = append(arr.Values, toAny(e))
		}
		return anyValue{ArrayValue: arr}
	}
	switch v.Type {
	case engine.TypeString, engine.TypeDuration, engine.TypeStatus, engine.TypeKind:
		return strAny(v.String())
	case engine.TypeInt:
		s := strconv.FormatInt(v.Int, 10)
		return anyValue{IntValue: &s}
	case engine.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return strAny(v.String())
		}
		f := v.Float
		return anyValue{DoubleValue: &f}
	case engine.TypeBool:
		b := v.Int != 0
		return anyValue{BoolValue: &b}
	}
	return anyValue{}
}

func toKVs(ls []engine.Label) []kvJSON {
	if len(ls) == 0 {
		return nil
	}
	out := make([]kvJSON, len(ls))
	for i, l := range ls {
		out[i] = kvJSON{Key: l.Key, Value: toAny(l.Value)}
	}
	return out
}

// search serves GET /api/search: TraceQL in q, or the legacy tags,
// minDuration and maxDuration. start and end (Unix seconds) bound the
// span start times that select traces.
func (a *API) search(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkLengths(v); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := intParam(v, "limit", 20, 1, a.limits.MaxTracesPerSearch)
	if err == nil {
		var spss int
		spss, err = intParam(v, "spss", 3, 1, 1000)
		if err == nil {
			a.runSearch(w, r, limit, spss)
			return
		}
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

func (a *API) runSearch(w http.ResponseWriter, r *http.Request, limit, spss int) {
	v := r.URL.Query()
	start, end, err := timeRange(v, a.now(), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var lo, hi uint64
	if !start.IsZero() {
		lo = uint64(max(start.UnixNano(), 0))
	}
	if v.Get("end") != "" {
		hi = uint64(max(end.UnixNano(), 0))
	}
	var res *engine.SearchResult
	eng, budget := a.engine()
	if q := strings.TrimSpace(v.Get("q")); q != "" {
		pq, ok := parseQuery(w, q)
		if !ok {
			return
		}
		res, err = eng.Search(r.Context(), engine.SearchRequest{Query: pq, Start: lo, End: hi, Limit: limit, SpansPerSpanset: spss})
		if err == engine.ErrMetricsQuery {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	} else {
		sq, qerr := legacyQuery(v)
		if qerr == nil {
			sq.Start, sq.End = lo, hi
			qerr = sq.Compile()
		}
		if qerr != nil {
			writeError(w, http.StatusBadRequest, qerr.Error())
			return
		}
		res, err = eng.SearchNative(r.Context(), sq, limit, spss)
	}
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := searchResponse{Traces: make([]traceJSON, 0, len(res.Traces)), Metrics: newMetrics(res.Inspected, res.InspectedSpans)}
	if msg := a.partial(budget, res.Truncated, false, false); msg != "" {
		out.Status, out.Message = "PARTIAL", msg
	}
	for _, tr := range res.Traces {
		out.Traces = append(out.Traces, traceToJSON(tr))
	}
	writeJSON(w, http.StatusOK, out)
}

func traceToJSON(tr engine.Trace) traceJSON {
	tj := traceJSON{
		TraceID:           tr.TraceID.String(),
		RootServiceName:   noRoot,
		StartTimeUnixNano: strconv.FormatUint(tr.StartUnixNano, 10),
		DurationMs:        tr.DurationNanos / 1e6,
		ServiceStats:      map[string]serviceStats{},
	}
	if tr.HasRoot {
		tj.RootServiceName, tj.RootTraceName = tr.RootServiceName, tr.RootName
	}
	for _, s := range tr.Services {
		tj.ServiceStats[s.Name] = serviceStats{SpanCount: s.SpanCount, ErrorCount: s.ErrorCount}
	}
	for _, ss := range tr.Spansets {
		sj := spansetJSON{Spans: make([]spanJSON, 0, len(ss.Spans)), Matched: ss.Matched, Attributes: toKVs(ss.Labels)}
		for _, sp := range ss.Spans {
			sj.Spans = append(sj.Spans, spanJSON{
				SpanID:            sp.Span.SpanID.String(),
				Name:              sp.Span.Name,
				StartTimeUnixNano: strconv.FormatUint(sp.Span.StartUnixNano, 10),
				DurationNanos:     strconv.FormatUint(sp.Span.Duration(), 10),
				Attributes:        toKVs(sp.Attrs),
			})
		}
		tj.SpanSets = append(tj.SpanSets, sj)
	}
	if len(tj.SpanSets) > 0 {
		tj.SpanSet = &tj.SpanSets[0]
	}
	return tj
}

// legacyQuery builds the native search of Tempo's legacy form: tags
// (logfmt; service.name and name are the service and span name,
// status.code the status, anything else an attribute of the span or its
// resource, scope, events or links, compared as text), minDuration and
// maxDuration.
func legacyQuery(v map[string][]string) (*search.Query, error) {
	get := func(k string) string {
		if vs := v[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	q := &search.Query{}
	tags, err := parseLogfmt(get("tags"))
	if err != nil {
		return nil, err
	}
	for _, kv := range tags {
		switch kv[0] {
		case "service.name":
			q.Service = kv[1]
		case "name":
			q.SpanName = kv[1]
		case "status.code", "status":
			st, ok := span.ParseStatus(strings.TrimPrefix(strings.ToLower(kv[1]), "status_code_"))
			if !ok {
				return nil, &paramError{"tags: status " + strconv.Quote(kv[1]) + ": want unset, ok or error"}
			}
			q.Statuses = append(q.Statuses, st)
		default:
			q.Conds = append(q.Conds, search.Cond{Key: kv[0], Op: search.OpEq, Value: span.StringValue(kv[1])})
		}
	}
	for name, dst := range map[string]*uint64{"minDuration": &q.MinDuration, "maxDuration": &q.MaxDuration} {
		if s := get(name); s != "" {
			d, err := parseDuration(s)
			if err != nil || d <= 0 {
				return nil, &paramError{name + " " + strconv.Quote(s) + ": want a positive Go duration such as 100ms"}
			}
			*dst = uint64(d)
		}
	}
	return q, nil
}

type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }
