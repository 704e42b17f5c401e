package traceql

import (
	"math"
	"strconv"

	"github.com/clew-dev/clew/internal/span"
)

// Parse parses and type-checks a TraceQL query. Every error is a
// *ParseError locating the problem in src; Parse never panics.
func Parse(src string) (*Query, error) {
	if len(src) > MaxQueryLen {
		return nil, newError(src, MaxQueryLen, len(src), nil, "query is %d bytes, longer than the limit of %d", len(src), MaxQueryLen)
	}
	p := &parser{lex: lexer{src: src}}
	p.next()
	q := p.parseQuery()
	if p.err != nil {
		return nil, p.err
	}
	c := &checker{src: src}
	c.query(q)
	if c.err != nil {
		return nil, c.err
	}
	return q, nil
}

// parser is a recursive-descent parser with one token of lookahead. The
// first error is kept in err; after it every token reads as end of query,
// so all loops end and the callers unwind.
type parser struct {
	lex   lexer
	tok   token
	prev  token
	depth int
	err   *ParseError
}

func (p *parser) next() {
	p.prev = p.tok
	p.tok = p.lex.next()
	if p.lex.err != nil && p.err == nil {
		p.err = p.lex.err
	}
}

func (p *parser) failf(pos, end int, expected []string, format string, args ...any) {
	if p.err == nil {
		p.err = newError(p.lex.src, pos, end, expected, format, args...)
	}
	p.lex.off = len(p.lex.src)
	p.lex.err = p.err
	p.tok = token{kind: tEOF, pos: len(p.lex.src), end: len(p.lex.src)}
}

// describe names a token for messages.
func (p *parser) describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tString:
		return "string " + strconv.Quote(truncate(t.text))
	case tAttribute:
		return "attribute " + strconv.Quote(truncate(p.lex.src[t.pos:t.end]))
	}
	return strconv.Quote(truncate(p.lex.src[t.pos:t.end]))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func isOperatorTok(k tokKind) bool { return k >= tAnd && k <= tUSib }

// unexpected fails at the current token.
func (p *parser) unexpected(expected ...string) {
	after := ""
	if isOperatorTok(p.prev.kind) && p.prev.end > 0 {
		after = " after operator " + strconv.Quote(p.lex.src[p.prev.pos:p.prev.end])
	}
	p.failf(p.tok.pos, p.tok.end, expected, "unexpected %s%s", p.describe(p.tok), after)
}

func (p *parser) expect(k tokKind, expected ...string) bool {
	if p.tok.kind != k {
		if len(expected) == 0 {
			expected = []string{strconv.Quote(tokNames[k])}
		}
		p.unexpected(expected...)
		return false
	}
	p.next()
	return true
}

func (p *parser) enter() bool {
	p.depth++
	if p.depth > MaxDepth {
		p.failf(p.tok.pos, p.tok.end, nil, "query nests deeper than %d levels", MaxDepth)
		return false
	}
	return true
}

func (p *parser) leave() { p.depth-- }

var (
	valueExpected   = []string{"a value: string", "number", "duration", "true", "false", "nil", "status", "kind"}
	operandExpected = []string{"an attribute such as span.foo", "an intrinsic such as duration", "a value", `"("`, `"!"`}
	stageExpected   = []string{"a spanset filter { ... }", "an aggregate such as count()", "by()", "select()", "coalesce()", "a metrics function such as rate()", "topk()", "bottomk()"}
	endExpected     = []string{`"|"`, "a spanset operator", "with (...)", "end of query"}
)

func (p *parser) parseQuery() *Query {
	start := p.tok.pos
	pl := p.parsePipeline(true)
	if p.err != nil {
		return nil
	}
	q := &Query{Pipeline: pl}
	if p.tok.kind == tIdent && p.tok.text == "with" {
		q.Hints = p.parseHints()
	}
	if p.err == nil && p.tok.kind != tEOF {
		if p.tok.kind == tAnd || p.tok.kind == tOr {
			p.failf(p.tok.pos, p.tok.end, nil, "unexpected %s after a pipeline stage: wrap the pipeline in parentheses to combine it, as in ({ a } | count() > 1) && { b }", p.describe(p.tok))
		} else {
			p.unexpected(endExpected...)
		}
	}
	if p.err != nil {
		return nil
	}
	q.Range = Range{start, p.prev.end}
	return q
}

