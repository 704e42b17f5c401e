package detect

import "math"

// Host-wide minutes from pooled per-service counts.
//
// The per-operation rule in testAll needs ten operations with ten calls
// each in the minute; at a few requests a minute per operation it rarely
// applies. This rule pools, per service, the calls of all its operations:
// a call is "slow" when it lies beyond its own operation's baseline p90,
// which on a fault-free minute happens to about one call in ten whatever
// the operation. A service is slower in a minute when its slow calls are
// at least half of its calls and too many for chance (binomial, level
// hostSvcAlpha, against hostSlowShare to allow for the histogram's
// coarse buckets). The minute is host-wide when at least hostMinServices
// services have calls and at least hostServiceShare of them are slower: a
// fault in one service slows it and its callers (one call path), while a
// host stall slows every service with calls.
const (
	hostSlowShare    = 0.15
	hostSvcAlpha     = 0.01
	hostMinServices  = 4
	hostServiceShare = 0.9
)

// hostOp is one operation's minute and the baseline it is judged by.
type hostOp struct {
	service string
	a, base *agg
}

// pooledHostMinute reports whether a minute is host-wide slow by the
// per-service rule above, with the number of services slower and with
// calls.
func pooledHostMinute(ops []hostOp) (host bool, slower, services int) {
	type count struct{ slow, calls float64 }
	per := map[string]*count{}
	for _, o := range ops {
		if o.a == nil || o.a.Calls == 0 || o.base == nil || histTotal(o.base.Hist) == 0 {
			continue
		}
		c := per[o.service]
		if c == nil {
			c = &count{}
			per[o.service] = c
		}
		c.slow += histAbove(o.a.Hist, o.base.quantile(0.9))
		c.calls += float64(histTotal(o.a.Hist))
	}
	for _, c := range per {
		n := uint64(math.Round(c.calls))
		if n < 2 {
			continue
		}
		services++
		k := uint64(math.Round(c.slow))
		if 2*k >= n && binomUpper(k, n, hostSlowShare) <= hostSvcAlpha {
			slower++
		}
	}
	host = services >= hostMinServices && float64(slower) >= hostServiceShare*float64(services)
	return host, slower, services
}
