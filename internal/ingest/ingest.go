// Package ingest receives spans over OTLP/gRPC and OTLP/HTTP: it bounds
// what a request may make clew allocate, decodes, hands the batch to an
// Appender that makes it durable, and answers the sender so that it can act:
// success, partial success, a permanent error (400, INVALID_ARGUMENT) or an
// overload it should retry (429/503, RESOURCE_EXHAUSTED/UNAVAILABLE).
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// Appender makes a batch durable and visible. rec is the batch encoded as
// an OTLP ExportTraceServiceRequest. Append returns nil only once the batch
// is durable; it returns an error wrapping ErrRetryable when the sender
// should retry later. It must not retain rec or batch.
type Appender interface {
	Append(ctx context.Context, tenant string, rec []byte, batch *span.Batch) error
}

// ErrRetryable marks Append errors after which a sender should retry.
var ErrRetryable = errors.New("retryable")

// Config holds the user-facing ingest limits.
type Config struct {
	// MaxRequestBytes bounds a request body as received (compressed).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxDecompressedBytes bounds a request body after decompression.
	MaxDecompressedBytes int64 `yaml:"max_decompressed_bytes"`
	// MaxInflightBytes bounds the decompressed bytes of all requests being
	// processed at once; beyond it requests are refused with 429 /
	// RESOURCE_EXHAUSTED so that senders back off.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// RetryAfter is what overload answers tell senders to wait.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Limits bound spans per request and attribute sizes.
	Limits otlp.Limits `yaml:"limits"`
}

// DefaultConfig returns the default ingest limits.
func DefaultConfig() Config {
	return Config{
		MaxRequestBytes:      16 << 20,
		MaxDecompressedBytes: 64 << 20,
		MaxInflightBytes:     96 << 20,
		RetryAfter:           time.Second,
		Limits:               otlp.DefaultLimits(),
	}
}

// Discard reasons of clew_ingest_discarded_spans_total beyond the
// per-span reasons of otlp.Reason.
const (
	ReasonMalformed  = "malformed_request"
	ReasonTooLarge   = "request_too_large"
	ReasonOverloaded = "overloaded"
	ReasonStorage    = "storage_error"
)

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
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_ingest_requests_total", Help: "Export requests by protocol and outcome."}, []string{"protocol", "outcome"}),
		spans:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_ingest_spans_received_total", Help: "Spans accepted and made durable, by protocol."}, []string{"protocol"}),
		bytes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_ingest_bytes_received_total", Help: "Request bytes received (as sent, before decompression), by protocol."}, []string{"protocol"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_ingest_discarded_spans_total", Help: "Spans not stored, by reason. For whole requests refused before decoding, the count is of requests."}, []string{"reason"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_ingest_truncated_values_total", Help: "Attribute values and names cut to the configured maximum size."}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_ingest_dropped_items_total", Help: "Attributes, events and links dropped over the per-span limits, by kind."}, []string{"kind"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clew_ingest_request_duration_seconds", Help: "Time to handle an export request, by protocol.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"protocol"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_ingest_inflight_bytes", Help: "Decompressed bytes of requests being processed."}),
	}
	for i := range otlp.NumReasons {
		m.discarded.WithLabelValues(otlp.Reason(i).String())
	}
	for _, r := range []string{ReasonMalformed, ReasonTooLarge, ReasonOverloaded, ReasonStorage} {
		m.discarded.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.spans, m.bytes, m.discarded, m.truncated, m.dropped, m.duration, m.inflight)
	}
	return m
}

// Receiver is the protocol-independent part of ingest: limits, decoding,
// appending and accounting. The gRPC and HTTP front ends share one.
type Receiver struct {
	cfg    Config
	app    Appender
	log    *slog.Logger
	m      *metrics
	tenant string

	budget *Budget

	decoders sync.Pool // *otlp.Decoder
	batches  sync.Pool // *span.Batch
	bufs     sync.Pool // *[]byte
}

// NewReceiver returns a Receiver that appends to app for the given tenant.
func NewReceiver(cfg Config, tenant string, app Appender, logger *slog.Logger, reg prometheus.Registerer) *Receiver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, app: app, log: logger.With("component", "ingest"), m: newMetrics(reg), tenant: tenant,
		budget: NewBudget(cfg.MaxInflightBytes)}
	r.decoders.New = func() any { return otlp.NewDecoder(cfg.Limits) }
	r.batches.New = func() any { return &span.Batch{} }
	return r
}

