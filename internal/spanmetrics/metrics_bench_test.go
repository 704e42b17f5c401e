package spanmetrics

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// benchBatch is a batch of 1000 spans: 20 services × 10 operations, a mix
// of kinds, with client/server pairs inside the batch and ten attributes a
// span, as a busy shop sends them.
func benchBatch(round int) *span.Batch {
	bb := newBuilder()
	for i := range 500 {
		svc := fmt.Sprint("svc-", i%20)
		callee := fmt.Sprint("svc-", (i+1)%20)
		tr := round*1000 + i + 1
		attrs := []span.Attr{str("http.request.method", "GET"), str("http.route", "/api/v1/items/{id}"), str("url.path", "/api/v1/items/42"),
			str("server.address", "10.0.0.1"), str("user_agent.original", "Mozilla/5.0"), str("network.protocol.version", "1.1"),
			{Key: "http.response.status_code", Value: span.IntValue(200)}, {Key: "server.port", Value: span.IntValue(8080)},
			str("client.address", "10.0.0.2"), str("thread.name", "worker-1")}
		bb.add(
			sp{svc: svc, version: "1.0", name: fmt.Sprint("op-", i%10), kind: span.KindClient, trace: tr, id: 1, start: t0, dur: time.Duration(i%50+1) * time.Millisecond, attrs: attrs},
			sp{svc: callee, version: "1.0", name: fmt.Sprint("op-", i%10), kind: span.KindServer, trace: tr, id: 2, parent: 1, start: t0, dur: time.Duration(i%50+1) * time.Millisecond, err: i%17 == 0, attrs: attrs},
		)
	}
	return bb.batch()
}

// BenchmarkObserve measures the ingest-path cost of span metrics and the
// service graph, in steady state (every series known).
func BenchmarkObserve(b *testing.B) {
	for _, name := range []string{"default", "two_dimensions", "internal_spans"} {
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			if name == "two_dimensions" {
				cfg.Dimensions = []string{"http.route", "http.response.status_code"}
			}
			clk := &clock{t: t0.Add(30 * time.Second)}
			m := open(b, cfg, "", clk)
			batches := make([]*span.Batch, 4)
			for i := range batches {
				batches[i] = benchBatch(i)
				if name == "internal_spans" { // RED only: no pairing
					for j := range batches[i].Spans {
						batches[i].Spans[j].Kind = span.KindInternal
					}
				}
			}
			m.Observe(batches[0]) // warm: create the series
			n := 0
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				// A millisecond per batch: a million spans a second.
				clk.add(time.Millisecond)
				m.Observe(batches[n%len(batches)])
				n++
			}
			spans := float64(n * len(batches[0].Spans))
			b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
			// CPU time, which a loaded machine does not inflate as it does
			// wall time.
			b.ReportMetric(float64(cpuTime()-cpu0)/spans, "cpu-ns/span")
		})
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRange measures a query over a day of history of 200 series
// (hours on disk, compacted) at a 5-minute step.
func BenchmarkRange(b *testing.B) {
	clk := &clock{t: t0}
	m := open(b, DefaultConfig(), b.TempDir(), clk)
	batch := benchBatch(0)
	for i := range 24 * 60 {
		at := t0.Add(time.Duration(i) * time.Minute)
		for j := range batch.Spans {
			s := &batch.Spans[j]
			d := s.EndUnixNano - s.StartUnixNano
			s.StartUnixNano = uint64(at.UnixNano())
			s.EndUnixNano = s.StartUnixNano + d
		}
		clk.set(at.Add(30 * time.Second))
		m.Observe(batch)
		if i%10 == 0 {
			m.Tick(clk.now())
		}
	}
	clk.set(t0.Add(25 * time.Hour))
	m.Tick(clk.now())
	bytes := m.disk.totalBytes()
	nSeries, _ := m.Range(context.Background(), nil, t0, t0.Add(24*time.Hour), 24*time.Hour)
	nEdges, _ := m.Edges(context.Background(), t0, t0.Add(24*time.Hour), 24*time.Hour)
	seriesMinutes := float64(24 * 60 * (len(nSeries) + len(nEdges))) // every series and edge, every minute
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := m.Range(context.Background(), nil, t0, t0.Add(24*time.Hour), 5*time.Minute)
		if err != nil || len(s) == 0 {
			b.Fatal(len(s), err)
		}
	}
	b.ReportMetric(float64(bytes)/seriesMinutes, "B/series-minute")
	b.ReportMetric(float64(len(nSeries)+len(nEdges)), "series")
}
