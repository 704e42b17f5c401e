package detect

import (
	"strings"
	"testing"
	"time"
)

// TestDeployVerdicts brings out a new checkout version after 20 minutes
// and checks the verdict a few minutes later.
func TestDeployVerdicts(t *testing.T) {
	cases := []struct {
		name       string
		setup      func(*sim) // from the start
		deploy     func(*sim) // at minute 20
		minutes    int        // of traffic with the new version
		want       string
		comparison string
		evidence   []string // substrings of the evidence, downstream changes or new errors
	}{
		{"slower canary with a new query and a new error", nil,
			func(s *sim) { s.Canary, s.CanaryExtra, s.CanaryErr = "2.0.0", 250*time.Millisecond, 0.1 },
			3, VerdictRegressed, "concurrent", []string{"PlaceOrder slower", "new applyPromotions", "new SELECT promotions", "promotions: rule set is nil"}},
		{"same code, new version", nil,
			func(s *sim) { s.Canary = "2.0.0" },
			3, VerdictNoChange, "concurrent", nil},
		{"faster canary", func(s *sim) { s.StableExtra = 40 * time.Millisecond },
			func(s *sim) { s.Canary = "2.0.0" },
			3, VerdictImproved, "concurrent", []string{"PlaceOrder faster"}},
		{"rolling update, slower", nil,
			func(s *sim) { s.Canary, s.CanaryAll, s.CanaryExtra = "2.0.0", true, 100*time.Millisecond },
			3, VerdictRegressed, "sequential", []string{"PlaceOrder slower"}},
		{"too early to tell", nil,
			func(s *sim) { s.Canary, s.CanaryExtra = "2.0.0", 250*time.Millisecond },
			0, VerdictInsufficient, "concurrent", nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, uint64(40+i), Config{})
			e.sim.Rate = 120
			if c.setup != nil {
				c.setup(e.sim)
			}
			e.run(0, 20, 18)
			if ds := e.det.Deploys(t0, e.clk.now()); len(ds) != 0 {
				t.Fatalf("deployments before any: %+v", ds)
			}
			c.deploy(e.sim)
			if c.minutes == 0 {
				// One quarter of a minute: a dozen orders on the canary.
				e.sim.Rate = 40
				e.feed(t0.Add(20*time.Minute), true)
			} else {
				e.run(20, 20+c.minutes, 20)
			}
			ds := e.det.Deploys(t0, e.clk.now())
			if len(ds) != 1 {
				t.Fatalf("%d deployments, want 1: %+v", len(ds), ds)
			}
			d := ds[0]
			if d.Service != "checkout" || d.Value != "2.0.0" || d.Previous != "1.4.2" || d.Attribute != "service.version" {
				t.Errorf("deployment %s %s=%s after %s, want checkout service.version=2.0.0 after 1.4.2", d.Service, d.Attribute, d.Value, d.Previous)
			}
			if d.Verdict != c.want || d.Comparison != c.comparison {
				t.Errorf("verdict %s (%s comparison), want %s (%s): %s\n%+v", d.Verdict, d.Comparison, c.want, c.comparison, d.Summary, d)
			}
			if (d.Verdict == VerdictRegressed || d.Verdict == VerdictImproved) != (d.Confidence != nil) {
				t.Errorf("confidence %v with verdict %s", d.Confidence, d.Verdict)
			}
			var all []string
			all = append(all, d.Evidence...)
			for _, x := range d.Downstream {
				all = append(all, x.Change+" "+x.Operation)
			}
			for _, x := range d.NewErrors {
				all = append(all, x.Type)
			}
			text := strings.Join(all, "\n")
			for _, want := range c.evidence {
				if !strings.Contains(text, want) {
					t.Errorf("evidence lacks %q:\n%s", want, text)
				}
			}
		})
	}
}
