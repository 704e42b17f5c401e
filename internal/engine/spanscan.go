package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/traceql"
)

// spanLocal reports whether the query's pipeline (before the metrics
// function) and the fields of its metrics function depend on each span
// alone, with no other span of its trace: spanset filters, || between
// such, sub-pipelines of such and select(), over span-level fields (no
// parent., no structural operators, no aggregates, by() or coalesce(),
// no childCount, nested-set or trace-level intrinsics other than
// trace:id). It returns the columns the evaluation reads.
func (p *program) spanLocal() (storage.Columns, bool) {
	if p.metrics == nil {
		return storage.Columns{}, false
	}
	var cols storage.Columns
	keys := map[string]bool{}
	ok := true
	field := func(e traceql.Expr) {
		switch x := e.(type) {
		case *traceql.Attribute:
			if x.Parent {
				ok = false
				return
			}
			switch x.Scope {
			case traceql.ScopeNone, traceql.ScopeSpan:
				keys[x.Name] = true
			case traceql.ScopeEvent:
				cols.Events = true
			case traceql.ScopeLink:
				cols.Links = true
			}
		case *traceql.IntrinsicField:
			switch x.Intrinsic.Canonical() {
			case traceql.IntrinsicSpanName, traceql.IntrinsicSpanStatus, traceql.IntrinsicSpanKind,
				traceql.IntrinsicSpanDuration, traceql.IntrinsicSpanID, traceql.IntrinsicTraceID,
				traceql.IntrinsicInstrumentationName, traceql.IntrinsicInstrumentationVersion:
			case traceql.IntrinsicSpanStatusMessage:
				cols.Text = true
			case traceql.IntrinsicSpanParentID:
				cols.Parent = true
			case traceql.IntrinsicEventName, traceql.IntrinsicEventTimeSinceStart:
				cols.Events = true
			case traceql.IntrinsicLinkTraceID, traceql.IntrinsicLinkSpanID:
				cols.Links = true
			default:
				ok = false
			}
		}
	}
	walk := func(e traceql.Expr) {
		if e == nil {
			return
		}
		var rec func(traceql.Expr)
		rec = func(e traceql.Expr) {
			switch x := e.(type) {
			case *traceql.BinaryExpr:
				rec(x.LHS)
				rec(x.RHS)
			case *traceql.UnaryExpr:
				rec(x.X)
			case *traceql.Aggregate:
				ok = false
			default:
				field(x)
			}
		}
		rec(e)
	}
	var spanset func(traceql.SpansetExpr)
	var stages func([]traceql.Stage)
	spanset = func(e traceql.SpansetExpr) {
		switch s := e.(type) {
		case *traceql.SpansetFilter:
			walk(s.Expr)
		case *traceql.SpansetOperation:
			if s.Op != traceql.SpansetOr {
				ok = false
				return
			}
			spanset(s.LHS)
			spanset(s.RHS)
		case *traceql.SubPipeline:
			stages(s.Pipeline.Stages)
		default:
			ok = false
		}
	}
	stages = func(sts []traceql.Stage) {
		for _, st := range sts {
			switch s := st.(type) {
			case traceql.SpansetExpr:
				spanset(s)
			case *traceql.Select:
				// only changes what a search returns
			default:
				ok = false
			}
		}
	}
	stages(p.stages)
	m := p.metrics
	walk(m.Field)
	for _, f := range m.By {
		walk(f)
	}
	if m.Func == traceql.Compare {
		if m.Selection == nil {
			return cols, false
		}
		spanset(m.Selection)
		cols.Attrs = true
	}
	if !ok {
		return cols, false
	}
	for k := range keys {
		cols.AttrKeys = append(cols.AttrKeys, k)
	}
	slices.Sort(cols.AttrKeys)
	return cols, true
}

