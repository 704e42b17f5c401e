package wal

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the WAL's Prometheus collectors. They exist even without a
// Registerer so that the code paths never check for nil.
type metrics struct {
	recordsAppended  prometheus.Counter
	bytesAppended    prometheus.Counter
	fsyncs           prometheus.Counter
	fsyncDuration    prometheus.Histogram
	segments         prometheus.Gauge
	sizeBytes        prometheus.Gauge
	corruptions      prometheus.Counter
	tornTailsRepairs prometheus.Counter
	truncations      prometheus.Counter
	replayedRecords  prometheus.Counter
	poisoned         prometheus.Gauge

	reg        prometheus.Registerer
	registered []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		recordsAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_records_appended_total",
			Help: "Records appended to the write-ahead log.",
		}),
		bytesAppended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_appended_bytes_total",
			Help: "Bytes appended to the write-ahead log, record headers included.",
		}),
		fsyncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_fsyncs_total",
			Help: "Data syncs (fdatasync) of write-ahead log segments.",
		}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "clew_wal_fsync_duration_seconds",
			Help:    "Duration of one group commit's syncs of write-ahead log segments.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14), // 100µs to ~1.6s
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clew_wal_segments",
			Help: "Segment files in the write-ahead log directory.",
		}),
		sizeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clew_wal_size_bytes",
			Help: "Bytes on disk in write-ahead log segment files.",
		}),
		corruptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_corruptions_total",
			Help: "Corruptions found while replaying the write-ahead log (bad checksums, bad lengths, missing segments).",
		}),
		tornTailsRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_torn_tails_repaired_total",
			Help: "Torn tails of the last write-ahead log segment truncated away at replay.",
		}),
		truncations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_truncations_total",
			Help: "Truncations of the write-ahead log that deleted at least one segment.",
		}),
		replayedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "clew_wal_replayed_records_total",
			Help: "Records read back from the write-ahead log at replay.",
		}),
		poisoned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clew_wal_poisoned",
			Help: "1 once a write or sync error has made the write-ahead log refuse appends until restart.",
		}),
		reg: reg,
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.recordsAppended, m.bytesAppended, m.fsyncs, m.fsyncDuration, m.segments,
		m.sizeBytes, m.corruptions, m.tornTailsRepairs, m.truncations, m.replayedRecords, m.poisoned,
	} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register wal metrics (is another WAL open with this registerer?): %w", err)
			}
			return nil, fmt.Errorf("register wal metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

// unregister removes the collectors so that a WAL can be reopened with the
// same Registerer after Close.
func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}
