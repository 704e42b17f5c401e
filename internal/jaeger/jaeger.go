// Package jaeger serves the query APIs that Jaeger UI and Grafana's Jaeger
// datasource call, over clew's store: Jaeger's legacy internal JSON API
// (/api/services, /api/traces, ...) and api_v3 (/api/v3/...). Both are
// mounted under a prefix, /jaeger on the query port, and documented in
// docs/api.md ("Jaeger API").
//
// Searches compile to the same search.Query the native API uses, with
// Jaeger's semantics: a trace matches when one of its spans meets every
// condition, tags may sit on the span, its resource, its scope, its events or
// its links, and tag values compare as strings. Traces are rendered in
// Jaeger's UI model (legacy API, see model.go) or as OTLP JSON (api_v3).
package jaeger

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// API serves the Jaeger-compatible query APIs.
type API struct {
	db     storage.Reader
	log    *slog.Logger
	limits httpapi.Limits
	deps   DependencySource // nil: no dependency graph
}

// New returns the Jaeger API over db with the default limits. A nil logger
// discards logs.
func New(db storage.Reader, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{db: db, log: logger.With("component", "jaeger"), limits: httpapi.DefaultLimits()}
}

// SetLimits sets the limits of each request; zero fields take their
// defaults. Call it before serving.
func (a *API) SetLimits(l httpapi.Limits) { a.limits = l.OrDefault() }

// Register adds the API's routes to mux under prefix, which is empty or
// starts with a slash and has none at the end ("/jaeger"). Jaeger UI and
// Grafana then use http://HOST:PORT/jaeger as their base URL.
func (a *API) Register(mux *http.ServeMux, prefix string) {
	// Legacy internal JSON API.
	mux.HandleFunc("GET "+prefix+"/api/services", a.services)
	mux.HandleFunc("GET "+prefix+"/api/services/{service}/operations", a.serviceOperations)
	mux.HandleFunc("GET "+prefix+"/api/operations", a.operations)
	mux.HandleFunc("GET "+prefix+"/api/traces", a.findTraces)
	mux.HandleFunc("GET "+prefix+"/api/traces/{traceID}", a.getTrace)
	mux.HandleFunc("GET "+prefix+"/api/dependencies", a.dependencies)
	// api_v3.
	mux.HandleFunc("GET "+prefix+"/api/v3/services", a.v3Services)
	mux.HandleFunc("GET "+prefix+"/api/v3/operations", a.v3Operations)
	mux.HandleFunc("GET "+prefix+"/api/v3/traces", a.v3FindTraces)
	mux.HandleFunc("GET "+prefix+"/api/v3/traces/{traceID}", a.v3GetTrace)
	// Anything else under the API answers in the legacy error envelope
	// rather than with the mux's plain-text 404.
	mux.HandleFunc(prefix+"/api/", func(w http.ResponseWriter, r *http.Request) {
		writeLegacyError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// writeJSON writes v as the JSON body of a response with status code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(legacyResponse{Errors: []legacyError{{Code: code, Msg: "encode response: " + err.Error()}}})
	}
	writeBody(w, code, append(b, '\n'))
}

func writeBody(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// queryStatus maps a store error to a status and message: a deadline is 504,
// a cancelled request 499 (the client is gone), anything else 500.
func (a *API) queryStatus(r *http.Request, err error) (int, string) {
	code, msg, internal := httpapi.QueryStatus(r.Context(), err, "")
	if internal {
		a.log.Error("query", "path", r.URL.Path, "err", err)
	}
	return code, msg
}

// loadConcurrency bounds the traces loaded at once for one request, as the
// native API does: the machine is small and traces can be large.
const loadConcurrency = 2

// loadTraces loads the traces ids names, keeping their order; a trace that
// is not found has a nil batch. It returns fewer batches than ids when the
// next trace would take the spans loaded past query.max_spans_per_query.
func (a *API) loadTraces(ctx context.Context, ids []span.TraceID) ([]*span.Batch, error) {
	return httpapi.LoadTracesLimited(ctx, a.db, ids, loadConcurrency, a.limits.MaxSpansPerQuery)
}

// cutMessage explains a search answer cut by the span limit: kept of
// asked traces.
func (a *API) cutMessage(kept, asked int) string {
	return httpapi.SpanLimitMessage(kept, asked, a.limits.MaxSpansPerQuery)
}

// search runs p's search and returns the matching trace IDs, newest
// first, and the exact number of matching traces.
func (a *API) search(ctx context.Context, p *findParams) ([]span.TraceID, int, error) {
	res, err := a.db.Search(ctx, &p.query, p.limit, nil)
	if err != nil {
		return nil, 0, err
	}
	ids := make([]span.TraceID, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.TraceID
	}
	return ids, res.Total, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
