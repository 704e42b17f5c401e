package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

func TestSearchWindows(t *testing.T) {
	const s = uint64(1e9)
	for _, tc := range []struct {
		start, end uint64
		want       string
	}{
		{0, 0, "[[0 0]]"},
		{0, 100 * s, "[[0 100000000000]]"},
		{1000 * s, 1060 * s, "[[1000000000000 1060000000000]]"},
		{1000 * s, 1100 * s, "[[1085000000000 1100000000000] [1040000000000 1084999999999] [1000000000000 1039999999999]]"},
		{1000 * s, 4600 * s, "[[4585000000000 4600000000000] [4540000000000 4584999999999] [4360000000000 4539999999999] [3640000000000 4359999999999] [1000000000000 3639999999999]]"},
	} {
		if got := fmt.Sprint(searchWindows(tc.start, tc.end)); got != tc.want {
			t.Errorf("searchWindows(%d, %d) = %s, want %s", tc.start, tc.end, got, tc.want)
		}
	}
}

// TestWindowedSearch checks that a search over a long range, done newest
// time slice first, returns the same traces as the whole range searched
// at once, on traces spread over 20 minutes, some of them long.
func TestWindowedSearch(t *testing.T) {
	b := &span.Batch{}
	res := &span.Resource{Attrs: []span.Attr{str("service.name", "svc")}}
	b.Resources = []*span.Resource{res}
	const n = 120
	for i := range n {
		start := uint64(base) + uint64(i)*10e9 // one trace every 10 s
		id := span.TraceID{14: byte(i >> 8), 15: byte(i)}
		root := span.Span{TraceID: id, SpanID: span.SpanID{6: byte(i), 7: 1}, Name: "root", Resource: res,
			StartUnixNano: start, EndUnixNano: start + ms}
		child := span.Span{TraceID: id, SpanID: span.SpanID{6: byte(i), 7: 2}, ParentSpanID: root.SpanID, Name: "child", Resource: res,
			StartUnixNano: start + ms, EndUnixNano: start + 2*ms, Attrs: []span.Attr{num("n", int64(i%7))}}
		if i%10 == 0 { // a long trace: its child starts 3 minutes later
			child.StartUnixNano, child.EndUnixNano = start+180e9, start+181e9
			root.EndUnixNano = child.EndUnixNano
		}
		b.Spans = append(b.Spans, root, child)
	}
	e := New(openStore(t, b), Config{})
	end := uint64(base) + n*10e9
	for _, q := range []string{`{ }`, `{ span.n = 3 }`, `{ name = "child" }`, `{ span.n = 0 } | count() > 0`, `{ name = "root" } > { span.n >= 5 }`} {
		all, err := e.Search(context.Background(), SearchRequest{Query: mustParse(t, q), Start: base, End: end, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, limit := range []int{1, 3, 10, 25} {
			got, err := e.Search(context.Background(), SearchRequest{Query: mustParse(t, q), Start: base, End: end, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			want := all.Traces[:min(limit, len(all.Traces))]
			if len(got.Traces) != len(want) {
				t.Fatalf("%s limit %d: %d traces, want %d", q, limit, len(got.Traces), len(want))
			}
			for i := range want {
				if got.Traces[i].TraceID != want[i].TraceID {
					t.Fatalf("%s limit %d: trace %d is %s, want %s", q, limit, i, got.Traces[i].TraceID, want[i].TraceID)
				}
			}
			if limit == 3 && q == `{ }` && got.Inspected > 10 {
				t.Errorf("%s limit 3 inspected %d traces: the newest slice should answer", q, got.Inspected)
			}
		}
	}
}