// matchLocal evaluates span-local pipeline stages on span i.
func (p *program) matchLocal(t *trace, i int, stages []traceql.Stage) bool {
	for _, st := range stages {
		if s, ok := st.(traceql.SpansetExpr); ok && !p.matchLocalSpanset(t, i, s) {
			return false
		}
	}
	return true
}

func (p *program) matchLocalSpanset(t *trace, i int, e traceql.SpansetExpr) bool {
	switch s := e.(type) {
	case *traceql.SpansetFilter:
		return s.Expr == nil || truthy(p.eval(t, i, s.Expr))
	case *traceql.SpansetOperation:
		return p.matchLocalSpanset(t, i, s.LHS) || p.matchLocalSpanset(t, i, s.RHS)
	case *traceql.SubPipeline:
		return p.matchLocal(t, i, s.Pipeline.Stages)
	}
	return false
}

// spanView is a one-span trace for evaluating span-local expressions:
// its spans slice aliases the span the store yields (no copy), so it is
// valid only during that callback.
type spanView struct {
	t        trace
	parent   [1]int32
	children [1][]int32
	ns       [3][1]int64
	key      []byte
}

var spanViews = sync.Pool{New: func() any {
	v := &spanView{}
	v.t.parent, v.t.children = v.parent[:], v.children[:]
	v.t.nsLeft, v.t.nsRight, v.t.nsParent = v.ns[0][:], v.ns[1][:], v.ns[2][:]
	v.parent[0] = -1
	return v
}}

// scanLocal streams the spans the query's pushdown selects and calls fn,
// possibly concurrently, with a one-span trace for each span that passes
// the span-local pipeline. It returns the number of spans read and
// whether MaxSpans stopped the scan.
func (e *Engine) scanLocal(ctx context.Context, p *program, start, end uint64, cols storage.Columns, fn func(v *spanView) bool) (int64, bool, error) {
	queries := plan(p.q)
	if e.noPushdown {
		queries = []search.Query{{}}
	}
	if len(queries) > 1 {
		// Later searches skip the spans an earlier one yielded, checked
		// with search.MatchSpan on the yielded span: read what it needs.
		for _, q := range queries {
			for _, c := range q.Conds {
				switch c.Scope {
				case search.ScopeAny:
					cols.AttrKeys = append(cols.AttrKeys, c.Key)
					cols.Events, cols.Links = true, true
				case search.ScopeSpan:
					cols.AttrKeys = append(cols.AttrKeys, c.Key)
				case search.ScopeEvent:
					cols.Events = true
				case search.ScopeLink:
					cols.Links = true
				}
			}
		}
	}
	for i := range queries {
		queries[i].Start, queries[i].End = start, end
		if err := queries[i].Compile(); err != nil {
			return 0, false, fmt.Errorf("pushdown: %w", err)
		}
	}
	var read atomic.Int64
	var stopped, limited atomic.Bool
	maxSpans := int64(e.cfg.MaxSpans)
	for k := range queries {
		if stopped.Load() {
			break
		}
		err := e.src.ScanSpans(ctx, &queries[k], cols, func(s *span.Span) bool {
			if n := read.Add(1); maxSpans > 0 && n > maxSpans {
				limited.Store(true)
				stopped.Store(true)
				return false
			}
			for j := range k {
				if queries[j].MatchSpan(s) {
					return true // yielded by search j already
				}
			}
			v := spanViews.Get().(*spanView)
			defer func() {
				v.t.spans = nil // do not keep the store's memory
				spanViews.Put(v)
			}()
			v.t.spans = unsafe.Slice(s, 1)
			v.t.id = s.TraceID
			if !p.matchLocal(&v.t, 0, p.stages) {
				return true
			}
			if !fn(v) {
				stopped.Store(true)
				return false
			}
			return true
		})
		if err != nil {
			return read.Load(), false, err
		}
	}
	n := read.Load()
	if maxSpans > 0 {
		n = min(n, maxSpans)
	}
	return n, limited.Load(), ctx.Err()
}
