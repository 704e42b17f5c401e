package app

import (
	"time"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/overrides"
	"github.com/clew-dev/clew/internal/span"
)

// ingestLimiter applies each tenant's overrides on the receivers: the
// ingestion rates, the attribute value cap and max_spans_per_trace (over
// a bounded counter of recent traces).
type ingestLimiter struct {
	ov     *overrides.Overrides
	traces *overrides.TraceSpanCounter
}

func newIngestLimiter(ov *overrides.Overrides) *ingestLimiter {
	return &ingestLimiter{ov: ov, traces: overrides.NewTraceSpanCounter(ov, 0)}
}

func (l *ingestLimiter) AllowIngest(tenant string, spans, bytes int) (time.Duration, bool) {
	return l.ov.AllowIngest(tenant, spans, bytes)
}

func (l *ingestLimiter) TenantLimits(tenant string) ingest.TenantLimits {
	lim := l.ov.For(tenant)
	return ingest.TenantLimits{MaxAttrValueBytes: lim.MaxAttributeValueBytes, MaxSpansPerTrace: lim.MaxSpansPerTrace}
}

func (l *ingestLimiter) AllowTraceSpans(tenant string, trace span.TraceID, n int) int {
	return l.traces.Add(tenant, trace, n)
}

func (l *ingestLimiter) CappedValues(tenant string, n int) {
	l.ov.Hit(tenant, overrides.MaxAttributeValueBytes, n)
}
