package spanmetrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/span"
)

// selfMetrics are clew's own metrics about span metrics.
type selfMetrics struct {
	overflow    *prometheus.CounterVec
	series      prometheus.Gauge
	edges       prometheus.Gauge
	pending     prometheus.Gauge
	lateClamped prometheus.Counter
	diskBytes   prometheus.Gauge
	repairs     prometheus.Counter
	compactions prometheus.Counter
	writeErrors prometheus.Counter
	readErrors  prometheus.Counter
}

func newSelfMetrics() *selfMetrics {
	return &selfMetrics{
		overflow: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_spanmetrics_overflow_total",
			Help: "Spans whose value of a dimension was replaced by __other__ because the dimension reached max_values_per_dimension (dimension=series: because the series reached max_series)."}, []string{"dimension"}),
		series: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_spanmetrics_series",
			Help: "Live span-metric series (label sets, each service version apart)."}),
		edges: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_spanmetrics_edges",
			Help: "Live service-graph edges."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_spanmetrics_pending_spans",
			Help: "Client, server, producer and consumer spans waiting for their partner."}),
		lateClamped: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_spanmetrics_history_late_clamped_total",
			Help: "Spans filed under their arrival minute instead of their start minute because too many minutes were open in memory."}),
		diskBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_spanmetrics_history_bytes",
			Help: "Size of the span-metrics history on disk."}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_spanmetrics_history_repairs_total",
			Help: "History files whose torn or corrupt tail was cut off (or that were set aside) at start."}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_spanmetrics_history_compactions_total",
			Help: "Hours of history rewritten as one frame."}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_spanmetrics_history_write_errors_total",
			Help: "Failed writes of history minutes (kept in memory and retried)."}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_spanmetrics_history_read_errors_total",
			Help: "History frames skipped by a query because they did not decode."}),
	}
}

func (s *selfMetrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.overflow, s.series, s.edges, s.pending, s.lateClamped, s.diskBytes, s.repairs, s.compactions, s.writeErrors, s.readErrors} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// collector exposes span metrics and the service graph under the names
// Grafana reads. It builds constant metrics from the tables at each scrape,
// summing the series that differ only by service version.
type collector struct{ m *Metrics }

var (
	spanLabels  = []string{"service", "span_name", "span_kind", "status_code"}
	graphLabels = []string{"client", "server", "connection_type"}

	descGraphTotal = prometheus.NewDesc("traces_service_graph_request_total",
		"Requests between two nodes of the service graph.", graphLabels, nil)
	descGraphFailed = prometheus.NewDesc("traces_service_graph_request_failed_total",
		"Failed requests (client or server span with status ERROR) between two nodes.", graphLabels, nil)
	descGraphServer = prometheus.NewDesc("traces_service_graph_request_server_seconds",
		"Server-side duration of requests between two nodes.", graphLabels, nil)
	descGraphClient = prometheus.NewDesc("traces_service_graph_request_client_seconds",
		"Client-side duration of requests between two nodes.", graphLabels, nil)
	descGraphUnpaired = prometheus.NewDesc("traces_service_graph_unpaired_spans_total",
		"Client or server spans whose partner did not arrive within pairing_wait (the missing side is empty).", graphLabels, nil)
	descGraphDropped = prometheus.NewDesc("traces_service_graph_dropped_spans_total",
		"Spans left out of the service graph because max_pending_pairs spans were already waiting.", graphLabels, nil)
)

func (m *Metrics) spanDescs() (calls, latency, size *prometheus.Desc) {
	labels := append(append([]string{}, spanLabels...), m.labelNames...)
	calls = prometheus.NewDesc("traces_spanmetrics_calls_total", "Spans received, per service, span name, kind, status and configured dimensions.", labels, nil)
	latency = prometheus.NewDesc("traces_spanmetrics_latency", "Span duration in seconds.", labels, nil)
	size = prometheus.NewDesc("traces_spanmetrics_size_total", "Estimated size of the spans in OTLP protobuf bytes.", labels, nil)
	return
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	calls, lat, size := c.m.spanDescs()
	for _, d := range []*prometheus.Desc{calls, lat, size, descGraphTotal, descGraphFailed, descGraphServer, descGraphClient, descGraphUnpaired, descGraphDropped} {
		ch <- d
	}
}

// KindLabel returns the span_kind label value Grafana expects
// (SPAN_KIND_SERVER, ...).
func KindLabel(k span.Kind) string {
	return "SPAN_KIND_" + strings.ToUpper(k.String())
}

// StatusLabel returns the status_code label value (STATUS_CODE_ERROR, ...).
func StatusLabel(s span.StatusCode) string {
	return "STATUS_CODE_" + strings.ToUpper(s.String())
}

