package logstore

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	appended           prometheus.Counter
	headRecords        prometheus.Gauge
	blocks             prometheus.Gauge
	blockBytes         prometheus.Gauge
	blockRecords       prometheus.Gauge
	flushFailures      prometheus.Counter
	retentionDeleted   prometheus.Counter
	replayErrors       prometheus.Counter
	overloaded         prometheus.Counter
	compactions        prometheus.Counter
	compactionFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, tenant string) *metrics {
	cl := prometheus.Labels{"tenant": tenant}
	m := &metrics{
		appended:           prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_appended_records_total", Help: "Log records made durable.", ConstLabels: cl}),
		headRecords:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_logs_head_records", Help: "Log records in the in-memory head.", ConstLabels: cl}),
		blocks:             prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_logs_blocks", Help: "Log blocks in the bucket.", ConstLabels: cl}),
		blockBytes:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_logs_blocks_bytes", Help: "Bytes of all log blocks.", ConstLabels: cl}),
		blockRecords:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "clew_logs_blocks_records", Help: "Log records in all log blocks.", ConstLabels: cl}),
		flushFailures:      prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_flush_failures_total", Help: "Failed attempts to write a sealed log head (retried).", ConstLabels: cl}),
		retentionDeleted:   prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_retention_deleted_blocks_total", Help: "Log blocks deleted by retention.", ConstLabels: cl}),
		replayErrors:       prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_replay_undecodable_records_total", Help: "Log write-ahead log records that could not be decoded at replay.", ConstLabels: cl}),
		overloaded:         prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_overloaded_total", Help: "Log appends refused because sealed heads wait to be written.", ConstLabels: cl}),
		compactions:        prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_compactions_total", Help: "Completed compactions of log blocks.", ConstLabels: cl}),
		compactionFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "clew_logs_compaction_failures_total", Help: "Failed compactions of log blocks.", ConstLabels: cl}),
	}
	if reg != nil {
		reg.MustRegister(m.appended, m.headRecords, m.blocks, m.blockBytes, m.blockRecords, m.flushFailures, m.retentionDeleted, m.replayErrors, m.overloaded, m.compactions, m.compactionFailures)
	}
	return m
}
