package spanmetrics

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// workload observes, at one batch per simulated minute, minutes of
// front→back traffic starting at t0 (some errors), advancing clk.
func workload(m *Metrics, clk *clock, minutes int) {
	for i := range minutes {
		at := t0.Add(time.Duration(i) * time.Minute)
		clk.set(at.Add(30 * time.Second))
		bb := newBuilder()
		for j := range 5 {
			tr := i*10 + j + 1
			bb.add(
				sp{svc: "front", version: "1.0", name: "GET /", kind: span.KindServer, trace: tr, id: 1, start: at, dur: time.Duration(j+1) * 10 * time.Millisecond, err: j == 4},
				sp{svc: "front", version: "1.0", name: "call", kind: span.KindClient, trace: tr, id: 2, parent: 1, start: at, dur: 8 * time.Millisecond},
				sp{svc: "back", name: "handle", kind: span.KindServer, trace: tr, id: 3, parent: 2, start: at, dur: 5 * time.Millisecond},
			)
		}
		m.Observe(bb.batch())
		m.Tick(clk.now())
	}
}

func rangeAll(t *testing.T, m *Metrics, step time.Duration) ([]Series, []EdgeSeries) {
	t.Helper()
	s, err := m.Range(context.Background(), nil, t0.Add(-time.Hour), t0.Add(5*time.Hour), step)
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.Edges(context.Background(), t0.Add(-time.Hour), t0.Add(5*time.Hour), step)
	if err != nil {
		t.Fatal(err)
	}
	return s, e
}

func totalCalls(s []Series) (calls, errs uint64) {
	for _, x := range s {
		for _, b := range x.Buckets {
			calls += b.Calls
			errs += b.Errors
		}
	}
	return
}

// TestHistoryRestart writes 90 minutes, restarts on the same directory and
// expects the same answers; then the hours are compacted (one frame per
// hour) and the answers still do not change.
func TestHistoryRestart(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	m, err := Open(DefaultConfig(), Options{Dir: dir, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	workload(m, clk, 90)
	beforeS, beforeE := rangeAll(t, m, time.Minute)
	if c, e := totalCalls(beforeS); c != 90*15 || e != 90 {
		t.Fatalf("calls %d errors %d, want %d and 90", c, e, 90*15)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m2 := open(t, DefaultConfig(), dir, clk)
	afterS, afterE := rangeAll(t, m2, time.Minute)
	if !reflect.DeepEqual(beforeS, afterS) || !reflect.DeepEqual(beforeE, afterE) {
		t.Fatalf("history differs after restart")
	}
	// Compaction: both hours are over once the clock is past 11:35.
	clk.set(t0.Add(2*time.Hour + 10*time.Minute))
	m2.Tick(clk.now())
	for _, h := range []int64{t0.Unix() / 3600, t0.Unix()/3600 + 1} {
		if f := m2.disk.hours[h].frames; f != 1 {
			t.Fatalf("hour %s has %d frames after compaction", hourFile(h), f)
		}
	}
	compS, compE := rangeAll(t, m2, time.Minute)
	// Compaction keeps at most two exemplars per bucket, as every frame
	// does; everything else is equal.
	if !reflect.DeepEqual(beforeS, compS) || !reflect.DeepEqual(beforeE, compE) {
		t.Fatalf("history differs after compaction")
	}
	// Hourly steps sum the minutes.
	hs, _ := rangeAll(t, m2, time.Hour)
	if c, _ := totalCalls(hs); c != 90*15 {
		t.Fatalf("hourly calls %d", c)
	}
	if hs[0].Buckets[0].Start != t0 || len(hs[0].Buckets) != 2 {
		t.Fatalf("hourly buckets %+v", hs[0].Buckets)
	}
}

// TestHistoryTornTail cuts the last file in the middle of its last frame,
// as a crash during an append would, and adds garbage to another: start
// keeps every whole frame and loses only the torn one.
func TestHistoryTornTail(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(b []byte) []byte
		lost    uint64 // calls lost
	}{
		{"torn last frame", func(b []byte) []byte { return b[:len(b)-7] }, 15},
		{"garbage appended", func(b []byte) []byte { return append(b, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5) }, 0},
		{"bad checksum in last frame", func(b []byte) []byte { b[len(b)-3] ^= 0xff; return b }, 15},
		{"only a header", func(b []byte) []byte { return b[:len(fileMagic)] }, 15 * 30},
		{"bad header", func(b []byte) []byte { b[0] = 'X'; return b }, 15 * 30},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			clk := &clock{t: t0}
			m, err := Open(DefaultConfig(), Options{Dir: dir, Now: clk.now})
			if err != nil {
				t.Fatal(err)
			}
			workload(m, clk, 90) // 10:00–11:29, the second hour's file has 30 frames
			m.Close()
			path := filepath.Join(dir, hourFile(t0.Unix()/3600+1))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, c.corrupt(b), 0o644); err != nil {
				t.Fatal(err)
			}
			m2 := open(t, DefaultConfig(), dir, clk)
			s, _ := rangeAll(t, m2, time.Hour)
			if calls, _ := totalCalls(s); calls != 90*15-c.lost {
				t.Fatalf("calls after repair %d, want %d", calls, 90*15-c.lost)
			}
			// New minutes append after the repaired tail.
			clk.set(t0.Add(95 * time.Minute))
			m2.Observe(newBuilder().add(sp{svc: "front", name: "GET /", kind: span.KindServer, trace: 999, id: 1, start: clk.now(), dur: time.Millisecond}).batch())
			m2.Close()
			m3 := open(t, DefaultConfig(), dir, clk)
			s, _ = rangeAll(t, m3, time.Hour)
			if calls, _ := totalCalls(s); calls != 90*15-c.lost+1 {
				t.Fatalf("calls after more writes %d, want %d", calls, 90*15-c.lost+1)
			}
		})
	}
}

