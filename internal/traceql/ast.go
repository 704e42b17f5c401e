// Package traceql is clew's front end for TraceQL, the trace query language
// of Grafana Tempo: a lexer, a recursive-descent parser, the syntax tree, a
// printer that writes canonical TraceQL, a type checker, and the extraction
// of storage-pushable conditions from spanset filters. It imports only the
// standard library, span and search; executing queries is the job of the
// query engine, which is not written yet.
//
// The language follows Tempo's public documentation; see docs/traceql.md for
// what clew accepts and how errors are reported.
package traceql

import "github.com/clew-dev/clew/internal/span"

// Range is the byte range [Pos, End) of a node in the query text.
type Range struct {
	Pos, End int
}

// Extent returns the node's byte range [pos, end).
func (r Range) Extent() (pos, end int) { return r.Pos, r.End }

// Node is any element of the syntax tree.
type Node interface {
	// Extent returns the byte range [pos, end) the node covers.
	Extent() (pos, end int)
	// String returns the node as canonical TraceQL.
	String() string
}

// Query is a parsed TraceQL query: a pipeline and optional hints.
type Query struct {
	Range
	Pipeline *Pipeline
	// Hints holds the with(...) clause; nil when the query has none.
	Hints []*Hint
}

// Pipeline is a chain of stages separated by "|". The first stage is a
// spanset expression or a scalar filter.
type Pipeline struct {
	Range
	Stages []Stage
}

// Stage is one element of a pipeline: a SpansetExpr, *ScalarFilter,
// *GroupBy, *Select, *Coalesce, *MetricsAggregate or *TopK.
type Stage interface {
	Node
	stage()
}

// SpansetExpr selects spansets: a *SpansetFilter, a *SpansetOperation or a
// parenthesized *SubPipeline.
type SpansetExpr interface {
	Stage
	spansetExpr()
}

// SpansetFilter is "{ expr }", or "{ }" when Expr is nil: the spans for
// which Expr is true.
type SpansetFilter struct {
	Range
	Expr Expr
}

// SpansetOp is an operator between two spansets.
type SpansetOp uint8

// Spanset operators. The structural ones return spans of the right-hand
// side; the union forms (&>, ...) return spans of both sides.
const (
	SpansetAnd SpansetOp = iota + 1
	SpansetOr
	SpansetChild       // >
	SpansetParent      // <
	SpansetDescendant  // >>
	SpansetAncestor    // <<
	SpansetSibling     // ~
	SpansetNotChild    // !>
	SpansetNotParent   // !<
	SpansetNotDesc     // !>>
	SpansetNotAncestor // !<<
	SpansetNotSibling  // !~
	SpansetUnionChild  // &>
	SpansetUnionParent // &<
	SpansetUnionDesc   // &>>
	SpansetUnionAnc    // &<<
	SpansetUnionSib    // &~
)

var spansetOpNames = [...]string{"", "&&", "||", ">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>", "&<", "&>>", "&<<", "&~"}

// String returns the operator's symbol.
func (o SpansetOp) String() string {
	if int(o) < len(spansetOpNames) {
		return spansetOpNames[o]
	}
	return "?"
}

// prec returns the binding power: || binds loosest, then &&, then the
// structural operators, all left-associative.
func (o SpansetOp) prec() int {
	switch o {
	case SpansetOr:
		return 1
	case SpansetAnd:
		return 2
	}
	return 3
}

// SpansetOperation is "LHS op RHS" between two spanset expressions.
type SpansetOperation struct {
	Range
	Op       SpansetOp
	LHS, RHS SpansetExpr
}

// SubPipeline is a parenthesized pipeline used as a spanset operand, such
// as "({ a } | count() > 1) && { b }".
type SubPipeline struct {
	Range
	Pipeline *Pipeline
}

// ScalarFilter is a pipeline stage comparing aggregates, such as
// "count() > 2" or "avg(duration) > 20ms". Expr is a comparison.
type ScalarFilter struct {
	Range
	Expr *BinaryExpr
}

// GroupBy is "by(f, ...)": it splits each spanset by the values of Fields.
type GroupBy struct {
	Range
	Fields []Expr
}

// Select is "select(f, ...)": it adds Fields to the returned spans.
type Select struct {
	Range
	Fields []Expr
}

// Coalesce is "coalesce()": it merges the spansets of a trace into one.
type Coalesce struct {
	Range
}

// MetricsFunc is a TraceQL metrics function.
type MetricsFunc uint8