func (p *parser) parsePipeline(top bool) *Pipeline {
	start := p.tok.pos
	first := p.parseFirst()
	if p.err != nil {
		return nil
	}
	pl := &Pipeline{Stages: []Stage{first}}
	for p.tok.kind == tPipe {
		p.next()
		st := p.parseStage()
		if p.err != nil {
			return nil
		}
		pl.Stages = append(pl.Stages, st)
	}
	pl.Range = Range{start, p.prev.end}
	return pl
}

// spansetAhead reports whether the tokens from the current one, after any
// opening parentheses, start a spanset filter.
func (p *parser) spansetAhead() bool {
	if p.tok.kind == tLBrace {
		return true
	}
	saved, savedErr := p.lex.off, p.lex.err
	t := p.tok
	for i := 0; t.kind == tLParen && i <= MaxDepth; i++ {
		t = p.lex.next()
	}
	p.lex.off, p.lex.err = saved, savedErr
	return t.kind == tLBrace || t.kind == tLParen
}

var stageKeywords = map[string]bool{
	"by": true, "select": true, "coalesce": true, "topk": true, "bottomk": true,
	"rate": true, "count_over_time": true, "min_over_time": true, "max_over_time": true, "avg_over_time": true,
	"sum_over_time": true, "quantile_over_time": true, "histogram_over_time": true, "compare": true,
}

func (p *parser) parseFirst() Stage {
	switch p.tok.kind {
	case tLBrace:
		return p.parseSpanset(1)
	case tLParen:
		if p.spansetAhead() {
			return p.parseSpanset(1)
		}
		return p.parseScalarFilter()
	case tIdent:
		if stageKeywords[p.tok.text] {
			p.failf(p.tok.pos, p.tok.end, nil, "a query starts with a spanset filter, as in { } | %s(...), not with %s", p.tok.text, p.describe(p.tok))
			return nil
		}
		return p.parseScalarFilter()
	case tInt, tFloat, tDuration, tSub:
		return p.parseScalarFilter()
	}
	p.unexpected(`a spanset filter "{ ... }"`, "an aggregate such as count()")
	return nil
}

func (p *parser) parseStage() Stage {
	switch p.tok.kind {
	case tLBrace:
		return p.parseSpanset(1)
	case tLParen:
		if p.spansetAhead() {
			return p.parseSpanset(1)
		}
		return p.parseScalarFilter()
	case tInt, tFloat, tDuration, tSub:
		return p.parseScalarFilter()
	case tIdent:
		switch p.tok.text {
		case "by":
			start := p.tok.pos
			p.next()
			fields := p.parseFieldList("by")
			if p.err != nil {
				return nil
			}
			return &GroupBy{Range: Range{start, p.prev.end}, Fields: fields}
		case "select":
			start := p.tok.pos
			p.next()
			fields := p.parseFieldList("select")
			if p.err != nil {
				return nil
			}
			for _, f := range fields {
				switch f.(type) {
				case *Attribute, *IntrinsicField:
				default:
					pos, end := f.Extent()
					p.failf(pos, end, nil, "select() takes attributes and intrinsics, not %s", f.String())
					return nil
				}
			}
			return &Select{Range: Range{start, p.prev.end}, Fields: fields}
		case "coalesce":
			start := p.tok.pos
			p.next()
			if !p.expect(tLParen) {
				return nil
			}
			if !p.expect(tRParen, `")": coalesce() takes no arguments`) {
				return nil
			}
			return &Coalesce{Range: Range{start, p.prev.end}}
		case "topk", "bottomk":
			return p.parseTopK()
		case "count", "avg", "min", "max", "sum":
			return p.parseScalarFilter()
		}
		if f, ok := metricsByName[p.tok.text]; ok {
			return p.parseMetrics(f)
		}
		p.failf(p.tok.pos, p.tok.end, stageExpected, "unknown pipeline stage %s", p.describe(p.tok))
		return nil
	}
	p.unexpected(stageExpected...)
	return nil
}

