package engine

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

func mustParse(t *testing.T, q string) *traceql.Query {
	t.Helper()
	pq, err := traceql.Parse(q)
	if err != nil {
		t.Fatalf("Parse(%q): %v", q, err)
	}
	return pq
}

// traceNums renders the result's trace IDs as their last byte: "4,3,1".
func traceNums(res *SearchResult) string {
	var out []string
	for _, tr := range res.Traces {
		out = append(out, fmt.Sprint(tr.TraceID[15]))
	}
	return strings.Join(out, ",")
}

func TestSearch(t *testing.T) {
	e := New(openStore(t, fixture()), Config{})
	cases := []struct {
		name, q, want string
	}{
		// Filters and typed comparisons.
		{"all", `{ }`, "4,3,2,1"},
		{"resource", `{ resource.service.name = "frontend" }`, "3,2,1"},
		{"int", `{ span.http.status_code = 500 }`, "1"},
		{"int_vs_string", `{ span.http.status_code = "500" }`, ""},
		{"string_vs_string", `{ .str_num = "500" }`, "1"},
		{"string_vs_int", `{ .str_num = 500 }`, ""},
		{"ne_present_only", `{ span.http.status_code != 200 }`, "1"},
		{"ne_missing", `{ span.nope != 1 }`, ""},
		{"nil", `{ span.http.method = nil && kind = server }`, "3"},
		{"not_nil", `{ span.db.system != nil }`, "3,1"},
		{"regex_anchored", `{ span.http.method =~ "PO" }`, ""},
		{"regex", `{ span.http.method =~ "PO.*" }`, "1"},
		{"not_regex", `{ name !~ "GET.*" && kind = server }`, "3,1"},
		{"status", `{ status = error }`, "1"},
		{"status_ne", `{ status != unset && kind = server }`, "3,1"},
		{"kind", `{ kind = consumer }`, "4"},
		{"duration", `{ duration >= 30ms && resource.service.name = "db" }`, "3"},
		{"double", `{ span.amount > 12 }`, "1"},
		{"arith_mul", `{ span.amount * 2 = 25 }`, "1"},
		{"arith_div", `{ span.http.status_code / 100 = 5 }`, "1"},
		{"arith_mod", `{ span.http.status_code % 7 = 3 }`, "1"},
		{"arith_duration", `{ duration - 10ms > 50ms }`, "3,1"},
		{"array", `{ span.tags = "b" }`, "1"},
		{"event_attr", `{ event.exception.type = "CardDeclined" }`, "1"},
		{"event_name", `{ event:name = "exception" }`, "1"},
		{"or_in_filter", `{ name = "late" || span.amount > 1 }`, "4,1"},
		{"not", `{ !(resource.service.name = "frontend") && kind = server }`, "3"},
		{"bool_attr_missing", `{ span.flag }`, ""},
		{"intrinsic_trace", `{ trace:rootService = "frontend" && name = "db.query" }`, "3,1"},
		{"root_name", `{ rootName = "GET /health" }`, "2"},
		{"trace_duration", `{ traceDuration > 90ms }`, "1"},
		{"child_count", `{ span:childCount = 2 }`, "3,1"},
		{"parent_attr", `{ parent.resource.service.name = "payment" }`, "1"},
		{"nested_root", `{ nestedSetParent < 0 }`, "3,2,1"},
		{"span_id", `{ span:id = "0000000000000003" }`, "1"},
		{"instrumentation", `{ instrumentation:name = "io.clew.test" && kind = consumer }`, "4"},
		// Spanset operators.
		{"and", `{ span.db.system = "postgres" } && { status = error }`, "1"},
		{"or", `{ span.db.system = "mysql" } || { name = "late" }`, "4,3"},
		{"child", `{ resource.service.name = "frontend" } > { resource.service.name = "payment" }`, "1"},
		{"child_direct_only", `{ resource.service.name = "frontend" } > { name = "db.query" }`, ""},
		{"descendant", `{ resource.service.name = "frontend" } >> { name = "db.query" }`, "3,1"},
		{"parent", `{ name = "db.query" } < { kind = server }`, "3"},
		{"ancestor", `{ name = "db.query" } << { nestedSetParent = -1 }`, "3,1"},
		{"sibling", `{ name = "db.query" } ~ { name = "db.query" }`, "3"},
		{"sibling_other", `{ name = "charge" } ~ { name = "cart.get" }`, "1"},
		{"not_child", `{ kind = server } !> { name = "db.query" }`, "1"},
		{"not_desc", `{ resource.service.name = "orders" } !>> { name = "db.query" }`, "1"},
		{"not_parent", `{ } !< { kind = server }`, "2"},
		{"not_ancestor", `{ name = "db.query" } !<< { kind = server }`, "2"},
		{"not_sibling", `{ } !~ { name = "db.query" }`, "1"},
		{"union_child", `{ name = "POST /checkout" } &> { name = "charge" }`, "1"},
		// Pipelines.
		{"count", `{ resource.service.name = "db" } | count() > 1`, "3"},
		{"count_eq", `{ } | count() = 4`, "3,1"},
		{"avg", `{ resource.service.name = "db" } | avg(duration) > 20ms`, "3"},
		{"sum", `{ name = "db.query" } | sum(duration) >= 50ms`, "3"},
		{"min_max", `{ } | max(duration) - min(duration) > 90ms`, "1"},
		{"by_count", `{ } | by(resource.service.name) | count() > 1`, "3"},
		{"pipeline_filter", `{ kind = server } | { span.http.status_code = 200 }`, "3,2"},
		{"sub_pipeline", `({ name = "db.query" } | count() > 1) && { kind = server }`, "3"},
		{"coalesce", `{ name = "db.query" } | by(span.db.system) | coalesce() | count() = 2`, "3"},
		{"select", `{ status = error } | select(span.http.method)`, "1"},
		{"scalar_first", `count() > 3`, "3,1"},
		// Hints.
		{"most_recent", `{ } with (most_recent=true)`, "4,3,2,1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.Search(context.Background(), SearchRequest{Query: mustParse(t, c.q)})
			if err != nil {
				t.Fatal(err)
			}
			if got := traceNums(res); got != c.want {
				t.Errorf("Search(%q) = %q, want %q", c.q, got, c.want)
			}
		})
	}
}