// Metrics functions.
const (
	Rate MetricsFunc = iota + 1
	CountOverTime
	MinOverTime
	MaxOverTime
	AvgOverTime
	SumOverTime
	QuantileOverTime
	HistogramOverTime
	Compare
)

var metricsNames = [...]string{"", "rate", "count_over_time", "min_over_time", "max_over_time", "avg_over_time", "sum_over_time", "quantile_over_time", "histogram_over_time", "compare"}

// String returns the function's name.
func (f MetricsFunc) String() string {
	if int(f) < len(metricsNames) {
		return metricsNames[f]
	}
	return "?"
}

// MetricsAggregate turns a span query into time series, such as
// "quantile_over_time(duration, .99) by (resource.service.name) > 1s".
type MetricsAggregate struct {
	Range
	Func MetricsFunc
	// Field is the aggregated value of min/max/avg/sum/quantile/histogram.
	Field Expr
	// Quantiles are the quantile_over_time levels, each within [0, 1].
	Quantiles []float64
	// Selection, TopN, Start and End are compare's arguments; TopN, Start
	// and End are 0 when not given.
	Selection   SpansetExpr
	TopN        int64
	Start, End  int64
	HasTopN     bool
	HasInterval bool
	// By lists the grouping fields of "by (...)"; nil when absent.
	By []Expr
	// Filter keeps only data points satisfying "op value"; nil when absent.
	Filter *MetricsFilter
}

// MetricsFilter is a threshold after a metrics function: "> 10".
type MetricsFilter struct {
	Range
	Op    Op
	Value *Static
}

// TopK is "topk(n)" or, when Bottom is set, "bottomk(n)": a second-stage
// metrics operation keeping n series.
type TopK struct {
	Range
	Bottom bool
	N      int64
}

// Hint is one "key=value" of a with(...) clause.
type Hint struct {
	Range
	Key   string
	Value *Static
}

// Expr is a field or scalar expression: *Static, *Attribute, *Intrinsic,
// *BinaryExpr, *UnaryExpr or *Aggregate.
type Expr interface {
	Node
	expr()
}

// Op is an operator of a field or scalar expression. OpNone is used by
// Condition to ask for a field without constraining it.
type Op uint8

// Operators.
const (
	OpNone Op = iota
	OpOr
	OpAnd
	OpEq
	OpNeq
	OpLt
	OpLte
	OpGt
	OpGte
	OpRegex
	OpNotRegex
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
	OpPow
	OpNot // unary !
	OpNeg // unary -
)

var opNames = [...]string{"none", "||", "&&", "=", "!=", "<", "<=", ">", ">=", "=~", "!~", "+", "-", "*", "/", "%", "^", "!", "-"}

// String returns the operator's symbol ("none" for OpNone).
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// IsComparison reports whether o is one of = != < <= > >= =~ !~.
func (o Op) IsComparison() bool { return o >= OpEq && o <= OpNotRegex }

// prec returns the binary precedence: || 1, && 2, comparisons 3
// (non-associative), + - 4, * / % 5, ^ 7 (right-associative; unary
// operators sit at 6).
func (o Op) prec() int {
	switch {
	case o == OpOr:
		return 1
	case o == OpAnd:
		return 2
	case o.IsComparison():
		return 3
	case o == OpAdd || o == OpSub:
		return 4
	case o == OpMul || o == OpDiv || o == OpMod:
		return 5
	case o == OpPow:
		return 7
	}
	return 0
}

// BinaryExpr is "LHS op RHS".
type BinaryExpr struct {
	Range
	Op       Op
	LHS, RHS Expr
}

// UnaryExpr is "!X" or "-X". A minus before a number or duration literal
// is folded into the literal instead.
type UnaryExpr struct {
	Range
	Op Op
	X  Expr
}

// AggregateFunc is a spanset aggregate of a pipeline scalar filter.
type AggregateFunc uint8

// Aggregate functions.
const (
	Count AggregateFunc = iota + 1
	Avg
	Min
	Max
	Sum
)

var aggNames = [...]string{"", "count", "avg", "min", "max", "sum"}

// String returns the function's name.
func (f AggregateFunc) String() string {
	if int(f) < len(aggNames) {
		return aggNames[f]
	}
	return "?"
}

// Aggregate is "count()" or "avg(field)" and the like, inside a scalar
// filter. Arg is nil for count.
type Aggregate struct {
	Range
	Func AggregateFunc
	Arg  Expr
}

// Scope is the scope of an attribute.
type Scope uint8