var spansetOps = map[tokKind]SpansetOp{
	tAnd: SpansetAnd, tOr: SpansetOr, tGt: SpansetChild, tLt: SpansetParent, tDesc: SpansetDescendant,
	tAnc: SpansetAncestor, tTilde: SpansetSibling, tNotChild: SpansetNotChild, tNotPar: SpansetNotParent,
	tNotDesc: SpansetNotDesc, tNotAnc: SpansetNotAncestor, tNre: SpansetNotSibling, tUChild: SpansetUnionChild,
	tUPar: SpansetUnionParent, tUDesc: SpansetUnionDesc, tUAnc: SpansetUnionAnc, tUSib: SpansetUnionSib,
}

// parseSpanset parses spanset operands joined by operators of precedence
// minPrec or more (precedence climbing; all left-associative).
func (p *parser) parseSpanset(minPrec int) SpansetExpr {
	lhs := p.parseSpansetOperand()
	for p.err == nil {
		op, ok := spansetOps[p.tok.kind]
		if !ok || op.prec() < minPrec {
			break
		}
		p.next()
		rhs := p.parseSpanset(op.prec() + 1)
		if p.err != nil {
			return nil
		}
		lpos, _ := lhs.Extent()
		_, rend := rhs.Extent()
		lhs = &SpansetOperation{Range: Range{lpos, rend}, Op: op, LHS: lhs, RHS: rhs}
	}
	if p.err != nil {
		return nil
	}
	return lhs
}

func (p *parser) parseSpansetOperand() SpansetExpr {
	switch p.tok.kind {
	case tLBrace:
		return p.parseFilter()
	case tLParen:
		start := p.tok.pos
		if !p.enter() {
			return nil
		}
		defer p.leave()
		p.next()
		pl := p.parsePipeline(false)
		if p.err != nil {
			return nil
		}
		if !p.expect(tRParen, `")"`, `"|"`, "a spanset operator") {
			return nil
		}
		if len(pl.Stages) == 1 {
			if s, ok := pl.Stages[0].(SpansetExpr); ok {
				return s
			}
		}
		return &SubPipeline{Range: Range{start, p.prev.end}, Pipeline: pl}
	}
	p.unexpected(`a spanset filter "{ ... }"`, `"("`)
	return nil
}

func (p *parser) parseFilter() SpansetExpr {
	start := p.tok.pos
	if !p.enter() {
		return nil
	}
	defer p.leave()
	p.next()
	if p.tok.kind == tRBrace {
		p.next()
		return &SpansetFilter{Range: Range{start, p.prev.end}}
	}
	e := p.parseExpr(1, modeField)
	if p.err != nil {
		return nil
	}
	if p.tok.kind != tRBrace {
		p.unexpected(`"}"`, "an operator")
		return nil
	}
	p.next()
	return &SpansetFilter{Range: Range{start, p.prev.end}, Expr: e}
}

// exprMode says where an expression is: inside a spanset filter, where
// fields are allowed, or in a pipeline scalar filter, where only aggregates
// and literals are.
type exprMode uint8

const (
	modeField exprMode = iota
	modeScalar
)

var binaryOps = map[tokKind]Op{
	tOr: OpOr, tAnd: OpAnd, tEq: OpEq, tNeq: OpNeq, tLt: OpLt, tLte: OpLte, tGt: OpGt, tGte: OpGte,
	tRe: OpRegex, tNre: OpNotRegex, tAdd: OpAdd, tSub: OpSub, tMul: OpMul, tDiv: OpDiv, tMod: OpMod,
}

