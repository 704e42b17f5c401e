package detect

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/testutil"
)

var badRes = &span.Resource{Attrs: []span.Attr{testutil.Str("service.name", "svc")}}

func badSpan(id, parent byte, name string, kind span.Kind, start, end uint64) span.Span {
	s := span.Span{TraceID: testutil.TID(1), SpanID: testutil.SID(id), Name: name, Kind: kind, StartUnixNano: start, EndUnixNano: end, Resource: badRes}
	if parent != 0 {
		s.ParentSpanID = testutil.SID(parent)
	}
	return s
}

// TestProfileBadTraces: cycles, missing parents, duplicate IDs, clock skew
// and no resource must not crash the attribution, and the self times it
// gives stay finite and non-negative.
func TestProfileBadTraces(t *testing.T) {
	cases := map[string][]span.Span{
		"cycle":       {badSpan(1, 2, "a", span.KindServer, 0, 100), badSpan(2, 1, "b", span.KindClient, 10, 90)},
		"self parent": {badSpan(1, 1, "a", span.KindServer, 0, 100)},
		"missing parent": {badSpan(1, 0, "root", span.KindServer, 0, 100), badSpan(2, 9, "orphan", span.KindServer, 10, 50),
			badSpan(3, 2, "q", span.KindClient, 20, 30)},
		"duplicate ids":    {badSpan(1, 0, "a", span.KindServer, 0, 100), badSpan(1, 0, "a2", span.KindServer, 5, 60), badSpan(2, 1, "c", span.KindClient, 10, 20)},
		"skew":             {badSpan(1, 0, "a", span.KindServer, 100, 200), badSpan(2, 1, "c", span.KindClient, 0, 1000)},
		"end before start": {badSpan(1, 0, "a", span.KindServer, 500, 100)},
		"no resource": {{TraceID: testutil.TID(1), SpanID: testutil.SID(1), Name: "x", Kind: span.KindClient, StartUnixNano: 1, EndUnixNano: 5},
			{TraceID: testutil.TID(1), SpanID: testutil.SID(2), ParentSpanID: testutil.SID(1), Name: "y", Kind: span.KindInternal, StartUnixNano: 2, EndUnixNano: 3, StatusCode: span.StatusError}},
		"empty": {},
	}
	for name, spans := range cases {
		t.Run(name, func(t *testing.T) {
			p := profileTrace(analysis.NewTree(spans))
			for u, v := range p.self {
				if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					t.Errorf("self time of %v = %v", u, v)
				}
			}
		})
	}
}

// hugeTraces serves one trace of n spans (a chain) for any search; the
// Reader methods sampleTraces does not call are left nil.
type hugeTraces struct {
	storage.Reader
	n int
}

func (h hugeTraces) Search(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	return storage.SearchResult{Hits: []storage.Hit{{TraceID: testutil.TID(7)}}, Total: 1}, nil
}

func (h hugeTraces) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	b := &span.Batch{Resources: []*span.Resource{badRes}, Spans: make([]span.Span, h.n)}
	for i := range b.Spans {
		s := &b.Spans[i]
		s.TraceID = id
		s.SpanID = span.SpanID{0, 1, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		if i > 0 {
			s.ParentSpanID = b.Spans[i-1].SpanID
		}
		s.Name, s.Kind, s.Resource = "op", span.KindServer, badRes
		s.StartUnixNano, s.EndUnixNano = uint64(i), uint64(2*h.n-i)
	}
	return b, true, nil
}

