package spanmetrics

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/clew-dev/clew/internal/span"
)

// TestObserveCopies builds batches whose strings alias one buffer, as the
// decoder's do, and reuses the buffer between batches: nothing Observe
// keeps may change with it.
func TestObserveCopies(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dimensions = []string{"tenant"}
	clk := &clock{t: t0.Add(30 * time.Second)}
	m, reg := openReg(t, cfg, clk)
	buf := make([]byte, 0, 256)
	alias := func(s string) string {
		i := len(buf)
		buf = append(buf, s...)
		return unsafe.String(&buf[i], len(s))
	}
	trace := 0
	pad := ""
	batch := func(svc, name, db, addr, tenant string) *span.Batch {
		trace++
		buf = append(buf[:0], pad...) // shifts every string of the batch
		r := &span.Resource{Attrs: []span.Attr{{Key: alias("service.name"), Value: span.StringValue(alias(svc))}}}
		mk := func(id int, kind span.Kind, attrs ...span.Attr) span.Span {
			return span.Span{TraceID: tid(trace), SpanID: sid(id), Name: alias(name), Kind: kind, Resource: r,
				StartUnixNano: uint64(t0.UnixNano()), EndUnixNano: uint64(t0.UnixNano() + 1e6), Attrs: attrs}
		}
		return &span.Batch{Resources: []*span.Resource{r}, Spans: []span.Span{
			mk(1, span.KindClient, span.Attr{Key: alias("db.system.name"), Value: span.StringValue(alias(db))}, span.Attr{Key: alias("tenant"), Value: span.StringValue(alias(tenant))}),
			mk(2, span.KindClient, span.Attr{Key: alias("server.address"), Value: span.StringValue(alias(addr))}),
		}}
	}
	m.Observe(batch("alpha", "query", "redis", "api.one", "t1"))
	m.Observe(batch("bravo", "fetch", "mysql", "api.two", "t2"))
	for i := range buf {
		buf[i] = 'x'
	}
	clk.add(time.Minute) // the server.address spans become external edges
	m.Tick(clk.now())
	// Another operation: its RED entry has no cached edge, so the edge is
	// looked up by key.
	pad = "shift"
	m.Observe(batch("alpha", "query2", "redis", "api.one", "t1"))

	got := edgeCounts(t, m)
	want := []string{"alpha>api.one/virtual_node=1/0", "alpha>redis/database=2/0", "bravo>api.two/virtual_node=1/0", "bravo>mysql/database=1/0"}
	if !slices.Equal(got, want) {
		t.Fatalf("edges %v, want %v", got, want)
	}
	s, err := m.Range(context.Background(), nil, t0, t0.Add(time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, x := range s {
		keys = append(keys, x.Key.Service+"/"+x.Key.Operation)
	}
	if strings.Join(keys, ",") != "alpha/query,alpha/query2,bravo/fetch" {
		t.Fatalf("series %v", keys)
	}
	if v := labelValues(t, reg, "traces_spanmetrics_calls_total", "tenant"); v["t1"] != 2 || v["t2"] != 1 || v[""] != 3 || len(v) != 3 {
		t.Fatalf("tenant values %v", v) // t1, t2 and "" (the server.address spans)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}
