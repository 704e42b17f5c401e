// Package zipkin serves the Zipkin v2 HTTP API on its own port (9411 by
// default), as a Zipkin server does: POST /api/v2/spans takes spans as JSON
// or proto3 (optionally gzipped) and makes them durable through the same
// ingest.Appender as the OTLP receivers, and the query endpoints under
// /api/v2/ read clew's store through api.Querier and answer in Zipkin v2
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/ingest"
)

// API serves the Zipkin v2 ingest and query endpoints.
type API struct {
	cfg    ingest.Config
	tenant string
	app    ingest.Appender
	db     api.Querier
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
	deps   DependencySource // nil: no dependency graph

	budget *ingest.Budget
}

// New returns the Zipkin API. Posted spans go to app under tenant, bounded
// by cfg's request limits (with a budget of bytes in flight of its own,
// cfg.MaxInflightBytes); queries read db. Metrics are registered on reg
// when it is not nil; a nil logger discards logs.
func New(cfg ingest.Config, tenant string, app ingest.Appender, db api.Querier, logger *slog.Logger, reg prometheus.Registerer) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, tenant: tenant, app: app, db: db, log: logger.With("component", "zipkin"), m: newMetrics(reg), now: time.Now,
		budget: ingest.NewBudget(cfg.MaxInflightBytes)}
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

// Discard reasons of clew_zipkin_discarded_spans_total; the first four are
// the ingest package's, so both receivers' discards read alike.
const (
	reasonMalformed        = ingest.ReasonMalformed
	reasonTooLarge         = ingest.ReasonTooLarge
	reasonOverloaded       = ingest.ReasonOverloaded
	reasonStorage          = ingest.ReasonStorage
	reasonTooManySpans     = "too_many_spans"
	reasonUnsupportedMedia = "unsupported_media_type"
)

type metrics struct {
	requests  *prometheus.CounterVec
	spans     prometheus.Counter
	bytes     prometheus.Counter
	discarded *prometheus.CounterVec
	truncated prometheus.Counter
	dropped   *prometheus.CounterVec
	duration  prometheus.Histogram
	inflight  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_zipkin_requests_total", Help: "Zipkin POST /api/v2/spans requests by encoding (json, proto) and outcome."}, []string{"encoding", "outcome"}),
		spans:     prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_zipkin_spans_received_total", Help: "Zipkin spans accepted and made durable."}),
		bytes:     prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_zipkin_bytes_received_total", Help: "Zipkin request bytes received (as sent, before decompression)."}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_zipkin_discarded_spans_total", Help: "Zipkin spans not stored, by reason. For whole requests refused before decoding, the count is of requests."}, []string{"reason"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_zipkin_truncated_values_total", Help: "Zipkin tag values, names and keys cut to the configured maximum size."}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_zipkin_dropped_items_total", Help: "Zipkin tags and annotations dropped over the per-span limits, by kind (attribute, event)."}, []string{"kind"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clew_zipkin_request_duration_seconds", Help: "Time to handle a Zipkin POST /api/v2/spans request.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_zipkin_inflight_bytes", Help: "Decompressed bytes of Zipkin requests being processed."}),
	}
	for _, r := range []string{reasonMalformed, reasonTooLarge, reasonOverloaded, reasonStorage, reasonTooManySpans, reasonUnsupportedMedia} {
		m.discarded.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.spans, m.bytes, m.discarded, m.truncated, m.dropped, m.duration, m.inflight)
	}
	return m
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
