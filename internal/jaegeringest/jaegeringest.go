// Package jaegeringest receives spans the way a Jaeger collector does: the
// api_v2 gRPC CollectorService (PostSpans, port 14250 by default) and
// Thrift over HTTP (POST /api/traces with a binary-protocol jaeger.Batch,
// port 14268 by default). Both make the spans durable through the same
// ingest.Appender as the OTLP and Zipkin receivers, bounded by the same
// ingest limits, and answer only once the spans are durable. Documented in
// docs/api.md ("Jaeger collector").
//
// The wire formats are decoded with jaeger-idl's generated code (gogo
// protobuf for gRPC, Apache Thrift for HTTP); the mapping of Jaeger's model
// onto span.Batch is clew's own (model.go) and follows the OpenTelemetry
// Collector's Jaeger receiver, so that spans read back as they would from
// Tempo or the Collector.
package jaegeringest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// Protocol labels of the metrics.
const (
	protoGRPC   = "grpc"
	protoThrift = "thrift_http"
)

// Discard reasons of clew_jaeger_discarded_spans_total; the first four are
// the ingest package's, so every receiver's discards read alike.
const (
	reasonMalformed        = ingest.ReasonMalformed
	reasonTooLarge         = ingest.ReasonTooLarge
	reasonOverloaded       = ingest.ReasonOverloaded
	reasonStorage          = ingest.ReasonStorage
	reasonTooManySpans     = "too_many_spans"
	reasonUnsupportedMedia = "unsupported_media_type"
)

// Receiver serves the Jaeger collector protocols. One Receiver backs both
// the gRPC server and the HTTP handler, sharing one budget of bytes in
// flight (cfg.MaxInflightBytes, apart from the OTLP receiver's).
type Receiver struct {
	cfg    ingest.Config
	tenant string
	app    ingest.Appender
	log    *slog.Logger
	m      *metrics

	budget *ingest.Budget
}

// New returns a Receiver that appends to app under tenant, bounded by cfg.
// Metrics are registered on reg when it is not nil; a nil logger discards
// logs.
func New(cfg ingest.Config, tenant string, app ingest.Appender, logger *slog.Logger, reg prometheus.Registerer) *Receiver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Receiver{cfg: cfg, tenant: tenant, app: app, log: logger.With("component", "jaegeringest"), m: newMetrics(reg),
		budget: ingest.NewBudget(cfg.MaxInflightBytes)}
}

// HTTPHandler returns the handler of Jaeger's collector HTTP port:
// POST /api/traces.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/traces", r.postTraces)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeText(w, http.StatusNotFound, "no such endpoint: "+req.Method+" "+req.URL.Path+" (POST /api/traces takes Thrift batches)")
	})
	return mux
}

type metrics struct {
	requests  *prometheus.CounterVec
	spans     *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	discarded *prometheus.CounterVec
	truncated prometheus.Counter
	dropped   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inflight  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_jaeger_requests_total", Help: "Jaeger collector requests by protocol (grpc, thrift_http) and outcome."}, []string{"protocol", "outcome"}),
		spans:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_jaeger_spans_received_total", Help: "Jaeger spans accepted and made durable, by protocol."}, []string{"protocol"}),
		bytes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_jaeger_bytes_received_total", Help: "Jaeger request bytes received (as sent, before decompression), by protocol."}, []string{"protocol"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_jaeger_discarded_spans_total", Help: "Jaeger spans not stored, by reason. For whole requests refused before decoding, the count is of requests."}, []string{"reason"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_jaeger_truncated_values_total", Help: "Jaeger tag values, names and keys cut to the configured maximum size."}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_jaeger_dropped_items_total", Help: "Jaeger tags, logs and references dropped over the per-span limits, by kind (attribute, event, link)."}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clew_jaeger_request_duration_seconds", Help: "Time to handle a Jaeger collector request, by protocol.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"protocol"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_jaeger_inflight_bytes", Help: "Bytes of Jaeger requests being processed."}),
	}
	for _, r := range []string{reasonMalformed, reasonTooLarge, reasonOverloaded, reasonStorage, reasonTooManySpans, reasonUnsupportedMedia} {
		m.discarded.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.spans, m.bytes, m.discarded, m.truncated, m.dropped, m.duration, m.inflight)
	}
	return m
}

