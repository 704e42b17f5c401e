package loadgen

import "testing"

// BenchmarkGenerate measures the producer alone: generating and encoding
// 50,000 spans per op. It must stay well above the rate clew ingests at, so
// that the producer does not throttle the senders.
func BenchmarkGenerate(b *testing.B) {
	for _, shape := range []string{ShapeBench, ShapeRealistic} {
		b.Run(shape, func(b *testing.B) {
			cfg := testConfig(shape, 50_000)
			var spans, bytes int64
			b.ReportAllocs()
			for b.Loop() {
				g, err := newGenerator(cfg)
				if err != nil {
					b.Fatal(err)
				}
				g.generate(func(r *Request) bool {
					spans += int64(r.Spans)
					bytes += int64(len(r.Body))
					return true
				})
			}
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(bytes)/float64(spans), "B/span")
		})
	}
}
