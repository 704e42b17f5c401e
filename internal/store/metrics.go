package store

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	headSpans        prometheus.Gauge
	headBytes        prometheus.Gauge
	headCuts         prometheus.Counter
	pendingFlushes   prometheus.Gauge
	flushDuration    prometheus.Histogram
	flushFailures    prometheus.Counter
	blocks           prometheus.Gauge
	blockBytes       prometheus.Gauge
	blockSpans       prometheus.Gauge
	compactions      prometheus.Counter
	compactionFails  prometheus.Counter
	compactionTime   prometheus.Histogram
	retentionDeleted *prometheus.CounterVec
	replayedRecords  prometheus.Counter
	replayErrors     prometheus.Counter
	overloaded       prometheus.Counter
	queryDuration    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, tenant string) *metrics {
	cl := prometheus.Labels{"tenant": tenant}
	m := &metrics{
		headSpans:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_head_spans", Help: "Spans in the in-memory head.", ConstLabels: cl}),
		headBytes:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_head_bytes", Help: "Approximate heap bytes held by the in-memory head.", ConstLabels: cl}),
		headCuts:       prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_head_cuts_total", Help: "Times the head was sealed to be written as a block.", ConstLabels: cl}),
		pendingFlushes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_head_pending_flushes", Help: "Sealed heads waiting to be written as blocks.", ConstLabels: cl}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clew_head_flush_duration_seconds", Help: "Time to write a sealed head as a block.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)}),
		flushFailures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_head_flush_failures_total", Help: "Failed attempts to write a sealed head (retried).", ConstLabels: cl}),
		blocks:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_blocks", Help: "Blocks on disk.", ConstLabels: cl}),
		blockBytes:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_blocks_bytes", Help: "Bytes of all blocks on disk.", ConstLabels: cl}),
		blockSpans:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_blocks_spans", Help: "Spans in all blocks on disk.", ConstLabels: cl}),
		compactions:     prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_compactions_total", Help: "Completed compactions.", ConstLabels: cl}),
		compactionFails: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_compaction_failures_total", Help: "Failed compactions.", ConstLabels: cl}),
		compactionTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clew_compaction_duration_seconds", Help: "Time to compact blocks.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		retentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clew_retention_deleted_blocks_total", Help: "Blocks deleted by retention, by reason (age, disk).", ConstLabels: cl}, []string{"reason"}),
		replayedRecords:  prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_head_replayed_records_total", Help: "Write-ahead log records replayed into the head at start.", ConstLabels: cl}),
		replayErrors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_head_replay_undecodable_records_total", Help: "Write-ahead log records that could not be decoded at replay.", ConstLabels: cl}),
		overloaded:       prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_store_overloaded_total", Help: "Writes refused because sealed heads are waiting to be written.", ConstLabels: cl}),
		queryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "clew_query_duration_seconds", Help: "Query latency by kind.", ConstLabels: cl,
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14)}, []string{"kind"}),
	}
	m.retentionDeleted.WithLabelValues("age")
	m.retentionDeleted.WithLabelValues("disk")
	if reg != nil {
		reg.MustRegister(m.headSpans, m.headBytes, m.headCuts, m.pendingFlushes, m.flushDuration, m.flushFailures,
			m.blocks, m.blockBytes, m.blockSpans, m.compactions, m.compactionFails, m.compactionTime,
			m.retentionDeleted, m.replayedRecords, m.replayErrors, m.overloaded, m.queryDuration)
	}
	return m
}
