package traceql

import (
	"regexp/syntax"
)

// checker type-checks a parsed query and enforces the rules the grammar
// leaves open: where metrics stages may appear, what aggregates accept, the
// argument ranges of functions and hints. It keeps the first error.
type checker struct {
	src string
	err *ParseError
}

func (c *checker) failf(n Node, format string, args ...any) {
	if c.err != nil {
		return
	}
	pos, end := n.Extent()
	c.err = newError(c.src, pos, end, nil, format, args...)
}

func (c *checker) query(q *Query) {
	c.pipeline(q.Pipeline, true)
	seen := map[string]bool{}
	for _, h := range q.Hints {
		if seen[h.Key] {
			c.failf(h, "hint %s is given twice", h.Key)
		}
		seen[h.Key] = true
		c.hint(h)
	}
}

func (c *checker) hint(h *Hint) {
	v := h.Value
	switch h.Key {
	case "most_recent":
		if v.Type != StaticBool {
			c.failf(v, "hint most_recent takes true or false")
		}
	case "exemplars":
		if v.Type != StaticBool && (v.Type != StaticInt || v.Int < 0) {
			c.failf(v, "hint exemplars takes true, false or a non-negative count")
		}
	case "sample":
		if v.Type == StaticBool {
			return
		}
		fallthrough
	case "span_sample", "trace_sample":
		f := v.Float
		if v.Type == StaticInt {
			f = float64(v.Int)
		}
		if v.Type != StaticFloat && v.Type != StaticInt || f <= 0 || f > 1 {
			c.failf(v, "hint %s takes a fraction in (0, 1]", h.Key)
		}
	}
	// Other hints are accepted and left to the engine, as Tempo does.
}

func (c *checker) pipeline(pl *Pipeline, top bool) {
	metrics := false
	for _, st := range pl.Stages {
		if metrics {
			if _, ok := st.(*TopK); !ok {
				c.failf(st, "only topk() or bottomk() may follow a metrics function")
				return
			}
		}
		switch s := st.(type) {
		case SpansetExpr:
			c.spanset(s)
		case *ScalarFilter:
			if !containsAggregate(s.Expr) {
				c.failf(s, "a pipeline filter compares an aggregate, as in count() > 2")
				return
			}
			c.typeOf(s.Expr)
		case *GroupBy:
			c.fields("by", s.Fields)
		case *Select:
			c.fields("select", s.Fields)
		case *Coalesce:
		case *MetricsAggregate:
			if !top {
				c.failf(s, "a metrics function must end the query, not a parenthesized pipeline")
				return
			}
			metrics = true
			c.metrics(s)
		case *TopK:
			if !metrics {
				c.failf(s, "%s() follows a metrics function, as in { } | rate() by (resource.service.name) | %s(10)", topkName(s), topkName(s))
				return
			}
		}
		if c.err != nil {
			return
		}
	}
}

func topkName(t *TopK) string {
	if t.Bottom {
		return "bottomk"
	}
	return "topk"
}

func (c *checker) fields(what string, fields []Expr) {
	for _, f := range fields {
		if !containsField(f) {
			c.failf(f, "%s() takes fields such as resource.service.name, not %s", what, f.String())
			return
		}
		c.typeOf(f)
	}
}

func (c *checker) spanset(e SpansetExpr) {
	switch s := e.(type) {
	case *SpansetFilter:
		if s.Expr != nil {
			c.condition(s.Expr, c.typeOf(s.Expr))
		}
	case *SpansetOperation:
		c.spanset(s.LHS)
		c.spanset(s.RHS)
	case *SubPipeline:
		c.pipeline(s.Pipeline, false)
	}
}

func (c *checker) metrics(m *MetricsAggregate) {
	if m.Field != nil {
		if !containsField(m.Field) {
			c.failf(m.Field, "%s() aggregates a field such as duration, not %s", m.Func, m.Field.String())
			return
		}
		c.numeric(m.Field, m.Func.String()+"()")
	}
	if m.Func == Compare {
		c.spanset(m.Selection)
		if m.HasTopN && m.TopN <= 0 {
			c.failf(m, "compare() needs a positive number of values per attribute, not %d", m.TopN)
		}
		if m.HasInterval && (m.Start < 0 || m.End <= m.Start) {
			c.failf(m, "compare() needs 0 <= start < end, not start %d and end %d", m.Start, m.End)
		}
	}
	c.fields("by", m.By)
}

