package analysis

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

const (
	qList  = "SELECT id, name FROM products WHERE category = $1"
	qIDs   = "SELECT id FROM products WHERE category = $1"
	qByID  = "SELECT id, name FROM products WHERE id = $1"
	qPromo = "SELECT * FROM promotions"
)

// shop builds one trace of a small shop: gateway GET /products calls
// catalog ListProducts (one query) and, concurrently, inventory CheckStock
// and recommendation List. j (0..1) jitters the durations; mods change the
// shape.
type shopMods struct {
	nPlusOne     int     // ListProducts runs this many by-ID queries after an ID query
	slowList     float64 // extra ms of ListProducts self time
	serial       bool    // inventory and recommendation one after another
	retries      int     // payment attempts that fail before one succeeds
	promo        bool    // an extra promotions query
	noCache      bool    // no cache lookup
	slowProvider float64 // extra ms in the payment provider call
}

func shop(trace int, j float64, m shopMods) []span.Span {
	var spans []span.Span
	id := 0
	add := func(parent int, svcName string, start, dur float64, attrs ...span.Attr) int {
		id++
		s := sp(id, parent, svcName, start, dur, attrs...)
		s.TraceID = tid(trace)
		s.SpanID = span.SpanID{0: byte(trace >> 8), 1: byte(trace), 6: byte(id >> 8), 7: byte(id)}
		if parent != 0 {
			s.ParentSpanID = span.SpanID{0: byte(trace >> 8), 1: byte(trace), 6: byte(parent >> 8), 7: byte(parent)}
		}
		spans = append(spans, s)
		return id
	}
	db := func(q string) []span.Attr {
		return []span.Attr{str("db.system.name", "postgresql"), str("db.query.text", q)}
	}
	jit := 1 + 0.2*j
	// ListProducts: 1 ms, its queries, 2 ms (jittered) and any extra.
	queries := 6 * jit
	if m.nPlusOne > 0 {
		queries = 2 + float64(m.nPlusOne)*1.5
	}
	if m.promo {
		queries += 30
	}
	listDur := 1 + queries + 2*jit + m.slowList
	// The gateway waits for ListProducts, then for stock and
	// recommendations (concurrent unless serial).
	stock, recs := 8*jit, 9*jit
	fan := max(stock, recs)
	if m.serial {
		fan = stock + recs
	}
	pay := 0.0
	if m.retries > 0 || m.slowProvider > 0 {
		pay = float64(m.retries+1)*5 + m.slowProvider
	}
	total := 1 + listDur + 1 + fan + pay + 1
	root := add(0, "gw:GET /products", 0, total)
	at := 1.0
	cat := add(root, "catalog:ListProducts", at, listDur)
	c := at + 1
	if !m.noCache {
		add(cat, "redis:GET", at+0.2, 0.5, str("db.system.name", "redis"))
	}
	if m.nPlusOne > 0 {
		add(cat, "pg:SELECT products", c, 2, db(qIDs)...)
		c += 2
		for range m.nPlusOne {
			add(cat, "pg:SELECT products", c, 1.4, db(qByID)...)
			c += 1.5
		}
	} else {
		add(cat, "pg:SELECT products", c, 6*jit, db(qList)...)
		c += 6 * jit
	}
	if m.promo {
		add(cat, "pg:SELECT promotions", c, 29, db(qPromo)...)
	}
	at += listDur + 1
	add(root, "gw:call inventory", at, stock)
	if m.serial {
		add(root, "gw:call recommendation", at+stock, recs)
	} else {
		add(root, "gw:call recommendation", at, recs)
	}
	at += fan
	if pay > 0 {
		pp := add(root, "payment:POST /charges", at, pay)
		a := at
		for n := range m.retries + 1 {
			d := 4.5
			attrs := []span.Attr{str("http.request.method", "POST"), str("url.template", "/v1/charges")}
			if n > 0 {
				attrs = append(attrs, num("http.request.resend_count", int64(n)))
			}
			if n == m.retries {
				d += m.slowProvider
			}
			if n < m.retries {
				attrs = append(attrs, num("http.response.status_code", 503))
			} else {
				attrs = append(attrs, num("http.response.status_code", 200))
			}
			add(pp, "payment:call POST /v1/charges", a, d, attrs...)
			a += d + 0.5
		}
	}
	return spans
}

func cohortOf(n int, m shopMods) []*Tree {
	r := rand.New(rand.NewPCG(42, 1))
	out := make([]*Tree, n)
	for i := range out {
		out[i] = NewTree(shop(100+i, r.Float64(), m))
	}
	return out
}