// Attribute scopes. ScopeNone is the unscoped ".attr" form, which looks on
// the span and then on its resource.
const (
	ScopeNone Scope = iota
	ScopeSpan
	ScopeResource
	ScopeEvent
	ScopeLink
	ScopeInstrumentation
)

var scopeNames = [...]string{"", "span", "resource", "event", "link", "instrumentation"}

// String returns the scope's keyword ("" for ScopeNone).
func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "?"
}

// Attribute is a custom attribute: "span.http.method", ".foo",
// "resource.\"name with spaces\"", or with Parent set "parent.span.foo" (the
// attribute of the span's parent).
type Attribute struct {
	Range
	Scope  Scope
	Parent bool
	Name   string
}

// Intrinsic names a built-in field of spans, traces, events, links or
// instrumentation scopes.
type Intrinsic uint8

// Intrinsics. The unscoped names (name, status, ...) are kept apart from
// their scoped forms (span:name, ...) so that queries print as written;
// Canonical maps aliases together.
const (
	IntrinsicNone Intrinsic = iota
	IntrinsicName
	IntrinsicStatus
	IntrinsicStatusMessage
	IntrinsicKind
	IntrinsicDuration
	IntrinsicRootName
	IntrinsicRootServiceName
	IntrinsicTraceDuration
	IntrinsicNestedSetLeft
	IntrinsicNestedSetRight
	IntrinsicNestedSetParent
	IntrinsicSpanName
	IntrinsicSpanStatus
	IntrinsicSpanStatusMessage
	IntrinsicSpanDuration
	IntrinsicSpanKind
	IntrinsicSpanID
	IntrinsicSpanParentID
	IntrinsicSpanChildCount
	IntrinsicTraceID
	IntrinsicTraceRootName
	IntrinsicTraceRootService
	IntrinsicTraceDurationScoped
	IntrinsicEventName
	IntrinsicEventTimeSinceStart
	IntrinsicLinkTraceID
	IntrinsicLinkSpanID
	IntrinsicInstrumentationName
	IntrinsicInstrumentationVersion
	intrinsicCount
)

// ValueType is the static type of an expression, as the checker infers it.
type ValueType uint8

// Value types. TypeAttribute is the unknown type of a custom attribute;
// TypeNumber is a number of unknown kind (arithmetic on attributes).
const (
	TypeInvalid ValueType = iota
	TypeAttribute
	TypeString
	TypeInt
	TypeFloat
	TypeNumber
	TypeDuration
	TypeBool
	TypeNil
	TypeStatus
	TypeKind
)

var typeNames = [...]string{"invalid", "attribute", "string", "int", "float", "number", "duration", "bool", "nil", "status", "kind"}

// String returns the type's name.
func (t ValueType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "?"
}

type intrinsicInfo struct {
	name      string
	typ       ValueType
	canonical Intrinsic
}

var intrinsics = [intrinsicCount]intrinsicInfo{
	IntrinsicName:                   {"name", TypeString, IntrinsicSpanName},
	IntrinsicStatus:                 {"status", TypeStatus, IntrinsicSpanStatus},
	IntrinsicStatusMessage:          {"statusMessage", TypeString, IntrinsicSpanStatusMessage},
	IntrinsicKind:                   {"kind", TypeKind, IntrinsicSpanKind},
	IntrinsicDuration:               {"duration", TypeDuration, IntrinsicSpanDuration},
	IntrinsicRootName:               {"rootName", TypeString, IntrinsicTraceRootName},
	IntrinsicRootServiceName:        {"rootServiceName", TypeString, IntrinsicTraceRootService},
	IntrinsicTraceDuration:          {"traceDuration", TypeDuration, IntrinsicTraceDurationScoped},
	IntrinsicNestedSetLeft:          {"nestedSetLeft", TypeInt, IntrinsicNestedSetLeft},
	IntrinsicNestedSetRight:         {"nestedSetRight", TypeInt, IntrinsicNestedSetRight},
	IntrinsicNestedSetParent:        {"nestedSetParent", TypeInt, IntrinsicNestedSetParent},
	IntrinsicSpanName:               {"span:name", TypeString, IntrinsicSpanName},
	IntrinsicSpanStatus:             {"span:status", TypeStatus, IntrinsicSpanStatus},
	IntrinsicSpanStatusMessage:      {"span:statusMessage", TypeString, IntrinsicSpanStatusMessage},
	IntrinsicSpanDuration:           {"span:duration", TypeDuration, IntrinsicSpanDuration},
	IntrinsicSpanKind:               {"span:kind", TypeKind, IntrinsicSpanKind},
	IntrinsicSpanID:                 {"span:id", TypeString, IntrinsicSpanID},
	IntrinsicSpanParentID:           {"span:parentID", TypeString, IntrinsicSpanParentID},
	IntrinsicSpanChildCount:         {"span:childCount", TypeInt, IntrinsicSpanChildCount},
	IntrinsicTraceID:                {"trace:id", TypeString, IntrinsicTraceID},
	IntrinsicTraceRootName:          {"trace:rootName", TypeString, IntrinsicTraceRootName},
	IntrinsicTraceRootService:       {"trace:rootService", TypeString, IntrinsicTraceRootService},
	IntrinsicTraceDurationScoped:    {"trace:duration", TypeDuration, IntrinsicTraceDurationScoped},
	IntrinsicEventName:              {"event:name", TypeString, IntrinsicEventName},
	IntrinsicEventTimeSinceStart:    {"event:timeSinceStart", TypeDuration, IntrinsicEventTimeSinceStart},
	IntrinsicLinkTraceID:            {"link:traceID", TypeString, IntrinsicLinkTraceID},
	IntrinsicLinkSpanID:             {"link:spanID", TypeString, IntrinsicLinkSpanID},
	IntrinsicInstrumentationName:    {"instrumentation:name", TypeString, IntrinsicInstrumentationName},
	IntrinsicInstrumentationVersion: {"instrumentation:version", TypeString, IntrinsicInstrumentationVersion},
}

