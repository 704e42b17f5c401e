package analysis

import (
	"slices"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

func TestCriticalPath(t *testing.T) {
	tests := []struct {
		name  string
		spans []span.Span
		want  string
	}{
		{
			name:  "single span",
			spans: []span.Span{sp(1, 0, "a:root", 0, 10)},
			want:  "root[0-10]",
		},
		{
			name: "sequential children",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 1, "b:first", 10, 30),
				sp(3, 1, "c:second", 50, 40),
			},
			want: "root[0-10] first[10-40] root[40-50] second[50-90] root[90-100]",
		},
		{
			name: "overlapping children: the last to finish blocks, the other only before it starts",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 1, "b:long", 10, 80),  // 10-90
				sp(3, 1, "c:short", 20, 30), // 20-50, inside long
				sp(4, 1, "d:early", 0, 15),  // 0-15, ends after long starts
			},
			want: "root[0-10] long[10-90] root[90-100]",
		},
		{
			name: "parallel children ending in turn",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 1, "b:x", 10, 50),     // 10-60
				sp(3, 1, "c:y", 5, 30),      // 5-35, ends before x starts? no: overlaps x
				sp(4, 1, "d:z", 62, 30),     // 62-92
				sp(5, 1, "e:w", 0, 2),       // 0-2
				sp(6, 2, "f:inner", 20, 30), // 20-50 in x
			},
			want: "w[0-2] root[2-10] x[10-20] inner[20-50] x[50-60] root[60-62] z[62-92] root[92-100]",
		},
		{
			name: "child ending after its parent is clipped",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 1, "b:mid", 20, 50),    // 20-70
				sp(3, 2, "c:async", 60, 100), // 60-160, clipped to 60-70
			},
			want: "root[0-20] mid[20-60] async[60-70] root[70-100]",
		},
		{
			name: "child starting before its parent is clipped",
			spans: []span.Span{
				sp(1, 0, "a:root", 10, 90),  // 10-100
				sp(2, 1, "b:skewed", 0, 40), // 0-40, clipped to 10-40
			},
			want: "skewed[10-40] root[40-100]",
		},
		{
			name: "child entirely outside its parent is ignored",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 50),
				sp(2, 1, "b:later", 60, 10),
			},
			want: "root[0-50]",
		},
		{
			name: "back to back children",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 30),
				sp(2, 1, "b:x", 0, 10),
				sp(3, 1, "b:y", 10, 10),
				sp(4, 1, "b:z", 20, 10),
			},
			want: "x[0-10] y[10-20] z[20-30]",
		},
		{
			name: "zero-length child",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 30),
				sp(2, 1, "b:x", 10, 0),
			},
			want: "root[0-30]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTree(tt.spans)
			segs := tr.CriticalPath()
			if got := pathString(segs); got != tt.want {
				t.Errorf("CriticalPath() = %s\nwant               %s", got, tt.want)
			}
			mustSum(t, tr, segs, tr.Root())
		})
	}
}

func TestSelfTime(t *testing.T) {
	tr := NewTree([]span.Span{
		sp(1, 0, "a:root", 0, 100),
		sp(2, 1, "b:x", 10, 30),   // 10-40
		sp(3, 1, "b:y", 30, 30),   // 30-60 overlaps x
		sp(4, 1, "b:z", 80, 40),   // 80-120, clipped to 80-100
		sp(5, 2, "c:in", 15, 10),  // 15-25
		sp(6, 2, "c:in2", 20, 10), // 20-30
	})
	want := map[int]time.Duration{0: 30, 1: 15, 2: 30, 3: 20, 4: 10, 5: 10}
	for i, w := range want {
		if got := tr.SelfTime(i); got != w*time.Millisecond {
			t.Errorf("SelfTime(%s) = %v, want %v", tr.Spans[i].Name, got, w*time.Millisecond)
		}
	}
	if len(tr.Skewed) != 1 || tr.Skewed[0].Span != 3 || tr.Skewed[0].After != 20*time.Millisecond {
		t.Errorf("Skewed = %+v, want z ending 20ms after root", tr.Skewed)
	}
}

func TestSelfTimes(t *testing.T) {
	tr := NewTree([]span.Span{
		sp(1, 0, "gw:GET /", 0, 100),
		sp(2, 1, "db:q", 10, 20),
		sp(3, 1, "db:q", 40, 20),
		sp(4, 1, "db:q", 45, 5), // overlaps the previous: not on the path
	})
	got := tr.SelfTimes()
	want := map[OpKey]time.Duration{
		{"gw", "GET /"}: 60 * time.Millisecond,
		{"db", "q"}:     40 * time.Millisecond,
	}
	if len(got) != len(want) {
		t.Fatalf("SelfTimes() = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("SelfTimes()[%v] = %v, want %v", k, got[k], v)
		}
	}
}

