package analysis

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Attribution is one operation's share of the critical paths of a band of
// samples (AggregatePath).
type Attribution struct {
	Op OpKey
	// P50 and Tail are the mean self time of the operation on the
	// critical path in the median band and in the tail band (zero for the
	// samples where it is not on the path).
	P50, Tail time.Duration
	// P50Share and TailShare are those means over the band's mean
	// duration (0..1).
	P50Share, TailShare float64
	// Presence is the fraction of all samples where the operation is on
	// the critical path.
	Presence float64
}

// AggregatedPath is the critical path of one operation aggregated over
// many of its spans (AggregatePath).
type AggregatedPath struct {
	Op OpKey
	// Samples is the number of spans of the operation analysed; P50Samples
	// and TailSamples how many fall in each band.
	Samples, P50Samples, TailSamples int
	// P50Duration and TailDuration are the band's mean durations;
	// Quantile the lower bound of the tail band.
	P50Duration, TailDuration time.Duration
	Quantile                  float64
	// Operations are the operations on the critical paths under the
	// spans (the operation itself included, for its own self time), by
	// how much more of the tail than of the median they take, then by
	// their time in the tail.
	Operations []Attribution
}

// AggregatePath aggregates the critical paths under the spans of op in
// trees: each span of op (outermost only, when it nests in itself) is a
// sample whose critical path (CriticalPathOf) attributes its duration to
// the operations below it. Samples are ranked by duration; the median
// band is the samples between the 40th and 60th percentiles (at least the
// median one), the tail band those at or above quantile q (0.5 < q < 1,
// default 0.99; at least the slowest one). It answers "where does the time
// of this endpoint go, in typical and in slow requests".
func AggregatePath(op OpKey, trees []*Tree, q float64) *AggregatedPath {
	if !(q > 0.5 && q < 1) {
		q = 0.99
	}
	type sample struct {
		dur  time.Duration
		attr map[OpKey]time.Duration
	}
	var samples []sample
	for _, t := range trees {
		// under[i]: some ancestor of i is a span of op.
		under := make([]bool, t.Len())
		for _, i := range t.Order() {
			is := t.Spans[i].Name == op.Operation && t.Service(int(i)) == op.Service
			if p := t.parent[i]; p >= 0 {
				under[i] = under[p] || t.Spans[p].Name == op.Operation && t.Service(int(p)) == op.Service
			}
			if !is || under[i] {
				continue
			}
			s, e := t.Interval(int(i))
			samples = append(samples, sample{dur: durNs(e - s), attr: PathSelfTimes(t, t.CriticalPathOf(int(i)))})
		}
	}
	out := &AggregatedPath{Op: op, Samples: len(samples), Quantile: q}
	if len(samples) == 0 {
		return out
	}
	slices.SortStableFunc(samples, func(a, b sample) int { return cmp.Compare(a.dur, b.dur) })
	n := len(samples)
	lo, hi := int(math.Floor(0.4*float64(n))), int(math.Ceil(0.6*float64(n)))
	if hi <= lo {
		lo, hi = (n-1)/2, (n-1)/2+1
	}
	mid := samples[lo:hi]
	tail := samples[min(int(math.Floor(q*float64(n))), n-1):]
	out.P50Samples, out.TailSamples = len(mid), len(tail)
	mean := func(band []sample, f func(sample) time.Duration) time.Duration {
		var sum float64
		for _, s := range band {
			sum += float64(f(s))
		}
		return time.Duration(sum / float64(len(band)))
	}
	out.P50Duration = mean(mid, func(s sample) time.Duration { return s.dur })
	out.TailDuration = mean(tail, func(s sample) time.Duration { return s.dur })
	present := map[OpKey]int{}
	for _, s := range samples {
		for k := range s.attr {
			present[k]++
		}
	}
	for k, c := range present {
		a := Attribution{Op: k, Presence: float64(c) / float64(n),
			P50:  mean(mid, func(s sample) time.Duration { return s.attr[k] }),
			Tail: mean(tail, func(s sample) time.Duration { return s.attr[k] })}
		if out.P50Duration > 0 {
			a.P50Share = float64(a.P50) / float64(out.P50Duration)
		}
		if out.TailDuration > 0 {
			a.TailShare = float64(a.Tail) / float64(out.TailDuration)
		}
		out.Operations = append(out.Operations, a)
	}
	slices.SortFunc(out.Operations, func(a, b Attribution) int {
		if c := cmp.Compare(b.Tail-b.P50, a.Tail-a.P50); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Tail, a.Tail); c != 0 {
			return c
		}
		return cmpOp(a.Op, b.Op)
	})
	return out
}
