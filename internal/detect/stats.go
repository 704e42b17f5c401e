package detect

import (
	"math"
	"time"

	"github.com/clew-dev/clew/internal/spanmetrics"
)

// This file holds the statistics the detector and the deployment
// comparison rest on: exact tails of the binomial, Poisson and
// hypergeometric distributions (through the regularized incomplete beta
// and gamma functions), the Mann-Whitney U test on histogram counts, and
// confidence bands for quantiles and proportions. Every test is one-sided
// and returns a p-value; callers correct for multiple testing.

// normSF is the upper tail of the standard normal distribution, P(Z > z).
func normSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// normQuantile returns z with P(Z < z) = p (Acklam's rational
// approximation refined by one Newton step; relative error below 1e-12).
func normQuantile(p float64) float64 {
	if p <= 0 {
		return math.Inf(-1)
	}
	if p >= 1 {
		return math.Inf(1)
	}
	a := [...]float64{-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00}
	b := [...]float64{-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01}
	c := [...]float64{-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00}
	d := [...]float64{7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00}
	var x float64
	switch {
	case p < 0.02425:
		q := math.Sqrt(-2 * math.Log(p))
		x = (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	case p > 1-0.02425:
		q := math.Sqrt(-2 * math.Log(1-p))
		x = -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	default:
		q := p - 0.5
		r := q * q
		x = (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r + a[5]) * q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r + 1)
	}
	e := 0.5*math.Erfc(-x/math.Sqrt2) - p
	u := e * math.Sqrt(2*math.Pi) * math.Exp(x*x/2)
	return x - u/(1+x*u/2)
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// betaInc is the regularized incomplete beta function I_x(a, b), by the
// continued fraction of Numerical Recipes (modified Lentz), using the
// symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where the fraction converges slowly.
func betaInc(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	lbt := lgamma(a+b) - lgamma(a) - lgamma(b) + a*math.Log(x) + b*math.Log1p(-x)
	if x < (a+1)/(a+b+2) {
		return math.Exp(lbt) * betaCF(a, b, x) / a
	}
	return 1 - math.Exp(lbt)*betaCF(b, a, 1-x)/b
}

func betaCF(a, b, x float64) float64 {
	const (
		maxIter = 10000
		eps     = 1e-15
		tiny    = 1e-300
	)
	qab, qap, qam := a+b, a+1, a-1
	c, d := 1.0, 1-qab*x/qap
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= maxIter; m++ {
		fm := float64(m)
		m2 := 2 * fm
		aa := fm * (b - fm) * x / ((qam + m2) * (a + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		h *= d * c
		aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
		d = 1 + aa*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = 1 + aa/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < eps {
			break
		}
	}
	return h
}

// gammaP is the regularized lower incomplete gamma function P(a, x): the
// series for x < a+1, else 1 minus the continued fraction for Q.
func gammaP(a, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x < a+1 {
		ap, sum, del := a, 1/a, 1/a
		for range 100000 {
			ap++
			del *= x / ap
			sum += del
			if math.Abs(del) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return sum * math.Exp(-x+a*math.Log(x)-lgamma(a))
	}
	return 1 - gammaQcf(a, x)
}

func gammaQcf(a, x float64) float64 {
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 100000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lgamma(a)) * h
}

// binomUpper returns P(X >= k) for X ~ Binomial(n, p).
func binomUpper(k, n uint64, p float64) float64 {
	switch {
	case k == 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	return clamp01(betaInc(float64(k), float64(n-k+1), p))
}

// poissonUpper returns P(X >= k) for X ~ Poisson(lambda).
func poissonUpper(k uint64, lambda float64) float64 {
	if k == 0 {
		return 1
	}
	if lambda <= 0 {
		return 0
	}
	return clamp01(gammaP(float64(k), lambda))
}

// poissonLower returns P(X <= k) for X ~ Poisson(lambda).
func poissonLower(k uint64, lambda float64) float64 {
	if lambda <= 0 {
		return 1
	}
	return clamp01(1 - gammaP(float64(k+1), lambda))
}

// fisherUpper is the one-sided Fisher exact test that the first group's
// proportion k1/n1 is higher than the second's k2/n2: P(X >= k1) for X
// hypergeometric (n1 draws from n1+n2 items of which k1+k2 are marked).
func fisherUpper(k1, n1, k2, n2 uint64) float64 {
	if k1 > n1 || k2 > n2 {
		return 1
	}
	K, N := k1+k2, n1+n2
	if K == 0 || n1 == 0 || n2 == 0 {
		return 1
	}
	hi := min(K, n1)
	lo := uint64(0)
	if K > n2 {
		lo = K - n2
	}
	if k1 <= lo {
		return 1
	}
	logC := func(n, r uint64) float64 {
		return lgamma(float64(n)+1) - lgamma(float64(r)+1) - lgamma(float64(n-r)+1)
	}
	den := logC(N, n1)
	// Sum from the largest term down: the terms fall off geometrically, so
	// stop once they no longer change the sum.
	var sum float64
	for x := k1; x <= hi; x++ {
		t := math.Exp(logC(K, x) + logC(N-K, n1-x) - den)
		sum += t
		if t < sum*1e-17 && x > k1+10 {
			break
		}
	}
	return clamp01(sum)
}

func clamp01(p float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	return min(max(p, 0), 1)
}

// mwResult is the Mann-Whitney U test of histogram a against histogram b
// (same buckets).
type mwResult struct {
	// Superiority is P(X_a > X_b) + P(X_a = X_b)/2 (0.5: no shift; ties are
	// values in the same bucket).
	Superiority float64
	// Z is the normal approximation's statistic (tie-corrected); P the
	// one-sided p-value that a is stochastically larger than b.
	Z, P float64
}

// mannWhitney compares two histograms of the same buckets. With no data in
// either it reports no shift (P = 1).
func mannWhitney(a, b []uint64) mwResult {
	n := min(len(a), len(b))
	var n1, n2 float64
	for i := range n {
		n1 += float64(a[i])
		n2 += float64(b[i])
	}
	if n1 == 0 || n2 == 0 {
		return mwResult{Superiority: 0.5, P: 1}
	}
	var u, below, ties float64
	for i := range n {
		ai, bi := float64(a[i]), float64(b[i])
		u += ai * (below + bi/2)
		below += bi
		t := ai + bi
		ties += t*t*t - t
	}
	N := n1 + n2
	mean := n1 * n2 / 2
	v := n1 * n2 / 12 * ((N + 1) - ties/(N*(N-1)))
	res := mwResult{Superiority: u / (n1 * n2), P: 1}
	if v <= 0 {
		return res
	}
	res.Z = (u - mean - 0.5) / math.Sqrt(v) // continuity correction
	res.P = normSF(res.Z)
	return res
}

// histTotal is the number of observations in a histogram.
func histTotal(h []uint64) uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// histAtRank returns the value at fractional rank r (0..total) of a
// histogram, interpolating linearly inside the bucket as
// spanmetrics.Quantile does.
func histAtRank(h []uint64, r float64) time.Duration {
	total := histTotal(h)
	if total == 0 {
		return 0
	}
	return spanmetrics.Quantile(h, min(max(r/float64(total), 0), 1))
}

// histAbove returns how many observations of h lie above d, counting the
// bucket that holds d in proportion to where d falls in it.
func histAbove(h []uint64, d time.Duration) float64 {
	bounds := spanmetrics.LatencyBounds
	var n float64
	for i, c := range h {
		if c == 0 {
			continue
		}
		var lo, hi time.Duration
		if i > 0 {
			lo = bounds[min(i-1, len(bounds)-1)]
		}
		if i < len(bounds) {
			hi = bounds[i]
		} else {
			hi = lo * 2
		}
		switch {
		case lo >= d:
			n += float64(c)
		case hi > d:
			n += float64(c) * float64(hi-d) / float64(hi-lo)
		}
	}
	return n
}

// Band is an expected value with a confidence band.
type Band struct {
	Expected float64 `json:"expected"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
}

// quantileBand estimates the q-quantile of h with a distribution-free
// confidence band at two-sided level 1-alpha: the order statistics whose
// ranks are n·q ∓ z·sqrt(n·q·(1-q)).
func quantileBand(h []uint64, q, alpha float64) (est, low, high time.Duration) {
	n := float64(histTotal(h))
	if n == 0 {
		return 0, 0, 0
	}
	z := normQuantile(1 - alpha/2)
	sd := math.Sqrt(n * q * (1 - q))
	return spanmetrics.Quantile(h, q), histAtRank(h, n*q-z*sd-1), histAtRank(h, n*q+z*sd+1)
}

// wilson returns the Wilson score interval of the proportion k/n at
// two-sided level 1-alpha.
func wilson(k, n uint64, alpha float64) (low, high float64) {
	if n == 0 {
		return 0, 1
	}
	z := normQuantile(1 - alpha/2)
	nf, p := float64(n), float64(k)/float64(n)
	den := 1 + z*z/nf
	c := (p + z*z/(2*nf)) / den
	h := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return max(0, c-h), min(1, c+h)
}

// welch is Welch's t-test, in its normal approximation, that the mean of
// a exceeds the mean of b: the one-sided p-value and the difference of
// the means. Fewer than two values on either side give p = 1.
func welch(a, b []float64) (diff, p float64) {
	ma, va := meanVar(a)
	mb, vb := meanVar(b)
	diff = ma - mb
	if len(a) < 2 || len(b) < 2 {
		return diff, 1
	}
	se := math.Sqrt(va/float64(len(a)) + vb/float64(len(b)))
	if se == 0 {
		if diff > 0 {
			return diff, 0
		}
		return diff, 1
	}
	// The t distribution's heavier tails matter for a few dozen traces:
	// shrink the statistic by the usual small-sample factor.
	df := float64(len(a) + len(b) - 2)
	t := diff / se * (1 - 1/(4*df))
	return diff, normSF(t)
}

func meanVar(x []float64) (mean, variance float64) {
	if len(x) == 0 {
		return 0, 0
	}
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	if len(x) < 2 {
		return mean, 0
	}
	for _, v := range x {
		variance += (v - mean) * (v - mean)
	}
	return mean, variance / float64(len(x)-1)
}

// bucketOf returns the history histogram bucket holding d.
func bucketOf(d time.Duration) int {
	b := spanmetrics.LatencyBounds
	lo, hi := 0, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b[m] < d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
