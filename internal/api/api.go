// Package api serves clew's native query API: JSON under /api/v1/ on the
// query port. It parses and bounds requests, runs them on the store and
// renders traces as OTLP JSON. It is documented in docs/api.md.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// API serves the native query API.
type API struct {
	db     storage.Reader
	admin  storage.Admin // nil: no status or admin endpoints
	log    *slog.Logger
	now    func() time.Time
	limits httpapi.Limits
}

// New returns the API over db with the default limits. The status and
// admin endpoints run on admin; with a nil admin they are not registered.
func New(db storage.Reader, admin storage.Admin, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{db: db, admin: admin, log: logger.With("component", "api"), now: time.Now, limits: httpapi.DefaultLimits()}
}

// SetLimits sets the limits of each request; zero fields take their
// defaults. Call it before serving.
func (a *API) SetLimits(l httpapi.Limits) { a.limits = l.OrDefault() }

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/traces/{traceID}", a.getTrace)
	mux.HandleFunc("GET /api/v1/search", a.search)
	mux.HandleFunc("GET /api/v1/services", a.services)
	mux.HandleFunc("GET /api/v1/services/{service}/spans", a.spanNames)
	mux.HandleFunc("GET /api/v1/span-names", a.spanNames)
	mux.HandleFunc("GET /api/v1/attributes", a.attrKeys)
	mux.HandleFunc("GET /api/v1/attributes/{key}/values", a.attrValues)
	if a.admin == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/status", a.status)
	mux.HandleFunc("POST /api/v1/admin/flush", a.flush)
	mux.HandleFunc("POST /api/v1/admin/compact", a.compact)
	mux.HandleFunc("POST /api/v1/admin/retention", a.retention)
}

// writeQueryError maps a store error to a status (httpapi.WriteQueryError).
func (a *API) writeQueryError(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteQueryError(w, r, err, "query timed out: narrow the time range or add conditions", a.log)
}