// parseExpr parses binary operators of precedence minPrec or more; ^ and
// the unary operators are handled by parseUnary and parsePower.
func (p *parser) parseExpr(minPrec int, mode exprMode) Expr {
	lhs := p.parseUnary(mode)
	lastCmp := false
	for p.err == nil {
		op, ok := binaryOps[p.tok.kind]
		if !ok {
			break
		}
		prec := op.prec()
		if prec < minPrec || mode == modeScalar && prec < 3 {
			break
		}
		if op.IsComparison() && lastCmp {
			p.failf(p.tok.pos, p.tok.end, nil, "comparison operators cannot be chained: join comparisons with && or use parentheses")
			return nil
		}
		p.next()
		rhs := p.parseExpr(prec+1, mode)
		if p.err != nil {
			return nil
		}
		lastCmp = op.IsComparison()
		lpos, _ := lhs.Extent()
		_, rend := rhs.Extent()
		lhs = &BinaryExpr{Range: Range{lpos, rend}, Op: op, LHS: lhs, RHS: rhs}
	}
	if p.err != nil {
		return nil
	}
	return lhs
}

func (p *parser) parseUnary(mode exprMode) Expr {
	switch p.tok.kind {
	case tNot, tSub:
		opTok := p.tok
		if !p.enter() {
			return nil
		}
		defer p.leave()
		p.next()
		if opTok.kind == tSub {
			switch p.tok.kind {
			case tInt, tFloat, tDuration:
				lit := p.parseNumber(true, opTok.pos)
				if p.err != nil {
					return nil
				}
				return p.parsePowerFrom(lit, mode)
			}
		}
		x := p.parseUnary(mode)
		if p.err != nil {
			return nil
		}
		_, end := x.Extent()
		if opTok.kind == tNot {
			return &UnaryExpr{Range: Range{opTok.pos, end}, Op: OpNot, X: x}
		}
		if s, ok := x.(*Static); ok {
			switch {
			case (s.Type == StaticInt || s.Type == StaticDuration) && s.Int != math.MinInt64:
				return &Static{Range: Range{opTok.pos, end}, Type: s.Type, Int: -s.Int}
			case s.Type == StaticFloat:
				return &Static{Range: Range{opTok.pos, end}, Type: s.Type, Float: -s.Float}
			}
		}
		return &UnaryExpr{Range: Range{opTok.pos, end}, Op: OpNeg, X: x}
	}
	base := p.parsePrimary(mode)
	if p.err != nil {
		return nil
	}
	return p.parsePowerFrom(base, mode)
}

// parsePowerFrom parses "^ exponent" after base; ^ is right-associative
// and binds tighter than unary minus.
func (p *parser) parsePowerFrom(base Expr, mode exprMode) Expr {
	if p.tok.kind != tPow {
		return base
	}
	if !p.enter() {
		return nil
	}
	defer p.leave()
	p.next()
	exp := p.parseUnary(mode)
	if p.err != nil {
		return nil
	}
	pos, _ := base.Extent()
	_, end := exp.Extent()
	return &BinaryExpr{Range: Range{pos, end}, Op: OpPow, LHS: base, RHS: exp}
}

// parseNumber parses the current int, float or duration literal, negated
// when neg is set (a minus directly before a literal is part of it, which
// is how -9223372036854775808 fits in an int64).
func (p *parser) parseNumber(neg bool, pos int) Expr {
	t := p.tok
	p.next()
	r := Range{pos, t.end}
	switch t.kind {
	case tInt:
		text := t.text
		if neg {
			text = "-" + text
		}
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			p.failf(pos, t.end, nil, "integer %s is out of range", text)
			return nil
		}
		return &Static{Range: r, Type: StaticInt, Int: v}
	case tFloat:
		v, _ := strconv.ParseFloat(t.text, 64) // the lexer checked it
		if neg {
			v = -v
		}
		return &Static{Range: r, Type: StaticFloat, Float: v}
	}
	d := t.dur
	if neg {
		d = -d
	}
	return &Static{Range: r, Type: StaticDuration, Int: d}
}

var aggByName = map[string]AggregateFunc{"count": Count, "avg": Avg, "min": Min, "max": Max, "sum": Sum}

