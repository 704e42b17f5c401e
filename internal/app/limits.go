package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
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

// reloadOnHUP reads the overrides file again on every SIGHUP until ctx is
// done, whether or not it looks changed.
func reloadOnHUP(ctx context.Context, log *slog.Logger, ov *overrides.Overrides) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the overrides file")
			_ = ov.Reload() // logged and counted by Reload
		}
	}
}
