package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/otlp"
)

// metrics is the one family every receiver counts in (clew_receiver_*),
// and, for one release, the per-receiver families it replaces
// (clew_ingest_*, clew_zipkin_*, clew_jaeger_*), fed from the same events so
// that they keep their old values. docs/operations.md lists both.
type metrics struct {
	requests     *prometheus.CounterVec   // protocol, outcome
	refused      *prometheus.CounterVec   // protocol, reason
	spans        *prometheus.CounterVec   // protocol, outcome (accepted, refused)
	spansRefused *prometheus.CounterVec   // protocol, reason
	truncated    *prometheus.CounterVec   // protocol, reason
	bytes        *prometheus.CounterVec   // protocol
	dur          *prometheus.HistogramVec // protocol
	inflightG    prometheus.Gauge
	logRecords   *prometheus.CounterVec // protocol, outcome (accepted, refused)

	legacy map[Protocol]*legacyBound
	// legacyInflight are the old per-receiver in-flight gauges; they all
	// show the shared budget.
	legacyInflight []prometheus.Gauge
}

var durationBuckets = prometheus.ExponentialBuckets(0.0005, 2, 14)

func newMetrics(reg prometheus.Registerer) *metrics {
	p := []string{"protocol"}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_requests_total",
			Help: "Requests received, by protocol and outcome (accepted, rejected, overloaded, unavailable)."}, []string{"protocol", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_requests_refused_total",
			Help: "Requests refused as a whole, by protocol and reason."}, []string{"protocol", "reason"}),
		spans: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_spans_total",
			Help: "Decoded spans by protocol and outcome: accepted (durable) or refused."}, []string{"protocol", "outcome"}),
		spansRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_spans_refused_total",
			Help: "Decoded spans not stored, by protocol and reason."}, []string{"protocol", "reason"}),
		truncated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_truncated_total",
			Help: "Strings cut or repaired and attributes, events and links dropped to fit the per-span limits, by protocol and reason."}, []string{"protocol", "reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_bytes_total",
			Help: "Request body bytes received (as sent, before decompression), by protocol."}, p),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clew_receiver_request_duration_seconds",
			Help: "Time to handle a request, by protocol.", Buckets: durationBuckets}, p),
		inflightG: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_receiver_inflight_bytes",
			Help: "Decompressed bytes of requests being processed, across all receivers (the shared in-flight budget)."}),
		logRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_receiver_log_records_total",
			Help: "Decoded log records by protocol and outcome: accepted (durable) or refused."}, []string{"protocol", "outcome"}),
		legacy: map[Protocol]*legacyBound{},
	}
	for _, pr := range LogProtocols {
		for _, k := range []Kind{Accepted, Rejected, Overloaded, Unavailable} {
			m.requests.WithLabelValues(string(pr), k.String())
		}
		m.logRecords.WithLabelValues(string(pr), "accepted")
		m.logRecords.WithLabelValues(string(pr), "refused")
		for _, r := range requestReasons {
			m.refused.WithLabelValues(string(pr), r)
		}
		for _, r := range truncReasons {
			m.truncated.WithLabelValues(string(pr), r)
		}
		m.bytes.WithLabelValues(string(pr))
	}
	for _, pr := range Protocols {
		for _, k := range []Kind{Accepted, Rejected, Overloaded, Unavailable} {
			m.requests.WithLabelValues(string(pr), k.String())
		}
		m.spans.WithLabelValues(string(pr), "accepted")
		m.spans.WithLabelValues(string(pr), "refused")
		for _, r := range requestReasons {
			m.refused.WithLabelValues(string(pr), r)
		}
		for i := range otlp.NumReasons {
			m.spansRefused.WithLabelValues(string(pr), otlp.Reason(i).String())
		}
		for _, r := range truncReasons {
			m.truncated.WithLabelValues(string(pr), r)
		}
		m.bytes.WithLabelValues(string(pr))
	}
	cs := []prometheus.Collector{m.requests, m.refused, m.spans, m.spansRefused, m.truncated, m.bytes, m.dur, m.inflightG, m.logRecords}

	fams := map[string]*legacyFamily{}
	for _, pr := range Protocols {
		name, label := legacyNames(pr)
		f, ok := fams[name]
		if !ok {
			f = newLegacyFamily(name)
			fams[name] = f
			cs = append(cs, f.collectors()...)
			m.legacyInflight = append(m.legacyInflight, f.inflight)
		}
		m.legacy[pr] = f.bind(label)
	}
	if reg != nil {
		reg.MustRegister(cs...)
	}
	return m
}