func (p *parser) parsePrimary(mode exprMode) Expr {
	t := p.tok
	r := Range{t.pos, t.end}
	switch t.kind {
	case tLParen:
		if !p.enter() {
			return nil
		}
		defer p.leave()
		p.next()
		e := p.parseExpr(1, mode)
		if p.err != nil {
			return nil
		}
		if !p.expect(tRParen, `")"`, "an operator") {
			return nil
		}
		return e
	case tString:
		p.next()
		return &Static{Range: r, Type: StaticString, Str: t.text}
	case tInt, tFloat, tDuration:
		return p.parseNumber(false, t.pos)
	case tAttribute, tIntrinsic:
		if mode == modeScalar {
			p.failf(t.pos, t.end, nil, "%s is a field: fields belong in a spanset filter { ... } or in an aggregate such as avg(%s)", p.describe(t), p.lex.src[t.pos:t.end])
			return nil
		}
		p.next()
		if t.kind == tIntrinsic {
			return &IntrinsicField{Range: r, Intrinsic: t.intr}
		}
		return &Attribute{Range: r, Scope: t.scope, Parent: t.parent, Name: t.text}
	case tIdent:
		switch t.text {
		case "true", "false":
			p.next()
			return &Static{Range: r, Type: StaticBool, Bool: t.text == "true"}
		case "nil":
			p.next()
			return &Static{Range: r, Type: StaticNil}
		case "minInt", "maxInt":
			p.next()
			v := int64(math.MaxInt64)
			if t.text == "minInt" {
				v = math.MinInt64
			}
			return &Static{Range: r, Type: StaticInt, Int: v}
		case "error", "ok", "unset":
			p.next()
			st, _ := span.ParseStatus(t.text)
			return &Static{Range: r, Type: StaticStatus, Status: st}
		}
		if k, ok := span.ParseKind(t.text); ok {
			p.next()
			return &Static{Range: r, Type: StaticKind, Kind: k}
		}
		if in, ok := intrinsicByName[t.text]; ok {
			if mode == modeScalar {
				p.failf(t.pos, t.end, nil, "%s is a field: fields belong in a spanset filter { ... } or in an aggregate such as avg(%s)", p.describe(t), t.text)
				return nil
			}
			p.next()
			return &IntrinsicField{Range: r, Intrinsic: in}
		}
		if f, ok := aggByName[t.text]; ok {
			if mode == modeField {
				p.failf(t.pos, t.end, nil, "aggregate %s() is allowed only as a pipeline stage, as in { ... } | %s(...) > 1", t.text, t.text)
				return nil
			}
			return p.parseAggregate(f)
		}
		p.failf(t.pos, t.end, nil, "unknown identifier %s: write attributes with a scope, as in span.%s, resource.%s or .%s", p.describe(t), t.text, t.text, t.text)
		return nil
	}
	if isOperatorTok(p.prev.kind) && p.prev.kind != tNot {
		p.unexpected(valueExpected...)
	} else {
		p.unexpected(operandExpected...)
	}
	return nil
}

func (p *parser) parseAggregate(f AggregateFunc) Expr {
	start := p.tok.pos
	name := p.tok.text
	p.next()
	if !p.expect(tLParen, `"(" after `+name) {
		return nil
	}
	var arg Expr
	if f == Count {
		if p.tok.kind != tRParen {
			p.failf(p.tok.pos, p.tok.end, nil, "count() takes no arguments")
			return nil
		}
	} else {
		if p.tok.kind == tRParen {
			p.failf(p.tok.pos, p.tok.end, nil, "%s() needs a field, as in %s(duration)", name, name)
			return nil
		}
		if !p.enter() {
			return nil
		}
		arg = p.parseExpr(1, modeField)
		p.leave()
		if p.err != nil {
			return nil
		}
	}
	if !p.expect(tRParen) {
		return nil
	}
	return &Aggregate{Range: Range{start, p.prev.end}, Func: f, Arg: arg}
}

