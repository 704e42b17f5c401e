package detect

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/span"
)

// BenchmarkProfileTrace attributes the self time and errors of shop
// traces (the culprit ranking's per-trace work).
func BenchmarkProfileTrace(b *testing.B) {
	s := newSim(1)
	var trees []*analysis.Tree
	spans := 0
	for i := range 100 {
		var sp []span.Span
		if i%2 == 0 {
			sp = s.Checkout(t0)
		} else {
			s.NPlusOne = true
			sp = s.Browse(t0)
		}
		spans += len(sp)
		trees = append(trees, analysis.NewTree(sp))
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, t := range trees {
			_ = profileTrace(t)
		}
		n++
	}
	b.ReportMetric(float64(n*spans)/b.Elapsed().Seconds(), "spans/s")
}

// BenchmarkMannWhitney compares two histograms (each latency test).
func BenchmarkMannWhitney(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x, y := hist(r, 500, 10*time.Millisecond, 0.5), hist(r, 20000, 12*time.Millisecond, 0.5)
	b.ReportAllocs()
	for b.Loop() {
		_ = mannWhitney(x, y)
	}
}

// BenchmarkEvaluate is one evaluation of the small shop (13 operations,
// an hour of history) with nothing anomalous: the loop's steady cost.
func BenchmarkEvaluate(b *testing.B) {
	e := newEnv(b, 3, Config{})
	e.sim.Rate = 60
	e.run(0, 64, 63)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.det.Evaluate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/eval")
}
