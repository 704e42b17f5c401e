package engine

import (
	"cmp"
	"slices"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

// trace is one materialised trace with its span tree. Spans keep the
// store's order (start time); parent and children are indices.
type trace struct {
	id       span.TraceID
	spans    []span.Span
	parent   []int32 // -1 when the parent is absent or the span is a root
	children [][]int32
	// Nested-set numbering over the span tree: a span's left and right
	// bracket the numbers of all its descendants. nsParent is the parent's
	// left number, -1 for a true root and 0 for a span whose parent has
	// not arrived.
	nsLeft, nsRight, nsParent []int64
	root                      int // -1 when the trace has no root
	start, end                uint64
}

// newTrace builds the span tree of spans (sorted by start time, as
// FindTrace returns them).
func newTrace(id span.TraceID, spans []span.Span) *trace {
	n := len(spans)
	t := &trace{id: id, spans: spans, parent: make([]int32, n), children: make([][]int32, n),
		nsLeft: make([]int64, n), nsRight: make([]int64, n), nsParent: make([]int64, n), root: -1}
	if n == 0 {
		return t
	}
	byID := make(map[span.SpanID]int32, n)
	for i := range spans {
		if _, dup := byID[spans[i].SpanID]; !dup {
			byID[spans[i].SpanID] = int32(i)
		}
	}
	t.start, t.end = spans[0].StartUnixNano, spans[0].EndUnixNano
	orphan := -1
	var tops []int32
	for i := range spans {
		s := &spans[i]
		t.start = min(t.start, s.StartUnixNano)
		t.end = max(t.end, s.EndUnixNano)
		t.parent[i] = -1
		if s.ParentSpanID.IsZero() {
			if t.root < 0 {
				t.root = i
			}
			tops = append(tops, int32(i))
			continue
		}
		p, ok := byID[s.ParentSpanID]
		if !ok || int(p) == i {
			if orphan < 0 {
				orphan = i
			}
			tops = append(tops, int32(i))
			continue
		}
		t.parent[i] = p
		t.children[p] = append(t.children[p], int32(i))
	}
	if t.root < 0 {
		t.root = orphan
	}
	// Number the trees depth-first, true roots first, children in start
	// order. An explicit stack keeps deep traces off the goroutine stack,
	// and the visited marks stop a parent cycle (bad data) from looping.
	slices.SortStableFunc(tops, func(a, b int32) int {
		ra, rb := spans[a].ParentSpanID.IsZero(), spans[b].ParentSpanID.IsZero()
		if ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	visited := make([]bool, n)
	next := int64(1)
	type frame struct {
		i     int32
		child int
	}
	var stack []frame
	number := func(top int32) {
		visited[top] = true
		t.nsLeft[top] = next
		next++
		if spans[top].ParentSpanID.IsZero() {
			t.nsParent[top] = -1
		}
		stack = append(stack[:0], frame{i: top})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.child < len(t.children[f.i]) {
				c := t.children[f.i][f.child]
				f.child++
				if visited[c] {
					continue
				}
				visited[c] = true
				t.nsLeft[c] = next
				t.nsParent[c] = t.nsLeft[f.i]
				next++
				stack = append(stack, frame{i: c})
				continue
			}
			t.nsRight[f.i] = next
			next++
			stack = stack[:len(stack)-1]
		}
	}
	for _, top := range tops {
		number(top)
	}
	// Spans only reachable through a cycle are numbered as their own trees.
	for i := range spans {
		if !visited[i] {
			number(int32(i))
		}
	}
	return t
}

// hasRoot reports whether the trace has a true root: a span without a
// parent. The root intrinsics (rootName, rootServiceName) are nil
// otherwise, as Tempo defines them ("if it exists"), although the
// summary still names the earliest orphan.
func (t *trace) hasRoot() bool { return t.root >= 0 && t.spans[t.root].ParentSpanID.IsZero() }

// lookupAttr finds key in attrs.
func lookupAttr(attrs []span.Attr, key string) (Value, bool) {
	for i := range attrs {
		if attrs[i].Key == key {
			return fromSpan(attrs[i].Value), true
		}
	}
	return Value{}, false
}

// attr reads an attribute of span i.
func (t *trace) attr(i int, a *traceql.Attribute) Value {
	if a.Parent {
		i = int(t.parent[i])
		if i < 0 {
			return Value{}
		}
	}
	s := &t.spans[i]
	switch a.Scope {
	case traceql.ScopeNone:
		if v, ok := lookupAttr(s.Attrs, a.Name); ok {
			return v
		}
		if s.Resource != nil {
			v, _ := lookupAttr(s.Resource.Attrs, a.Name)
			return v
		}
	case traceql.ScopeSpan:
		v, _ := lookupAttr(s.Attrs, a.Name)
		return v
	case traceql.ScopeResource:
		if s.Resource != nil {
			v, _ := lookupAttr(s.Resource.Attrs, a.Name)
			return v
		}
	case traceql.ScopeInstrumentation:
		if s.Scope != nil {
			v, _ := lookupAttr(s.Scope.Attrs, a.Name)
			return v
		}
	case traceql.ScopeEvent:
		var out Value
		for j := range s.Events {
			if v, ok := lookupAttr(s.Events[j].Attrs, a.Name); ok {
				out = appendMulti(out, v)
			}
		}
		return out
	case traceql.ScopeLink:
		var out Value
		for j := range s.Links {
			if v, ok := lookupAttr(s.Links[j].Attrs, a.Name); ok {
				out = appendMulti(out, v)
			}
		}
		return out
	}
	return Value{}
}

// appendMulti adds v, the value of one event or link, to the values of
// out. An array stays one value (with array semantics) among them.
func appendMulti(out, v Value) Value {
	if !v.Nil() {
		out.multi = append(out.multi, v)
	}
	return out
}

// intrinsic reads an intrinsic field of span i.
func (t *trace) intrinsic(i int, in traceql.Intrinsic) Value {
	s := &t.spans[i]
	switch in.Canonical() {
	case traceql.IntrinsicSpanName:
		return strVal(s.Name)
	case traceql.IntrinsicSpanStatus:
		return Value{Type: TypeStatus, Int: int64(s.StatusCode)}
	case traceql.IntrinsicSpanStatusMessage:
		return strVal(s.StatusMessage)
	case traceql.IntrinsicSpanDuration:
		return durVal(int64(s.Duration()))
	case traceql.IntrinsicSpanKind:
		return Value{Type: TypeKind, Int: int64(s.Kind)}
	case traceql.IntrinsicSpanID:
		return strVal(s.SpanID.String())
	case traceql.IntrinsicSpanParentID:
		if s.ParentSpanID.IsZero() {
			return Value{}
		}
		return strVal(s.ParentSpanID.String())
	case traceql.IntrinsicSpanChildCount:
		return intVal(int64(len(t.children[i])))
	case traceql.IntrinsicTraceID:
		return strVal(t.id.String())
	case traceql.IntrinsicTraceRootName:
		if !t.hasRoot() {
			return Value{}
		}
		return strVal(t.spans[t.root].Name)
	case traceql.IntrinsicTraceRootService:
		if !t.hasRoot() {
			return Value{}
		}
		return strVal(t.spans[t.root].Resource.ServiceName())
	case traceql.IntrinsicTraceDurationScoped:
		return durVal(int64(t.end - min(t.start, t.end)))
	case traceql.IntrinsicNestedSetLeft:
		return intVal(t.nsLeft[i])
	case traceql.IntrinsicNestedSetRight:
		return intVal(t.nsRight[i])
	case traceql.IntrinsicNestedSetParent:
		return intVal(t.nsParent[i])
	case traceql.IntrinsicEventName:
		var out Value
		for j := range s.Events {
			out.multi = append(out.multi, strVal(s.Events[j].Name))
		}
		return out
	case traceql.IntrinsicEventTimeSinceStart:
		var out Value
		for j := range s.Events {
			out.multi = append(out.multi, durVal(int64(s.Events[j].TimeUnixNano)-int64(s.StartUnixNano)))
		}
		return out
	case traceql.IntrinsicLinkTraceID:
		var out Value
		for j := range s.Links {
			out.multi = append(out.multi, strVal(s.Links[j].TraceID.String()))
		}
		return out
	case traceql.IntrinsicLinkSpanID:
		var out Value
		for j := range s.Links {
			out.multi = append(out.multi, strVal(s.Links[j].SpanID.String()))
		}
		return out
	case traceql.IntrinsicInstrumentationName:
		if s.Scope == nil {
			return Value{}
		}
		return strVal(s.Scope.Name)
	case traceql.IntrinsicInstrumentationVersion:
		if s.Scope == nil {
			return Value{}
		}
		return strVal(s.Scope.Version)
	}
	return Value{}
}