func TestExplain(t *testing.T) {
	normal := shopMods{}
	tests := []struct {
		name     string
		target   shopMods
		cohort   []*Tree
		partial  bool
		want     []string // "type service operation" of the findings, in rank order
		messages []string // substrings of the first finding's message
	}{
		{
			name:   "normal trace: no finding",
			target: normal, cohort: cohortOf(40, normal),
			want: nil,
		},
		{
			name:   "slightly slower but within the cohort's spread: no finding",
			target: shopMods{slowList: 0.5}, cohort: cohortOf(40, normal),
			want: nil,
		},
		{
			name:   "N+1",
			target: shopMods{nPlusOne: 12}, cohort: cohortOf(40, normal),
			want:     []string{"n_plus_one pg SELECT products"},
			messages: []string{"12 times one after another", "N+1"},
		},
		{
			name:   "slow operation",
			target: shopMods{slowList: 80}, cohort: cohortOf(40, normal),
			want:     []string{"critical_path_self catalog ListProducts"},
			messages: []string{"similar traces spend"},
		},
		{
			name:   "serialized fan-out",
			target: shopMods{serial: true}, cohort: cohortOf(40, normal),
			want:     []string{"serialized_fan_out gw GET /products"},
			messages: []string{"concurrently"},
		},
		{
			name:   "retries",
			target: shopMods{retries: 2}, cohort: cohortOf(40, shopMods{slowProvider: 0.01}),
			want:     []string{"retry payment call POST /v1/charges"},
			messages: []string{"3 times (2 failed)"},
		},
		{
			name:   "new operation",
			target: shopMods{promo: true}, cohort: cohortOf(40, normal),
			want:     []string{"new_operation pg SELECT promotions"},
			messages: []string{"appears in 0% of similar traces"},
		},
		{
			name:   "missing operation",
			target: shopMods{noCache: true}, cohort: cohortOf(40, normal),
			want: []string{"missing_operation redis GET"},
		},
		{
			name:   "no cohort: patterns only, partial",
			target: shopMods{nPlusOne: 8}, cohort: cohortOf(2, normal), partial: true,
			want: []string{"n_plus_one pg SELECT products"},
		},
		{
			name:   "no cohort: sequential calls are a hint",
			target: shopMods{serial: true}, cohort: nil, partial: true,
			want: []string{"sequential_calls gw GET /products"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTree(shop(1, 0.5, tt.target))
			e := Explain(tr, tt.cohort, ExplainOptions{})
			var got []string
			for _, f := range e.Findings {
				got = append(got, fmt.Sprintf("%s %s %s", f.Type, f.Service, f.Operation))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", dump(e), strings.Join(tt.want, "\n"))
			}
			if e.Partial != tt.partial {
				t.Errorf("Partial = %v, want %v (notes %q)", e.Partial, tt.partial, e.Notes)
			}
			for _, m := range tt.messages {
				if len(e.Findings) == 0 || !strings.Contains(e.Findings[0].Message, m) {
					t.Errorf("first finding's message does not say %q:\n%s", m, dump(e))
				}
			}
			if e.RootService != "gw" || e.RootOperation != "GET /products" {
				t.Errorf("root = %s %s", e.RootService, e.RootOperation)
			}
		})
	}
}

func dump(e *Explanation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  duration %v cohort %d p50 %v excess %v partial %v %q\n", e.Duration, e.Cohort, e.CohortP50, e.Excess, e.Partial, e.Notes)
	for _, f := range e.Findings {
		fmt.Fprintf(&b, "  %s %s %s excess=%v saving=%v count=%d: %s\n", f.Type, f.Service, f.Operation, f.Excess, f.Saving, f.Count, f.Message)
	}
	return b.String()
}

func TestExplainBadTraces(t *testing.T) {
	cohort := cohortOf(20, shopMods{})
	// A cycle, duplicates, orphans and skew: no crash, a partial answer.
	spans := shop(1, 0.5, shopMods{nPlusOne: 6})
	spans[1].ParentSpanID = spans[3].SpanID // ListProducts under one of its own queries: a cycle
	spans = append(spans, spans[4], spans[5])
	lost := sp(999, 998, "x:lost", 2, 3)
	lost.TraceID = tid(1)
	spans = append(spans, lost)
	spans[6].StartUnixNano -= 50 * ms
	e := Explain(NewTree(spans), cohort, ExplainOptions{})
	if !e.Partial || len(e.Notes) < 3 {
		t.Errorf("Partial %v, notes %q: want partial with notes on orphans, cycles, duplicates", e.Partial, e.Notes)
	}
	_ = Explain(NewTree(nil), cohort, ExplainOptions{})
	for _, shape := range []string{"wide", "deep", "random"} {
		start := time.Now()
		e := Explain(NewTree(genTrace(shape, 50_000, 3)), nil, ExplainOptions{})
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: Explain of 50k spans took %v", shape, d)
		}
		_ = e
	}
}

// TestExplainRetryStorm: checkout retries payment, whose every attempt
// retries the provider. Both are reported, once per call, and checkout's
// names the retries inside its failed attempts.
func TestExplainRetryStorm(t *testing.T) {
	var spans []span.Span
	id := 1
	add := func(parent int, svcName string, start, dur float64, attrs ...span.Attr) int {
		id++
		s := sp(id, parent, svcName, start, dur, attrs...)
		spans = append(spans, s)
		return id
	}
	spans = append(spans, sp(1, 0, "gw:POST /checkout", 0, 200))
	at := 1.0
	for a := range 3 {
		attrs := []span.Attr{str("url.template", "/charges")}
		if a > 0 {
			attrs = append(attrs, num("http.request.resend_count", int64(a)))
		}
		code := int64(503)
		if a == 2 {
			code = 200
		}
		c := add(1, "checkout:call POST /charges", at, 60, append(attrs, num("http.response.status_code", code))...)
		srv := add(c, "payment:POST /charges", at+1, 58)
		pt := at + 2
		for b := range 3 {
			pa := []span.Attr{str("url.template", "/v1/charges"), num("http.response.status_code", 503)}
			if b > 0 {
				pa = append(pa, num("http.request.resend_count", int64(b)))
			}
			add(srv, "payment:call POST /v1/charges", pt, 18, pa...)
			pt += 18.5
		}
		at += 62
	}
	e := Explain(NewTree(spans), nil, ExplainOptions{})
	if len(e.Findings) != 2 {
		t.Fatalf("findings:\n%s", dump(e))
	}
	outer, inner := e.Findings[0], e.Findings[1]
	if outer.Operation != "call POST /charges" || outer.Count != 3 || !strings.Contains(outer.Message, "retried payment call POST /v1/charges") {
		t.Errorf("outer = %+v", outer)
	}
	if inner.Operation != "call POST /v1/charges" || inner.Count != 9 || !strings.Contains(inner.Message, "in 3 series of up to 3 attempts") {
		t.Errorf("inner = %+v", inner)
	}
}
