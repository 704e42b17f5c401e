package analysis

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

func TestAggregatePath(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var trees []*Tree
	for i := range 200 {
		m := shopMods{}
		if i%50 == 7 {
			m.slowList = 200 // the slowest 2%: ListProducts itself
		}
		trees = append(trees, NewTree(shop(i+1, r.Float64(), m)))
	}
	a := AggregatePath(OpKey{"gw", "GET /products"}, trees, 0.99)
	if a.Samples != 200 || a.TailSamples != 2 || a.P50Samples != 40 {
		t.Fatalf("samples %d, tail %d, p50 %d; want 200, 2, 40", a.Samples, a.TailSamples, a.P50Samples)
	}
	if a.TailDuration < 200*time.Millisecond || a.P50Duration > 40*time.Millisecond {
		t.Errorf("durations: p50 %v, tail %v", a.P50Duration, a.TailDuration)
	}
	top := a.Operations[0]
	if top.Op != (OpKey{"catalog", "ListProducts"}) || top.Tail < 200*time.Millisecond || top.P50 > 5*time.Millisecond || top.TailShare < 0.8 {
		t.Errorf("top operation = %+v, want catalog ListProducts taking the tail", top)
	}
	var sum float64
	for _, o := range a.Operations {
		sum += o.P50Share
	}
	if sum < 0.999 || sum > 1.001 {
		t.Errorf("median-band shares add up to %v, want 1", sum)
	}
	if e := AggregatePath(OpKey{"x", "y"}, trees, 0); e.Samples != 0 || len(e.Operations) != 0 {
		t.Errorf("unknown operation: %+v", e)
	}
}

func rankSpan(i int, version string, attrs ...span.Attr) *span.Span {
	r := &span.Resource{Attrs: []span.Attr{str("service.name", "checkout"), str("service.version", version)}}
	attrs = append(attrs, str("request.uuid", fmt.Sprintf("req-%d", i)), num("http.request.body.size", int64(i)))
	return &span.Span{Name: "PlaceOrder", Kind: span.KindServer, Resource: r, Attrs: attrs}
}

func TestRankAttributes(t *testing.T) {
	var sel, base []*span.Span
	for i := range 100 {
		v := "1.4.2"
		if i%10 < 8 {
			v = "1.5.0" // 80% of the slow spans are on the canary
		}
		pay := []string{"card", "paypal"}[i%2]
		sel = append(sel, rankSpan(i, v, str("payment.method", pay)))
	}
	for i := range 900 {
		v := "1.4.2"
		if i%10 < 2 {
			v = "1.5.0"
		}
		pay := []string{"card", "paypal"}[i%2]
		base = append(base, rankSpan(1000+i, v, str("payment.method", pay)))
	}
	rk := RankAttributes(sel, base, RankOptions{})
	if len(rk.Attributes) != 1 {
		t.Fatalf("attributes = %+v, want only resource.service.version=1.5.0", rk.Attributes)
	}
	a := rk.Attributes[0]
	if a.Key != "resource.service.version" || a.Value != "1.5.0" || a.Selection != 80 || a.Baseline != 180 || a.Diff < 0.59 || a.PValue > 1e-10 {
		t.Errorf("top = %+v", a)
	}
	if !slices.Contains(rk.SkippedKeys, "span.request.uuid") || !slices.Contains(rk.SkippedKeys, "span.http.request.body.size") {
		t.Errorf("SkippedKeys = %v, want the per-request IDs and sizes", rk.SkippedKeys)
	}

	// A small difference on few spans is not significant: no finding.
	sel, base = nil, nil
	for i := range 6 {
		sel = append(sel, rankSpan(i, []string{"1.5.0", "1.4.2"}[min(i%3, 1)]))
	}
	for i := range 60 {
		base = append(base, rankSpan(100+i, []string{"1.5.0", "1.4.2"}[i%2]))
	}
	if rk := RankAttributes(sel, base, RankOptions{}); len(rk.Attributes) != 0 {
		t.Errorf("not significant, yet attributes = %+v", rk.Attributes)
	}
	// An attribute only the selection has: its presence ranks, and in the
	// baseline its absence.
	sel, base = nil, nil
	for i := range 50 {
		sel = append(sel, rankSpan(i, "1", str("feature.flag", "new-search")))
		base = append(base, rankSpan(100+i, "1"))
	}
	rk = RankAttributes(sel, base, RankOptions{})
	if len(rk.Attributes) != 1 || rk.Attributes[0].Key != "span.feature.flag" || rk.Attributes[0].Diff != 1 {
		t.Errorf("attributes = %+v, want span.feature.flag=new-search", rk.Attributes)
	}
	if rk := RankAttributes(nil, nil, RankOptions{}); len(rk.Attributes) != 0 {
		t.Errorf("empty: %+v", rk)
	}
}

