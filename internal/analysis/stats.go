package analysis

import (
	"math"
	"slices"

	"github.com/clew-dev/clew/internal/span"
)

// quantile returns the q-quantile (0..1) of sorted values by linear
// interpolation between the closest ranks; 0 for none.
func quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n == 1 || q <= 0 {
		return sorted[0]
	}
	if q >= 1 {
		return sorted[n-1]
	}
	pos := q * float64(n-1)
	lo := int(pos)
	frac := pos - float64(lo)
	if lo+1 >= n {
		return sorted[n-1]
	}
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// dist summarizes a cohort's values of one quantity.
type dist struct {
	n             int
	p50, p90, mad float64
	present       int // values that are not zero
}

func newDist(vals []float64) dist {
	s := slices.Clone(vals)
	slices.Sort(s)
	d := dist{n: len(s), p50: quantile(s, 0.5), p90: quantile(s, 0.9)}
	dev := make([]float64, len(s))
	for i, v := range s {
		dev[i] = math.Abs(v - d.p50)
		if v != 0 {
			d.present++
		}
	}
	slices.Sort(dev)
	d.mad = quantile(dev, 0.5)
	return d
}

// exceeds reports whether x is significantly above the cohort: above its
// 90th percentile, more than minDelta above its median, and more than three
// robust standard deviations (1.4826 MAD) above the median when the cohort
// varies at all.
func (d dist) exceeds(x, minDelta float64) bool {
	if d.n == 0 || x-d.p50 <= minDelta || x <= d.p90 {
		return false
	}
	if d.mad > 0 && (x-d.p50)/(1.4826*d.mad) < 3 {
		return false
	}
	return true
}

// twoProportionZ tests whether a/n1 differs from b/n2 (pooled two-sample
// z-test); it returns z and the two-sided p-value.
func twoProportionZ(a, n1, b, n2 int) (z, p float64) {
	if n1 == 0 || n2 == 0 {
		return 0, 1
	}
	p1, p2 := float64(a)/float64(n1), float64(b)/float64(n2)
	pp := float64(a+b) / float64(n1+n2)
	se := math.Sqrt(pp * (1 - pp) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0, 1
	}
	z = (p1 - p2) / se
	return z, math.Erfc(math.Abs(z) / math.Sqrt2)
}

// attr returns the value of the attribute key among attrs.
func attr(attrs []span.Attr, key string) (span.Value, bool) {
	for i := range attrs {
		if attrs[i].Key == key {
			return attrs[i].Value, true
		}
	}
	return span.Value{}, false
}

func attrString(attrs []span.Attr, key string) string {
	if v, ok := attr(attrs, key); ok {
		return v.AsString()
	}
	return ""
}

// attrInt returns an int attribute, or an int written as a string.
func attrInt(attrs []span.Attr, key string) (int64, bool) {
	v, ok := attr(attrs, key)
	if !ok {
		return 0, false
	}
	switch v.Type {
	case span.TypeInt:
		return v.Int(), true
	case span.TypeDouble:
		return int64(v.Double()), true
	case span.TypeString:
		var n int64
		for _, c := range v.Str {
			if c < '0' || c > '9' || n > math.MaxInt64/10-10 {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
		return n, v.Str != ""
	}
	return 0, false
}

func hasPrefixKey(attrs []span.Attr, prefix string) bool {
	for i := range attrs {
		if len(attrs[i].Key) > len(prefix) && attrs[i].Key[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// failed reports whether a span failed: error status, or an HTTP status
// of 500 and above (or 429), or a gRPC status other than OK on a client.
func failed(s *span.Span) bool {
	if s.StatusCode == span.StatusError {
		return true
	}
	if c, ok := attrInt(s.Attrs, "http.response.status_code"); ok && (c >= 500 || c == 429) {
		return true
	}
	return false
}