func (m *metrics) request(p Protocol, o Outcome) {
	m.requests.WithLabelValues(string(p), o.Kind.String()).Inc()
	if o.Kind != Accepted {
		m.refused.WithLabelValues(string(p), o.Reason).Inc()
	}
	if p.logs() {
		if o.Stored > 0 {
			m.logRecords.WithLabelValues(string(p), "accepted").Add(float64(o.Stored))
		}
		return
	}
	if o.Stored > 0 {
		m.spans.WithLabelValues(string(p), "accepted").Add(float64(o.Stored))
	}
	m.legacy[p].request(o)
}

// limited counts what a decoder's limits changed and the spans it rejected.
func (m *metrics) limited(p Protocol, res otlp.Result) {
	ps := string(p)
	add := func(reason string, n int) {
		if n > 0 {
			m.truncated.WithLabelValues(ps, reason).Add(float64(n))
		}
	}
	add(TruncNameTooLong, res.TruncatedNames)
	add(TruncValueTooLong, res.Truncated-res.TruncatedNames)
	add(TruncInvalidUTF8, res.InvalidUTF8)
	add(TruncAttrDropped, res.DroppedAttrs)
	add(TruncEventDropped, res.DroppedEvents)
	add(TruncLinkDropped, res.DroppedLinks)
	if p.logs() {
		return
	}
	if res.Rejected > 0 {
		m.spans.WithLabelValues(ps, "refused").Add(float64(res.Rejected))
		for i, n := range res.RejectReasons {
			if n > 0 {
				m.spansRefused.WithLabelValues(ps, otlp.Reason(i).String()).Add(float64(n))
			}
		}
	}
	m.legacy[p].limited(res)
}

// spansLost counts decoded spans that the store did not take.
func (m *metrics) spansLost(p Protocol, reason string, n int) {
	if p.logs() {
		m.logRecords.WithLabelValues(string(p), "refused").Add(float64(n))
		return
	}
	m.spans.WithLabelValues(string(p), "refused").Add(float64(n))
	m.spansRefused.WithLabelValues(string(p), reason).Add(float64(n))
	m.legacy[p].spansLost(reason, n)
}

func (m *metrics) received(p Protocol, n int) {
	m.bytes.WithLabelValues(string(p)).Add(float64(n))
	if l := m.legacy[p]; l != nil {
		l.bytes.Add(float64(n))
	}
}

func (m *metrics) duration(p Protocol, secs float64) {
	m.dur.WithLabelValues(string(p)).Observe(secs)
	if l := m.legacy[p]; l != nil {
		l.duration.Observe(secs)
	}
}

func (m *metrics) inflight(cur int64) {
	m.inflightG.Set(float64(cur))
	for _, g := range m.legacyInflight {
		g.Set(float64(cur))
	}
}

// legacyNames maps a protocol onto its deprecated family (ingest, zipkin,
// jaeger) and the label value it had there.
func legacyNames(p Protocol) (family, label string) {
	switch p {
	case OTLPGRPC:
		return "ingest", "grpc"
	case OTLPHTTP:
		return "ingest", "http"
	case ZipkinJSON:
		return "zipkin", "json"
	case ZipkinProto:
		return "zipkin", "proto"
	case JaegerGRPC:
		return "jaeger", "grpc"
	}
	return "jaeger", "thrift_http"
}

// legacyFamily is one deprecated per-receiver family. Zipkin's counted
// requests by encoding and nothing else by protocol; the others by
// protocol.
type legacyFamily struct {
	name      string
	requests  *prometheus.CounterVec
	spans     *prometheus.CounterVec
	bytesV    *prometheus.CounterVec
	discarded *prometheus.CounterVec
	truncated prometheus.Counter
	dropped   *prometheus.CounterVec
	durV      *prometheus.HistogramVec
	inflight  prometheus.Gauge
}

// legacyBound is a legacyFamily with its protocol label bound.
type legacyBound struct {
	*legacyFamily
	label    string
	bytes    prometheus.Counter
	duration prometheus.Observer
	spansC   prometheus.Counter
}

