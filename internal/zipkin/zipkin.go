// Package zipkin serves the Zipkin v2 HTTP API on its own port (9411 by
// default), as a Zipkin server does: POST /api/v2/spans takes spans as JSON
// or proto3 (optionally gzipped) and makes them durable through the same
// ingest.Core as the OTLP and Jaeger receivers, and the query endpoints under
// /api/v2/ read clew's store through storage.Reader and answer in Zipkin v2
// JSON. Documented in docs/api.md ("Zipkin API").
//
// Zipkin spans map onto clew's model as the OpenTelemetry Collector's
// Zipkin receiver maps them (see model.go); encode.go holds the inverse, so
// a span sent over Zipkin reads back as it was sent. The JSON and protobuf
// decoders are hand-written and fuzzed.
package zipkin

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/storage"
)

// API serves the Zipkin v2 ingest and query endpoints.
type API struct {
	core *ingest.Core
	db   storage.Reader
	log  *slog.Logger
	now  func() time.Time
	deps DependencySource // nil: no dependency graph
}

// New returns the Zipkin API. Posted spans go through core (the process's
// receiver core: size bounds, shared in-flight budget, per-span limits and
// UTF-8 rule, outcomes and metrics, under the protocols zipkin_json and
// zipkin_proto); queries read db. A nil logger discards logs.
func New(core *ingest.Core, db storage.Reader, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{core: core, db: db, log: logger.With("component", "zipkin"), now: time.Now}
}

// Register adds the Zipkin routes to mux at Zipkin's own paths.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v2/spans", a.postSpans)
	mux.HandleFunc("GET /api/v2/spans", a.spanNames)
	mux.HandleFunc("GET /api/v2/services", a.services)
	mux.HandleFunc("GET /api/v2/remoteServices", a.remoteServices)
	mux.HandleFunc("GET /api/v2/traces", a.traces)
	mux.HandleFunc("GET /api/v2/trace/{traceId}", a.trace)
	mux.HandleFunc("GET /api/v2/traceMany", a.traceMany)
	mux.HandleFunc("GET /api/v2/dependencies", a.dependencies)
	mux.HandleFunc("GET /api/v2/autocompleteKeys", a.autocompleteKeys)
	mux.HandleFunc("GET /api/v2/autocompleteValues", a.autocompleteValues)
	mux.HandleFunc("/api/v2/", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// writeText answers with a plain-text message, as Zipkin's server does.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func writeJSONBody(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
