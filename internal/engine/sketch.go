package engine

import (
	"math"
	"slices"
)

// Quantile estimation with bounded memory. An interval's values are kept
// exactly up to exactValues of them; beyond that they move to a sketch of
// logarithmic buckets whose width bounds the relative error of every
// quantile by sketchAccuracy (a DDSketch-like layout: bucket i holds
// values in (γ^(i-1), γ^i]). A sketch holds at most a few thousand
// buckets whatever the number of values: with durations from 1 ns to a
// day, log(8.6e13)/log(γ) ≈ 1600, and never more than 2·maxBucketIndex+1.
const (
	exactValues    = 256
	sketchAccuracy = 0.01
)

var (
	sketchGamma  = (1 + sketchAccuracy) / (1 - sketchAccuracy)
	sketchLnGama = math.Log(sketchGamma)
)

// quantileAcc accumulates the values of one interval.
type quantileAcc struct {
	exact []float64
	// Once exact overflows: pos and neg count positive values and the
	// magnitudes of negative ones by bucket index, zero counts zeros.
	sketched bool
	pos, neg denseCounts
	zero     uint64
	n        uint64
}

// denseCounts counts by bucket index in a slice covering the indices seen.
type denseCounts struct {
	off int32
	c   []uint64
}

// maxBucketIndex clamps bucket indices: values beyond γ^±3000 (about
// 1e±26) share the extreme buckets, which bounds a sketch to 6001 counts.
const maxBucketIndex = 3000

func (d *denseCounts) add(i int32) {
	switch {
	case len(d.c) == 0:
		d.off, d.c = i, make([]uint64, 1, 16)
	case i < d.off:
		grown := make([]uint64, int(d.off-i)+len(d.c), int(d.off-i)+cap(d.c))
		copy(grown[d.off-i:], d.c)
		d.off, d.c = i, grown
	case int(i-d.off) >= len(d.c):
		d.c = append(d.c, make([]uint64, int(i-d.off)-len(d.c)+1)...)
	}
	d.c[i-d.off]++
}

func (a *quantileAcc) add(v float64) {
	a.n++
	if !a.sketched {
		if len(a.exact) < exactValues {
			a.exact = append(a.exact, v)
			return
		}
		a.sketched = true
		for _, x := range a.exact {
			a.addSketch(x)
		}
		a.exact = nil
	}
	a.addSketch(v)
}

func (a *quantileAcc) addSketch(v float64) {
	switch {
	case v > 0:
		a.pos.add(bucketIndex(v))
	case v < 0:
		a.neg.add(bucketIndex(-v))
	default:
		a.zero++
	}
}

// bucketIndex is the index i with γ^(i-1) < v <= γ^i, clamped to
// ±maxBucketIndex.
func bucketIndex(v float64) int32 {
	i := math.Ceil(math.Log(v) / sketchLnGama)
	return int32(max(min(i, maxBucketIndex), -maxBucketIndex))
}

// bucketValue is the estimate reported for bucket i: the point whose
// relative distance to both bucket bounds is sketchAccuracy.
func bucketValue(i int32) float64 {
	return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1)
}

// quantile returns the q-quantile (0..1) of the values: exact (linear
// interpolation between the closest ranks) while there are at most
// exactValues of them, else within sketchAccuracy relative error.
func (a *quantileAcc) quantile(q float64) float64 {
	if a.n == 0 {
		return math.NaN()
	}
	if !a.sketched {
		return quantile(a.exact, q)
	}
	rank := uint64(math.Round(q * float64(a.n-1)))
	// Walk from the most negative value up.
	for k := len(a.neg.c) - 1; k >= 0; k-- {
		if c := a.neg.c[k]; rank < c {
			return -bucketValue(a.neg.off + int32(k))
		} else {
			rank -= c
		}
	}
	if rank < a.zero {
		return 0
	}
	rank -= a.zero
	for k, c := range a.pos.c {
		if rank < c {
			return bucketValue(a.pos.off + int32(k))
		}
		rank -= c
	}
	return bucketValue(a.pos.off + int32(len(a.pos.c)-1))
}

// quantile returns the q-quantile of vs (sorted in place), interpolating
// linearly between the closest ranks.
func quantile(vs []float64, q float64) float64 {
	slices.Sort(vs)
	if len(vs) == 1 {
		return vs[0]
	}
	pos := q * float64(len(vs)-1)
	lo := int(math.Floor(pos))
	if lo >= len(vs)-1 {
		return vs[len(vs)-1]
	}
	frac := pos - float64(lo)
	return vs[lo] + (vs[lo+1]-vs[lo])*frac
}