var intrinsicByName = func() map[string]Intrinsic {
	m := make(map[string]Intrinsic, intrinsicCount)
	for i := Intrinsic(1); i < intrinsicCount; i++ {
		m[intrinsics[i].name] = i
	}
	return m
}()

// String returns the intrinsic as written in queries ("duration",
// "span:duration").
func (i Intrinsic) String() string {
	if i < intrinsicCount {
		return intrinsics[i].name
	}
	return "?"
}

// Type returns the intrinsic's value type.
func (i Intrinsic) Type() ValueType {
	if i < intrinsicCount {
		return intrinsics[i].typ
	}
	return TypeInvalid
}

// Canonical maps an unscoped alias to its scoped intrinsic: name to
// span:name, rootServiceName to trace:rootService and so on. Scoped
// intrinsics and the nested-set fields map to themselves.
func (i Intrinsic) Canonical() Intrinsic {
	if i < intrinsicCount {
		return intrinsics[i].canonical
	}
	return IntrinsicNone
}

// IntrinsicField is an intrinsic used in an expression.
type IntrinsicField struct {
	Range
	Intrinsic Intrinsic
}

// StaticType is the type of a literal.
type StaticType uint8

// Literal types.
const (
	StaticString StaticType = iota + 1
	StaticInt
	StaticFloat
	StaticDuration
	StaticBool
	StaticNil
	StaticStatus
	StaticKind
)

// Static is a literal value. Which field holds it depends on Type: Str for
// strings, Int for ints and durations (nanoseconds), Float, Bool, Status
// and Kind.
type Static struct {
	Range
	Type   StaticType
	Str    string
	Int    int64
	Float  float64
	Bool   bool
	Status span.StatusCode
	Kind   span.Kind
}

// ValueType returns the checker's type of the literal.
func (s *Static) ValueType() ValueType {
	switch s.Type {
	case StaticString:
		return TypeString
	case StaticInt:
		return TypeInt
	case StaticFloat:
		return TypeFloat
	case StaticDuration:
		return TypeDuration
	case StaticBool:
		return TypeBool
	case StaticNil:
		return TypeNil
	case StaticStatus:
		return TypeStatus
	case StaticKind:
		return TypeKind
	}
	return TypeInvalid
}

func (*SpansetFilter) stage()    {}
func (*SpansetOperation) stage() {}
func (*SubPipeline) stage()      {}
func (*ScalarFilter) stage()     {}
func (*GroupBy) stage()          {}
func (*Select) stage()           {}
func (*Coalesce) stage()         {}
func (*MetricsAggregate) stage() {}
func (*TopK) stage()             {}

func (*SpansetFilter) spansetExpr()    {}
func (*SpansetOperation) spansetExpr() {}
func (*SubPipeline) spansetExpr()      {}

func (*Static) expr()         {}
func (*Attribute) expr()      {}
func (*IntrinsicField) expr() {}
func (*BinaryExpr) expr()     {}
func (*UnaryExpr) expr()      {}
func (*Aggregate) expr()      {}
