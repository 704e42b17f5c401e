package main

import (
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/detect"
)

// TestPlan checks that a plan is reproducible and within its ranges.
func TestPlan(t *testing.T) {
	a, b := planCases(3, 20), planCases(3, 20)
	for i := range a {
		x, y := a[i], b[i]
		if x.Kind != y.Kind || x.Service != y.Service || x.Services != y.Services || x.History != y.History || x.seed != y.seed {
			t.Fatalf("case %d differs between two plans of one seed", i+1)
		}
		if x.Services < 4 || x.Services > 20 || x.Depth < 2 || x.Depth > 5 || x.FanOut < 1 || x.FanOut > 4 {
			t.Errorf("case %d: %d services, depth %d, fan-out %d out of range", i+1, x.Services, x.Depth, x.FanOut)
		}
		if (x.Kind == FaultCPU || x.Kind == FaultDelay || x.Kind == FaultError) == (x.Service == "") {
			t.Errorf("case %d: %s fault on service %q", i+1, x.Kind, x.Service)
		}
	}
}

func TestScore(t *testing.T) {
	fs := t0.Add(30 * time.Minute)
	svcCase := &Case{Kind: FaultCPU, f: fault{Kind: FaultCPU, Service: "b", Start: fs}}
	hostCase := &Case{Kind: FaultHost, f: fault{Kind: FaultHost, Start: fs}}
	an := func(at time.Duration, culprits ...string) detect.Anomaly {
		a := detect.Anomaly{DetectedAt: fs.Add(at), Summary: "x"}
		for _, c := range culprits {
			a.Culprits = append(a.Culprits, detect.Culprit{Service: c})
		}
		return a
	}
	for _, tc := range []struct {
		name           string
		c              *Case
		as             []detect.Anomaly
		stalls         []time.Time
		top1, top3, ok bool
		falseAlarms    int
	}{
		{"first culprit", svcCase, []detect.Anomaly{an(time.Minute, "b", "a")}, nil, true, true, true, 0},
		{"second culprit", svcCase, []detect.Anomaly{an(time.Minute, "a", "b")}, nil, false, true, true, 0},
		{"earlier anomaly first", svcCase, []detect.Anomaly{an(2*time.Minute, "b"), an(time.Minute, "a")}, nil, false, true, true, 0},
		{"after the deadline", svcCase, []detect.Anomaly{an(11*time.Minute, "b")}, nil, false, false, false, 0},
		{"before the fault", svcCase, []detect.Anomaly{an(-time.Minute, "b")}, nil, false, false, false, 1},
		{"host stall alone", hostCase, nil, []time.Time{fs}, true, true, true, 0},
		{"host stall and a culprit", hostCase, []detect.Anomaly{an(time.Minute, "a")}, []time.Time{fs}, false, false, true, 0},
		{"stall before the fault", hostCase, nil, []time.Time{fs.Add(-5 * time.Minute)}, false, false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Result{Case: *tc.c}
			score(r, tc.as, tc.stalls, tc.c, 10*time.Minute, 5)
			if r.Top1 != tc.top1 || r.Top3 != tc.top3 || r.Detected != tc.ok || r.FalseAlarms != tc.falseAlarms {
				t.Errorf("top1 %v top3 %v detected %v false %d, want %v %v %v %d", r.Top1, r.Top3, r.Detected, r.FalseAlarms, tc.top1, tc.top3, tc.ok, tc.falseAlarms)
			}
		})
	}
}
