package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

// The pushdown must select a superset of what the engine matches: these
// tests generate data with every attribute type (arrays, numeric strings,
// bytes, maps, events, links) and random queries, and compare the
// pushed-down execution with the plain one.

var (
	pdKeys   = []string{"k1", "k2", "k3", "arr"}
	pdStrs   = []string{"a", "b", "500", "true", "1.5", "", "zz"}
	pdInts   = []int64{0, 1, 5, 500, -3}
	pdFloats = []float64{0.5, 1.5, 5.0}
	pdNames  = []string{"GET /", "POST /x", "db", "late"}
	pdSvcs   = []string{"front", "back", "db"}
)

// pdValue returns a random attribute value of any type.
func pdValue(r *rand.Rand, depth int) span.Value {
	switch r.IntN(9) {
	case 0, 1:
		return span.StringValue(pdStrs[r.IntN(len(pdStrs))])
	case 2, 3:
		return span.IntValue(pdInts[r.IntN(len(pdInts))])
	case 4:
		return span.DoubleValue(pdFloats[r.IntN(len(pdFloats))])
	case 5:
		return span.BoolValue(r.IntN(2) == 0)
	case 6:
		if depth > 0 {
			return span.StringValue("x")
		}
		n := r.IntN(3)
		v := span.Value{Type: span.TypeArray}
		for range n {
			v.Array = append(v.Array, pdValue(r, depth+1))
		}
		return v
	case 7:
		return span.Value{Type: span.TypeBytes, Str: "\x05\x00"}
	}
	return span.Value{Type: span.TypeMap, Map: []span.Attr{{Key: "m", Value: span.StringValue("a")}}}
}

func pdAttrs(r *rand.Rand) []span.Attr {
	var out []span.Attr
	for _, k := range pdKeys {
		if r.IntN(3) > 0 {
			out = append(out, span.Attr{Key: k, Value: pdValue(r, 0)})
		}
	}
	return out
}

// pdBatch returns n random traces.
func pdBatch(seed uint64, n int) *span.Batch {
	r := rand.New(rand.NewPCG(seed, 99))
	b := &span.Batch{}
	var res []*span.Resource
	for _, s := range pdSvcs {
		rs := &span.Resource{Attrs: append([]span.Attr{str("service.name", s)}, pdAttrs(r)...)}
		res = append(res, rs)
		b.Resources = append(b.Resources, rs)
	}
	sc := &span.Scope{Name: "lib", Version: "1", Attrs: []span.Attr{num("k1", 5)}}
	b.Scopes = []*span.Scope{sc}
	id := byte(0)
	for tr := range n {
		k := 1 + r.IntN(6)
		t0 := uint64(base) + uint64(tr)*1e9/uint64(n)
		for i := range k {
			id++
			s := span.Span{TraceID: span.TraceID{14: byte(tr >> 8), 15: byte(tr)}, SpanID: span.SpanID{6: byte(tr), 7: byte(i + 1)},
				Name: pdNames[r.IntN(len(pdNames))], Kind: span.Kind(r.IntN(6)), StatusCode: span.StatusCode(r.IntN(3)),
				Resource: res[r.IntN(len(res))], Scope: sc, Attrs: pdAttrs(r)}
			if i > 0 {
				s.ParentSpanID = span.SpanID{6: byte(tr), 7: byte(1 + r.IntN(i))}
			}
			s.StartUnixNano = t0 + uint64(r.IntN(50))*ms
			s.EndUnixNano = s.StartUnixNano + uint64(r.IntN(60))*ms
			if r.IntN(4) == 0 {
				s.Events = []span.Event{{TimeUnixNano: s.StartUnixNano + ms, Name: pdNames[r.IntN(2)], Attrs: pdAttrs(r)}}
			}
			if r.IntN(5) == 0 {
				s.Links = []span.Link{{TraceID: tid(7), SpanID: sid(7), Attrs: pdAttrs(r)}}
			}
			b.Spans = append(b.Spans, s)
		}
	}
	return b
}

