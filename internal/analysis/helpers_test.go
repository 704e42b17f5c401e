package analysis

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

const ms = uint64(time.Millisecond)

// t0 is the time origin of the hand-made traces.
const t0 = uint64(1_764_000_000_000_000_000)

var resources = map[string]*span.Resource{}

func res(svc string) *span.Resource {
	if r, ok := resources[svc]; ok {
		return r
	}
	r := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue(svc)}, {Key: "service.version", Value: span.StringValue("1.0.0")}}}
	resources[svc] = r
	return r
}

func sid(n int) span.SpanID {
	var id span.SpanID
	id[6], id[7] = byte(n>>8), byte(n)
	if n == 0 {
		return span.SpanID{}
	}
	return id
}

func tid(n int) span.TraceID { return span.TraceID{14: byte(n >> 8), 15: byte(n)} }

// sp builds a span "svc:name" with IDs id and parent (0: none), starting
// startMs after t0 and lasting durMs.
func sp(id, parent int, svcName string, startMs, durMs float64, attrs ...span.Attr) span.Span {
	svc, name, _ := strings.Cut(svcName, ":")
	kind := span.KindInternal
	switch {
	case strings.HasPrefix(name, "GET ") || strings.HasPrefix(name, "POST "):
		kind = span.KindServer
	case strings.HasPrefix(name, "call "):
		kind = span.KindClient
	}
	return span.Span{TraceID: tid(1), SpanID: sid(id), ParentSpanID: sid(parent), Name: name, Kind: kind,
		StartUnixNano: t0 + uint64(startMs*float64(ms)), EndUnixNano: t0 + uint64((startMs+durMs)*float64(ms)),
		Resource: res(svc), Attrs: attrs}
}

func str(k, v string) span.Attr { return span.Attr{Key: k, Value: span.StringValue(v)} }
func num(k string, v int64) span.Attr {
	return span.Attr{Key: k, Value: span.IntValue(v)}
}

// pathString renders a critical path as "name[startMs-endMs] ..." relative
// to t0.
func pathString(segs []PathSegment) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s[%g-%g]", s.Span.Name, float64(s.Start-t0)/float64(ms), float64(s.End-t0)/float64(ms))
	}
	return b.String()
}

func mustSum(t *testing.T, tr *Tree, segs []PathSegment, root int) {
	t.Helper()
	var sum time.Duration
	for _, s := range segs {
		sum += s.Self
	}
	st, en := tr.Interval(root)
	if want := time.Duration(en - st); sum != want {
		t.Errorf("critical path adds up to %v, root lasts %v", sum, want)
	}
}
