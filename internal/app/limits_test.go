package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/overrides"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/tenant"
)

type discard struct{}

func (discard) Append(context.Context, string, []byte, *span.Batch) error { return nil }

// benchRequest is an OTLP request of 500 spans: 50 traces of 10 spans
// over 4 services, 8 attributes per span.
func benchRequest() []byte {
	b := &span.Batch{}
	for i := range 4 {
		b.Resources = append(b.Resources, &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue(fmt.Sprint("svc-", i))}}})
	}
	now := uint64(time.Now().UnixNano())
	for t := range 50 {
		for s := range 10 {
			sp := span.Span{TraceID: span.TraceID{1, byte(t), 15: byte(t + 1)}, SpanID: span.SpanID{1, byte(s + 1), 7: byte(t + 1)},
				Name: fmt.Sprint("op-", s), Kind: span.KindServer, StartUnixNano: now, EndUnixNano: now + 1e6, Resource: b.Resources[s%4]}
			for a := range 8 {
				sp.Attrs = append(sp.Attrs, span.Attr{Key: fmt.Sprint("attr.", a), Value: span.StringValue(fmt.Sprint("value-", a, "-", t))})
			}
			b.Spans = append(b.Spans, sp)
		}
	}
	return otlp.MarshalProto(nil, b)
}

// BenchmarkIngestTenancy measures what multitenancy, token
// authentication and every per-tenant ingest limit (rates, spans per
// trace, attribute values below the core's cap) add to an OTLP/HTTP
// request of 500 spans, against the same receiver without them. The store
// is left out (a discarding appender), so the overhead reported is
// against decoding alone: with a store it is a smaller share.
func BenchmarkIngestTenancy(b *testing.B) {
	body := benchRequest()
	const token = "bench-token-0123456789abcdef"
	var base float64
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			core := ingest.NewCore(ingest.DefaultConfig(), "single-tenant", discard{}, nil, nil)
			h := ingest.NewReceiver(core).HTTPHandler()
			if mode == "on" {
				a, err := auth.New(auth.Config{Tokens: []auth.Token{{Name: "b", SHA256: auth.HashToken(token), Tenant: "team-a", Rights: []string{"write"}}}}, nil, prometheus.NewRegistry())
				if err != nil {
					b.Fatal(err)
				}
				defer a.Close()
				ov, err := overrides.New(overrides.Limits{IngestionRateSpans: 1e9, IngestionRateBytes: 1e12, MaxSpansPerTrace: 1e6, MaxAttributeValueBytes: 32 << 10}, "", prometheus.NewRegistry(), overrides.Options{})
				if err != nil {
					b.Fatal(err)
				}
				core.SetLimiter(newIngestLimiter(ov))
				h = tenant.NewResolver(tenant.Config{Multi: true, Auth: authorizer{a}}, nil).HTTP(func(*http.Request) (tenant.Need, bool) { return tenant.NeedWrite, true }, h)
			}
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/x-protobuf")
				req.Header.Set("X-Scope-OrgID", "team-a")
				req.Header.Set("Authorization", "Bearer "+token)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			nsPerSpan := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / 500
			b.ReportMetric(nsPerSpan, "ns/span")
			b.ReportMetric(1e9/nsPerSpan, "spans/s")
			if mode == "off" {
				base = nsPerSpan
			} else if base > 0 {
				b.ReportMetric(100*(nsPerSpan/base-1), "%overhead")
			}
		})
	}
}