func TestSearchResultShape(t *testing.T) {
	e := New(openStore(t, fixture()), Config{})
	res, err := e.Search(context.Background(), SearchRequest{
		Query: mustParse(t, `{ name = "POST /checkout" } &> { name = "charge" } | select(span.payment.method)`), SpansPerSpanset: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Traces) != 1 {
		t.Fatalf("got %d traces, want 1", len(res.Traces))
	}
	tr := res.Traces[0]
	if tr.RootServiceName != "frontend" || tr.RootName != "POST /checkout" || !tr.HasRoot || tr.StartUnixNano != base || tr.DurationNanos != 100*ms {
		t.Errorf("summary = %+v", tr)
	}
	if len(tr.Spansets) != 1 || tr.Spansets[0].Matched != 2 || len(tr.Spansets[0].Spans) != 1 {
		t.Fatalf("spansets = %+v, want one with 2 matched and 1 returned", tr.Spansets)
	}
	if s := tr.Spansets[0].Spans[0]; s.Span.Name != "POST /checkout" {
		t.Errorf("first span = %q", s.Span.Name)
	}
	want := []ServiceStat{{"cart", 1, 0}, {"db", 1, 0}, {"frontend", 1, 1}, {"payment", 1, 1}}
	if !slices.Equal(tr.Services, want) {
		t.Errorf("services = %v, want %v", tr.Services, want)
	}

	// Selected attributes and by() labels.
	res, err = e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ status = error } | by(resource.service.name) | select(span.payment.method)`), Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	sets := res.Traces[0].Spansets
	if len(sets) != 2 {
		t.Fatalf("got %d spansets, want 2 (one per service)", len(sets))
	}
	if l := sets[1].Labels; len(l) != 1 || l[0].Key != "by(resource.service.name)" || l[0].Value.Str != "payment" {
		t.Errorf("labels = %+v", l)
	}
	attrs := sets[1].Spans[0].Attrs
	if len(attrs) != 2 || attrs[0].Key != "status" || attrs[0].Value.String() != "error" || attrs[1].Key != "payment.method" {
		t.Errorf("attrs = %+v, want status and payment.method", attrs)
	}

	// The orphan's root is the earliest span whose parent is missing.
	res, err = e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ kind = consumer }`)})
	if err != nil {
		t.Fatal(err)
	}
	if tr := res.Traces[0]; tr.HasRoot || tr.RootName != "late" || tr.RootServiceName != "batch" {
		t.Errorf("orphan summary = %+v", tr)
	}

	// Limits and time range.
	res, err = e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ }`), Limit: 2})
	if err != nil || traceNums(res) != "4,3" {
		t.Errorf("limit 2 = %q, %v", traceNums(res), err)
	}
	res, err = e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ }`), Start: base + 1e9, End: base + 2e9 + 50*ms})
	if err != nil || traceNums(res) != "3,2" {
		t.Errorf("time range = %q, %v", traceNums(res), err)
	}
	if _, err := e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ } | rate()`)}); err != ErrMetricsQuery {
		t.Errorf("metrics query in Search: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Search(ctx, SearchRequest{Query: mustParse(t, `{ }`)}); err == nil {
		t.Error("Search with a cancelled context succeeded")
	}
}

func TestMaxCandidates(t *testing.T) {
	e := New(openStore(t, fixture()), Config{MaxCandidates: 2})
	res, err := e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ name = "POST /checkout" }`)})
	if err != nil {
		t.Fatal(err)
	}
	// Pushdown narrows the candidates to trace 1 alone.
	if traceNums(res) != "1" || res.Truncated {
		t.Errorf("pushed-down search = %q truncated=%v", traceNums(res), res.Truncated)
	}
	res, err = e.Search(context.Background(), SearchRequest{Query: mustParse(t, `{ span.amount * 2 > 1 }`)})
	if err != nil {
		t.Fatal(err)
	}
	if traceNums(res) != "" || !res.Truncated || res.Inspected != 2 {
		t.Errorf("bounded search = %q truncated=%v inspected=%d", traceNums(res), res.Truncated, res.Inspected)
	}
}

