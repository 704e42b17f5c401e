package storage

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

// TestJSONRoundTrip: results and cursors cross a network as JSON without
// losing a bit, times as strings and trace IDs in hex.
func TestJSONRoundTrip(t *testing.T) {
	id := span.TraceID{0: 0xab, 15: 0x01}
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"hit", Hit{TraceID: id, Start: 1<<63 + 1, End: 1<<64 - 1},
			`{"traceID":"ab000000000000000000000000000001","start":"9223372036854775809","end":"18446744073709551615"}`},
		{"cursor", Cursor{Start: 1<<53 + 1, TraceID: id},
			`{"start":"9007199254740993","traceID":"ab000000000000000000000000000001"}`},
		{"cursor with zero id", Cursor{Start: 5}, `{"start":"5","traceID":"00000000000000000000000000000000"}`},
		{"result", SearchResult{Hits: []Hit{{TraceID: id, Start: 2, End: 3}}, Total: 9, TotalIsLowerBound: true, Next: &Cursor{Start: 2, TraceID: id}},
			`{"hits":[{"traceID":"ab000000000000000000000000000001","start":"2","end":"3"}],"total":9,"totalIsLowerBound":true,"next":{"start":"2","traceID":"ab000000000000000000000000000001"}}`},
		{"columns", Columns{Parent: true, AttrKeys: []string{"k"}}, `{"parent":true,"attrKeys":["k"]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("Marshal = %s, want %s", b, c.want)
			}
			p := reflect.New(reflect.TypeOf(c.v))
			if err := json.Unmarshal(b, p.Interface()); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if got := p.Elem().Interface(); !reflect.DeepEqual(got, c.v) {
				t.Errorf("round trip = %+v, want %+v", got, c.v)
			}
		})
	}
	for _, bad := range []string{`{"traceID":"zz","start":"1","end":"2"}`, `{"traceID":"ab","start":1,"end":"2"}`} {
		var h Hit
		if err := json.Unmarshal([]byte(bad), &h); err == nil {
			t.Errorf("Unmarshal(%s) = nil error", bad)
		}
	}
}

// TestLess: newest first, then trace ID ascending; a cursor admits only
// what follows it.
func TestLess(t *testing.T) {
	a := Hit{TraceID: span.TraceID{15: 1}, Start: 10}
	b := Hit{TraceID: span.TraceID{15: 2}, Start: 10}
	c := Hit{TraceID: span.TraceID{15: 0}, Start: 5}
	if !Less(a, b) || Less(b, a) || !Less(b, c) || Less(a, a) {
		t.Error("Less does not order newest first, then by trace ID")
	}
	cur := Cursor{Start: a.Start, TraceID: a.TraceID}
	if cur.After(a) || !cur.After(b) || !cur.After(c) {
		t.Error("Cursor.After admits its own trace or skips a later one")
	}
}
