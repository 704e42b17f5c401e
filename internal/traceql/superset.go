package traceql

import (
	"math"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// MaxPushdownAlternatives bounds the native searches Pushdown returns for
// one filter; beyond it an || is not split (its operands do not
// constrain).
const MaxPushdownAlternatives = 8

// Pushdown returns native searches whose union matches every span the
// filter matches: a superset that storage evaluates on its columns, after
// which the engine evaluates the filter itself on what passed.
//
// The filter's expression is brought to a disjunction of conjunctions of
// conditions (|| splits into alternatives, && distributes over them,
// anything that is not a plain "field op literal" is dropped, which only
// widens the result). Each conjunction becomes one search.Query:
//   - attribute comparisons (= != < <= > >= =~ !~ against a string,
//     number, duration or bool, and != nil) become search.Cond with Elems
//     set, so that arrays match by element as in TraceQL; native
//     comparisons are otherwise wider than TraceQL's (a string operand
//     also matches numbers rendered as text, a number also matches
//     numeric strings), never narrower. Unscoped attributes search every
//     scope (search.ScopeAny).
//   - name = literal, status and kind = and !=, and duration bounds map
//     to their exact fields.
//
// A conjunction that no span can satisfy (two different names, status =
// ok && status = error, contradictory duration bounds) is dropped. An
// empty result means the filter matches no span; one query without
// constraints means it cannot be narrowed.
func (f *SpansetFilter) Pushdown() []search.Query {
	var out []search.Query
	for _, conj := range dnf(f.Expr) {
		if q, ok := supersetQuery(conj); ok {
			out = append(out, q)
		}
	}
	for _, q := range out {
		if Unconstrained(&q) {
			return []search.Query{{}}
		}
	}
	return out
}

// Unconstrained reports whether q has no condition (time bounds aside):
// it matches every span.
func Unconstrained(q *search.Query) bool {
	return q.Service == "" && q.SpanName == "" && len(q.Kinds) == 0 && len(q.Statuses) == 0 &&
		q.MinDuration == 0 && q.MaxDuration == 0 && len(q.Conds) == 0
}

// dnf returns a disjunction of conjunctions of conditions implied by e
// (every span satisfying e satisfies one of the conjunctions). nil is
// false (no span), a conjunction without conditions is true.
func dnf(e Expr) [][]Condition {
	if e == nil {
		return [][]Condition{nil}
	}
	switch x := e.(type) {
	case *Static:
		if x.Type == StaticBool && !x.Bool {
			return nil
		}
		return [][]Condition{nil}
	case *BinaryExpr:
		switch x.Op {
		case OpAnd:
			l, r := dnf(x.LHS), dnf(x.RHS)
			if len(l) == 0 || len(r) == 0 {
				return nil
			}
			if len(l)*len(r) > MaxPushdownAlternatives {
				// Either side alone is implied; keep the one split less.
				if len(r) < len(l) {
					return r
				}
				return l
			}
			out := make([][]Condition, 0, len(l)*len(r))
			for _, a := range l {
				for _, b := range r {
					c := make([]Condition, 0, len(a)+len(b))
					out = append(out, append(append(c, a...), b...))
				}
			}
			return out
		case OpOr:
			l, r := dnf(x.LHS), dnf(x.RHS)
			out := append(l[:len(l):len(l)], r...)
			for _, c := range out {
				if len(c) == 0 {
					return [][]Condition{nil}
				}
			}
			if len(out) > MaxPushdownAlternatives {
				return [][]Condition{nil}
			}
			return out
		}
	}
	if c, ok := leafCondition(e); ok {
		return [][]Condition{{c}}
	}
	return [][]Condition{nil}
}

// supersetQuery translates a conjunction of conditions to a search.Query
// that every span satisfying all of them matches. It reports false when
// no span can satisfy them.
func supersetQuery(conds []Condition) (search.Query, bool) {
	var q search.Query
	statusMask, kindMask := uint8(0b111), uint8(0b111111)
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	hasDur := false
	for _, cond := range conds {
		v := cond.Value
		if cond.Op == OpNone || v == nil {
			continue
		}
		switch f := cond.Field.(type) {
		case *IntrinsicField:
			switch f.Intrinsic.Canonical() {
			case IntrinsicSpanName:
				if v.Type != StaticString || cond.Op != OpEq {
					continue
				}
				if q.SpanName != "" && q.SpanName != v.Str {
					return q, false
				}
				if v.Str == "" {
					continue // search reads "" as unconstrained
				}
				q.SpanName = v.Str
			case IntrinsicSpanStatus:
				if v.Type == StaticStatus && (cond.Op == OpEq || cond.Op == OpNeq) {
					statusMask &= maskFor(uint8(v.Status), cond.Op, 0b111)
				}
			case IntrinsicSpanKind:
				if v.Type == StaticKind && (cond.Op == OpEq || cond.Op == OpNeq) {
					kindMask &= maskFor(uint8(v.Kind), cond.Op, 0b111111)
				}
			case IntrinsicSpanDuration:
				if v.Type != StaticDuration && v.Type != StaticInt {
					continue
				}
				d := v.Int
				switch cond.Op {
				case OpEq:
					lo, hi = max(lo, d), min(hi, d)
				case OpGt:
					if d == math.MaxInt64 {
						return q, false
					}
					lo = max(lo, d+1)
				case OpGte:
					lo = max(lo, d)
				case OpLt:
					if d == math.MinInt64 {
						return q, false
					}
					hi = min(hi, d-1)
				case OpLte:
					hi = min(hi, d)
				default:
					continue
				}
				hasDur = true
			}
		case *Attribute:
			if c, ok := attrCond(f, cond.Op, v); ok {
				q.Conds = append(q.Conds, c)
			}
		}
	}
	if statusMask == 0 || kindMask == 0 {
		return q, false
	}
	if statusMask != 0b111 {
		for s := range 3 {
			if statusMask&(1<<s) != 0 {
				q.Statuses = append(q.Statuses, span.StatusCode(s))
			}
		}
	}
	if kindMask != 0b111111 {
		for k := range 6 {
			if kindMask&(1<<k) != 0 {
				q.Kinds = append(q.Kinds, span.Kind(k))
			}
		}
	}
	if hasDur {
		// Durations are never negative (a span ending before it starts
		// lasts 0), so lo <= 0 is no bound; search reads 0 as unbounded,
		// so only a positive upper bound can be expressed.
		if lo > hi || hi < 0 {
			return q, false
		}
		if lo > 0 {
			q.MinDuration = uint64(lo)
		}
		if hi > 0 && hi != math.MaxInt64 {
			q.MaxDuration = uint64(hi)
		}
	}
	return q, true
}

var searchOps = map[Op]search.Op{
	OpEq: search.OpEq, OpNeq: search.OpNe, OpLt: search.OpLt, OpLte: search.OpLe,
	OpGt: search.OpGt, OpGte: search.OpGe, OpRegex: search.OpRegex, OpNotRegex: search.OpNotRegex,
}

// attrCond translates "attribute op literal" to a native condition that
// every span satisfying it matches, or reports false.
func attrCond(a *Attribute, op Op, v *Static) (search.Cond, bool) {
	if a.Parent || a.Name == "" {
		return search.Cond{}, false
	}
	scope := search.ScopeAny
	if a.Scope != ScopeNone {
		s, ok := searchScope[a.Scope]
		if !ok {
			return search.Cond{}, false
		}
		scope = s
	}
	c := search.Cond{Scope: scope, Key: a.Name, Elems: true}
	if v.Type == StaticNil {
		if op != OpNeq {
			return search.Cond{}, false // absence constrains nothing storage can scan for
		}
		c.Op = search.OpExists
		return c, true
	}
	sop, ok := searchOps[op]
	if !ok {
		return search.Cond{}, false
	}
	c.Op = sop
	switch v.Type {
	case StaticString:
		c.Value = span.StringValue(v.Str)
	case StaticInt, StaticDuration:
		c.Value = span.IntValue(v.Int)
	case StaticFloat:
		if math.IsNaN(v.Float) {
			return search.Cond{}, false
		}
		c.Value = span.DoubleValue(v.Float)
	case StaticBool:
		c.Value = span.BoolValue(v.Bool)
	default:
		return search.Cond{}, false
	}
	if (sop == search.OpRegex || sop == search.OpNotRegex) && v.Type != StaticString {
		return search.Cond{}, false
	}
	if v.Type == StaticBool && sop != search.OpEq && sop != search.OpNe {
		return search.Cond{}, false
	}
	return c, true
}