func TestPlan(t *testing.T) {
	cases := []struct{ q, want string }{
		{`{ }`, "[{}]"},
		{`{ name = "a" && span.x = 1 }`, `[name=a span.x=1]`},
		{`{ name = "a" } && { resource.service.name = "s" && status = error }`, `[status=[error] resource.service.name=s]`},
		{`{ resource.service.name = "a" } >> { status = error }`, `[status=[error]]`},
		{`{ span.x = "v" } >> { status = error }`, `[span.x=v]`},
		{`{ name = "a" } || { name = "b" }`, `[name=a name=b]`},
		{`{ name = "a" } || { span.x = 1 }`, `[name=a span.x=1]`},
		{`{ name = "a" } || { span.x = nil }`, "[{}]"},
		{`{ name = "a" } !> { kind = server }`, `[kinds=[server]]`},
		{`{ } | { duration > 1s }`, `[min=1000000001]`},
		{`{ name = "a" } | rate()`, `[name=a]`},
		{`{ name = "a" && name = "b" }`, `[]`},
		{`{ name = "a" && name = "b" } || { kind = client }`, `[kinds=[client]]`},
		{`{ .a = 1 || .b =~ "x.*" } | count() > 1`, `[any.a=1 any.b=~x.*]`},
		{`({ span.x > 5 } | count() > 1) && { }`, `[span.x>5]`},
	}
	for _, c := range cases {
		qs := plan(mustParse(t, c.q))
		var parts []string
		for _, q := range qs {
			parts = append(parts, describeQuery(q))
		}
		if got := "[" + strings.Join(parts, " ") + "]"; got != c.want {
			t.Errorf("plan(%q) = %s, want %s", c.q, got, c.want)
		}
	}
}