func (p *parser) parseScalarFilter() Stage {
	e := p.parseExpr(3, modeScalar)
	if p.err != nil {
		return nil
	}
	b, ok := e.(*BinaryExpr)
	if !ok || !b.Op.IsComparison() {
		pos, end := e.Extent()
		if p.tok.kind == tAnd || p.tok.kind == tOr {
			p.failf(p.tok.pos, p.tok.end, nil, "pipeline filters cannot be joined with %s: chain them with |", p.describe(p.tok))
			return nil
		}
		p.failf(pos, end, []string{"a comparison such as count() > 2"}, "%s is not a filter", truncate(e.String()))
		return nil
	}
	return &ScalarFilter{Range: b.Range, Expr: b}
}

// parseFieldList parses "( expr, ... )" after by or select.
func (p *parser) parseFieldList(what string) []Expr {
	if !p.expect(tLParen, `"(" after `+what) {
		return nil
	}
	if p.tok.kind == tRParen {
		p.failf(p.tok.pos, p.tok.end, []string{"a field"}, "%s() needs at least one field", what)
		return nil
	}
	if !p.enter() {
		return nil
	}
	defer p.leave()
	var out []Expr
	for {
		e := p.parseExpr(1, modeField)
		if p.err != nil {
			return nil
		}
		out = append(out, e)
		if p.tok.kind != tComma {
			break
		}
		p.next()
	}
	if !p.expect(tRParen, `","`, `")"`) {
		return nil
	}
	return out
}

func (p *parser) parseTopK() Stage {
	start := p.tok.pos
	bottom := p.tok.text == "bottomk"
	name := p.tok.text
	p.next()
	if !p.expect(tLParen) {
		return nil
	}
	if p.tok.kind != tInt {
		p.unexpected("a positive integer: " + name + "(10)")
		return nil
	}
	n, err := strconv.ParseInt(p.tok.text, 10, 64)
	if err != nil || n <= 0 {
		p.failf(p.tok.pos, p.tok.end, nil, "%s() needs a positive integer", name)
		return nil
	}
	p.next()
	if !p.expect(tRParen) {
		return nil
	}
	return &TopK{Range: Range{start, p.prev.end}, Bottom: bottom, N: n}
}

var metricsByName = map[string]MetricsFunc{
	"rate": Rate, "count_over_time": CountOverTime, "min_over_time": MinOverTime, "max_over_time": MaxOverTime,
	"avg_over_time": AvgOverTime, "sum_over_time": SumOverTime, "quantile_over_time": QuantileOverTime,
	"histogram_over_time": HistogramOverTime, "compare": Compare,
}

// parseIntArg parses a (possibly negative) integer literal argument.
func (p *parser) parseIntArg(what string) (int64, bool) {
	pos := p.tok.pos
	neg := false
	if p.tok.kind == tSub {
		neg = true
		p.next()
	}
	if p.tok.kind != tInt {
		p.unexpected("an integer (" + what + ")")
		return 0, false
	}
	e := p.parseNumber(neg, pos)
	if p.err != nil {
		return 0, false
	}
	return e.(*Static).Int, true
}

