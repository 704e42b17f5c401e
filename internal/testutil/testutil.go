// Package testutil holds what several packages' tests share: a store
// opened on a temporary directory and a fixed set of traces. Only tests
// import it.
package testutil

import (
	"github.com/clew-dev/clew/internal/span"
)

// Base is TraceQLFixture's time origin; trace n starts at Base + (n-1) s.
const Base = 1_764_000_000_000_000_000

// Ms is a millisecond in nanoseconds.
const Ms = 1_000_000

// TID returns the trace ID whose last byte is n.
func TID(n byte) span.TraceID { return span.TraceID{15: n} }

// SID returns the span ID whose last byte is n.
func SID(n byte) span.SpanID { return span.SpanID{7: n} }

// Str returns a string attribute.
func Str(k, v string) span.Attr { return span.Attr{Key: k, Value: span.StringValue(v)} }

// Num returns an int attribute.
func Num(k string, v int64) span.Attr {
	return span.Attr{Key: k, Value: span.IntValue(v)}
}

// TraceQLFixture builds four traces:
//
//	1 (at Base):      frontend "POST /checkout" server error, 500
//	                  ├─ payment "charge" client error (event exception)
//	                  │  └─ db "db.query" internal 5ms
//	                  └─ cart "cart.get" client (tags [a b], str_num "500")
//	2 (at Base+1s):   frontend "GET /health" server 0.5ms, 200
//	3 (at Base+2s):   frontend "GET /orders" server ok, 200
//	                  └─ orders "orders.list" server
//	                     ├─ db "db.query" internal 20ms
//	                     └─ db "db.query" internal 30ms
//	4 (at Base+3s):   batch "late" consumer whose parent never arrived
func TraceQLFixture() *span.Batch {
	res := func(svc string) *span.Resource {
		return &span.Resource{Attrs: []span.Attr{Str("service.name", svc)}}
	}
	front, pay, db, cart, orders, batch := res("frontend"), res("payment"), res("db"), res("cart"), res("orders"), res("batch")
	front.Attrs = append(front.Attrs, Str("service.version", "1.4.2"))
	sc := &span.Scope{Name: "io.clew.test", Version: "0.1"}
	mk := func(trace, id, parent byte, name string, kind span.Kind, r *span.Resource, start, dur uint64, attrs ...span.Attr) span.Span {
		s := span.Span{TraceID: TID(trace), SpanID: SID(id), Name: name, Kind: kind, Resource: r, Scope: sc,
			StartUnixNano: start, EndUnixNano: start + dur, Attrs: attrs}
		if parent != 0 {
			s.ParentSpanID = SID(parent)
		}
		return s
	}
	t1, t2, t3, t4 := uint64(Base), uint64(Base+1e9), uint64(Base+2e9), uint64(Base+3e9)
	spans := []span.Span{
		mk(1, 1, 0, "POST /checkout", span.KindServer, front, t1, 100*Ms, Str("http.method", "POST"), Num("http.status_code", 500)),
		mk(1, 2, 1, "charge", span.KindClient, pay, t1+1*Ms, 40*Ms, Str("payment.method", "card"), span.Attr{Key: "amount", Value: span.DoubleValue(12.5)}),
		mk(1, 3, 2, "db.query", span.KindInternal, db, t1+2*Ms, 5*Ms, Str("db.system", "postgres")),
		mk(1, 4, 1, "cart.get", span.KindClient, cart, t1+50*Ms, 10*Ms,
			span.Attr{Key: "tags", Value: span.Value{Type: span.TypeArray, Array: []span.Value{span.StringValue("a"), span.StringValue("b")}}},
			Str("str_num", "500")),
		mk(2, 5, 0, "GET /health", span.KindServer, front, t2, Ms/2, Str("http.method", "GET"), Num("http.status_code", 200)),
		mk(3, 6, 0, "GET /orders", span.KindServer, front, t3, 80*Ms, Str("http.method", "GET"), Num("http.status_code", 200)),
		mk(3, 7, 6, "orders.list", span.KindServer, orders, t3+1*Ms, 60*Ms),
		mk(3, 8, 7, "db.query", span.KindInternal, db, t3+2*Ms, 20*Ms, Str("db.system", "postgres")),
		mk(3, 9, 7, "db.query", span.KindInternal, db, t3+25*Ms, 30*Ms, Str("db.system", "mysql")),
		mk(4, 10, 99, "late", span.KindConsumer, batch, t4, 7*Ms),
	}
	spans[0].StatusCode, spans[0].StatusMessage = span.StatusError, "payment failed"
	spans[1].StatusCode = span.StatusError
	spans[1].Events = []span.Event{{TimeUnixNano: t1 + 30*Ms, Name: "exception", Attrs: []span.Attr{Str("exception.type", "CardDeclined")}}}
	spans[5].StatusCode = span.StatusOK
	return &span.Batch{Resources: []*span.Resource{front, pay, db, cart, orders, batch}, Scopes: []*span.Scope{sc}, Spans: spans}
}
