package testutil

import (
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// AnalysisNow is the fixed present of AnalysisFixture's tests: 10 minutes
// after its first trace.
var AnalysisNow = time.Unix(0, Base).Add(10 * time.Minute)

// AnalysisFixture is a small shop, one trace every 5 s from Base:
//
//	traces 1-30:  gateway GET /api/products → catalog ListProducts (one
//	              query) and gateway GET /stock → inventory 1.0 GET /stock
//	traces 31-40: the same with inventory 2.0, whose GET /stock takes 60 ms
//	trace 41:     ListProducts runs ten by-ID queries (N+1)
//	trace 42:     the gateway's GET /stock retried twice after 503s
//	traces 43-48: checkout PlaceOrder calls inventory's GET /stock, then
//	              POST /charges, and payment's server span starts its
//	              own trace (44, 46, 48)
//	trace 49:     a span whose parent never arrived
func AnalysisFixture() *span.Batch {
	b := &span.Batch{}
	sc := &span.Scope{Name: "io.clew.test"}
	b.Scopes = []*span.Scope{sc}
	resources := map[string]*span.Resource{}
	res := func(svc, version string) *span.Resource {
		k := svc + "@" + version
		if r := resources[k]; r != nil {
			return r
		}
		r := &span.Resource{Attrs: []span.Attr{Str("service.name", svc)}}
		if version != "" {
			r.Attrs = append(r.Attrs, Str("service.version", version))
		}
		resources[k] = r
		b.Resources = append(b.Resources, r)
		return r
	}
	var trace, next int
	var t0 uint64
	add := func(parent int, r *span.Resource, name string, kind span.Kind, start, dur float64, attrs ...span.Attr) int {
		next++
		s := span.Span{TraceID: TID(byte(trace)), SpanID: span.SpanID{0: byte(trace), 7: byte(next)},
			Name: name, Kind: kind, Resource: r, Scope: sc,
			StartUnixNano: t0 + uint64(start*Ms), EndUnixNano: t0 + uint64((start+dur)*Ms), Attrs: attrs}
		if parent > 0 {
			s.ParentSpanID = span.SpanID{0: byte(trace), 7: byte(parent)}
		}
		b.Spans = append(b.Spans, s)
		return next
	}
	begin := func(n int) {
		trace, next = n, 0
		t0 = uint64(Base) + uint64(n-1)*5e9
	}
	str := Str
	http := func(method string, code int64) []span.Attr {
		return []span.Attr{str("http.request.method", method), Num("http.response.status_code", code)}
	}
	db := func(q string) []span.Attr {
		return []span.Attr{str("db.system.name", "postgresql"), str("db.query.text", q)}
	}
	gw, cat := res("gateway", "2.3.1"), res("catalog", "3.0.4")
	products := func(n int, inv *span.Resource, stock float64, nPlusOne int, retries int) {
		begin(n)
		j := float64(n%7) * 0.3
		q := 6 + j
		if nPlusOne > 0 {
			q = 2 + float64(nPlusOne)*1.5
		}
		list := 1 + q + 1
		stockAt := 1 + list + 0.5
		stockDur := float64(retries+1) * (stock + 1)
		root := add(0, gw, "GET /api/products", span.KindServer, 0, stockAt+stockDur+1, http("GET", 200)...)
		c := add(root, cat, "ListProducts", span.KindServer, 1, list, str("rpc.system.name", "grpc"), str("rpc.method", "ListProducts"))
		if nPlusOne > 0 {
			add(c, cat, "SELECT products", span.KindClient, 2, 2, db("SELECT id FROM products")...)
			for k := range nPlusOne {
				add(c, cat, "SELECT products", span.KindClient, 4+float64(k)*1.5, 1.4, db("SELECT * FROM products WHERE id = $1")...)
			}
		} else {
			add(c, cat, "SELECT products", span.KindClient, 2, q, db("SELECT * FROM products")...)
		}
		at := stockAt
		for k := range retries + 1 {
			code := int64(200)
			if k < retries {
				code = 503
			}
			attrs := append(http("GET", code), str("url.template", "/stock"))
			if k > 0 {
				attrs = append(attrs, Num("http.request.resend_count", int64(k)))
			}
			cl := add(root, gw, "GET /stock", span.KindClient, at, stock+0.5, attrs...)
			add(cl, inv, "GET /stock", span.KindServer, at+0.2, stock, http("GET", code)...)
			at += stock + 1
		}
	}
	inv1, inv2 := res("inventory", "1.0"), res("inventory", "2.0")
	for n := 1; n <= 30; n++ {
		products(n, inv1, 3+float64(n%5)*0.2, 0, 0)
	}
	for n := 31; n <= 40; n++ {
		products(n, inv2, 60+float64(n%3), 0, 0)
	}
	products(41, inv1, 3, 10, 0)
	products(42, inv1, 3, 0, 2)
	co, pay := res("checkout", "1.4.2"), res("payment", "2.1.7")
	for n := 43; n <= 48; n += 2 {
		begin(n)
		root := add(0, co, "PlaceOrder", span.KindServer, 0, 50, str("rpc.system.name", "grpc"), str("rpc.method", "PlaceOrder"))
		cl := add(root, co, "GET /stock", span.KindClient, 1, 3, http("GET", 200)...)
		add(cl, inv1, "GET /stock", span.KindServer, 1.5, 2, http("GET", 200)...)
		add(root, co, "POST /charges", span.KindClient, 5, 40, http("POST", 200)...)
		t := t0
		begin(n + 1)
		t0 = t
		proot := add(0, pay, "POST /charges", span.KindServer, 6, 38, http("POST", 200)...)
		add(proot, pay, "INSERT payments", span.KindClient, 7, 3, db("INSERT INTO payments")...)
	}
	begin(49)
	add(0, res("batch", ""), "nightly", span.KindInternal, 0, 10)
	b.Spans[len(b.Spans)-1].ParentSpanID = span.SpanID{7: 0xee}
	return b
}