// TestHugeTrace: a trace of a million spans is cut for the ranking, which
// says so, and does not stall.
func TestHugeTrace(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	d := New(Config{}, nil, hugeTraces{n: n}, Options{})
	start := time.Now()
	ps, notes, err := d.sampleTraces(context.Background(), opKey{"svc", "op", span.KindServer}, time.Unix(0, 0), time.Unix(100, 0), 5, map[span.TraceID]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || len(notes) != 1 || !strings.Contains(notes[0], "first 20000") {
		t.Errorf("got %d profiles and notes %q, want one profile and a note that the trace was cut", len(ps), notes)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %s", el)
	}
}

// junkHistory answers Range with malformed series.
type junkHistory struct{ now time.Time }

func (j junkHistory) Range(ctx context.Context, match func(spanmetrics.Key) bool, start, end time.Time, step time.Duration) ([]spanmetrics.Series, error) {
	k := spanmetrics.Key{Service: "s", Operation: "o", Kind: span.KindServer}
	var out []spanmetrics.Series
	for m := start; m.Before(end); m = m.Add(step) {
		out = append(out, spanmetrics.Series{Key: k, Buckets: []spanmetrics.Bucket{
			{Start: m, Calls: 10, Errors: 50, Hist: []uint64{1, 2}},                          // short histogram, more errors than calls
			{Start: m.Add(-time.Hour), Calls: math.MaxUint64 / 4, Hist: make([]uint64, 100)}, // out of order, huge, too long
			{Start: m, Calls: 0, Hist: nil},
		}})
	}
	return out, nil
}

func (j junkHistory) Edges(ctx context.Context, start, end time.Time, step time.Duration) ([]spanmetrics.EdgeSeries, error) {
	return []spanmetrics.EdgeSeries{{Key: spanmetrics.EdgeKey{Client: "s", Server: "s"}, Buckets: []spanmetrics.Bucket{{Start: start}}}}, nil
}

// TestJunkHistory: malformed history must not crash an evaluation.
func TestJunkHistory(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	d := New(Config{}, junkHistory{now}, nil, Options{Now: func() time.Time { return now }})
	for range 3 {
		if err := d.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	_ = d.Anomalies(t0, now)
	_ = d.Baselines()
}

// TestStartClose: the loop starts and stops; Close without Start, and twice,
// is fine.
func TestStartClose(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	d := New(Config{Interval: time.Second}, junkHistory{now}, nil, Options{Now: func() time.Time { return now }})
	d.Start()
	time.Sleep(1500 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		_ = d.Close()
		_ = d.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if d.Status().EvaluatedAt == nil {
		t.Error("the loop never evaluated")
	}
	New(Config{}, junkHistory{now}, nil, Options{}).Close()
}

// sparseHistory is one service with n operations, each called once an
// hour (at its own minute), the same latency each time, and another
// service called once an hour.
type sparseHistory struct {
	n        int
	slowFrom time.Time // from then on, "wide" answers in 80ms
}

func (h sparseHistory) Range(ctx context.Context, match func(spanmetrics.Key) bool, start, end time.Time, step time.Duration) ([]spanmetrics.Series, error) {
	var out []spanmetrics.Series
	one := func(k spanmetrics.Key, phase int64) {
		s := spanmetrics.Series{Key: k}
		for m := unixMinute(start); m < unixMinute(end); m++ {
			if (m+phase)%60 != 0 {
				continue
			}
			d := 12 * time.Millisecond
			if k.Service == "wide" && !h.slowFrom.IsZero() && !minuteTime(m).Before(h.slowFrom) {
				d = 80 * time.Millisecond
			}
			hist := newHist()
			hist[bucketOf(d)] = 1
			s.Buckets = append(s.Buckets, spanmetrics.Bucket{Start: minuteTime(m), Calls: 1, DurationSum: d, Hist: hist})
		}
		if len(s.Buckets) > 0 {
			out = append(out, s)
		}
	}
	for i := range h.n {
		one(spanmetrics.Key{Service: "wide", Operation: fmt.Sprintf("op%d", i), Kind: span.KindServer}, int64(i))
	}
	one(spanmetrics.Key{Service: "rare", Operation: "GET /", Kind: span.KindServer}, 7)
	return out, nil
}

func (sparseHistory) Edges(ctx context.Context, start, end time.Time, step time.Duration) ([]spanmetrics.EdgeSeries, error) {
	return nil, nil
}

// TestSparseQuiet: thousands of operations called once an hour each (the
// pooled service then sees about fifty calls a minute), a service called
// once an hour, and a clock that jumps back two hours and forward again,
// raise nothing and keep the state bounded.
func TestSparseQuiet(t *testing.T) {
	clk := &fakeClock{t: t0.Add(3 * time.Hour)}
	d := New(Config{}, sparseHistory{n: 3000}, nil, Options{Now: clk.now})
	at := clk.now()
	for i := range 40 {
		switch i {
		case 20:
			clk.set(at.Add(-2 * time.Hour))
		case 30:
			clk.set(at.Add(time.Minute))
		default:
			clk.set(clk.now().Add(15 * time.Second))
		}
		if err := d.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if as := d.Anomalies(t0, at.Add(time.Hour)); len(as) != 0 {
		t.Errorf("%d anomalies on steady sparse traffic, first: %s", len(as), as[0].Summary)
	}
	if n := len(d.symptoms); n > 10 {
		t.Errorf("%d symptoms tracked on steady sparse traffic", n)
	}
}

// TestSparsePooled: a service slower on every one of its operations, each
// called once an hour, is found through their sum.
func TestSparsePooled(t *testing.T) {
	clk := &fakeClock{t: t0.Add(3 * time.Hour)}
	d := New(Config{}, sparseHistory{n: 3000, slowFrom: t0.Add(3 * time.Hour)}, nil, Options{Now: clk.now})
	for range 16 {
		clk.set(clk.now().Add(15 * time.Second))
		if err := d.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	as := d.Anomalies(t0, clk.now())
	if len(as) != 1 || as[0].Operations[0].Service != "wide" || as[0].Operations[0].Operation != PooledOperation {
		t.Fatalf("want one anomaly of wide %s, got %+v", PooledOperation, as)
	}
}
