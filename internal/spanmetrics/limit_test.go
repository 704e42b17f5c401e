package spanmetrics

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/clew-dev/clew/internal/span"
)

func openReg(t *testing.T, cfg Config, c *clock) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := Open(cfg, Options{Now: c.now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, reg
}

// labelValues returns the distinct values of label on family name.
func labelValues(t *testing.T, reg *prometheus.Registry, name, label string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.Metric {
			for _, l := range mt.Label {
				if l.GetName() == label {
					out[l.GetValue()] += mt.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func TestCardinalityOverflow(t *testing.T) {
	cases := []struct {
		name       string
		cfg        func(*Config)
		spans      func(i int) sp
		n          int
		label      string
		wantValues int // distinct values of label, __other__ included
		wantOther  float64
		overflowOn string
	}{
		{
			name:  "span names",
			cfg:   func(c *Config) { c.MaxValuesPerDimension = 3 },
			spans: func(i int) sp { return sp{svc: "a", name: fmt.Sprint("op-", i)} },
			n:     10, label: "span_name", wantValues: 4, wantOther: 7, overflowOn: "span_name",
		},
		{
			name: "hostile dimension values",
			cfg:  func(c *Config) { c.MaxValuesPerDimension = 5; c.Dimensions = []string{"user.id"} },
			spans: func(i int) sp {
				return sp{svc: "a", name: "op", attrs: []span.Attr{str("user.id", strings.Repeat("x", i%50)+fmt.Sprint(i))}}
			},
			n: 1000, label: "user_id", wantValues: 6, wantOther: 995, overflowOn: "user.id",
		},
		{
			name:  "services",
			cfg:   func(c *Config) { c.MaxValuesPerDimension = 2 },
			spans: func(i int) sp { return sp{svc: fmt.Sprint("svc-", i), name: "op"} },
			n:     5, label: "service", wantValues: 3, wantOther: 3, overflowOn: "service",
		},
		{
			name:  "series limit",
			cfg:   func(c *Config) { c.MaxSeries = 4 },
			spans: func(i int) sp { return sp{svc: "a", name: fmt.Sprint("op-", i)} },
			n:     10, label: "span_name", wantValues: 5, wantOther: 6, overflowOn: "series",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.cfg(&cfg)
			clk := &clock{t: t0}
			m, reg := openReg(t, cfg, clk)
			for range 3 { // repeated: steady state must not grow
				bb := newBuilder()
				for i := range c.n {
					s := c.spans(i)
					s.kind, s.trace, s.id, s.start, s.dur = span.KindInternal, i+1, i+1, t0, time.Millisecond
					bb.add(s)
				}
				m.Observe(bb.batch())
			}
			vals := labelValues(t, reg, "traces_spanmetrics_calls_total", c.label)
			if len(vals) != c.wantValues || vals[Other] != 3*c.wantOther {
				t.Errorf("%s values = %v, want %d values with %s = %v", c.label, vals, c.wantValues, Other, 3*c.wantOther)
			}
			var total float64
			for _, v := range vals {
				total += v
			}
			if total != float64(3*c.n) {
				t.Errorf("calls total %v, want %d: folding must not lose spans", total, 3*c.n)
			}
			if got := counterValue(t, m.m.overflow.WithLabelValues(c.overflowOn)); got == 0 {
				t.Errorf("clew_spanmetrics_overflow_total{dimension=%q} = 0", c.overflowOn)
			}
			m.mu.Lock()
			n := m.nEntries
			m.mu.Unlock()
			if n > cfg.MaxSeries+1 {
				t.Errorf("%d entries, limit %d", n, cfg.MaxSeries)
			}
		})
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetCounter().GetValue()
}

// TestStaleEvictionFreesValues checks that values of series gone stale
// leave their dimension, so new values are admitted again.
func TestStaleEvictionFreesValues(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxValuesPerDimension = 2
	clk := &clock{t: t0}
	m, reg := openReg(t, cfg, clk)
	obs := func(names ...string) {
		bb := newBuilder()
		for i, n := range names {
			bb.add(sp{svc: "a", name: n, kind: span.KindServer, trace: 1, id: i + 1, start: clk.now(), dur: time.Millisecond})
		}
		m.Observe(bb.batch())
	}
	obs("x", "y", "z")
	if v := labelValues(t, reg, "traces_spanmetrics_calls_total", "span_name"); v[Other] != 1 {
		t.Fatalf("before eviction: %v", v)
	}
	clk.add(staleAfter + time.Minute)
	m.Tick(clk.now())
	obs("z")
	if v := labelValues(t, reg, "traces_spanmetrics_calls_total", "span_name"); v["z"] != 1 || len(v) != 1 {
		t.Fatalf("after eviction: %v, want only z", v)
	}
	// The history keeps what the exposition dropped.
	s, err := m.Range(context.Background(), nil, t0, clk.now().Add(time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 4 { // x, y, __other__ (z), z
		t.Fatalf("history series = %d, want 4: %+v", len(s), s)
	}
}

// TestExposition checks the names, labels and exemplars Grafana reads, in
// the OpenMetrics text format.
func TestExposition(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dimensions = []string{"http.route"}
	clk := &clock{t: t0}
	m, reg := openReg(t, cfg, clk)
	m.Observe(newBuilder().add(
		sp{svc: "front", version: "1.0", name: "GET /a", kind: span.KindServer, trace: 1, id: 1, start: t0, dur: 30 * time.Millisecond, attrs: []span.Attr{str("http.route", "/a")}},
		sp{svc: "front", version: "2.0", name: "GET /a", kind: span.KindServer, trace: 2, id: 1, start: t0, dur: 10 * time.Millisecond, attrs: []span.Attr{str("http.route", "/a")}},
		sp{svc: "front", name: "call", kind: span.KindClient, trace: 1, id: 2, parent: 1, start: t0, dur: 20 * time.Millisecond},
		sp{svc: "back", name: "handle", kind: span.KindServer, trace: 1, id: 3, parent: 2, start: t0, dur: 15 * time.Millisecond, err: true},
		sp{svc: "back", name: "SELECT", kind: span.KindClient, trace: 1, id: 4, parent: 3, start: t0, dur: 5 * time.Millisecond, attrs: []span.Attr{str("db.system.name", "postgresql")}},
	).batch())
	clk.add(time.Minute)
	m.Observe(newBuilder().add(sp{svc: "lonely", name: "call", kind: span.KindClient, trace: 7, id: 1, start: t0, dur: time.Millisecond}).batch())
	clk.add(time.Minute)
	m.Tick(clk.now())

	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}).ServeHTTP(rec, req)
	out := rec.Body.String()
	var keep []string
	for _, l := range strings.SplitAfter(out, "\n") {
		if strings.Contains(l, "traces_") {
			keep = append(keep, l)
		}
	}
	golden(t, "exposition.golden", []byte(strings.Join(keep, "")))
}

// TestOnSeriesOverflow checks that every span folded by MaxSeries is told
// to Options.OnSeriesOverflow, as many as the overflow counter counts.
func TestOnSeriesOverflow(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxSeries = 4
	var told atomic.Int64
	m, err := Open(cfg, Options{Now: (&clock{t: t0}).now, Registerer: prometheus.NewRegistry(), OnSeriesOverflow: func(n int) { told.Add(int64(n)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	bb := newBuilder()
	for i := range 10 {
		bb.add(sp{svc: "a", name: fmt.Sprint("op-", i), kind: span.KindInternal, trace: i + 1, id: i + 1, start: t0, dur: time.Millisecond})
	}
	m.Observe(bb.batch())
	want := counterValue(t, m.m.overflow.WithLabelValues("series"))
	if want == 0 || float64(told.Load()) != want {
		t.Errorf("told %d spans, the overflow counter says %v", told.Load(), want)
	}
}
