package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func topCulprit(as []Anomaly) (Anomaly, Culprit, bool) {
	for _, a := range as {
		if len(a.Culprits) > 0 {
			return a, a.Culprits[0], true
		}
	}
	return Anomaly{}, Culprit{}, false
}

func describe(as []Anomaly) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "\n%s %s sev=%.0f %s", a.ID, a.Status, a.Severity, a.Summary)
		for _, s := range a.Operations {
			fmt.Fprintf(&b, "\n   symptom %s %s %s %s=%g (exp %g) p=%g", s.Service, s.Operation, s.Signal, s.Measure, s.Observed, s.Expected, s.PValue)
		}
		for _, c := range a.Culprits {
			fmt.Fprintf(&b, "\n   culprit %d %s %s %s v=%s attr=%s score=%.3f %q", c.Rank, c.Service, c.Operation, c.Kind, c.Version, c.Attribute, c.Score, c.Evidence)
		}
		for _, n := range a.Notes {
			fmt.Fprintf(&b, "\n   note %s", n)
		}
	}
	return b.String()
}

// TestQuiet: stationary traffic raises nothing, and neither does a host
// stall of five seconds nor a change too small to be significant.
func TestQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("40 simulated minutes")
	}
	e := newEnv(t, 1, Config{})
	// A host stall of five seconds at minute 25.
	e.sim.StallFrom = t0.Add(25*time.Minute + 20*time.Second)
	e.sim.StallTo = e.sim.StallFrom.Add(5 * time.Second)
	e.run(0, 30, 8)
	// A 3% slower payment is real but not significant in a few minutes.
	e.sim.Extra["payment"] = 3 * time.Millisecond
	e.run(30, 40, 30)
	if as := e.det.Anomalies(t0, e.clk.now()); len(as) != 0 {
		t.Fatalf("quiet traffic raised %d anomalies:%s", len(as), describe(as))
	}
	// A host that stalls for 40 seconds slows every service at once: no
	// operation's anomaly, and the minute is listed as a stall.
	e.sim.Extra = map[string]time.Duration{}
	e.sim.StallAll = true
	e.sim.StallFrom = t0.Add(42*time.Minute + 10*time.Second)
	e.sim.StallTo = e.sim.StallFrom.Add(40 * time.Second)
	e.run(40, 48, 40)
	if as := e.det.Anomalies(t0, e.clk.now()); len(as) != 0 {
		t.Fatalf("a host-wide stall raised %d anomalies:%s", len(as), describe(as))
	}
	if st := e.det.Status().HostStalls; len(st) != 1 || !st[0].Equal(t0.Add(42*time.Minute)) {
		t.Errorf("host stalls %v, want the minute %s", st, t0.Add(42*time.Minute))
	}
	for _, b := range e.det.Baselines() {
		if b.Mode != ModeTrailing || b.Fallback == "" {
			t.Errorf("baseline of %s %s: mode %s (fallback %q), want trailing with a reason", b.Service, b.Operation, b.Mode, b.Fallback)
		}
	}
}

// TestCulprits switches faults on after 20 minutes of normal traffic and
// checks that the top culprit of the anomaly names the operation at fault
// within two minutes, also where its trouble spreads to its callers.
func TestCulprits(t *testing.T) {
	cases := []struct {
		name                string
		fault               func(*sim)
		service, op, signal string
		version             string
	}{
		{"callee self time", func(s *sim) { s.Extra["payment"] = 150 * time.Millisecond }, "payment", "POST /charges", SignalLatency, ""},
		{"slow third party", func(s *sim) { s.Extra["provider"] = 600 * time.Millisecond }, "payment", "POST /v1/charges", SignalLatency, ""},
		{"failing third party, retried", func(s *sim) { s.ProviderErr = 0.6 }, "payment", "POST /v1/charges", SignalErrors, ""},
		{"n+1 queries", func(s *sim) { s.NPlusOne = true }, "catalog", "ListProducts", SignalLatency, ""},
		{"slow operation", func(s *sim) { s.Extra["catalog"] = 120 * time.Millisecond }, "catalog", "ListProducts", SignalLatency, ""},
		{"bad canary", func(s *sim) { s.Canary, s.CanaryExtra, s.CanaryErr = "2.0.0", 250*time.Millisecond, 0.05 }, "checkout", "PlaceOrder", SignalLatency, "2.0.0"},
		{"lost context", func(s *sim) { s.DropPayments = true }, "payment", "POST /charges", SignalPropagation, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, uint64(10+i), Config{})
			e.sim.Rate = 120
			e.run(0, 20, 14)
			if as := e.det.Anomalies(t0, e.clk.now()); len(as) != 0 {
				t.Fatalf("before the fault: %d anomalies:%s", len(as), describe(as))
			}
			c.fault(e.sim)
			e.run(20, 22, 20)
			as := e.det.Anomalies(t0, e.clk.now())
			a, top, ok := topCulprit(as)
			if !ok {
				t.Fatalf("no ranked anomaly two minutes into the fault:%s", describe(as))
			}
			if top.Service != c.service || top.Operation != c.op || top.Version != c.version {
				t.Errorf("top culprit %s %s version %q, want %s %s version %q:%s", top.Service, top.Operation, top.Version, c.service, c.op, c.version, describe(as))
			}
			t.Logf("%s", describe(as))
			if !strings.Contains(strings.Join(a.Signals, ","), c.signal) {
				t.Errorf("signals %v, want %s among them", a.Signals, c.signal)
			}
			if a.Start.Before(t0.Add(19*time.Minute)) || a.Start.After(t0.Add(21*time.Minute)) {
				t.Errorf("start %s, want about %s", a.Start, t0.Add(20*time.Minute))
			}
			if len(a.Exemplars) == 0 {
				t.Errorf("no example traces")
			}
			// Switched off, it resolves.
			e.sim.Heal()
			e.run(22, 27, 22)
			for _, a := range e.det.Anomalies(t0, e.clk.now()) {
				if a.Status != "resolved" {
					t.Errorf("anomaly %s still %s five minutes after the fault ended:%s", a.ID, a.Status, describe([]Anomaly{a}))
				}
			}
		})
	}
}
