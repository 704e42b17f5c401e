package traceql

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The printer writes canonical TraceQL: single spaces around binary
// operators, "{ expr }" for filters, " | " between stages, parentheses only
// where precedence needs them, strings double-quoted with Go escapes,
// durations in their largest exact unit and floats with a decimal point or
// exponent. Parse(q.String()) yields a tree equal to q's.

// String returns the query as canonical TraceQL.
func (q *Query) String() string {
	var b strings.Builder
	writePipeline(&b, q.Pipeline)
	if len(q.Hints) > 0 {
		b.WriteString(" with (")
		for i, h := range q.Hints {
			if i > 0 {
				b.WriteString(", ")
			}
			writeHint(&b, h)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// String returns the pipeline as canonical TraceQL.
func (pl *Pipeline) String() string {
	var b strings.Builder
	writePipeline(&b, pl)
	return b.String()
}

// String returns the hint as "key=value".
func (h *Hint) String() string {
	var b strings.Builder
	writeHint(&b, h)
	return b.String()
}

func writeHint(b *strings.Builder, h *Hint) {
	b.WriteString(h.Key)
	b.WriteByte('=')
	writeStatic(b, h.Value)
}

func writePipeline(b *strings.Builder, pl *Pipeline) {
	if pl == nil {
		return
	}
	for i, st := range pl.Stages {
		if i > 0 {
			b.WriteString(" | ")
		}
		writeStage(b, st)
	}
}

func writeStage(b *strings.Builder, st Stage) {
	switch s := st.(type) {
	case SpansetExpr:
		writeSpanset(b, s, 0, false)
	case *ScalarFilter:
		writeExpr(b, s.Expr)
	case *GroupBy:
		b.WriteString("by(")
		writeList(b, s.Fields)
		b.WriteByte(')')
	case *Select:
		b.WriteString("select(")
		writeList(b, s.Fields)
		b.WriteByte(')')
	case *Coalesce:
		b.WriteString("coalesce()")
	case *MetricsAggregate:
		writeMetrics(b, s)
	case *TopK:
		if s.Bottom {
			b.WriteString("bottomk(")
		} else {
			b.WriteString("topk(")
		}
		b.WriteString(strconv.FormatInt(s.N, 10))
		b.WriteByte(')')
	}
}

func writeList(b *strings.Builder, list []Expr) {
	for i, e := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		writeExpr(b, e)
	}
}

func writeMetrics(b *strings.Builder, m *MetricsAggregate) {
	b.WriteString(m.Func.String())
	b.WriteByte('(')
	switch m.Func {
	case MinOverTime, MaxOverTime, AvgOverTime, SumOverTime, HistogramOverTime, QuantileOverTime:
		writeExpr(b, m.Field)
		for _, q := range m.Quantiles {
			b.WriteString(", ")
			b.WriteString(formatFloat(q))
		}
	case Compare:
		if m.Selection != nil {
			writeSpanset(b, m.Selection, 0, false)
		}
		if m.HasTopN {
			b.WriteString(", ")
			b.WriteString(strconv.FormatInt(m.TopN, 10))
			if m.HasInterval {
				b.WriteString(", ")
				b.WriteString(strconv.FormatInt(m.Start, 10))
				b.WriteString(", ")
				b.WriteString(strconv.FormatInt(m.End, 10))
			}
		}
	}
	b.WriteByte(')')
	if len(m.By) > 0 {
		b.WriteString(" by (")
		writeList(b, m.By)
		b.WriteByte(')')
	}
	if m.Filter != nil {
		b.WriteByte(' ')
		b.WriteString(m.Filter.Op.String())
		b.WriteByte(' ')
		writeStatic(b, m.Filter.Value)
	}
}

// writeSpanset writes e, parenthesized when its operator binds looser than
// the enclosing one (parentPrec) or equally on the right-hand side.
func writeSpanset(b *strings.Builder, e SpansetExpr, parentPrec int, right bool) {
	switch s := e.(type) {
	case *SpansetFilter:
		if s.Expr == nil {
			b.WriteString("{ }")
			return
		}
		b.WriteString("{ ")
		writeExpr(b, s.Expr)
		b.WriteString(" }")
	case *SpansetOperation:
		prec := s.Op.prec()
		paren := prec < parentPrec || prec == parentPrec && right
		if paren {
			b.WriteByte('(')
		}
		writeSpanset(b, s.LHS, prec, false)
		b.WriteByte(' ')
		b.WriteString(s.Op.String())
		b.WriteByte(' ')
		writeSpanset(b, s.RHS, prec, true)
		if paren {
			b.WriteByte(')')
		}
	case *SubPipeline:
		b.WriteByte('(')
		writePipeline(b, s.Pipeline)
		b.WriteByte(')')
	}
}

// exprPrec is the binding power of e as an operand: binary operators by
// their precedence, unary operators 6, everything else 8 (atoms).
func exprPrec(e Expr) int {
	switch x := e.(type) {
	case *BinaryExpr:
		return x.Op.prec()
	case *UnaryExpr:
		return 6
	}
	return 8
}

func writeExpr(b *strings.Builder, e Expr) {
	switch x := e.(type) {
	case *Static:
		writeStatic(b, x)
	case *Attribute:
		writeAttribute(b, x)
	case *IntrinsicField:
		b.WriteString(x.Intrinsic.String())
	case *Aggregate:
		b.WriteString(x.Func.String())
		b.WriteByte('(')
		if x.Arg != nil {
			writeExpr(b, x.Arg)
		}
		b.WriteByte(')')
	case *UnaryExpr:
		b.WriteString(x.Op.String())
		_, isBin := x.X.(*BinaryExpr)
		s, isStatic := x.X.(*Static)
		if isBin || isStatic && isNegative(s) {
			b.WriteByte('(')
			writeExpr(b, x.X)
			b.WriteByte(')')
		} else {
			writeExpr(b, x.X)
		}
	case *BinaryExpr:
		writeOperand(b, x.Op, x.LHS, false)
		b.WriteByte(' ')
		b.WriteString(x.Op.String())
		b.WriteByte(' ')
		writeOperand(b, x.Op, x.RHS, true)
	}
}

func writeOperand(b *strings.Builder, op Op, e Expr, right bool) {
	pp, cp := op.prec(), exprPrec(e)
	paren := cp < pp
	if cp == pp {
		switch {
		case op == OpPow:
			paren = !right
		case op.IsComparison():
			paren = true
		default:
			paren = right
		}
	}
	if paren {
		b.WriteByte('(')
		writeExpr(b, e)
		b.WriteByte(')')
		return
	}
	writeExpr(b, e)
}

func isNegative(s *Static) bool {
	switch s.Type {
	case StaticInt, StaticDuration:
		return s.Int < 0
	case StaticFloat:
		return s.Float < 0 || s.Float == 0 && strings.HasPrefix(formatFloat(s.Float), "-")
	}
	return false
}

func writeStatic(b *strings.Builder, s *Static) {
	switch s.Type {
	case StaticString:
		b.WriteString(strconv.Quote(s.Str))
	case StaticInt:
		b.WriteString(strconv.FormatInt(s.Int, 10))
	case StaticFloat:
		b.WriteString(formatFloat(s.Float))
	case StaticDuration:
		b.WriteString(formatDuration(s.Int))
	case StaticBool:
		b.WriteString(strconv.FormatBool(s.Bool))
	case StaticNil:
		b.WriteString("nil")
	case StaticStatus:
		b.WriteString(s.Status.String())
	case StaticKind:
		b.WriteString(s.Kind.String())
	}
}

// formatFloat writes f so that it lexes back as the same float: the
// shortest representation, with ".0" added when it would read as an int.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// formatDuration writes ns in the largest unit that divides it exactly.
func formatDuration(ns int64) string {
	sign := ""
	u := uint64(ns)
	if ns < 0 {
		sign = "-"
		u = -u
	}
	if u == 0 {
		return "0s"
	}
	for _, unit := range []struct {
		n    uint64
		name string
	}{{3600e9, "h"}, {60e9, "m"}, {1e9, "s"}, {1e6, "ms"}, {1e3, "us"}} {
		if u%unit.n == 0 {
			return sign + strconv.FormatUint(u/unit.n, 10) + unit.name
		}
	}
	return sign + strconv.FormatUint(u, 10) + "ns"
}

func writeAttribute(b *strings.Builder, a *Attribute) {
	if a.Parent {
		b.WriteString("parent.")
	}
	if a.Scope != ScopeNone {
		b.WriteString(a.Scope.String())
		b.WriteByte('.')
	} else if !a.Parent {
		b.WriteByte('.')
	}
	if bareName(a.Name, a.Parent && a.Scope == ScopeNone) {
		b.WriteString(a.Name)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(a.Name); i++ {
		if c := a.Name[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(a.Name[i])
	}
	b.WriteByte('"')
}

// bareName reports whether an attribute name lexes back unquoted: dot
// separated non-empty segments of attribute characters, not starting with a
// digit, and, after an unscoped "parent.", not starting with a scope name.
func bareName(name string, parentUnscoped bool) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for seg := range strings.SplitSeq(name, ".") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); {
			r, n := utf8.DecodeRuneInString(seg[i:])
			if r == utf8.RuneError && n <= 1 || !isAttrRune(r) {
				return false
			}
			i += n
		}
	}
	if parentUnscoped {
		first, _, _ := strings.Cut(name, ".")
		if _, ok := scopeByName[first]; ok && strings.Contains(name, ".") {
			return false
		}
	}
	return true
}

// String returns the filter as canonical TraceQL.
func (s *SpansetFilter) String() string { return spansetString(s) }

// String returns the operation as canonical TraceQL.
func (s *SpansetOperation) String() string { return spansetString(s) }

// String returns the parenthesized pipeline as canonical TraceQL.
func (s *SubPipeline) String() string { return spansetString(s) }

func spansetString(e SpansetExpr) string {
	var b strings.Builder
	writeSpanset(&b, e, 0, false)
	return b.String()
}

func stageString(st Stage) string {
	var b strings.Builder
	writeStage(&b, st)
	return b.String()
}

// String returns the stage as canonical TraceQL.
func (s *ScalarFilter) String() string { return stageString(s) }

// String returns the stage as canonical TraceQL.
func (s *GroupBy) String() string { return stageString(s) }

// String returns the stage as canonical TraceQL.
func (s *Select) String() string { return stageString(s) }

// String returns the stage as canonical TraceQL.
func (s *Coalesce) String() string { return stageString(s) }

// String returns the stage as canonical TraceQL.
func (s *MetricsAggregate) String() string { return stageString(s) }

// String returns the stage as canonical TraceQL.
func (s *TopK) String() string { return stageString(s) }

// String returns the threshold as "op value".
func (f *MetricsFilter) String() string { return f.Op.String() + " " + f.Value.String() }

func exprString(e Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

// String returns the literal as canonical TraceQL.
func (s *Static) String() string { return exprString(s) }

// String returns the attribute as canonical TraceQL.
func (a *Attribute) String() string { return exprString(a) }

// String returns the intrinsic as written in queries.
func (f *IntrinsicField) String() string { return exprString(f) }

// String returns the expression as canonical TraceQL.
func (e *BinaryExpr) String() string { return exprString(e) }

// String returns the expression as canonical TraceQL.
func (e *UnaryExpr) String() string { return exprString(e) }

// String returns the aggregate as canonical TraceQL.
func (a *Aggregate) String() string { return exprString(a) }