type promAgg struct {
	labels []string
	calls  uint64
	size   uint64
	sum    time.Duration
	hist   []uint64
	ex     []promExemplar
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	descCalls, descLat, descSize := m.spanDescs()
	bounds := m.cfg.HistogramBuckets

	m.mu.Lock()
	aggs := map[string]*promAgg{}
	var order []*promAgg
	var sb strings.Builder
	for _, head := range m.table {
		for e := head; e != nil; e = e.next {
			sb.Reset()
			labels := append([]string{e.service, e.op, KindLabel(e.kind), StatusLabel(e.status)}, e.dims...)
			for _, l := range labels {
				sb.WriteString(l)
				sb.WriteByte(0xff)
			}
			a := aggs[sb.String()]
			if a == nil {
				a = &promAgg{labels: labels, hist: make([]uint64, len(e.promHist)), ex: make([]promExemplar, len(e.promEx))}
				aggs[sb.String()] = a
				order = append(order, a)
			}
			a.calls += e.calls
			a.size += e.size
			a.sum += e.durSum
			for i, n := range e.promHist {
				a.hist[i] += n
				if e.promEx[i].ts > a.ex[i].ts {
					a.ex[i] = e.promEx[i]
				}
			}
		}
	}
	type edgeSnap struct {
		labels                 []string
		calls, failed          uint64
		clientN, serverN       uint64
		clientSum, serverSum   time.Duration
		clientHist, serverHist []uint64
		clientEx, serverEx     []promExemplar
	}
	var edges []edgeSnap
	for _, e := range m.edges {
		if e.stale {
			continue
		}
		edges = append(edges, edgeSnap{
			labels: []string{e.key.Client, e.key.Server, e.key.ConnectionType},
			calls:  e.calls, failed: e.failed, clientN: e.clientN, serverN: e.serverN,
			clientSum: e.clientSum, serverSum: e.serverSum,
			clientHist: append([]uint64(nil), e.clientHist...), serverHist: append([]uint64(nil), e.serverHist...),
			clientEx: append([]promExemplar(nil), e.clientEx...), serverEx: append([]promExemplar(nil), e.serverEx...),
		})
	}
	unpaired := make(map[EdgeKey]uint64, len(m.unpaired))
	for k, v := range m.unpaired {
		unpaired[k] = v
	}
	dropped := make(map[EdgeKey]uint64, len(m.dropped))
	for k, v := range m.dropped {
		dropped[k] = v
	}
	m.mu.Unlock()

	for _, a := range order {
		ch <- prometheus.MustNewConstMetric(descCalls, prometheus.CounterValue, float64(a.calls), a.labels...)
		ch <- prometheus.MustNewConstMetric(descSize, prometheus.CounterValue, float64(a.size), a.labels...)
		ch <- histogram(descLat, bounds, a.calls, a.sum, a.hist, a.ex, a.labels)
	}
	for _, e := range edges {
		ch <- prometheus.MustNewConstMetric(descGraphTotal, prometheus.CounterValue, float64(e.calls), e.labels...)
		ch <- prometheus.MustNewConstMetric(descGraphFailed, prometheus.CounterValue, float64(e.failed), e.labels...)
		if e.serverN > 0 {
			ch <- histogram(descGraphServer, bounds, e.serverN, e.serverSum, e.serverHist, e.serverEx, e.labels)
		}
		if e.clientN > 0 {
			ch <- histogram(descGraphClient, bounds, e.clientN, e.clientSum, e.clientHist, e.clientEx, e.labels)
		}
	}
	for k, v := range unpaired {
		ch <- prometheus.MustNewConstMetric(descGraphUnpaired, prometheus.CounterValue, float64(v), k.Client, k.Server, k.ConnectionType)
	}
	for k, v := range dropped {
		ch <- prometheus.MustNewConstMetric(descGraphDropped, prometheus.CounterValue, float64(v), k.Client, k.Server, k.ConnectionType)
	}
}

// histogram builds a constant histogram with one exemplar (trace_id) per
// bucket that has one.
func histogram(desc *prometheus.Desc, bounds []float64, count uint64, sum time.Duration, hist []uint64, ex []promExemplar, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		cum += hist[i]
		buckets[b] = cum
	}
	h := prometheus.MustNewConstHistogram(desc, count, sum.Seconds(), buckets, labels...)
	var exs []prometheus.Exemplar
	for _, x := range ex {
		if x.ts == 0 {
			continue
		}
		exs = append(exs, prometheus.Exemplar{Value: x.dur.Seconds(), Labels: prometheus.Labels{"trace_id": x.trace.String()}, Timestamp: time.Unix(0, x.ts)})
	}
	if len(exs) == 0 {
		return h
	}
	if mx, err := prometheus.NewMetricWithExemplars(h, exs...); err == nil {
		return mx
	}
	return h
}