func TestTreeBadInput(t *testing.T) {
	tests := []struct {
		name                                   string
		spans                                  []span.Span
		roots                                  []int32
		root                                   int
		orphans, cycleBreaks, duplicates, skew []int
	}{
		{
			name: "orphans become roots",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 9, "b:lost", 10, 10), // parent 9 never arrived
				sp(3, 2, "b:under-lost", 12, 5),
			},
			roots: []int32{0, 1}, root: 0, orphans: []int{1},
		},
		{
			name: "no root: the earliest orphan",
			spans: []span.Span{
				sp(2, 9, "b:lost", 10, 10),
				sp(3, 8, "b:lost2", 5, 10),
			},
			roots: []int32{1, 0}, root: 1, orphans: []int{0, 1},
		},
		{
			name: "two-span cycle",
			spans: []span.Span{
				sp(1, 2, "a:x", 0, 10),
				sp(2, 1, "a:y", 5, 10),
			},
			roots: []int32{0}, root: 0, cycleBreaks: []int{0}, skew: []int{1},
		},
		{
			name: "self parent",
			spans: []span.Span{
				sp(1, 1, "a:x", 0, 10),
			},
			roots: []int32{0}, root: 0, cycleBreaks: []int{0},
		},
		{
			name: "cycle hanging off a chain",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 4, "a:c1", 10, 10),
				sp(3, 2, "a:c2", 12, 5),
				sp(4, 3, "a:c3", 14, 2),
				sp(5, 3, "a:tail", 13, 1),
			},
			roots: []int32{0, 1}, root: 0, cycleBreaks: []int{1},
		},
		{
			name: "exact duplicate is left out, a different span with the same ID stays",
			spans: []span.Span{
				sp(1, 0, "a:root", 0, 100),
				sp(2, 1, "a:child", 10, 10),
				sp(2, 1, "a:child", 10, 10),
				sp(2, 1, "a:other", 30, 10),
				sp(3, 2, "a:grandchild", 11, 5),
			},
			roots: []int32{0}, root: 0, duplicates: []int{2, 3},
		},
		{
			name: "clock skew",
			spans: []span.Span{
				sp(1, 0, "a:root", 10, 100),
				sp(2, 1, "b:early", 0, 20),
				sp(3, 1, "b:late", 100, 20),
			},
			roots: []int32{0}, root: 0, skew: []int{1, 2},
		},
		{
			name:  "empty",
			spans: nil,
			root:  -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTree(tt.spans)
			if !slices.Equal(tr.Roots(), tt.roots) {
				t.Errorf("Roots() = %v, want %v", tr.Roots(), tt.roots)
			}
			if tr.Root() != tt.root {
				t.Errorf("Root() = %d, want %d", tr.Root(), tt.root)
			}
			if !slices.Equal(tr.Orphans, tt.orphans) {
				t.Errorf("Orphans = %v, want %v", tr.Orphans, tt.orphans)
			}
			if !slices.Equal(tr.CycleBreaks, tt.cycleBreaks) {
				t.Errorf("CycleBreaks = %v, want %v", tr.CycleBreaks, tt.cycleBreaks)
			}
			if !slices.Equal(tr.Duplicates, tt.duplicates) {
				t.Errorf("Duplicates = %v, want %v", tr.Duplicates, tt.duplicates)
			}
			var skew []int
			for _, s := range tr.Skewed {
				skew = append(skew, s.Span)
			}
			if !slices.Equal(skew, tt.skew) {
				t.Errorf("Skewed = %v, want %v", skew, tt.skew)
			}
			checkInvariants(t, tr)
		})
	}
}

// checkInvariants verifies what must hold for any input: every node is
// reached once from the roots, children lie within their parents, self
// times add up to each root's duration, and every root's critical path
// covers it exactly. (Self times add up to a root's duration only when
// no siblings overlap, so that is not checked.)
func checkInvariants(t *testing.T, tr *Tree) {
	t.Helper()
	n := tr.Len()
	seen := make([]bool, n)
	for _, i := range tr.Order() {
		if seen[i] {
			t.Fatalf("span %d reached twice", i)
		}
		seen[i] = true
	}
	for i := range n {
		if tr.InTree(i) != seen[i] {
			t.Fatalf("span %d: InTree %v, reached %v", i, tr.InTree(i), seen[i])
		}
		if p := tr.Parent(i); p >= 0 {
			ps, pe := tr.Interval(p)
			s, e := tr.Interval(i)
			if s < ps || e > pe || e < s {
				t.Fatalf("span %d [%d,%d] outside parent %d [%d,%d]", i, s, e, p, ps, pe)
			}
		}
		if s, e := tr.Interval(i); tr.SelfTime(i) > time.Duration(e-s) {
			t.Fatalf("span %d: self time %v over its duration %v", i, tr.SelfTime(i), time.Duration(e-s))
		}
	}
	for _, r := range tr.Roots() {
		s, e := tr.Interval(int(r))
		segs := tr.CriticalPathOf(int(r))
		var ps time.Duration
		last := s
		for _, sg := range segs {
			if sg.Start < last || sg.End < sg.Start {
				t.Fatalf("root %d: critical path segments out of order: %+v", r, segs)
			}
			last = sg.End
			ps += sg.Self
		}
		if ps != time.Duration(e-s) {
			t.Fatalf("root %d: critical path adds up to %v, root lasts %v", r, ps, time.Duration(e-s))
		}
	}
}

func TestMillionSpans(t *testing.T) {
	if testing.Short() {
		t.Skip("a million spans")
	}
	for _, shape := range []string{"wide", "deep", "random"} {
		t.Run(shape, func(t *testing.T) {
			spans := genTrace(shape, 1_000_000, 1)
			start := time.Now()
			tr := NewTree(spans)
			built := time.Since(start)
			segs := tr.CriticalPath()
			took := time.Since(start)
			t.Logf("%s: 1M spans: tree %v, tree+critical path %v (%d segments)", shape, built, took, len(segs))
			if took > 20*time.Second {
				t.Errorf("tree and critical path of 1M spans took %v, budget 20s", took)
			}
			mustSum(t, tr, segs, tr.Root())
			start = time.Now()
			cohort := []*Tree{}
			for i := range 5 {
				cohort = append(cohort, NewTree(genTrace(shape, 1000, uint64(10+i))))
			}
			e := Explain(tr, cohort, ExplainOptions{})
			t.Logf("%s: 1M spans: Explain against 5 traces %v (%d findings)", shape, time.Since(start), len(e.Findings))
			if d := time.Since(start); d > 60*time.Second {
				t.Errorf("Explain of 1M spans took %v, budget 60s", d)
			}
		})
	}
}
