package ingest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/span"
)

// tenantLimiter is a Limiter with fixed limits and exact trace counts.
type tenantLimiter struct {
	lim    ingest.TenantLimits
	mu     sync.Mutex
	counts map[span.TraceID]int
	capped int
}

func (l *tenantLimiter) AllowIngest(string, int, int) (time.Duration, bool) { return 0, true }
func (l *tenantLimiter) TenantLimits(string) ingest.TenantLimits             { return l.lim }
func (l *tenantLimiter) CappedValues(_ string, n int)                        { l.mu.Lock(); l.capped += n; l.mu.Unlock() }
func (l *tenantLimiter) AllowTraceSpans(_ string, id span.TraceID, n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	allowed := max(min(n, l.lim.MaxSpansPerTrace-l.counts[id]), 0)
	l.counts[id] += allowed
	return allowed
}

// TestTenantLimits checks, on every protocol, that a tenant's
// max_spans_per_trace keeps the first spans of each trace and rejects the
// rest (counted, and told to OTLP senders as partial success), and that
// its attribute value cap lower than the core's cuts values.
func TestTenantLimits(t *testing.T) {
	other := [16]byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}
	sp := func(trace [16]byte, i byte, v string) tspan {
		return tspan{trace: trace, id: [8]byte{1, 1, 1, 1, 1, 1, 1, i}, name: "op", attrs: [][2]string{{"k", v}}}
	}
	for _, p := range ingest.Protocols {
		t.Run(string(p), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			sk := &sink{}
			core := ingest.NewCore(testConfig(), "t", sk, nil, reg)
			lim := &tenantLimiter{lim: ingest.TenantLimits{MaxSpansPerTrace: 3, MaxAttrValueBytes: 4}, counts: map[span.TraceID]int{}}
			core.SetLimiter(lim)
			// Five spans of one trace, two of another, interleaved.
			first := []tspan{sp(goodTrace, 1, "ab"), sp(other, 2, "abcdefgh"), sp(goodTrace, 3, "ab"), sp(goodTrace, 4, "ab"), sp(goodTrace, 5, "ab"), sp(other, 6, "ab"), sp(goodTrace, 7, "ab")}
			if res := send(t, core, p, first); !res.ok {
				t.Fatalf("first request: %+v, want success", res)
			}
			if len(sk.spans) != 5 {
				t.Fatalf("stored %d spans, want 5 (3 of the first trace, 2 of the other)", len(sk.spans))
			}
			if got := sk.spans[1].attrs[0][1]; got != "abcd" {
				t.Errorf("attribute stored as %q, want it cut to the tenant's 4 bytes", got)
			}
			if lim.capped != 1 {
				t.Errorf("capped values = %d, want 1", lim.capped)
			}
			if got := value(t, reg, "clew_receiver_spans_refused_total", "protocol", string(p), "reason", "max_spans_per_trace"); got != 2 {
				t.Errorf("spans refused max_spans_per_trace = %v, want 2", got)
			}
			// The full trace again: nothing is stored; OTLP answers
			// partial success, the others refuse the request.
			res := send(t, core, p, []tspan{sp(goodTrace, 8, "ab")})
			partial := p == ingest.OTLPGRPC || p == ingest.OTLPHTTP
			if res.ok != partial {
				t.Errorf("request of a full trace: %+v, want ok=%v", res, partial)
			}
			if len(sk.spans) != 5 {
				t.Errorf("stored %d spans after the full trace's request, want still 5", len(sk.spans))
			}
		})
	}
}
