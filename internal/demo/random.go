package demo

import (
	"math/rand/v2"
	"sync"
)

// lockedRand is a random source safe for concurrent use. The demo draws
// from two of them: driverRand (arrivals, the request mix, users) and
// shopRand (latencies, cache hits, failures, IDs), so that the traffic a
// seed produces does not depend on how the services' draws interleave.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand() *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// seed restarts the stream from s; stream distinguishes the sources that
// share one seed.
func (l *lockedRand) seed(s, stream uint64) {
	l.mu.Lock()
	l.r = rand.New(rand.NewPCG(s, stream))
	l.mu.Unlock()
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

func (l *lockedRand) Uint64() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Uint64()
}

func (l *lockedRand) ExpFloat64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.ExpFloat64()
}

func (l *lockedRand) NormFloat64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.NormFloat64()
}

// The demo's random sources, seeded from Config.Seed by Start (randomly
// when it is 0). They are per process: demos started in one process share
// them, and the last Start with a seed reseeds them. A seed fixes the
// streams, not the order in which concurrent requests draw from them, so
// two runs with one seed are statistically alike rather than identical.
var (
	driverRand = newLockedRand()
	shopRand   = newLockedRand()
)

// seedRandom reseeds the demo's random sources from seed; 0 leaves them
// random.
func seedRandom(seed uint64) {
	if seed == 0 {
		return
	}
	driverRand.seed(seed, 0x64726976) // "driv"
	shopRand.seed(seed, 0x73686f70)   // "shop"
}
