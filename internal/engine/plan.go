package engine

import (
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

// plan returns native searches whose union holds every trace the query
// can match: each is a superset pushdown (traceql.SpansetFilter.Pushdown)
// of a spanset filter that any match needs. A filter is needed when the
// pipeline cannot match without it: every spanset stage of the pipeline,
// both sides of && and of the structural and union structural operators,
// the right side of the negated structural operators. Of the needed
// filters the most selective (see score) is used. For "||" both sides
// must be constrained and their searches are unioned. An empty result
// means no trace can match; a single search without conditions means
// every trace in the time range is a candidate.
func plan(q *traceql.Query) []search.Query {
	alts, ok := planStages(pipelineStages(q))
	if !ok {
		return []search.Query{{}}
	}
	return alts
}

// pipelineStages returns the stages before the metrics function.
func pipelineStages(q *traceql.Query) []traceql.Stage {
	var stages []traceql.Stage
	for _, st := range q.Pipeline.Stages {
		if _, ok := st.(*traceql.MetricsAggregate); ok {
			break
		}
		if _, ok := st.(*traceql.TopK); ok {
			break
		}
		stages = append(stages, st)
	}
	return stages
}

// planStages returns the best plan of the spanset stages of a pipeline;
// false when none constrains.
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

// planSpanset plans one spanset expression: its searches and whether
// they constrain. An empty constraining plan matches nothing.
func planSpanset(e traceql.SpansetExpr) ([]search.Query, bool) {
	switch s := e.(type) {
	case *traceql.SpansetFilter:
		alts := s.Pushdown()
		if len(alts) == 1 && traceql.Unconstrained(&alts[0]) {
			return nil, false
		}
		return alts, true
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
			if len(l)+len(r) > 2*traceql.MaxPushdownAlternatives {
				return nil, false
			}
			return append(l[:len(l):len(l)], r...), true
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
// selective search, a little less for each further search (each is a scan
// of its own). A plan matching nothing is the most selective.
func score(alts []search.Query) float64 {
	if len(alts) == 0 {
		return 1e9
	}
	s := -1.0
	for i := range alts {
		if c := selectivity(&alts[i]); s < 0 || c < s {
			s = c
		}
	}
	return s - 0.1*float64(len(alts)-1)
}

// selectivity estimates, without statistics, how few spans q matches: a
// sum of weights per condition. Equality on span names and span
// attributes is the most selective, then the error status, equality on
// resource attributes (services are few), minimum durations, ranges and
// regular expressions; inequalities and presence barely narrow.
func selectivity(q *search.Query) float64 {
	w := 0.0
	if q.SpanName != "" {
		w += 4
	}
	if q.Service != "" {
		w += 2
	}
	if len(q.Statuses) == 1 && q.Statuses[0] == span.StatusError {
		w += 4
	} else if len(q.Statuses) > 0 {
		w += 0.5
	}
	if len(q.Kinds) > 0 {
		w += 1
	}
	if q.MinDuration > 0 {
		w += 2
	}
	if q.MaxDuration > 0 {
		w += 0.5
	}
	for i := range q.Conds {
		c := &q.Conds[i]
		var cw float64
		switch c.Op {
		case search.OpEq:
			cw = 3
			if c.Value.Type == span.TypeString {
				cw = 4
			}
		case search.OpRegex:
			cw = 2
		case search.OpGt, search.OpGe, search.OpLt, search.OpLe:
			cw = 1.5
		case search.OpExists:
			cw = 1
		default:
			cw = 0.5
		}
		if c.Scope == search.ScopeResource || c.Scope == search.ScopeScope {
			cw /= 2
		}
		w += cw
	}
	return w
}
