package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

// benchBatch returns n traces of ten spans over four services, one span
// in a hundred with an error, each span with an HTTP method attribute.
func benchBatch(n int) *span.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	b := &span.Batch{}
	var res []*span.Resource
	for _, s := range []string{"frontend", "checkout", "payment", "inventory"} {
		rs := &span.Resource{Attrs: []span.Attr{str("service.name", s), str("host.name", s+"-1")}}
		res = append(res, rs)
		b.Resources = append(b.Resources, rs)
	}
	methods := []string{"GET", "GET", "GET", "POST", "PUT"}
	for t := range n {
		id := span.TraceID{12: byte(t >> 24), 13: byte(t >> 16), 14: byte(t >> 8), 15: byte(t)}
		t0 := uint64(base) + uint64(t)*50_000
		m := methods[r.IntN(len(methods))]
		for i := range 10 {
			s := span.Span{TraceID: id, SpanID: span.SpanID{6: byte(i), 7: byte(t)}, Name: fmt.Sprint("op-", i), Kind: span.KindServer,
				Resource: res[i%4], StartUnixNano: t0 + uint64(i)*1000, Attrs: []span.Attr{str("http.request.method", m)}}
			s.EndUnixNano = s.StartUnixNano + uint64(r.IntN(50_000_000))
			if i > 0 {
				s.ParentSpanID = span.SpanID{6: 0, 7: byte(t)}
			}
			if r.IntN(100) == 0 {
				s.StatusCode = span.StatusError
			}
			b.Spans = append(b.Spans, s)
		}
	}
	return b
}

// BenchmarkMetricsSpanScan runs metrics queries that stream span columns
// over 200 k spans in blocks.
func BenchmarkMetricsSpanScan(b *testing.B) {
	const traces = 20_000
	db := openStore(b, benchBatch(traces))
	if err := db.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	e := New(db, Config{})
	for _, q := range []string{
		`{ } | quantile_over_time(duration, .99) by (resource.service.name)`,
		`{ status = error } | rate() by (resource.service.name)`,
		`{ span.http.request.method = "GET" } | count_over_time() by (name)`,
	} {
		b.Run(q, func(b *testing.B) {
			req := MetricsRequest{Query: mustParseB(b, q), Start: base, End: base + 2e9, Step: 1e8}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Metrics(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			spans := float64(traces * 10)
			b.ReportMetric(spans*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/spans, "ns/span")
		})
	}
}

func mustParseB(b *testing.B, q string) *traceql.Query {
	b.Helper()
	pq, err := traceql.Parse(q)
	if err != nil {
		b.Fatal(err)
	}
	return pq
}