func TestHistoryRetention(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: t0}
	m, err := Open(DefaultConfig(), Options{Dir: dir, Now: clk.now, Retention: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	workload(m, clk, 90)
	clk.set(t0.Add(3*time.Hour + 10*time.Minute)) // hour 10 ended 2h10m ago, hour 11 1h10m ago
	m.Tick(clk.now())
	s, _ := rangeAll(t, m, time.Hour)
	if calls, _ := totalCalls(s); calls != 30*15 {
		t.Fatalf("calls after retention %d, want the second hour's %d", calls, 30*15)
	}
	if _, err := os.Stat(filepath.Join(dir, hourFile(t0.Unix()/3600))); !os.IsNotExist(err) {
		t.Fatalf("expired hour still on disk: %v", err)
	}
}

// TestLateSpans files late spans under their own minute, in memory and
// then on disk, and spans from the far past under their arrival minute.
func TestLateSpans(t *testing.T) {
	clk := &clock{t: t0.Add(10 * time.Minute)}
	m := open(t, DefaultConfig(), t.TempDir(), clk)
	m.Observe(newBuilder().add(
		sp{svc: "a", name: "x", kind: span.KindServer, trace: 1, id: 1, start: t0.Add(2 * time.Minute), dur: time.Millisecond},
		sp{svc: "a", name: "x", kind: span.KindServer, trace: 2, id: 1, start: t0.Add(-400 * 24 * time.Hour), dur: time.Millisecond},
	).batch())
	check := func(when string) {
		s, err := m.Range(context.Background(), nil, t0, t0.Add(time.Hour), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 1 || len(s[0].Buckets) != 2 || !s[0].Buckets[0].Start.Equal(t0.Add(2*time.Minute)) || !s[0].Buckets[1].Start.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("%s: %+v", when, s)
		}
	}
	check("in memory")
	clk.add(time.Minute)
	m.Tick(clk.now())
	check("after the first flush")
	clk.add(time.Minute)
	m.Tick(clk.now())
	check("on disk")
}

func TestRangeArgs(t *testing.T) {
	clk := &clock{t: t0}
	m := open(t, DefaultConfig(), "", clk)
	for _, step := range []time.Duration{0, -time.Minute, 30 * time.Second, 90 * time.Second} {
		if _, err := m.Range(context.Background(), nil, t0, t0.Add(time.Hour), step); err == nil {
			t.Errorf("Range step %s: no error", step)
		}
		if _, err := m.Edges(context.Background(), t0, t0.Add(time.Hour), step); err == nil {
			t.Errorf("Edges step %s: no error", step)
		}
	}
	if s, err := m.Range(context.Background(), nil, t0.Add(time.Hour), t0, time.Minute); err != nil || len(s) != 0 {
		t.Errorf("end before start: %v %v", s, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	workload(m, clk, 3)
	if _, err := m.Range(ctx, nil, t0, t0.Add(time.Hour), time.Minute); err == nil {
		t.Errorf("cancelled Range: no error")
	}
}

func TestQuantile(t *testing.T) {
	h := make([]uint64, numBuckets)
	if q := Quantile(h, 0.5); q != 0 {
		t.Fatalf("empty: %s", q)
	}
	i := bucketIndex(10 * time.Millisecond)
	h[i] = 100
	lo, hi := LatencyBounds[i-1], LatencyBounds[i]
	if q := Quantile(h, 0.5); q <= lo || q > hi {
		t.Fatalf("p50 %s outside (%s, %s]", q, lo, hi)
	}
	h[numBuckets-1] = 1000
	if q := Quantile(h, 0.99); q != LatencyBounds[len(LatencyBounds)-1] {
		t.Fatalf("overflow p99 %s", q)
	}
	if len(LatencyBounds) != numBuckets-1 || LatencyBounds[0] != 100*time.Microsecond || LatencyBounds[2] != 200*time.Microsecond {
		t.Fatalf("bounds %v", LatencyBounds)
	}
}
