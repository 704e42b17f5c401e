package detect

import (
	"slices"
	"time"
)

// Status is the state of the detector every answer of its endpoints
// carries.
type Status struct {
	// EvaluatedAt is the last evaluation (null before the first); Error
	// its error, if it failed.
	EvaluatedAt *time.Time `json:"evaluatedAt"`
	Error       string     `json:"error,omitempty"`
	// HostStalls are the minutes of the last hour in which most
	// operations of most services were slower at once (the host, not an
	// operation): left out of the latency and throughput tests.
	HostStalls []time.Time `json:"hostStalls,omitempty"`
}

// Status returns the detector's state as of its last evaluation.
func (d *Detector) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s Status
	if !d.lastEval.IsZero() {
		t := d.lastEval.UTC()
		s.EvaluatedAt = &t
	}
	if d.lastErr != nil {
		s.Error = d.lastErr.Error()
	}
	s.HostStalls = slices.Clone(d.hostOut)
	return s
}

// Now returns the detector's clock (Options.Now).
func (d *Detector) Now() time.Time { return d.now() }

// HostStalls returns the minutes of the last hour found host-wide slow
// (the hostStalls of every answer).
func (d *Detector) HostStalls() []time.Time { return d.Status().HostStalls }

// Baselines returns the baseline of every operation as of the last
// evaluation, sorted by service, operation and kind.
func (d *Detector) Baselines() []Baseline {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.baselineOut)
}

// publishBaselines renders the baselines of this evaluation.
func (d *Detector) publishBaselines(ops map[opKey]*opSeries, seasonal map[opKey][]seasonalWindow, now time.Time) {
	ex := d.excludedNow()
	out := make([]Baseline, 0, len(ops))
	for _, s := range sortedOps(ops) {
		bases, fallback, excluded := d.baselinesFor(s, seasonal, d.cache.firstMinute, ex, now)
		out = append(out, publicBaseline(s.key, bases[0], d.cfg, fallback, excluded))
	}
	d.mu.Lock()
	d.baselineOut = out
	d.mu.Unlock()
}
