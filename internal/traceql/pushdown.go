package traceql

import (
	"math"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// Condition is one condition a storage layer can evaluate on a span's
// columns: Field Op Value, with Field an *Attribute or an *IntrinsicField
// and Value a literal. A Condition with Op OpNone and a nil Value only asks
// for the field to be read, because the engine needs it to evaluate a part
// of the filter that could not be pushed down. A bare boolean attribute
// ("{ span.cache.hit }") becomes "span.cache.hit = true".
type Condition struct {
	Field Expr
	Op    Op
	Value *Static
}

// String returns the condition as TraceQL ("span.foo = 1"), or the field
// alone for OpNone.
func (c Condition) String() string {
	if c.Op == OpNone || c.Value == nil {
		return c.Field.String()
	}
	return c.Field.String() + " " + c.Op.String() + " " + c.Value.String()
}

// Conditions is the pushdown of one spanset filter.
//
// Every condition with an operator other than OpNone holds for every span
// the filter matches: storage may skip a span that fails any of them. When
// All is set the conditions are also sufficient: a span matches the filter
// exactly when it satisfies them all, and there is no OpNone condition, so
// storage needs no second pass. When All is false the engine must evaluate
// the filter on the spans that pass, reading the OpNone fields.
type Conditions struct {
	Conds []Condition
	All   bool
}

// Conditions extracts the pushable conditions of the filter. The top-level
// && chain is split into conjuncts; a conjunct that is "field op literal"
// (either way round), or an attribute alone, becomes a condition, "true"
// is dropped, and anything else (||, !, arithmetic, field against field)
// clears All and contributes its fields with OpNone.
func (f *SpansetFilter) Conditions() Conditions {
	out := Conditions{All: true}
	if f.Expr == nil {
		return out
	}
	var conj []Expr
	var flatten func(Expr)
	flatten = func(e Expr) {
		if b, ok := e.(*BinaryExpr); ok && b.Op == OpAnd {
			flatten(b.LHS)
			flatten(b.RHS)
			return
		}
		conj = append(conj, e)
	}
	flatten(f.Expr)
	seen := map[string]bool{}
	for _, e := range conj {
		if c, ok := leafCondition(e); ok {
			out.Conds = append(out.Conds, c)
			continue
		}
		if s, ok := e.(*Static); ok && s.Type == StaticBool && s.Bool {
			continue
		}
		out.All = false
		walkExpr(e, func(x Expr) bool {
			switch x.(type) {
			case *Attribute, *IntrinsicField:
				if k := x.String(); !seen[k] {
					seen[k] = true
					out.Conds = append(out.Conds, Condition{Field: x, Op: OpNone})
				}
			}
			return true
		})
	}
	return out
}

// flipped is the operator with its operands swapped: 1 < x is x > 1.
var flipped = map[Op]Op{OpEq: OpEq, OpNeq: OpNeq, OpLt: OpGt, OpLte: OpGte, OpGt: OpLt, OpGte: OpLte}

func isField(e Expr) bool {
	switch e.(type) {
	case *Attribute, *IntrinsicField:
		return true
	}
	return false
}

func leafCondition(e Expr) (Condition, bool) {
	if a, ok := e.(*Attribute); ok {
		return Condition{Field: a, Op: OpEq, Value: &Static{Range: a.Range, Type: StaticBool, Bool: true}}, true
	}
	b, ok := e.(*BinaryExpr)
	if !ok || !b.Op.IsComparison() {
		return Condition{}, false
	}
	if s, ok := b.RHS.(*Static); ok && isField(b.LHS) {
		return Condition{Field: b.LHS, Op: b.Op, Value: s}, true
	}
	if s, ok := b.LHS.(*Static); ok && isField(b.RHS) {
		if op, ok := flipped[b.Op]; ok {
			return Condition{Field: b.RHS, Op: op, Value: s}, true
		}
	}
	return Condition{}, false
}

// Filters returns the spanset filters of the query's pipeline, including
// those in parenthesized sub-pipelines, in source order. The selection
// filter of compare() is not among them: it splits results, it does not
// select spans.
func (q *Query) Filters() []*SpansetFilter {
	var out []*SpansetFilter
	var spanset func(SpansetExpr)
	var pipeline func(*Pipeline)
	spanset = func(e SpansetExpr) {
		switch s := e.(type) {
		case *SpansetFilter:
			out = append(out, s)
		case *SpansetOperation:
			spanset(s.LHS)
			spanset(s.RHS)
		case *SubPipeline:
			pipeline(s.Pipeline)
		}
	}
	pipeline = func(pl *Pipeline) {
		for _, st := range pl.Stages {
			if s, ok := st.(SpansetExpr); ok {
				spanset(s)
			}
		}
	}
	pipeline(q.Pipeline)
	return out
}

// Untranslated is a condition SearchQuery left out, with the reason.
type Untranslated struct {
	Cond   Condition
	Reason string
}

// SearchTranslation is the native search equivalent of a filter's
// conditions.
type SearchTranslation struct {
	// Query holds the conditions that translate exactly. Since each
	// condition is necessary (see Conditions), every span the filter
	// matches also matches Query.
	Query search.Query
	// Exact reports that Query matches exactly the spans the filter
	// matches: the conditions were all-ANDed and every one translated.
	Exact bool
	// Untranslated lists the conditions left out and why.
	Untranslated []Untranslated
}

// Reasons why a condition does not translate to search.Query.
const (
	reasonNotPushed = "part of a sub-expression that is not a plain condition; the engine evaluates it"
	reasonAttr      = "search.Cond compares non-string values as text (int 5 matches \"5\") and arrays as JSON; TraceQL compares typed values and array elements"
	reasonUnscoped  = "an unscoped attribute looks at the span and its resource; search.ScopeAny also looks at scopes, events and links"
	reasonParent    = "search.Query has no parent-span conditions"
	reasonNoField   = "search.Query has no field for this intrinsic"
	reasonOp        = "search.Query cannot express this operator on this field"
	reasonConflict  = "conflicts with another condition on the same field (the filter matches nothing)"
	reasonDuration  = "search.Query durations treat 0 as unbounded and cannot express this bound"
)

// SearchQuery translates the conditions to clew's native search.Query
// where the semantics agree exactly: span name equality, status and kind
// (in)equality, span duration bounds, resource.service.name equality and
// "scoped attribute != nil" (OpExists). Attribute comparisons do not
// translate, because search compares values as text and arrays as JSON
// while TraceQL compares typed values and array elements.
func (c Conditions) SearchQuery() SearchTranslation {
	var tr SearchTranslation
	var q search.Query
	skip := func(cond Condition, reason string) {
		tr.Untranslated = append(tr.Untranslated, Untranslated{Cond: cond, Reason: reason})
	}
	statusMask, kindMask := uint8(0b111), uint8(0b111111)
	var statusConds, kindConds, durConds []Condition
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	for _, cond := range c.Conds {
		if cond.Op == OpNone || cond.Value == nil {
			skip(cond, reasonNotPushed)
			continue
		}
		v := cond.Value
		switch f := cond.Field.(type) {
		case *IntrinsicField:
			switch f.Intrinsic.Canonical() {
			case IntrinsicSpanName:
				if v.Type != StaticString || cond.Op != OpEq {
					skip(cond, reasonOp)
				} else if q.SpanName != "" && q.SpanName != v.Str || v.Str == "" {
					skip(cond, reasonConflict)
				} else {
					q.SpanName = v.Str
				}
			case IntrinsicSpanStatus:
				if v.Type != StaticStatus || cond.Op != OpEq && cond.Op != OpNeq {
					skip(cond, reasonOp)
					continue
				}
				statusMask &= maskFor(uint8(v.Status), cond.Op, 0b111)
				statusConds = append(statusConds, cond)
			case IntrinsicSpanKind:
				if v.Type != StaticKind || cond.Op != OpEq && cond.Op != OpNeq {
					skip(cond, reasonOp)
					continue
				}
				kindMask &= maskFor(uint8(v.Kind), cond.Op, 0b111111)
				kindConds = append(kindConds, cond)
			case IntrinsicSpanDuration:
				if v.Type != StaticDuration {
					skip(cond, reasonOp)
					continue
				}
				d := v.Int
				switch cond.Op {
				case OpEq:
					lo, hi = max(lo, d), min(hi, d)
				case OpGt:
					if d == math.MaxInt64 {
						lo = d
						hi = math.MinInt64
					} else {
						lo = max(lo, d+1)
					}
				case OpGte:
					lo = max(lo, d)
				case OpLt:
					if d == math.MinInt64 {
						hi = d
					} else {
						hi = min(hi, d-1)
					}
				case OpLte:
					hi = min(hi, d)
				default:
					skip(cond, reasonOp)
					continue
				}
				durConds = append(durConds, cond)
			default:
				skip(cond, reasonNoField)
			}
		case *Attribute:
			switch {
			case f.Parent:
				skip(cond, reasonParent)
			case f.Scope == ScopeResource && f.Name == "service.name" && cond.Op == OpEq && v.Type == StaticString && v.Str != "":
				if q.Service != "" && q.Service != v.Str {
					skip(cond, reasonConflict)
				} else {
					q.Service = v.Str
				}
			case cond.Op == OpNeq && v.Type == StaticNil:
				if f.Scope == ScopeNone {
					skip(cond, reasonUnscoped)
					continue
				}
				q.Conds = append(q.Conds, search.Cond{Scope: searchScope[f.Scope], Key: f.Name, Op: search.OpExists})
			default:
				skip(cond, reasonAttr)
			}
		}
	}
	// Status and kind sets: all values means no constraint, none cannot be
	// expressed (an empty list does not constrain).
	switch statusMask {
	case 0b111:
	case 0:
		for _, cond := range statusConds {
			skip(cond, reasonConflict)
		}
	default:
		for s := range 3 {
			if statusMask&(1<<s) != 0 {
				q.Statuses = append(q.Statuses, span.StatusCode(s))
			}
		}
	}
	switch kindMask {
	case 0b111111:
	case 0:
		for _, cond := range kindConds {
			skip(cond, reasonConflict)
		}
	default:
		for k := range 6 {
			if kindMask&(1<<k) != 0 {
				q.Kinds = append(q.Kinds, span.Kind(k))
			}
		}
	}
	if len(durConds) > 0 {
		// Durations are never negative, so lo <= 0 is no bound; search
		// reads 0 as "unbounded", so an upper bound must be positive.
		switch {
		case lo > hi || hi < 0:
			for _, cond := range durConds {
				skip(cond, reasonConflict)
			}
		case hi == 0:
			for _, cond := range durConds {
				skip(cond, reasonDuration)
			}
		default:
			if lo > 0 {
				q.MinDuration = uint64(lo)
			}
			if hi != math.MaxInt64 {
				q.MaxDuration = uint64(hi)
			}
		}
	}
	tr.Query = q
	tr.Exact = c.All && len(tr.Untranslated) == 0
	return tr
}

var searchScope = map[Scope]search.Scope{
	ScopeSpan: search.ScopeSpan, ScopeResource: search.ScopeResource, ScopeEvent: search.ScopeEvent,
	ScopeLink: search.ScopeLink, ScopeInstrumentation: search.ScopeScope,
}

// maskFor returns the set of enum values (as bits) satisfying "= v" or
// "!= v" among the values in all.
func maskFor(v uint8, op Op, all uint8) uint8 {
	if v >= 8 {
		return 0
	}
	bit := uint8(1) << v
	if op == OpEq {
		return bit & all
	}
	return all &^ bit
}