// Budget returns the in-flight budget, for the other receivers of the
// process to share.
func (r *Receiver) Budget() *Budget { return r.budget }

func (r *Receiver) reserve(n int64) bool {
	cur, ok := r.budget.Reserve(n)
	r.m.inflight.Set(float64(cur))
	return ok
}

func (r *Receiver) unreserve(n int64) { r.m.inflight.Set(float64(r.budget.Release(n))) }

func (r *Receiver) getBuf() *[]byte {
	if b, ok := r.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (r *Receiver) putBuf(b *[]byte) {
	if cap(*b) > 8<<20 { // do not keep huge buffers alive
		return
	}
	*b = (*b)[:0]
	r.bufs.Put(b)
}

// outcome is the protocol-independent answer to an export.
type outcome struct {
	kind     outcomeKind
	rejected int64
	msg      string
}

type outcomeKind int

const (
	outcomeOK outcomeKind = iota
	outcomeBadRequest
	outcomeOverloaded  // 429 / RESOURCE_EXHAUSTED
	outcomeUnavailable // 503 / UNAVAILABLE
	outcomeInternal
)

func (k outcomeKind) String() string {
	return [...]string{"ok", "bad_request", "overloaded", "unavailable", "internal"}[k]
}

// export decodes body (already decompressed) and appends it. isJSON selects
// the OTLP/JSON decoder.
func (r *Receiver) export(ctx context.Context, protocol string, body []byte, isJSON bool) outcome {
	dec := r.decoders.Get().(*otlp.Decoder)
	defer r.decoders.Put(dec)
	batch := r.batches.Get().(*span.Batch)
	defer func() {
		batch.Reset()
		r.batches.Put(batch)
	}()
	var res otlp.Result
	var err error
	if isJSON {
		res, err = dec.DecodeJSON(body, batch)
	} else {
		res, err = dec.DecodeProto(body, batch)
	}
	if err != nil {
		r.m.discarded.WithLabelValues(ReasonMalformed).Inc()
		return outcome{kind: outcomeBadRequest, msg: "decode OTLP request: " + err.Error()}
	}
	r.account(res)
	if len(batch.Spans) > 0 {
		rec := body
		var encBuf *[]byte
		if isJSON || res.Modified {
			encBuf = r.getBuf()
			*encBuf = otlp.MarshalProto((*encBuf)[:0], batch)
			rec = *encBuf
		}
		err = r.app.Append(ctx, r.tenant, rec, batch)
		if encBuf != nil {
			r.putBuf(encBuf)
		}
		if err != nil {
			n := float64(len(batch.Spans))
			if errors.Is(err, ErrRetryable) {
				r.m.discarded.WithLabelValues(ReasonOverloaded).Add(n)
				return outcome{kind: outcomeOverloaded, msg: err.Error()}
			}
			if ctx.Err() != nil {
				r.m.discarded.WithLabelValues(ReasonStorage).Add(n)
				return outcome{kind: outcomeUnavailable, msg: "request cancelled before its spans were durable: " + ctx.Err().Error()}
			}
			r.m.discarded.WithLabelValues(ReasonStorage).Add(n)
			r.log.Error("append spans", "err", err)
			return outcome{kind: outcomeUnavailable, msg: "store spans: " + err.Error()}
		}
		r.m.spans.WithLabelValues(protocol).Add(float64(len(batch.Spans)))
	}
	return outcome{kind: outcomeOK, rejected: int64(res.Rejected), msg: res.Message}
}

func (r *Receiver) account(res otlp.Result) {
	for reason, n := range res.RejectReasons {
		if n > 0 {
			r.m.discarded.WithLabelValues(otlp.Reason(reason).String()).Add(float64(n))
		}
	}
	if res.Truncated > 0 {
		r.m.truncated.Add(float64(res.Truncated))
	}
	if res.DroppedAttrs > 0 {
		r.m.dropped.WithLabelValues("attribute").Add(float64(res.DroppedAttrs))
	}
	if res.DroppedEvents > 0 {
		r.m.dropped.WithLabelValues("event").Add(float64(res.DroppedEvents))
	}
	if res.DroppedLinks > 0 {
		r.m.dropped.WithLabelValues("link").Add(float64(res.DroppedLinks))
	}
}