// numeric checks that e has a type aggregates accept.
func (c *checker) numeric(e Expr, what string) ValueType {
	t := c.typeOf(e)
	switch t {
	case TypeInvalid, TypeInt, TypeFloat, TypeNumber, TypeDuration, TypeAttribute:
		return t
	}
	c.failf(e, "%s needs a number or a duration, not %s (%s)", what, article(t), truncate(e.String()))
	return TypeInvalid
}

// condition checks that e, of type t, is a boolean condition: a
// comparison, a boolean, or an attribute alone (which means "= true").
func (c *checker) condition(e Expr, t ValueType) {
	switch t {
	case TypeInvalid, TypeBool:
		return
	case TypeAttribute:
		if _, ok := e.(*Attribute); ok {
			return
		}
	}
	if f, ok := e.(*IntrinsicField); ok {
		c.failf(e, "%s is not a condition: compare it, as in %s", f.Intrinsic, exampleFor(f.Intrinsic))
		return
	}
	c.failf(e, "expected a condition, found %s expression %s", article(t), truncate(e.String()))
}

func exampleFor(in Intrinsic) string {
	switch in.Type() {
	case TypeDuration:
		return in.String() + " > 100ms"
	case TypeStatus:
		return in.String() + " = error"
	case TypeKind:
		return in.String() + " = server"
	case TypeInt:
		return in.String() + " > 0"
	}
	return in.String() + ` = "value"`
}

// typeOf infers the type of e, reporting type errors; it returns
// TypeInvalid after an error.
func (c *checker) typeOf(e Expr) ValueType {
	if c.err != nil {
		return TypeInvalid
	}
	switch x := e.(type) {
	case *Static:
		return x.ValueType()
	case *Attribute:
		return TypeAttribute
	case *IntrinsicField:
		return x.Intrinsic.Type()
	case *Aggregate:
		if x.Func == Count {
			return TypeInt
		}
		if !containsField(x.Arg) {
			c.failf(x, "%s() aggregates a field such as duration, not %s", x.Func, x.Arg.String())
			return TypeInvalid
		}
		switch t := c.numeric(x.Arg, x.Func.String()+"()"); t {
		case TypeAttribute, TypeNumber:
			return TypeNumber
		case TypeInt:
			if x.Func == Avg {
				return TypeFloat
			}
			return TypeInt
		default:
			return t
		}
	case *UnaryExpr:
		t := c.typeOf(x.X)
		if t == TypeInvalid {
			return t
		}
		if x.Op == OpNot {
			c.condition(x.X, t)
			return TypeBool
		}
		switch t {
		case TypeInt, TypeFloat, TypeNumber, TypeDuration:
			return t
		case TypeAttribute:
			return TypeNumber
		}
		c.failf(x, "unary minus needs a number or a duration, not %s", article(t))
		return TypeInvalid
	case *BinaryExpr:
		lt := c.typeOf(x.LHS)
		rt := c.typeOf(x.RHS)
		if lt == TypeInvalid || rt == TypeInvalid {
			return TypeInvalid
		}
		switch {
		case x.Op == OpAnd || x.Op == OpOr:
			c.condition(x.LHS, lt)
			c.condition(x.RHS, rt)
			return TypeBool
		case x.Op.IsComparison():
			c.comparison(x, lt, rt)
			return TypeBool
		}
		return c.arithmetic(x, lt, rt)
	}
	return TypeInvalid
}

func isNumber(t ValueType) bool { return t == TypeInt || t == TypeFloat || t == TypeNumber }