// describeQuery renders a native search compactly.
func describeQuery(q search.Query) string {
	var f []string
	if q.SpanName != "" {
		f = append(f, "name="+q.SpanName)
	}
	if q.Service != "" {
		f = append(f, "service="+q.Service)
	}
	if len(q.Statuses) > 0 {
		f = append(f, fmt.Sprint("status=", q.Statuses))
	}
	if len(q.Kinds) > 0 {
		f = append(f, fmt.Sprint("kinds=", q.Kinds))
	}
	if q.MinDuration > 0 {
		f = append(f, fmt.Sprint("min=", q.MinDuration))
	}
	if q.MaxDuration > 0 {
		f = append(f, fmt.Sprint("max=", q.MaxDuration))
	}
	for _, c := range q.Conds {
		s := c.Scope.String() + "." + c.Key + c.Op.String()
		if c.Op != search.OpExists {
			s += c.Value.AsString()
		}
		f = append(f, s)
	}
	if len(f) == 0 {
		return "{}"
	}
	return strings.Join(f, " ")
}

// TestMatchSpanAgrees checks the engine's filter evaluation against
// search.MatchSpan, clew's reference semantics, wherever the two languages
// agree: the translations traceql reports exact, on every fixture span.
func TestMatchSpanAgrees(t *testing.T) {
	b := fixture()
	queries := []string{
		`{ resource.service.name = "db" }`, `{ name = "db.query" }`, `{ status = error }`, `{ status != error }`,
		`{ kind = server }`, `{ kind != client && kind != internal }`, `{ duration > 10ms }`, `{ duration <= 20ms }`,
		`{ duration >= 5ms && duration < 60ms && resource.service.name = "db" }`, `{ span.db.system != nil }`,
		`{ resource.service.version != nil }`, `{ event.exception.type != nil }`, `{ name = "charge" && status = error && kind = client }`,
	}
	byTrace := map[span.TraceID][]span.Span{}
	for _, s := range b.Spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
	}
	for _, src := range queries {
		q := mustParse(t, src)
		f := q.Filters()[0]
		tr := f.Conditions().SearchQuery()
		if !tr.Exact {
			t.Fatalf("%s: translation not exact: %+v", src, tr.Untranslated)
		}
		sq := tr.Query
		if err := sq.Compile(); err != nil {
			t.Fatal(err)
		}
		p, err := compile(q)
		if err != nil {
			t.Fatal(err)
		}
		for id, spans := range byTrace {
			tt := newTrace(id, spans)
			for i := range tt.spans {
				got := f.Expr == nil || truthy(p.eval(tt, i, f.Expr))
				if want := sq.MatchSpan(&tt.spans[i]); got != want {
					t.Errorf("%s on span %q: engine %v, search.MatchSpan %v", src, tt.spans[i].Name, got, want)
				}
			}
		}
	}
	_ = search.Query{}
}