func (p *parser) parseMetrics(f MetricsFunc) Stage {
	start := p.tok.pos
	name := p.tok.text
	p.next()
	if !p.expect(tLParen, `"(" after `+name) {
		return nil
	}
	if !p.enter() {
		return nil
	}
	m := &MetricsAggregate{Func: f}
	switch f {
	case Rate, CountOverTime:
		if p.tok.kind != tRParen {
			p.failf(p.tok.pos, p.tok.end, nil, "%s() takes no arguments", name)
			return nil
		}
	case MinOverTime, MaxOverTime, AvgOverTime, SumOverTime, HistogramOverTime, QuantileOverTime:
		if p.tok.kind == tRParen {
			p.failf(p.tok.pos, p.tok.end, nil, "%s() needs a field, as in %s(duration)", name, name)
			return nil
		}
		m.Field = p.parseExpr(1, modeField)
		if p.err != nil {
			return nil
		}
		if f == QuantileOverTime {
			if p.tok.kind != tComma {
				p.unexpected(`"," and a quantile: quantile_over_time(duration, 0.99)`)
				return nil
			}
			for p.tok.kind == tComma {
				p.next()
				e := p.parseUnary(modeField)
				if p.err != nil {
					return nil
				}
				s, ok := e.(*Static)
				if !ok || s.Type != StaticFloat && s.Type != StaticInt {
					pos, end := e.Extent()
					p.failf(pos, end, nil, "a quantile must be a number between 0 and 1, such as 0.99")
					return nil
				}
				q := s.Float
				if s.Type == StaticInt {
					q = float64(s.Int)
				}
				if q < 0 || q > 1 {
					pos, end := e.Extent()
					p.failf(pos, end, nil, "quantile %s is outside [0, 1]", s.String())
					return nil
				}
				m.Quantiles = append(m.Quantiles, q)
			}
		}
	case Compare:
		if p.tok.kind != tLBrace && p.tok.kind != tLParen {
			p.unexpected(`a spanset filter: compare({ status = error })`)
			return nil
		}
		m.Selection = p.parseSpanset(1)
		if p.err != nil {
			return nil
		}
		if p.tok.kind == tComma {
			p.next()
			n, ok := p.parseIntArg("the number of values per attribute")
			if !ok {
				return nil
			}
			m.TopN, m.HasTopN = n, true
			if p.tok.kind == tComma {
				p.next()
				s, ok := p.parseIntArg("start, in Unix nanoseconds")
				if !ok {
					return nil
				}
				if !p.expect(tComma, `"," and the end timestamp: compare() takes both start and end or neither`) {
					return nil
				}
				e, ok := p.parseIntArg("end, in Unix nanoseconds")
				if !ok {
					return nil
				}
				m.Start, m.End, m.HasInterval = s, e, true
			}
		}
	}
	p.leave()
	if !p.expect(tRParen) {
		return nil
	}
	if p.tok.kind == tIdent && p.tok.text == "by" {
		p.next()
		m.By = p.parseFieldList("by")
		if p.err != nil {
			return nil
		}
	}
	switch p.tok.kind {
	case tEq, tNeq, tLt, tLte, tGt, tGte:
		opTok := p.tok
		p.next()
		e := p.parseUnary(modeField)
		if p.err != nil {
			return nil
		}
		s, ok := e.(*Static)
		if !ok || s.Type != StaticInt && s.Type != StaticFloat && s.Type != StaticDuration {
			pos, end := e.Extent()
			p.failf(pos, end, nil, "a metrics threshold must be a number or duration literal")
			return nil
		}
		_, end := e.Extent()
		m.Filter = &MetricsFilter{Range: Range{opTok.pos, end}, Op: binaryOps[opTok.kind], Value: s}
	}
	m.Range = Range{start, p.prev.end}
	return m
}

func (p *parser) parseHints() []*Hint {
	p.next() // with
	if !p.expect(tLParen, `"(" after with`) {
		return nil
	}
	if p.tok.kind == tRParen {
		p.failf(p.tok.pos, p.tok.end, []string{"a hint such as most_recent=true"}, "with() needs at least one hint")
		return nil
	}
	var hints []*Hint
	for {
		if p.tok.kind != tIdent {
			p.unexpected("a hint name such as most_recent")
			return nil
		}
		h := &Hint{Key: p.tok.text}
		h.Pos = p.tok.pos
		p.next()
		if !p.expect(tEq, `"=" after the hint name`) {
			return nil
		}
		e := p.parseUnary(modeField)
		if p.err != nil {
			return nil
		}
		s, ok := e.(*Static)
		if !ok {
			pos, end := e.Extent()
			p.failf(pos, end, nil, "a hint value must be a literal")
			return nil
		}
		h.Value = s
		h.End = s.End
		hints = append(hints, h)
		if p.tok.kind != tComma {
			break
		}
		p.next()
	}
	if !p.expect(tRParen, `","`, `")"`) {
		return nil
	}
	return hints
}
