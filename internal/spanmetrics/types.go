package spanmetrics

import (
	"math"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// Resolution is the width of one history bucket. Range and Edges take a
// step that is a positive multiple of it.
const Resolution = time.Minute

// Key identifies one RED series of the history.
type Key struct {
	Service   string    // resource service.name
	Operation string    // span name
	Kind      span.Kind // span kind
	Version   string    // resource service.version, "" if absent
}

// LatencyBounds are the upper bounds (inclusive) of the history histogram
// buckets, shared by every series and edge: 100µs × √2^k for k = 0..40, so
// 100µs to about 105s, each bucket 41 % wider than the one before. A bucket
// count slice has len(LatencyBounds)+1 entries, the last one for +Inf. The
// values are part of the on-disk format (docs/format/spanmetrics.md): never
// change them.
var LatencyBounds = latencyBounds()

func latencyBounds() []time.Duration {
	b := make([]time.Duration, 41)
	for k := range b {
		d := 100e3 * math.Pow(2, float64(k)/2) // ns
		b[k] = time.Duration(math.Round(d/1e3)) * time.Microsecond
	}
	return b
}

// numBuckets is len(LatencyBounds)+1.
const numBuckets = 42

// bucketIndex returns the index of the histogram bucket holding d: the
// first bound at or above d, or the overflow bucket.
func bucketIndex(d time.Duration) int {
	lo, hi := 0, len(LatencyBounds)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if LatencyBounds[m] < d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// Exemplar is one span that landed in a bucket, for jumping from a metric
// to a trace.
type Exemplar struct {
	TraceID  span.TraceID
	SpanID   span.SpanID
	Duration time.Duration
	Error    bool
}

// Bucket aggregates the spans of one series (or the calls of one edge) that
// started in [Start, Start+step).
type Bucket struct {
	Start       time.Time     // aligned to the step (multiples of it since the Unix epoch), UTC
	Calls       uint64        // spans (edge: requests)
	Errors      uint64        // status code ERROR (edge: either side)
	DurationSum time.Duration // sum of the durations
	Hist        []uint64      // len(LatencyBounds)+1 counts; see LatencyBounds
	Exemplars   []Exemplar    // at most three: the slowest, an error, the most recent
}

// Series is the history of one Key. Buckets are ascending by Start; empty
// ones are omitted.
type Series struct {
	Key     Key
	Buckets []Bucket
}

// EdgeKey identifies one edge of the service graph.
type EdgeKey struct {
	// Client and Server are service names, or virtual node names: the
	// database system ("postgresql", "redis"), the messaging system
	// ("kafka"), or the peer's server.address / peer.service for
	// uninstrumented peers.
	Client, Server string
	// ConnectionType is "" (service to service), "database",
	// "messaging_system" or "virtual_node".
	ConnectionType string
}

// Connection types of EdgeKey.
const (
	ConnService   = ""
	ConnDatabase  = "database"
	ConnMessaging = "messaging_system"
	ConnVirtual   = "virtual_node"
)

// EdgeSeries is the history of one edge. Latency is the client-side
// duration when the client span is known, else the server side. Buckets are
// ascending by Start; empty ones are omitted.
type EdgeSeries struct {
	Key     EdgeKey
	Buckets []Bucket
}

// Quantile estimates the q-quantile (0..1) of a histogram with
// len(LatencyBounds)+1 counts, interpolating linearly inside the bucket
// that holds it (geometrically would flatter nothing: the buckets are
// narrow). An empty histogram gives 0; the overflow bucket answers its
// lower bound.
func Quantile(hist []uint64, q float64) time.Duration {
	var total uint64
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var cum float64
	for i, c := range hist {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			if i >= len(LatencyBounds) {
				return LatencyBounds[len(LatencyBounds)-1]
			}
			var lo time.Duration
			if i > 0 {
				lo = LatencyBounds[i-1]
			}
			hi := LatencyBounds[i]
			frac := (rank - cum) / float64(c)
			return lo + time.Duration(frac*float64(hi-lo))
		}
		cum += float64(c)
	}
	return LatencyBounds[len(LatencyBounds)-1]
}