// ShareBudget makes the receiver count its requests against b, the
// process-wide in-flight budget (see ingest.Budget), instead of its own.
func (r *Receiver) ShareBudget(b *ingest.Budget) { r.budget = b }

func (r *Receiver) reserve(n int64) bool {
	cur, ok := r.budget.Reserve(n)
	r.m.inflight.Set(float64(cur))
	return ok
}

func (r *Receiver) unreserve(n int64) { r.m.inflight.Set(float64(r.budget.Release(n))) }

// outcome is the protocol-independent answer to a request.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeBadRequest
	outcomeTooLarge
	outcomeUnsupported
	outcomeOverloaded  // 429 / RESOURCE_EXHAUSTED
	outcomeUnavailable // 503 / UNAVAILABLE
)

func (o outcome) String() string {
	return [...]string{"ok", "bad_request", "too_large", "unsupported_media_type", "overloaded", "unavailable"}[o]
}

// refused counts a request refused as a whole.
func (r *Receiver) refused(protocol string, o outcome, reason string) {
	r.m.requests.WithLabelValues(protocol, o.String()).Inc()
	r.m.discarded.WithLabelValues(reason).Inc()
}

// decodeFailed classifies a decoding error and counts it.
func (r *Receiver) decodeFailed(protocol string, err error) {
	reason := reasonMalformed
	if errors.Is(err, errTooManySpans) {
		reason = reasonTooManySpans
	}
	r.refused(protocol, outcomeBadRequest, reason)
}

// store makes b durable through the appender (the WAL record is b encoded
// as an OTLP request) and counts the outcome. It returns outcomeOK only
// once the spans are durable.
func (r *Receiver) store(ctx context.Context, protocol string, b *span.Batch, st stats) (outcome, string) {
	r.account(st)
	if len(b.Spans) > 0 {
		rec := otlp.MarshalProto(nil, b)
		if err := r.app.Append(ctx, r.tenant, rec, b); err != nil {
			n := float64(len(b.Spans))
			var o outcome
			var msg string
			switch {
			case errors.Is(err, ingest.ErrRetryable):
				o, msg = outcomeOverloaded, err.Error()
				r.m.discarded.WithLabelValues(reasonOverloaded).Add(n)
			case ctx.Err() != nil:
				o, msg = outcomeUnavailable, "request cancelled before its spans were durable: "+ctx.Err().Error()
				r.m.discarded.WithLabelValues(reasonStorage).Add(n)
			default:
				o, msg = outcomeUnavailable, "store spans: "+err.Error()
				r.m.discarded.WithLabelValues(reasonStorage).Add(n)
				r.log.Error("append spans", "err", err)
			}
			r.m.requests.WithLabelValues(protocol, o.String()).Inc()
			return o, msg
		}
		r.m.spans.WithLabelValues(protocol).Add(float64(len(b.Spans)))
	}
	r.m.requests.WithLabelValues(protocol, outcomeOK.String()).Inc()
	return outcomeOK, ""
}

func (r *Receiver) account(st stats) {
	if st.truncated > 0 {
		r.m.truncated.Add(float64(st.truncated))
	}
	if st.droppedAttrs > 0 {
		r.m.dropped.WithLabelValues("attribute").Add(float64(st.droppedAttrs))
	}
	if st.droppedEvents > 0 {
		r.m.dropped.WithLabelValues("event").Add(float64(st.droppedEvents))
	}
	if st.droppedLinks > 0 {
		r.m.dropped.WithLabelValues("link").Add(float64(st.droppedLinks))
	}
}
