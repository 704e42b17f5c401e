package detect

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/spanmetrics"
)

func binomPMFSum(k, n uint64, p float64) float64 {
	var s float64
	for x := k; x <= n; x++ {
		s += math.Exp(lgamma(float64(n)+1) - lgamma(float64(x)+1) - lgamma(float64(n-x)+1) + float64(x)*math.Log(p) + float64(n-x)*math.Log1p(-p))
	}
	return s
}

func poissonPMFSum(k uint64, l float64) float64 {
	var s float64
	for x := uint64(0); x < k; x++ {
		s += math.Exp(float64(x)*math.Log(l) - l - lgamma(float64(x)+1))
	}
	return 1 - s
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9+1e-6*math.Abs(b)
}

func TestTails(t *testing.T) {
	for _, c := range []struct {
		k, n uint64
		p    float64
	}{{0, 10, 0.3}, {1, 10, 0.3}, {5, 10, 0.3}, {10, 10, 0.3}, {30, 100, 0.1}, {3, 1000, 0.002}, {600, 1000, 0.55}} {
		if got, want := binomUpper(c.k, c.n, c.p), binomPMFSum(c.k, c.n, c.p); !near(got, want) {
			t.Errorf("binomUpper(%d, %d, %g) = %g, want %g", c.k, c.n, c.p, got, want)
		}
	}
	for _, c := range []struct {
		k uint64
		l float64
	}{{0, 3}, {1, 3}, {5, 3}, {20, 10}, {200, 150}, {3, 0.1}} {
		if got, want := poissonUpper(c.k, c.l), poissonPMFSum(c.k, c.l); !near(got, want) {
			t.Errorf("poissonUpper(%d, %g) = %g, want %g", c.k, c.l, got, want)
		}
		if got, want := poissonLower(c.k, c.l), 1-poissonPMFSum(c.k+1, c.l); !near(got, want) {
			t.Errorf("poissonLower(%d, %g) = %g, want %g", c.k, c.l, got, want)
		}
	}
	// Fisher's exact test, one-sided, against the hypergeometric tail summed exactly.
	for _, c := range []struct {
		k1, n1, k2, n2 uint64
		want           float64
	}{
		{3, 4, 1, 4, 0.2428571},
		{10, 20, 2, 20, 0.0069071},
		{0, 10, 5, 10, 1},
		{5, 5, 0, 5, 0.003968},
	} {
		if got := fisherUpper(c.k1, c.n1, c.k2, c.n2); math.Abs(got-c.want) > 1e-5 {
			t.Errorf("fisherUpper(%d/%d vs %d/%d) = %g, want %g", c.k1, c.n1, c.k2, c.n2, got, c.want)
		}
	}
	for _, p := range []float64{1e-10, 0.001, 0.025, 0.5, 0.9, 0.999999} {
		if z := normQuantile(p); !near(0.5*math.Erfc(-z/math.Sqrt2), p) {
			t.Errorf("normQuantile(%g) = %g, whose CDF is not %g", p, z, p)
		}
	}
}

// hist draws n log-normal latencies of the given median into a history
// histogram.
func hist(r *rand.Rand, n int, median time.Duration, sigma float64) []uint64 {
	h := make([]uint64, len(spanmetrics.LatencyBounds)+1)
	for range n {
		h[bucketOf(time.Duration(float64(median)*math.Exp(sigma*r.NormFloat64())))]++
	}
	return h
}

func TestMannWhitney(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name       string
		a, b       []uint64
		wantSignif bool
	}{
		{"same distribution", hist(r, 300, 10*time.Millisecond, 0.5), hist(r, 6000, 10*time.Millisecond, 0.5), false},
		{"slightly slower, not significant", hist(r, 30, 10500*time.Microsecond, 0.5), hist(r, 600, 10*time.Millisecond, 0.5), false},
		{"clear shift", hist(r, 100, 30*time.Millisecond, 0.5), hist(r, 6000, 10*time.Millisecond, 0.5), true},
		{"faster is not slower", hist(r, 300, 5*time.Millisecond, 0.5), hist(r, 6000, 10*time.Millisecond, 0.5), false},
		{"empty", make([]uint64, 42), hist(r, 100, time.Millisecond, 0.5), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := mannWhitney(c.a, c.b)
			if got := res.P < 1e-6; got != c.wantSignif {
				t.Errorf("mannWhitney: P = %g (superiority %.3f), significant = %v, want %v", res.P, res.Superiority, got, c.wantSignif)
			}
		})
	}
	// Under the null, p-values are not too small too often.
	small := 0
	for range 200 {
		if mannWhitney(hist(r, 200, 8*time.Millisecond, 0.6), hist(r, 2000, 8*time.Millisecond, 0.6)).P < 0.01 {
			small++
		}
	}
	if small > 8 {
		t.Errorf("%d of 200 null comparisons had p < 0.01, want about 2", small)
	}
}

func TestQuantileBand(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	h := hist(r, 5000, 20*time.Millisecond, 0.4)
	est, lo, hi := quantileBand(h, 0.5, 0.01)
	if !(lo <= est && est <= hi) || est < 18*time.Millisecond || est > 22*time.Millisecond {
		t.Errorf("median band = %v [%v, %v], want about 20ms inside its band", est, lo, hi)
	}
	if _, lo99, hi99 := quantileBand(h, 0.99, 0.01); hi99-lo99 <= hi-lo {
		t.Errorf("p99 band %v..%v is not wider than the median's %v..%v", lo99, hi99, lo, hi)
	}
	if lo, hi := wilson(5, 100, 0.05); lo > 0.05 || hi < 0.05 || lo <= 0 {
		t.Errorf("wilson(5, 100) = [%g, %g], want around 0.05", lo, hi)
	}
}