func TestNestedSet(t *testing.T) {
	b := fixture()
	tt := newTrace(tid(1), b.Spans[:4])
	// POST /checkout [1,8] > charge [2,5] > db.query [3,4]; cart.get [6,7].
	want := [][3]int64{{1, 8, -1}, {2, 5, 1}, {3, 4, 2}, {6, 7, 1}}
	for i, w := range want {
		if got := [3]int64{tt.nsLeft[i], tt.nsRight[i], tt.nsParent[i]}; got != w {
			t.Errorf("span %d (%s): left/right/parent = %v, want %v", i, tt.spans[i].Name, got, w)
		}
	}
	orphan := newTrace(tid(4), b.Spans[9:])
	if orphan.nsParent[0] != 0 || orphan.root != 0 {
		t.Errorf("orphan: parent %d root %d", orphan.nsParent[0], orphan.root)
	}
	// A parent cycle (bad data) terminates and numbers every span.
	cyc := []span.Span{{SpanID: sid(1), ParentSpanID: sid(2)}, {SpanID: sid(2), ParentSpanID: sid(1)}}
	ct := newTrace(tid(9), cyc)
	if ct.nsLeft[0] == 0 || ct.nsLeft[1] == 0 {
		t.Errorf("cycle not numbered: %v", ct.nsLeft)
	}
}

func TestMetrics(t *testing.T) {
	e := New(openStore(t, fixture()), Config{})
	type series map[string][]float64 // labels → value per second 0..3 (NaN: no sample)
	nan := math.NaN()
	cases := []struct {
		name, q string
		want    series
	}{
		{"count_by", `{ } | count_over_time() by (resource.service.name)`, series{
			"resource.service.name=batch":    {0, 0, 0, 1},
			"resource.service.name=cart":     {1, 0, 0, 0},
			"resource.service.name=db":       {1, 0, 2, 0},
			"resource.service.name=frontend": {1, 1, 1, 0},
			"resource.service.name=orders":   {0, 0, 1, 0},
			"resource.service.name=payment":  {1, 0, 0, 0},
		}},
		{"rate", `{ status = error } | rate()`, series{"__name__=rate": {2, 0, 0, 0}}},
		{"quantile", `{ name = "db.query" } | quantile_over_time(duration, 0.5, 1)`, series{
			"__name__=quantile_over_time p=0.5": {0.005, nan, 0.025, nan},
			"__name__=quantile_over_time p=1":   {0.005, nan, 0.030, nan},
		}},
		{"min", `{ name = "db.query" } | min_over_time(duration)`, series{"__name__=min_over_time": {0.005, nan, 0.020, nan}}},
		{"max", `{ name = "db.query" } | max_over_time(duration)`, series{"__name__=max_over_time": {0.005, nan, 0.030, nan}}},
		{"avg", `{ name = "db.query" } | avg_over_time(duration)`, series{"__name__=avg_over_time": {0.005, nan, 0.025, nan}}},
		{"sum_attr", `{ } | sum_over_time(span.http.status_code)`, series{"__name__=sum_over_time": {500, 200, 200, nan}}},
		{"histogram", `{ name = "db.query" } | histogram_over_time(duration)`, series{
			"__bucket=0.0078125": {1, 0, 0, 0},
			"__bucket=0.03125":   {0, 0, 2, 0},
		}},
		{"threshold", `{ } | count_over_time() by (resource.service.name) > 1`, series{"resource.service.name=db": {nan, nan, 2, nan}}},
		{"topk", `{ kind = server } | count_over_time() by (resource.service.name) | topk(1)`, series{
			"resource.service.name=frontend": {1, 1, 1, nan},
		}},
		{"bottomk", `{ } | count_over_time() by (resource.service.name) | bottomk(1)`, series{
			"resource.service.name=batch": {0, 0, 0, nan},
			"resource.service.name=cart":  {nan, nan, nan, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, c.q), Start: base, End: base + 4e9, Step: 1e9})
			if err != nil {
				t.Fatal(err)
			}
			got := series{}
			for _, s := range res.Series {
				var ls []string
				for _, l := range s.Labels {
					ls = append(ls, l.Key+"="+l.Value.String())
				}
				vals := []float64{nan, nan, nan, nan}
				for _, x := range s.Samples {
					vals[(x.TimestampMs-base/1e6)/1000] = x.Value
				}
				got[strings.Join(ls, " ")] = vals
			}
			if len(got) != len(c.want) {
				t.Fatalf("%s: got series %v, want %v", c.q, got, c.want)
			}
			for k, w := range c.want {
				g, ok := got[k]
				if !ok {
					t.Fatalf("%s: missing series %s in %v", c.q, k, got)
				}
				for i := range w {
					if !(math.IsNaN(w[i]) && math.IsNaN(g[i])) && math.Abs(w[i]-g[i]) > 1e-9 {
						t.Errorf("%s: series %s = %v, want %v", c.q, k, g, w)
						break
					}
				}
			}
		})
	}
}