func newLegacyFamily(name string) *legacyFamily {
	pre := "clew_" + name + "_"
	dep := " Deprecated: use clew_receiver_*."
	reqLabel, byProto := "protocol", []string{"protocol"}
	if name == "zipkin" {
		reqLabel, byProto = "encoding", nil
	}
	f := &legacyFamily{
		name:      name,
		requests:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: pre + "requests_total", Help: "Requests by " + reqLabel + " and outcome." + dep}, []string{reqLabel, "outcome"}),
		spans:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: pre + "spans_received_total", Help: "Spans accepted and made durable." + dep}, byProto),
		bytesV:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: pre + "bytes_received_total", Help: "Request bytes received (as sent, before decompression)." + dep}, byProto),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: pre + "discarded_spans_total", Help: "Spans not stored, by reason. For whole requests refused before decoding, the count is of requests." + dep}, []string{"reason"}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: pre + "truncated_values_total", Help: "Values, names and keys cut to the configured maximum size." + dep}),
		dropped:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: pre + "dropped_items_total", Help: "Attributes, events and links dropped over the per-span limits, by kind." + dep}, []string{"kind"}),
		durV:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: pre + "request_duration_seconds", Help: "Time to handle a request." + dep, Buckets: durationBuckets}, byProto),
		inflight:  prometheus.NewGauge(prometheus.GaugeOpts{Name: pre + "inflight_bytes", Help: "Decompressed bytes of requests being processed (the shared budget)." + dep}),
	}
	reasons := []string{"malformed_request", "request_too_large", "overloaded", "storage_error"}
	if name == "ingest" {
		for i := range otlp.NumReasons {
			reasons = append(reasons, otlp.Reason(i).String())
		}
	} else {
		reasons = append(reasons, "too_many_spans", "unsupported_media_type")
	}
	for _, r := range reasons {
		f.discarded.WithLabelValues(r)
	}
	return f
}

func (f *legacyFamily) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.requests, f.spans, f.bytesV, f.discarded, f.truncated, f.dropped, f.durV, f.inflight}
}

func (f *legacyFamily) bind(label string) *legacyBound {
	var lv []string
	if f.name != "zipkin" {
		lv = []string{label}
	}
	return &legacyBound{legacyFamily: f, label: label, bytes: f.bytesV.WithLabelValues(lv...),
		duration: f.durV.WithLabelValues(lv...), spansC: f.spans.WithLabelValues(lv...)}
}

// request counts an outcome under the old outcome and discard names.
func (l *legacyBound) request(o Outcome) {
	l.requests.WithLabelValues(l.label, l.outcome(o)).Inc()
	if o.Stored > 0 {
		l.spansC.Add(float64(o.Stored))
	}
	switch o.Reason {
	case "", ReasonStoreOverloaded, ReasonStoreError, ReasonCancelled:
		// Accepted, or spans counted by spansLost.
	default:
		l.discarded.WithLabelValues(l.discardReason(o.Reason)).Inc()
	}
}

func (l *legacyBound) outcome(o Outcome) string {
	switch o.Kind {
	case Accepted:
		return "ok"
	case Overloaded:
		return "overloaded"
	case Unavailable:
		return "unavailable"
	}
	switch o.Reason {
	case ReasonTooLarge:
		return "too_large"
	case ReasonUnsupportedMedia:
		return "unsupported_media_type"
	case ReasonUnsupportedEncoding:
		if l.name == "jaeger" {
			return "unsupported_media_type"
		}
		return "bad_encoding"
	case ReasonReadError:
		if l.name == "jaeger" {
			return "bad_request"
		}
		return "read_error"
	}
	return "bad_request"
}

func (l *legacyBound) discardReason(reason string) string {
	switch reason {
	case ReasonTooLarge:
		return "request_too_large"
	case ReasonOverloaded, ReasonStoreOverloaded:
		return "overloaded"
	case ReasonStoreError, ReasonCancelled:
		return "storage_error"
	case ReasonUnsupportedMedia, ReasonUnsupportedEncoding:
		if l.name != "ingest" {
			return "unsupported_media_type"
		}
	case ReasonTooManySpans:
		if l.name != "ingest" {
			return "too_many_spans"
		}
	}
	return "malformed_request"
}

func (l *legacyBound) limited(res otlp.Result) {
	if res.Truncated > 0 {
		l.truncated.Add(float64(res.Truncated))
	}
	for _, d := range []struct {
		kind string
		n    int
	}{{"attribute", res.DroppedAttrs}, {"event", res.DroppedEvents}, {"link", res.DroppedLinks}} {
		if d.n > 0 {
			l.dropped.WithLabelValues(d.kind).Add(float64(d.n))
		}
	}
	for i, n := range res.RejectReasons {
		if n > 0 {
			l.discarded.WithLabelValues(otlp.Reason(i).String()).Add(float64(n))
		}
	}
}

func (l *legacyBound) spansLost(reason string, n int) {
	l.discarded.WithLabelValues(l.discardReason(reason)).Add(float64(n))
}
