package traceql

import (
	"fmt"
	"strconv"
	"strings"
)

// dump renders a tree as an S-expression that shows every field, without
// positions. Tests compare trees through it, independently of String.
func dump(n any) string {
	var b strings.Builder
	dumpTo(&b, n)
	return b.String()
}

func dumpList[T any](b *strings.Builder, head string, list []T) {
	b.WriteString("(" + head)
	for _, x := range list {
		b.WriteByte(' ')
		dumpTo(b, x)
	}
	b.WriteByte(')')
}

func dumpTo(b *strings.Builder, n any) {
	switch x := n.(type) {
	case nil:
		b.WriteString("nil")
	case *Query:
		b.WriteString("(query ")
		dumpTo(b, x.Pipeline)
		if x.Hints != nil {
			b.WriteByte(' ')
			dumpList(b, "with", x.Hints)
		}
		b.WriteByte(')')
	case *Hint:
		b.WriteString(x.Key + "=")
		dumpTo(b, x.Value)
	case *Pipeline:
		if len(x.Stages) == 1 {
			dumpTo(b, x.Stages[0])
			return
		}
		dumpList(b, "|", x.Stages)
	case *SpansetFilter:
		if x.Expr == nil {
			b.WriteString("{}")
			return
		}
		b.WriteString("{")
		dumpTo(b, x.Expr)
		b.WriteString("}")
	case *SpansetOperation:
		b.WriteString("(" + x.Op.String() + " ")
		dumpTo(b, x.LHS)
		b.WriteByte(' ')
		dumpTo(b, x.RHS)
		b.WriteByte(')')
	case *SubPipeline:
		b.WriteString("(sub ")
		dumpTo(b, x.Pipeline)
		b.WriteByte(')')
	case *ScalarFilter:
		dumpTo(b, x.Expr)
	case *GroupBy:
		dumpList(b, "by", x.Fields)
	case *Select:
		dumpList(b, "select", x.Fields)
	case *Coalesce:
		b.WriteString("(coalesce)")
	case *TopK:
		fmt.Fprintf(b, "(topk bottom=%v %d)", x.Bottom, x.N)
	case *MetricsAggregate:
		b.WriteString("(" + x.Func.String())
		if x.Field != nil {
			b.WriteByte(' ')
			dumpTo(b, x.Field)
		}
		for _, q := range x.Quantiles {
			b.WriteString(" q=" + strconv.FormatFloat(q, 'g', -1, 64))
		}
		if x.Selection != nil {
			b.WriteByte(' ')
			dumpTo(b, x.Selection)
		}
		if x.HasTopN {
			fmt.Fprintf(b, " top=%d", x.TopN)
		}
		if x.HasInterval {
			fmt.Fprintf(b, " start=%d end=%d", x.Start, x.End)
		}
		if x.By != nil {
			b.WriteByte(' ')
			dumpList(b, "by", x.By)
		}
		if x.Filter != nil {
			b.WriteString(" " + x.Filter.Op.String() + " ")
			dumpTo(b, x.Filter.Value)
		}
		b.WriteByte(')')
	case *BinaryExpr:
		b.WriteString("(" + x.Op.String() + " ")
		dumpTo(b, x.LHS)
		b.WriteByte(' ')
		dumpTo(b, x.RHS)
		b.WriteByte(')')
	case *UnaryExpr:
		b.WriteString("(" + x.Op.String() + " ")
		dumpTo(b, x.X)
		b.WriteByte(')')
	case *Aggregate:
		b.WriteString("(" + x.Func.String())
		if x.Arg != nil {
			b.WriteByte(' ')
			dumpTo(b, x.Arg)
		}
		b.WriteByte(')')
	case *Attribute:
		p := ""
		if x.Parent {
			p = "parent:"
		}
		fmt.Fprintf(b, "%sattr:%s:%q", p, x.Scope, x.Name)
	case *IntrinsicField:
		b.WriteString("intr:" + x.Intrinsic.String())
	case *Static:
		switch x.Type {
		case StaticString:
			b.WriteString("str:" + strconv.Quote(x.Str))
		case StaticInt:
			b.WriteString("int:" + strconv.FormatInt(x.Int, 10))
		case StaticFloat:
			b.WriteString("float:" + strconv.FormatFloat(x.Float, 'g', -1, 64))
		case StaticDuration:
			b.WriteString("dur:" + strconv.FormatInt(x.Int, 10))
		case StaticBool:
			b.WriteString("bool:" + strconv.FormatBool(x.Bool))
		case StaticNil:
			b.WriteString("nil")
		case StaticStatus:
			b.WriteString("status:" + x.Status.String())
		case StaticKind:
			b.WriteString("kind:" + x.Kind.String())
		default:
			b.WriteString("static:?")
		}
	default:
		fmt.Fprintf(b, "?%T", n)
	}
}