// pdQuery returns a random spanset filter.
func pdQuery(r *rand.Rand) string {
	return "{ " + pdExpr(r, 0) + " }"
}

func pdExpr(r *rand.Rand, depth int) string {
	if depth < 2 {
		switch r.IntN(6) {
		case 0:
			return pdExpr(r, depth+1) + " && " + pdExpr(r, depth+1)
		case 1:
			return "(" + pdExpr(r, depth+1) + " || " + pdExpr(r, depth+1) + ")"
		case 2:
			if r.IntN(3) == 0 {
				return "!(" + pdExpr(r, depth+1) + ")"
			}
		}
	}
	ops := []string{"=", "!=", "<", "<=", ">", ">=", "=~", "!~"}
	op := ops[r.IntN(len(ops))]
	switch r.IntN(12) {
	case 0:
		return fmt.Sprintf("name %s %q", []string{"=", "!=", "=~"}[r.IntN(3)], pdNames[r.IntN(len(pdNames))])
	case 1:
		return fmt.Sprintf("status %s %s", []string{"=", "!="}[r.IntN(2)], []string{"ok", "error", "unset"}[r.IntN(3)])
	case 2:
		return fmt.Sprintf("kind %s %s", []string{"=", "!="}[r.IntN(2)], []string{"server", "client", "internal", "unspecified"}[r.IntN(4)])
	case 3:
		return fmt.Sprintf("duration %s %dms", []string{"=", "!=", "<", "<=", ">", ">="}[r.IntN(6)], r.IntN(60))
	case 4:
		return "span." + pdKeys[r.IntN(len(pdKeys))]
	case 5:
		return fmt.Sprintf("span.%s %s nil", pdKeys[r.IntN(len(pdKeys))], []string{"=", "!="}[r.IntN(2)])
	}
	field := []string{"span.", "resource.", ".", "event.", "link.", "instrumentation."}[r.IntN(6)] + pdKeys[r.IntN(len(pdKeys))]
	if op == "=~" || op == "!~" {
		return fmt.Sprintf("%s %s %q", field, op, []string{"a.*", "5.*", "[0-9]+", "z+", "true"}[r.IntN(5)])
	}
	var lit string
	switch r.IntN(5) {
	case 0, 1:
		lit = fmt.Sprintf("%q", pdStrs[r.IntN(len(pdStrs))])
	case 2:
		lit = fmt.Sprint(pdInts[r.IntN(len(pdInts))])
	case 3:
		lit = fmt.Sprint(pdFloats[r.IntN(len(pdFloats))])
		if !strings.Contains(lit, ".") {
			lit += ".0"
		}
	default:
		if op == "=" || op == "!=" {
			lit = []string{"true", "false"}[r.IntN(2)]
		} else {
			lit = "5"
		}
	}
	if r.IntN(4) == 0 {
		return lit + " " + map[string]string{"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op] + " " + field
	}
	return field + " " + op + " " + lit
}

// TestPushdownSuperset checks on every span of random data that a span
// the engine's filter matches matches one of the filter's pushed-down
// searches (search.MatchSpan, the reference of the block scans).
func TestPushdownSuperset(t *testing.T) {
	b := pdBatch(1, 60)
	byTrace := map[span.TraceID][]span.Span{}
	for _, s := range b.Spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
	}
	var traces []*trace
	for id, spans := range byTrace {
		traces = append(traces, newTrace(id, spans))
	}
	r := rand.New(rand.NewPCG(2, 3))
	checked, matched := 0, 0
	for range 3000 {
		src := pdQuery(r)
		q, err := traceql.Parse(src)
		if err != nil {
			continue // a random combination the checker rejects
		}
		checked++
		f := q.Filters()[0]
		alts := f.Pushdown()
		for i := range alts {
			if err := alts[i].Compile(); err != nil {
				t.Fatalf("%s: pushdown does not compile: %v", src, err)
			}
		}
		p, err := compile(q)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range traces {
			for i := range tt.spans {
				if !truthy(p.eval(tt, i, f.Expr)) {
					continue
				}
				matched++
				ok := false
				for k := range alts {
					ok = ok || alts[k].MatchSpan(&tt.spans[i])
				}
				if !ok {
					t.Fatalf("%s matches span %s of trace %s, but no pushed-down search does: %+v\nspan %+v", src, tt.spans[i].SpanID, tt.id, alts, tt.spans[i])
				}
			}
		}
	}
	if checked < 1000 || matched < 1000 {
		t.Fatalf("only %d queries checked, %d spans matched", checked, matched)
	}
}

