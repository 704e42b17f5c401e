package engine

import (
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/traceql"
)

// plan returns the native searches whose union holds every trace the
// query can match: each is the exact translation of the pushable
// conditions of a spanset filter that any match needs (see
// traceql.Conditions.SearchQuery). A filter is needed when the pipeline
// cannot match without it: every spanset stage of the pipeline, both
// sides of && and of the structural operators, the right side of the
// negated structural operators. For "||" both sides must be constrained
// and their searches are unioned. With nothing to push, the one search is
// empty: every trace in the time range is a candidate.
func plan(q *traceql.Query) []search.Query {
	var stages []traceql.Stage
	for _, st := range q.Pipeline.Stages {
		if _, ok := st.(*traceql.MetricsAggregate); ok {
			break
		}
		stages = append(stages, st)
	}
	if alts, ok := planStages(stages); ok {
		return alts
	}
	return []search.Query{{}}
}

func planStages(stages []traceql.Stage) ([]search.Query, bool) {
	var best []search.Query
	found := false
	for _, st := range stages {
		s, ok := st.(traceql.SpansetExpr)
		if !ok {
			continue
		}
		if alts, ok := planSpanset(s); ok && (!found || score(alts) > score(best)) {
			best, found = alts, true
		}
	}
	return best, found
}

func planSpanset(e traceql.SpansetExpr) ([]search.Query, bool) {
	switch s := e.(type) {
	case *traceql.SpansetFilter:
		q := s.Conditions().SearchQuery().Query
		if constraints(&q) == 0 {
			return nil, false
		}
		return []search.Query{q}, true
	case *traceql.SubPipeline:
		return planStages(s.Pipeline.Stages)
	case *traceql.SpansetOperation:
		switch s.Op {
		case traceql.SpansetOr:
			l, lok := planSpanset(s.LHS)
			r, rok := planSpanset(s.RHS)
			if !lok || !rok {
				return nil, false
			}
			return append(l, r...), true
		case traceql.SpansetNotChild, traceql.SpansetNotParent, traceql.SpansetNotDesc,
			traceql.SpansetNotAncestor, traceql.SpansetNotSibling:
			return planSpanset(s.RHS)
		}
		l, lok := planSpanset(s.LHS)
		r, rok := planSpanset(s.RHS)
		switch {
		case lok && rok:
			if score(r) > score(l) {
				return r, true
			}
			return l, true
		case lok:
			return l, true
		case rok:
			return r, true
		}
	}
	return nil, false
}

// score rates how selective a union of searches is: that of its least
// constrained search.
func score(alts []search.Query) int {
	s := -1
	for i := range alts {
		if c := constraints(&alts[i]); s < 0 || c < s {
			s = c
		}
	}
	return s
}

func constraints(q *search.Query) int {
	n := len(q.Conds)
	for _, set := range []bool{q.Service != "", q.SpanName != "", len(q.Kinds) > 0, len(q.Statuses) > 0, q.MinDuration > 0, q.MaxDuration > 0} {
		if set {
			n++
		}
	}
	return n
}
