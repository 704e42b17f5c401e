package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/traceql"
)

// TestMetricsLimits checks the bounds of metrics queries on both paths:
// MaxSpans cuts a span-column scan, MaxSeries drops further series, and
// MaxCandidates bounds the queries that load traces.
func TestMetricsLimits(t *testing.T) {
	db := openStore(t, fixture())
	ctx := context.Background()
	run := func(cfg Config, q string) *MetricsResult {
		t.Helper()
		res, err := New(db, cfg).Metrics(ctx, MetricsRequest{Query: mustParse(t, q), Start: base, End: base + 4e9, Step: 1e9})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := run(Config{}, `{ } | count_over_time()`)
	if res.InspectedSpans != 10 || res.Inspected != 0 || res.SpansLimited || res.Truncated {
		t.Errorf("span scan: %+v", res)
	}
	res = run(Config{MaxSpans: 3}, `{ } | count_over_time()`)
	if !res.SpansLimited || res.InspectedSpans != 3 {
		t.Errorf("MaxSpans 3: limited=%v inspected spans %d", res.SpansLimited, res.InspectedSpans)
	}
	total := 0.0
	for _, s := range res.Series[0].Samples {
		total += s.Value
	}
	if total != 3 {
		t.Errorf("MaxSpans 3 counted %v spans", total)
	}
	res = run(Config{MaxSeries: 2}, `{ } | count_over_time() by (resource.service.name)`)
	if !res.SeriesLimited || len(res.Series) != 2 {
		t.Errorf("MaxSeries 2: limited=%v, %d series", res.SeriesLimited, len(res.Series))
	}
	res = run(Config{MaxSeries: 2}, `{ } | count_over_time() by (name)`)
	if !res.SeriesLimited || len(res.Series) != 2 {
		t.Errorf("MaxSeries 2 by name: limited=%v, %d series", res.SeriesLimited, len(res.Series))
	}
	// A structural query loads traces: MaxCandidates applies, MaxSpans not.
	res = run(Config{MaxCandidates: 1, MaxSpans: 1}, `{ } >> { } | count_over_time()`)
	if !res.Truncated || res.SpansLimited || res.Inspected != 1 {
		t.Errorf("trace path: %+v", res)
	}
	if _, ok := mustCompile(t, `{ } >> { } | rate()`).spanLocal(); ok {
		t.Error("a structural query is span-local")
	}
}

func mustCompile(t *testing.T, q string) *program {
	t.Helper()
	p, err := compile(mustParse(t, q))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSpanLocal(t *testing.T) {
	for _, tc := range []struct {
		q     string
		local bool
		cols  string
	}{
		{`{ } | rate()`, true, `{false false false [] false false}`},
		{`{ span.a = 1 && .b = 2 } | rate() by (resource.service.name)`, true, `{false false false [a b] false false}`},
		{`{ statusMessage = "x" || event.e = 1 } | count_over_time() by (span:parentID)`, true, `{true true false [] true false}`},
		{`{ link:spanID = "x" } | quantile_over_time(span.d, .5)`, true, `{false false false [d] false true}`},
		{`{ .a = 1 } || { .b = 2 } | rate()`, true, `{false false false [a b] false false}`},
		{`({ .a = 1 } | { .b = 2 }) | rate()`, true, `{false false false [a b] false false}`},
		{`{ } | select(span.x) | rate()`, true, `{false false false [] false false}`},
		{`{ } | compare({ status = error })`, true, `{false false true [] false false}`},
		{`{ .a = 1 } && { .b = 2 } | rate()`, false, ``},
		{`{ parent.a = 1 } | rate()`, false, ``},
		{`{ span:childCount = 1 } | rate()`, false, ``},
		{`{ } | rate() by (trace:rootName)`, false, ``},
		{`{ } | count() > 1 | rate()`, false, ``},
		{`{ } | by(.a) | rate()`, false, ``},
		{`{ trace:id = "01" } | rate() by (span:id)`, true, `{false false false [] false false}`},
	} {
		q, err := traceql.Parse(tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		p, err := compile(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, ok := p.spanLocal()
		if ok != tc.local {
			t.Errorf("spanLocal(%s) = %v, want %v", tc.q, ok, tc.local)
			continue
		}
		if ok {
			if got := fmtCols(cols); got != tc.cols {
				t.Errorf("spanLocal(%s) columns %s, want %s", tc.q, got, tc.cols)
			}
		}
	}
}

func fmtCols(c storage.Columns) string { return fmt.Sprint(c) }