func (a *API) getTrace(w http.ResponseWriter, r *http.Request) {
	id, err := span.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "trace ID must be 1 to 32 hex digits and not all zero")
		return
	}
	b, found, err := a.db.FindTrace(r.Context(), id)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	if !found {
		httpapi.WriteError(w, http.StatusNotFound, "trace "+id.String()+" not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(appendTraceJSON(nil, b.Spans))
}

// TraceSummary describes one trace of a search answer.
type TraceSummary struct {
	TraceID           string          `json:"traceID"`
	RootServiceName   string          `json:"rootServiceName"`
	RootName          string          `json:"rootName"`
	StartTimeUnixNano string          `json:"startTimeUnixNano"`
	DurationNanos     string          `json:"durationNanos"`
	SpanCount         int             `json:"spanCount"`
	ErrorCount        int             `json:"errorCount"`
	Services          []ServiceStat   `json:"services"`
	Trace             json.RawMessage `json:"trace,omitempty"`
}

// ServiceStat counts one service's spans in a trace.
type ServiceStat struct {
	Name       string `json:"name"`
	SpanCount  int    `json:"spanCount"`
	ErrorCount int    `json:"errorCount"`
}

// SearchResponse is the answer of GET /api/v1/search.
type SearchResponse struct {
	Traces     []TraceSummary `json:"traces"`
	Total      int            `json:"total"`
	NextCursor string         `json:"nextCursor,omitempty"`
	// Warning says why the page holds fewer traces than asked while more
	// match (query.max_spans_per_query); nextCursor continues after it.
	Warning string `json:"warning,omitempty"`
}

func (a *API) search(w http.ResponseWriter, r *http.Request) {
	vals := r.URL.Query()
	if vals.Has("q") {
		a.searchTraceQL(w, r) // traceql.go
		return
	}
	q, limit, cur, err := parseSearch(vals, a.now(), a.limits.MaxTracesPerSearch)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	full := false
	switch t := vals.Get("traces"); t {
	case "", "summary":
	case "full":
		full = true
	default:
		httpapi.WriteError(w, http.StatusBadRequest, "traces "+strconv.Quote(t)+": want summary or full")
		return
	}
	res, err := a.db.Search(r.Context(), q, limit, cur)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := SearchResponse{Total: res.Total}
	if res.Next != nil {
		out.NextCursor = encodeCursor(*res.Next)
	}
	if out.Traces, err = a.summarize(r.Context(), res, full); err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	if n := len(out.Traces); n > 0 && n < len(res.Hits) {
		// Cut by the span limit: the page ends early, and the cursor
		// continues after its last trace.
		last := res.Hits[n-1]
		out.NextCursor = encodeCursor(storage.Cursor{Start: last.Start, TraceID: last.TraceID})
		out.Warning = httpapi.SpanLimitMessage(n, len(res.Hits), a.limits.MaxSpansPerQuery) + "; continue with nextCursor"
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// summarize loads each hit's whole trace (two at a time) and summarizes
// it. It stops early, returning fewer summaries than hits, when the next
// trace would take the spans loaded past MaxSpansPerQuery.
func (a *API) summarize(ctx context.Context, res storage.SearchResult, full bool) ([]TraceSummary, error) {
	ids := make([]span.TraceID, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.TraceID
	}
	batches, err := httpapi.LoadTracesLimited(ctx, a.db, ids, 2, a.limits.MaxSpansPerQuery)
	if err != nil {
		return nil, err
	}
	dst := make([]TraceSummary, len(batches))
	for i, b := range batches {
		h := res.Hits[i]
		if b == nil {
			// Deleted by retention between search and load.
			dst[i] = TraceSummary{TraceID: h.TraceID.String(), StartTimeUnixNano: strconv.FormatUint(h.Start, 10),
				DurationNanos: strconv.FormatUint(h.End-min(h.Start, h.End), 10), Services: []ServiceStat{}}
			continue
		}
		dst[i] = summarizeTrace(h.TraceID, b.Spans)
		if full {
			dst[i].Trace = appendTraceJSON(nil, b.Spans)
		}
	}
	return dst, nil
}

func (a *API) services(w http.ResponseWriter, r *http.Request) {
	names, err := a.db.Services(r.Context())
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string][]string{"services": nonNil(names)})
}

func (a *API) spanNames(w http.ResponseWriter, r *http.Request) {
	svc := r.PathValue("service")
	if svc == "" {
		svc = r.URL.Query().Get("service")
	}
	names, err := a.db.SpanNames(r.Context(), svc)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string][]string{"spanNames": nonNil(names)})
}

func parseScopeParam(r *http.Request) (search.Scope, error) {
	s := r.URL.Query().Get("scope")
	sc, ok := search.ParseScope(s)
	if !ok {
		return 0, errors.New("scope " + strconv.Quote(s) + ": want span, resource, scope, event, link or any")
	}
	return sc, nil
}

func (a *API) attrKeys(w http.ResponseWriter, r *http.Request) {
	sc, err := parseScopeParam(r)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	keys, err := a.db.AttrKeys(r.Context(), sc)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string][]string{"attributes": nonNil(keys)})
}

// AttrValue is one distinct attribute value with its type.
type AttrValue struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

func (a *API) attrValues(w http.ResponseWriter, r *http.Request) {
	sc, err := parseScopeParam(r)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit <= 0 || limit > 10000 {
			httpapi.WriteError(w, http.StatusBadRequest, "limit "+strconv.Quote(s)+": want an integer from 1 to 10000")
			return
		}
	}
	vals, err := a.db.AttrValues(r.Context(), sc, r.PathValue("key"), limit)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := make([]AttrValue, len(vals))
	for i, v := range vals {
		out[i] = AttrValue{Type: v.Type.String(), Value: span.AppendValueJSON(nil, v)}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string][]AttrValue{"values": out})
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	httpapi.WriteJSON(w, http.StatusOK, a.admin.Stats(r.Context()))
}

func (a *API) flush(w http.ResponseWriter, r *http.Request) {
	if err := a.admin.Flush(r.Context()); err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "flushed"})
}

func (a *API) compact(w http.ResponseWriter, r *http.Request) {
	a.admin.Compact(r.Context())
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "compacted"})
}

func (a *API) retention(w http.ResponseWriter, r *http.Request) {
	a.admin.RunRetention(r.Context())
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": "retention applied"})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