func (c *checker) comparison(x *BinaryExpr, lt, rt ValueType) {
	op := x.Op
	if op == OpRegex || op == OpNotRegex {
		s, ok := x.RHS.(*Static)
		if !ok || s.Type != StaticString {
			c.failf(x.RHS, "the right side of %s must be a string holding a regular expression", op)
			return
		}
		if lt != TypeString && lt != TypeAttribute {
			c.failf(x.LHS, "%s applies to strings, not to %s", op, article(lt))
			return
		}
		// Parsing is what regexp.Compile does first; it is enough to find
		// every syntax error, without building the matcher.
		if _, err := syntax.Parse(s.Str, syntax.Perl); err != nil {
			c.failf(s, "invalid regular expression: %v", err)
		}
		return
	}
	if lt == TypeNil || rt == TypeNil {
		other, ot := x.LHS, lt
		if lt == TypeNil {
			other, ot = x.RHS, rt
		}
		if op != OpEq && op != OpNeq {
			c.failf(x, "nil compares only with = and !=")
			return
		}
		if _, isStatic := other.(*Static); isStatic || ot == TypeNil {
			c.failf(x, "nil compares with a field, as in span.foo != nil")
		}
		return
	}
	ordered := op == OpLt || op == OpLte || op == OpGt || op == OpGte
	if ordered {
		for _, t := range []ValueType{lt, rt} {
			switch t {
			case TypeBool, TypeStatus, TypeKind:
				c.failf(x, "%s values have no order: use = or !=", t)
				return
			}
		}
	}
	switch {
	case lt == TypeAttribute || rt == TypeAttribute:
		other := lt
		if lt == TypeAttribute {
			other = rt
		}
		if other == TypeStatus || other == TypeKind {
			c.failf(x, "an attribute never holds a %s: compare the %s intrinsic, as in %s", other, other, map[ValueType]string{TypeStatus: "status = error", TypeKind: "kind = server"}[other])
		}
		return
	case lt == rt, isNumber(lt) && isNumber(rt):
		return
	case lt == TypeDuration && rt == TypeNumber, lt == TypeNumber && rt == TypeDuration:
		return
	case lt == TypeDuration && isNumber(rt), rt == TypeDuration && isNumber(lt):
		c.failf(x, "cannot compare a duration with %s: write the duration with a unit, as in 100ms", article(map[bool]ValueType{true: rt, false: lt}[lt == TypeDuration]))
		return
	}
	c.failf(x, "cannot compare %s with %s", article(lt), article(rt))
}

func (c *checker) arithmetic(x *BinaryExpr, lt, rt ValueType) ValueType {
	for i, t := range []ValueType{lt, rt} {
		switch t {
		case TypeInt, TypeFloat, TypeNumber, TypeDuration, TypeAttribute:
			continue
		}
		side := x.LHS
		if i == 1 {
			side = x.RHS
		}
		c.failf(side, "operator %s needs numbers or durations, not %s", x.Op, article(t))
		return TypeInvalid
	}
	ld, rd := lt == TypeDuration, rt == TypeDuration
	if ld || rd {
		switch x.Op {
		case OpAdd, OpSub:
			if (ld && (lt == rt || rt == TypeAttribute || rt == TypeNumber)) || (rd && (lt == TypeAttribute || lt == TypeNumber)) {
				return TypeDuration
			}
			c.failf(x, "operator %s cannot mix a duration with a plain number: give both a unit", x.Op)
			return TypeInvalid
		case OpPow:
			c.failf(x, "operator ^ does not apply to durations")
			return TypeInvalid
		case OpDiv:
			if ld && rd {
				return TypeFloat
			}
		}
		return TypeDuration
	}
	switch {
	case lt == TypeAttribute || rt == TypeAttribute || lt == TypeNumber || rt == TypeNumber:
		return TypeNumber
	case lt == TypeInt && rt == TypeInt:
		return TypeInt
	}
	return TypeFloat
}

// walkExpr calls fn for e and each expression below it, stopping early
// when fn returns false.
func walkExpr(e Expr, fn func(Expr) bool) bool {
	if e == nil {
		return true
	}
	if !fn(e) {
		return false
	}
	switch x := e.(type) {
	case *BinaryExpr:
		return walkExpr(x.LHS, fn) && walkExpr(x.RHS, fn)
	case *UnaryExpr:
		return walkExpr(x.X, fn)
	case *Aggregate:
		return walkExpr(x.Arg, fn)
	}
	return true
}

func containsField(e Expr) bool {
	found := false
	walkExpr(e, func(x Expr) bool {
		switch x.(type) {
		case *Attribute, *IntrinsicField:
			found = true
		}
		return !found
	})
	return found
}

func containsAggregate(e Expr) bool {
	found := false
	walkExpr(e, func(x Expr) bool {
		_, found = x.(*Aggregate)
		return !found
	})
	return found
}

// article returns the type name with "a" or "an".
func article(t ValueType) string {
	switch t {
	case TypeInt, TypeAttribute, TypeInvalid:
		return "an " + t.String()
	}
	return "a " + t.String()
}