// TestPushdownSameResults runs random searches and metrics queries with
// and without pushdown and the span-column path on random data, stored
// partly in blocks and partly in the head: the results must be equal.
func TestPushdownSameResults(t *testing.T) {
	db := openStore(t, pdBatch(5, 80))
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := db.Append(context.Background(), nil, pdBatch(6, 40)); err != nil {
		t.Skip("append without the raw request:", err)
	}
	fast := New(db, Config{MaxCandidates: 1 << 20})
	plain := New(db, Config{MaxCandidates: 1 << 20})
	plain.noPushdown, plain.noSpanScan = true, true
	r := rand.New(rand.NewPCG(4, 5))
	ctx := context.Background()
	n, nonEmpty := 0, 0
	for n < 300 {
		var src string
		switch r.IntN(4) {
		case 0:
			src = pdQuery(r) + " " + []string{"&&", "||", ">>", "<", "~", "!>", "&>"}[r.IntN(7)] + " " + pdQuery(r)
		case 1:
			src = pdQuery(r) + " | count() > 1"
		default:
			src = pdQuery(r)
		}
		q, err := traceql.Parse(src)
		if err != nil {
			continue
		}
		n++
		req := SearchRequest{Query: q, Limit: 1000, SpansPerSpanset: 1000}
		a, err := fast.Search(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := plain.Search(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := searchDigest(a), searchDigest(b); got != want {
			t.Fatalf("%s: pushed down\n%s\nplain\n%s", src, got, want)
		}
		if len(b.Traces) > 0 {
			nonEmpty++
		}
		for _, mf := range []string{"count_over_time() by (name)", "quantile_over_time(duration, 0.5) by (resource.service.name)", "sum_over_time(span.k1)"} {
			mq, err := traceql.Parse(src + " | " + mf)
			if err != nil {
				t.Fatal(err)
			}
			mreq := MetricsRequest{Query: mq, Start: base, End: base + 2e9, Step: 5e8}
			ma, err := fast.Metrics(ctx, mreq)
			if err != nil {
				t.Fatal(err)
			}
			mb, err := plain.Metrics(ctx, mreq)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := metricsDigest(ma), metricsDigest(mb); got != want {
				t.Fatalf("%s | %s: pushed down\n%s\nplain\n%s", src, mf, got, want)
			}
		}
	}
	if nonEmpty < 30 {
		t.Errorf("only %d of %d searches matched anything", nonEmpty, n)
	}
	t.Logf("%d queries, %d with matches", n, nonEmpty)
}

func searchDigest(r *SearchResult) string {
	var b strings.Builder
	for _, tr := range r.Traces {
		fmt.Fprintf(&b, "%s:", tr.TraceID)
		for _, ss := range tr.Spansets {
			fmt.Fprintf(&b, " [%d", ss.Matched)
			for _, s := range ss.Spans {
				fmt.Fprintf(&b, " %s", s.Span.SpanID)
			}
			b.WriteString("]")
		}
		b.WriteString("\n")
	}
	return b.String()
}

func metricsDigest(r *MetricsResult) string {
	var b strings.Builder
	for _, s := range r.Series {
		for _, l := range s.Labels {
			fmt.Fprintf(&b, "%s=%s ", l.Key, l.Value)
		}
		for _, x := range s.Samples {
			v := x.Value
			if !math.IsNaN(v) {
				v = math.Round(v*1e9) / 1e9
			}
			fmt.Fprintf(&b, "%d:%v ", x.TimestampMs, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}