func TestQuality(t *testing.T) {
	noVersion := &span.Resource{Attrs: []span.Attr{str("service.name", "legacy")}}
	mk := func(trace, id, parent int, svcName string, kind span.Kind, start, dur float64, attrs ...span.Attr) span.Span {
		s := sp(id, parent, svcName, start, dur, attrs...)
		s.TraceID, s.Kind = tid(trace), kind
		return s
	}
	var trees []*Tree
	for n := range 10 {
		tr := 10*n + 1
		spans := []span.Span{
			mk(tr, 1, 0, "gw:GET /x", span.KindServer, 0, 100, str("http.request.method", "GET")),
			mk(tr, 2, 1, "gw:GET /inv", span.KindClient, 1, 10, str("http.request.method", "GET")),
			mk(tr, 3, 2, "inv:GET /inv", span.KindServer, 2, 8, str("http.request.method", "GET")),
			mk(tr, 4, 1, "gw:POST /pay", span.KindClient, 20, 50, str("http.request.method", "POST")),
			mk(tr, 5, 3, "inv:SELECT", span.KindClient, 3, 2, str("db.query.text", "SELECT 1")), // no db.system.name
		}
		if n < 3 {
			spans[2].StartUnixNano -= 5 * ms // inventory's clock is behind
		}
		trees = append(trees, NewTree(spans))
		// payment's server span starts a new trace inside gw's POST /pay.
		trees = append(trees, NewTree([]span.Span{
			mk(tr+1, 1, 0, "pay:POST /pay", span.KindServer, 22, 40, str("http.request.method", "POST")),
			mk(tr+1, 2, 1, "pay:SELECT", span.KindClient, 23, 5, str("db.system.name", "postgresql")),
		}))
		// legacy: no service.version, and an orphan.
		l1 := mk(tr+2, 1, 0, "legacy:job", span.KindInternal, 0, 10)
		l2 := mk(tr+2, 2, 9, "legacy:step", span.KindInternal, 1, 2)
		l1.Resource, l2.Resource = noVersion, noVersion
		trees = append(trees, NewTree([]span.Span{l1, l2}))
	}
	rep := Quality(trees, QualityOptions{})
	got := map[string][]string{}
	scores := map[string]float64{}
	for _, s := range rep.Services {
		scores[s.Service] = s.Score
		for _, i := range s.Issues {
			got[s.Service] = append(got[s.Service], fmt.Sprintf("%s %d/%d", i.Type, i.Count, i.Of))
			if len(i.Examples) == 0 {
				t.Errorf("%s %s: no examples", s.Service, i.Type)
			}
		}
	}
	want := map[string][]string{
		"pay":    {"broken_propagation 10/10"},
		"inv":    {"clock_skew 3/20", "missing_attributes 10/20"},
		"legacy": {"orphan_spans 10/20", "missing_service_version 20/20"},
	}
	for svc, w := range want {
		if !slices.Equal(got[svc], w) {
			t.Errorf("%s: issues %q, want %q", svc, got[svc], w)
		}
	}
	if len(got["gw"]) != 0 {
		t.Errorf("gw: issues %q, want none (it propagates; payment drops)", got["gw"])
	}
	if scores["gw"] != 100 || scores["pay"] != 70 || scores["legacy"] >= 70 {
		t.Errorf("scores = %v", scores)
	}
	if rep.Services[0].Service != "legacy" {
		t.Errorf("worst service = %s, want legacy", rep.Services[0].Service)
	}
}
