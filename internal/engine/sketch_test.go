package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestQuantileAcc(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() float64
	}{
		{"lognormal durations", func() float64 { return math.Exp(r.NormFloat64()*1.5 - 4) }},
		{"mixed signs and zeros", func() float64 {
			switch r.IntN(5) {
			case 0:
				return 0
			case 1:
				return -r.Float64() * 100
			}
			return r.Float64() * 1000
		}},
		{"tiny and huge", func() float64 { return math.Pow(10, float64(r.IntN(80)-40)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 10, exactValues, exactValues + 1, 100_000} {
				var a quantileAcc
				vals := make([]float64, n)
				for i := range vals {
					vals[i] = tc.gen()
					a.add(vals[i])
				}
				slices.Sort(vals)
				for _, q := range []float64{0, 0.01, 0.5, 0.9, 0.99, 1} {
					got := a.quantile(q)
					if n <= exactValues {
						if want := quantile(slices.Clone(vals), q); got != want {
							t.Errorf("n=%d q=%v: %v, want exactly %v", n, q, got, want)
						}
						continue
					}
					// The sketch answers the value of rank round(q(n-1))
					// within its relative accuracy (values beyond 1e±26
					// share the extreme buckets).
					want := vals[int(math.Round(q*float64(n-1)))]
					if math.Abs(want) > 1e26 || (math.Abs(want) < 1e-26 && want != 0) {
						continue
					}
					if math.Abs(got-want) > sketchAccuracy*1.0001*math.Abs(want) {
						t.Errorf("n=%d q=%v: %v, want %v within %v", n, q, got, want, sketchAccuracy)
					}
				}
				if len(a.pos.c)+len(a.neg.c) > 2*maxBucketIndex+2 {
					t.Errorf("n=%d: %d buckets", n, len(a.pos.c)+len(a.neg.c))
				}
			}
		})
	}
	var empty quantileAcc
	if !math.IsNaN(empty.quantile(0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}