func TestMetricsExemplarsAndInstant(t *testing.T) {
	e := New(openStore(t, fixture()), Config{})
	res, err := e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, `{ name = "db.query" } | count_over_time()`), Start: base, End: base + 4e9, Step: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	ex := res.Series[0].Exemplars
	if len(ex) != 2 || ex[0].TraceID != tid(1) || ex[1].TraceID != tid(3) || ex[1].Value != 2 {
		t.Errorf("exemplars = %+v", ex)
	}
	res, err = e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, `{ name = "db.query" } | count_over_time() with (exemplars=false)`), Start: base, End: base + 4e9, Step: 1e9})
	if err != nil || len(res.Series[0].Exemplars) != 0 {
		t.Errorf("exemplars=false: %+v %v", res.Series, err)
	}
	res, err = e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, `{ } | count_over_time()`), Start: base, End: base + 4e9})
	if err != nil || len(res.Series) != 1 || len(res.Series[0].Samples) != 1 || res.Series[0].Samples[0].Value != 10 {
		t.Errorf("instant: %+v %v", res.Series, err)
	}
	if _, err := e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, `{ }`), Start: base, End: base + 1}); err != ErrNotMetricsQuery {
		t.Errorf("search query in Metrics: %v", err)
	}
	if _, err := e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, `{ } | rate()`), Start: base, End: base + 4e9, Step: 1}); err == nil {
		t.Error("too many points accepted")
	}
}

func TestCompare(t *testing.T) {
	e := New(openStore(t, fixture()), Config{})
	res, err := e.Metrics(context.Background(), MetricsRequest{Query: mustParse(t, `{ } | compare({ status = error }, 2)`), Start: base, End: base + 4e9})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range res.Series {
		var ls []string
		for _, l := range s.Labels {
			ls = append(ls, l.Key+"="+l.Value.String())
		}
		if len(s.Samples) > 0 {
			got[strings.Join(ls, " ")] = s.Samples[0].Value
		}
	}
	for k, w := range map[string]float64{
		"__meta_type=selection status=error":                   2,
		"__meta_type=baseline status=unset":                    7,
		"__meta_type=selection_total status=nil":               2,
		"__meta_type=baseline_total resource.service.name=nil": 8,
		"__meta_type=selection resource.service.name=frontend": 1,
	} {
		if got[k] != w {
			t.Errorf("series %s = %v, want %v (all: %v)", k, got[k], w, got)
		}
	}
	if _, ok := got["__meta_type=baseline name=GET /orders"]; ok {
		t.Error("topN 2 kept a third span name")
	}
}

// TestCorpusNoPanic runs every query of the printer's corpus on the
// fixture: none may panic or fail.
func TestCorpusNoPanic(t *testing.T) {
	data, err := os.ReadFile("../traceql/testdata/printer.golden")
	if err != nil {
		t.Skip(err)
	}
	e := New(openStore(t, fixture()), Config{})
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "=> ") {
			continue
		}
		q, err := traceql.Parse(line)
		if err != nil {
			continue
		}
		if p, _ := compile(q); p != nil && p.metrics != nil {
			if _, err := e.Metrics(context.Background(), MetricsRequest{Query: q, Start: base, End: base + 4e9, Step: 1e9}); err != nil {
				t.Errorf("Metrics(%q): %v", line, err)
			}
			continue
		}
		if _, err := e.Search(context.Background(), SearchRequest{Query: q}); err != nil {
			t.Errorf("Search(%q): %v", line, err)
		}
	}
}
