package engine

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/clew-dev/clew/internal/traceql"
)

// Label is a named value: a selected span attribute, a by() group of a
// spanset or a label of a metrics series.
type Label struct {
	Key   string
	Value Value
}

// spanset is a set of spans of one trace (indices in start order) and the
// labels the pipeline attached to it (by() groups, aggregate values).
type spanset struct {
	spans  []int32
	labels []Label
}

// program is a compiled query: the syntax tree plus what evaluation needs
// precomputed. It is read-only after compile and safe for concurrent use.
type program struct {
	q *traceql.Query
	// stages are the pipeline stages before any metrics function.
	stages  []traceql.Stage
	metrics *traceql.MetricsAggregate
	topk    []*traceql.TopK
	re      map[*traceql.BinaryExpr]*regexp.Regexp
	// out lists the fields returned with each matched span: those the
	// filters read and those select() names, without duplicates.
	out []outField
}

type outField struct {
	key  string
	expr traceql.Expr
}

// compile prepares q for evaluation.
func compile(q *traceql.Query) (*program, error) {
	p := &program{q: q, re: map[*traceql.BinaryExpr]*regexp.Regexp{}}
	for _, st := range q.Pipeline.Stages {
		switch s := st.(type) {
		case *traceql.MetricsAggregate:
			p.metrics = s
		case *traceql.TopK:
			p.topk = append(p.topk, s)
		default:
			if p.metrics == nil {
				p.stages = append(p.stages, st)
			}
		}
	}
	seen := map[string]bool{}
	addOut := func(e traceql.Expr) {
		var key string
		switch x := e.(type) {
		case *traceql.Attribute:
			if x.Parent {
				return
			}
			key = x.Name
		case *traceql.IntrinsicField:
			switch x.Intrinsic.Canonical() {
			case traceql.IntrinsicSpanName, traceql.IntrinsicSpanDuration:
				return // every returned span carries its name and duration
			}
			key = intrinsicKey(x.Intrinsic)
		default:
			return
		}
		if !seen[key] {
			seen[key] = true
			p.out = append(p.out, outField{key: key, expr: e})
		}
	}
	var err error
	var walk func(traceql.Expr)
	walk = func(e traceql.Expr) {
		switch x := e.(type) {
		case *traceql.BinaryExpr:
			if x.Op == traceql.OpRegex || x.Op == traceql.OpNotRegex {
				if s, ok := x.RHS.(*traceql.Static); ok && s.Type == traceql.StaticString {
					re, e2 := regexp.Compile("^(?:" + s.Str + ")$")
					if e2 != nil && err == nil {
						err = fmt.Errorf("invalid regular expression %q: %w", s.Str, e2)
					}
					p.re[x] = re
				}
			}
			walk(x.LHS)
			walk(x.RHS)
		case *traceql.UnaryExpr:
			walk(x.X)
		case *traceql.Aggregate:
			if x.Arg != nil {
				walk(x.Arg)
			}
		case *traceql.Attribute, *traceql.IntrinsicField:
			addOut(x)
		}
	}
	var spansetWalk func(traceql.SpansetExpr)
	var pipelineWalk func([]traceql.Stage)
	spansetWalk = func(e traceql.SpansetExpr) {
		switch s := e.(type) {
		case *traceql.SpansetFilter:
			if s.Expr != nil {
				walk(s.Expr)
			}
		case *traceql.SpansetOperation:
			spansetWalk(s.LHS)
			spansetWalk(s.RHS)
		case *traceql.SubPipeline:
			pipelineWalk(s.Pipeline.Stages)
		}
	}
	pipelineWalk = func(stages []traceql.Stage) {
		for _, st := range stages {
			switch s := st.(type) {
			case traceql.SpansetExpr:
				spansetWalk(s)
			case *traceql.Select:
				for _, f := range s.Fields {
					addOut(f)
				}
			case *traceql.MetricsAggregate:
				if s.Selection != nil {
					spansetWalk(s.Selection)
				}
			}
		}
	}
	pipelineWalk(q.Pipeline.Stages)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// intrinsicKey is the attribute key under which an intrinsic is returned:
// the unscoped name when there is one ("status", "rootServiceName").
func intrinsicKey(in traceql.Intrinsic) string {
	switch in.Canonical() {
	case traceql.IntrinsicSpanStatus:
		return "status"
	case traceql.IntrinsicSpanStatusMessage:
		return "statusMessage"
	case traceql.IntrinsicSpanKind:
		return "kind"
	case traceql.IntrinsicTraceRootName:
		return "rootName"
	case traceql.IntrinsicTraceRootService:
		return "rootServiceName"
	case traceql.IntrinsicTraceDurationScoped:
		return "traceDuration"
	}
	return in.String()
}

// eval evaluates a field expression on span i.
func (p *program) eval(t *trace, i int, e traceql.Expr) Value {
	switch x := e.(type) {
	case *traceql.Static:
		return fromStatic(x)
	case *traceql.Attribute:
		return t.attr(i, x)
	case *traceql.IntrinsicField:
		return t.intrinsic(i, x.Intrinsic)
	case *traceql.UnaryExpr:
		v := p.eval(t, i, x.X)
		return unary(x.Op, v)
	case *traceql.BinaryExpr:
		switch {
		case x.Op == traceql.OpAnd:
			return boolVal(truthy(p.eval(t, i, x.LHS)) && truthy(p.eval(t, i, x.RHS)))
		case x.Op == traceql.OpOr:
			return boolVal(truthy(p.eval(t, i, x.LHS)) || truthy(p.eval(t, i, x.RHS)))
		case x.Op.IsComparison():
			if other, ok := isNilTest(x); ok {
				return boolVal(p.eval(t, i, other).Nil() == (x.Op == traceql.OpEq))
			}
			return boolVal(compare(x.Op, p.eval(t, i, x.LHS), p.eval(t, i, x.RHS), p.re[x]))
		}
		return arith(x.Op, p.eval(t, i, x.LHS), p.eval(t, i, x.RHS))
	}
	return Value{}
}

// isNilTest reports whether x is "field = nil" or "field != nil" (either
// way round), a presence test, and returns the field.
func isNilTest(x *traceql.BinaryExpr) (traceql.Expr, bool) {
	if x.Op != traceql.OpEq && x.Op != traceql.OpNeq {
		return nil, false
	}
	if s, ok := x.RHS.(*traceql.Static); ok && s.Type == traceql.StaticNil {
		return x.LHS, true
	}
	if s, ok := x.LHS.(*traceql.Static); ok && s.Type == traceql.StaticNil {
		return x.RHS, true
	}
	return nil, false
}

func unary(op traceql.Op, v Value) Value {
	if op == traceql.OpNot {
		return boolVal(!truthy(v))
	}
	switch v.Type {
	case TypeInt, TypeDuration:
		v.Int = -v.Int
		return v
	case TypeFloat:
		v.Float = -v.Float
		return v
	}
	return Value{}
}

// evalAgg evaluates a scalar-filter expression over a spanset.
func (p *program) evalAgg(t *trace, ss *spanset, e traceql.Expr) Value {
	switch x := e.(type) {
	case *traceql.Static:
		return fromStatic(x)
	case *traceql.Aggregate:
		return p.aggregate(t, ss, x)
	case *traceql.UnaryExpr:
		return unary(x.Op, p.evalAgg(t, ss, x.X))
	case *traceql.BinaryExpr:
		switch {
		case x.Op == traceql.OpAnd:
			return boolVal(truthy(p.evalAgg(t, ss, x.LHS)) && truthy(p.evalAgg(t, ss, x.RHS)))
		case x.Op == traceql.OpOr:
			return boolVal(truthy(p.evalAgg(t, ss, x.LHS)) || truthy(p.evalAgg(t, ss, x.RHS)))
		case x.Op.IsComparison():
			return boolVal(compare(x.Op, p.evalAgg(t, ss, x.LHS), p.evalAgg(t, ss, x.RHS), p.re[x]))
		}
		return arith(x.Op, p.evalAgg(t, ss, x.LHS), p.evalAgg(t, ss, x.RHS))
	}
	return Value{}
}

// aggregate computes count(), avg(), min(), max() or sum() over the spans
// of ss. Spans where the field is absent or not numeric are skipped; with
// none left the result is nil. Sums and extremes of ints stay ints and of
// durations stay durations; averages of ints are floats.
func (p *program) aggregate(t *trace, ss *spanset, a *traceql.Aggregate) Value {
	if a.Func == traceql.Count {
		return intVal(int64(len(ss.spans)))
	}
	n := 0
	allInt, allDur := true, true
	var sumI int64
	var sumF float64
	var best Value
	bestF := 0.0
	for _, i := range ss.spans {
		v := p.eval(t, int(i), a.Arg)
		f, ok := v.number()
		if !ok || len(v.multi) > 0 {
			continue
		}
		n++
		allInt = allInt && v.Type == TypeInt
		allDur = allDur && v.Type == TypeDuration
		sumI += v.Int
		sumF += f
		if n == 1 || (a.Func == traceql.Min && f < bestF) || (a.Func == traceql.Max && f > bestF) {
			best, bestF = v, f
		}
	}
	if n == 0 {
		return Value{}
	}
	switch a.Func {
	case traceql.Min, traceql.Max:
		return best
	case traceql.Sum:
		switch {
		case allDur:
			return durVal(sumI)
		case allInt:
			return intVal(sumI)
		}
		return floatVal(sumF)
	case traceql.Avg:
		if allDur {
			return durVal(int64(math.Round(sumF / float64(n))))
		}
		return floatVal(sumF / float64(n))
	}
	return Value{}
}

// run evaluates the query's spanset pipeline on a trace and returns the
// non-empty spansets it selects.
func (p *program) run(t *trace) []spanset {
	all := make([]int32, len(t.spans))
	for i := range all {
		all[i] = int32(i)
	}
	return p.pipeline(t, p.stages, []spanset{{spans: all}})
}

func (p *program) pipeline(t *trace, stages []traceql.Stage, in []spanset) []spanset {
	cur := in
	for _, st := range stages {
		var next []spanset
		switch s := st.(type) {
		case traceql.SpansetExpr:
			for k := range cur {
				next = append(next, p.spansetExpr(t, s, &cur[k])...)
			}
		case *traceql.ScalarFilter:
			for k := range cur {
				ss := cur[k]
				if truthy(p.evalAgg(t, &ss, s.Expr)) {
					if a, ok := s.Expr.LHS.(*traceql.Aggregate); ok {
						ss.labels = append(slices.Clip(ss.labels), Label{Key: a.String(), Value: p.evalAgg(t, &ss, a)})
					}
					next = append(next, ss)
				}
			}
		case *traceql.GroupBy:
			for k := range cur {
				next = append(next, p.groupBy(t, s.Fields, &cur[k])...)
			}
		case *traceql.Coalesce:
			if len(cur) > 0 {
				var spans []int32
				for k := range cur {
					spans = union(spans, cur[k].spans)
				}
				next = []spanset{{spans: spans}}
			}
		default: // select() only changes what is returned
			next = cur
		}
		cur = next
		if len(cur) == 0 {
			return nil
		}
	}
	return cur
}

// groupBy splits ss by the values of fields on each span, in order of
// first appearance. A field absent on a span groups with the other spans
// lacking it, and adds no label.
func (p *program) groupBy(t *trace, fields []traceql.Expr, ss *spanset) []spanset {
	idx := map[string]int{}
	var out []spanset
	var kb strings.Builder
	vals := make([]Value, len(fields))
	for _, i := range ss.spans {
		kb.Reset()
		for f, e := range fields {
			vals[f] = p.eval(t, int(i), e)
			kb.WriteString(vals[f].key())
			kb.WriteByte(0)
		}
		k := kb.String()
		g, ok := idx[k]
		if !ok {
			g = len(out)
			idx[k] = g
			labels := slices.Clip(ss.labels)
			for f, e := range fields {
				if !vals[f].Nil() {
					labels = append(labels, Label{Key: "by(" + e.String() + ")", Value: vals[f]})
				}
			}
			out = append(out, spanset{labels: labels})
		}
		out[g].spans = append(out[g].spans, i)
	}
	return out
}

// spansetExpr evaluates a spanset expression within the spans of in.
func (p *program) spansetExpr(t *trace, e traceql.SpansetExpr, in *spanset) []spanset {
	switch s := e.(type) {
	case *traceql.SpansetFilter:
		var out []int32
		for _, i := range in.spans {
			if s.Expr == nil || truthy(p.eval(t, int(i), s.Expr)) {
				out = append(out, i)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return []spanset{{spans: out, labels: in.labels}}
	case *traceql.SubPipeline:
		return p.pipeline(t, s.Pipeline.Stages, []spanset{*in})
	case *traceql.SpansetOperation:
		lhs := flatten(p.spansetExpr(t, s.LHS, in))
		rhs := flatten(p.spansetExpr(t, s.RHS, in))
		var out []int32
		switch s.Op {
		case traceql.SpansetAnd:
			if len(lhs) > 0 && len(rhs) > 0 {
				out = union(lhs, rhs)
			}
		case traceql.SpansetOr:
			out = union(lhs, rhs)
		default:
			out = structural(t, s.Op, lhs, rhs)
		}
		if len(out) == 0 {
			return nil
		}
		return []spanset{{spans: out, labels: in.labels}}
	}
	return nil
}

// flatten merges spansets into one sorted set of spans.
func flatten(sets []spanset) []int32 {
	switch len(sets) {
	case 0:
		return nil
	case 1:
		return sets[0].spans
	}
	var out []int32
	for _, s := range sets {
		out = union(out, s.spans)
	}
	return out
}

// union merges two sorted sets.
func union(a, b []int32) []int32 {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]int32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// structural evaluates a structural operator: the spans of rhs related to
// a span of lhs (child, parent, descendant, ancestor, sibling); the spans
// of rhs not so related for the negated forms; and for the union forms
// the related spans of both sides.
func structural(t *trace, op traceql.SpansetOp, lhs, rhs []int32) []int32 {
	var rel, conv traceql.SpansetOp
	neg, both := false, false
	switch op {
	case traceql.SpansetChild, traceql.SpansetParent, traceql.SpansetDescendant, traceql.SpansetAncestor, traceql.SpansetSibling:
		rel = op
	case traceql.SpansetNotChild:
		rel, neg = traceql.SpansetChild, true
	case traceql.SpansetNotParent:
		rel, neg = traceql.SpansetParent, true
	case traceql.SpansetNotDesc:
		rel, neg = traceql.SpansetDescendant, true
	case traceql.SpansetNotAncestor:
		rel, neg = traceql.SpansetAncestor, true
	case traceql.SpansetNotSibling:
		rel, neg = traceql.SpansetSibling, true
	case traceql.SpansetUnionChild:
		rel, both = traceql.SpansetChild, true
	case traceql.SpansetUnionParent:
		rel, both = traceql.SpansetParent, true
	case traceql.SpansetUnionDesc:
		rel, both = traceql.SpansetDescendant, true
	case traceql.SpansetUnionAnc:
		rel, both = traceql.SpansetAncestor, true
	case traceql.SpansetUnionSib:
		rel, both = traceql.SpansetSibling, true
	default:
		return nil
	}
	out := related(t, rel, lhs, rhs, neg)
	if both && len(out) > 0 {
		switch rel {
		case traceql.SpansetChild:
			conv = traceql.SpansetParent
		case traceql.SpansetParent:
			conv = traceql.SpansetChild
		case traceql.SpansetDescendant:
			conv = traceql.SpansetAncestor
		case traceql.SpansetAncestor:
			conv = traceql.SpansetDescendant
		default:
			conv = traceql.SpansetSibling
		}
		out = union(out, related(t, conv, out, lhs, false))
	}
	return out
}

// related returns the spans b of rhs for which "some a of lhs rel b"
// holds (or, with neg, does not): rel Child means b is a child of a,
// Parent that b is a's parent, Descendant and Ancestor likewise over
// several generations (by nested-set numbers), Sibling that a and b are
// distinct spans with the same parent.
func related(t *trace, rel traceql.SpansetOp, lhs, rhs []int32, neg bool) []int32 {
	n := len(t.spans)
	var match func(b int32) bool
	switch rel {
	case traceql.SpansetChild:
		inL := make([]bool, n)
		for _, a := range lhs {
			inL[a] = true
		}
		match = func(b int32) bool { p := t.parent[b]; return p >= 0 && inL[p] }
	case traceql.SpansetParent:
		hasChild := make([]bool, n)
		for _, a := range lhs {
			if p := t.parent[a]; p >= 0 {
				hasChild[p] = true
			}
		}
		match = func(b int32) bool { return hasChild[b] }
	case traceql.SpansetSibling:
		cnt := make([]int32, n)
		inL := make([]bool, n)
		for _, a := range lhs {
			inL[a] = true
			if p := t.parent[a]; p >= 0 {
				cnt[p]++
			}
		}
		match = func(b int32) bool {
			p := t.parent[b]
			if p < 0 {
				return false
			}
			c := cnt[p]
			if inL[b] {
				c--
			}
			return c > 0
		}
	case traceql.SpansetDescendant:
		// b descends from some a when left(a) < left(b) < right(a): sort
		// the intervals of lhs by left and keep a running maximum of right.
		type iv struct{ l, r int64 }
		ivs := make([]iv, len(lhs))
		for k, a := range lhs {
			ivs[k] = iv{t.nsLeft[a], t.nsRight[a]}
		}
		slices.SortFunc(ivs, func(x, y iv) int { return cmpOrdered(x.l, y.l) })
		maxR := make([]int64, len(ivs))
		for k := range ivs {
			maxR[k] = ivs[k].r
			if k > 0 {
				maxR[k] = max(maxR[k], maxR[k-1])
			}
		}
		match = func(b int32) bool {
			x := t.nsLeft[b]
			k, _ := slices.BinarySearchFunc(ivs, x, func(v iv, x int64) int { return cmpOrdered(v.l, x) })
			return k > 0 && maxR[k-1] > x
		}
	case traceql.SpansetAncestor:
		lefts := make([]int64, len(lhs))
		for k, a := range lhs {
			lefts[k] = t.nsLeft[a]
		}
		slices.Sort(lefts)
		match = func(b int32) bool {
			k, found := slices.BinarySearch(lefts, t.nsLeft[b]+1)
			_ = found
			return k < len(lefts) && lefts[k] < t.nsRight[b]
		}
	default:
		return nil
	}
	var out []int32
	for _, b := range rhs {
		if match(b) != neg {
			out = append(out, b)
		}
	}
	return out
}
