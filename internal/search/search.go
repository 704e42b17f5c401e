// Package search defines clew's native search request: conditions on span
// intrinsics and attributes that a trace must satisfy, and MatchSpan, the
// reference evaluator that every storage-side (columnar) evaluator must agree
// with. It imports only span and the standard library.
package search

import (
	"fmt"
	"math"
	"regexp"
	"strconv"

	"github.com/clew-dev/clew/internal/span"
)

// Op is a comparison operator.
type Op uint8

// Operators. Ordered comparisons apply to numbers (int, double, and strings
// that parse as numbers when the operand is a number) and to strings
// (lexicographic) when the operand is a string.
const (
	OpEq Op = iota
	OpNe
	OpRegex
	OpNotRegex
	OpGt
	OpGe
	OpLt
	OpLe
	OpExists
)

var opNames = [...]string{"=", "!=", "=~", "!~", ">", ">=", "<", "<=", "exists"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// ParseOp parses an operator's symbol.
func ParseOp(s string) (Op, bool) {
	for i, n := range opNames {
		if n == s {
			return Op(i), true
		}
	}
	return 0, false
}

// Scope says where an attribute condition looks.
type Scope uint8

// Scopes. ScopeAny looks on the span, its resource, its instrumentation
// scope, its events and its links (Jaeger's tag semantics).
const (
	ScopeAny Scope = iota
	ScopeSpan
	ScopeResource
	ScopeScope
	ScopeEvent
	ScopeLink
)

var scopeNames = [...]string{"any", "span", "resource", "scope", "event", "link"}

func (s Scope) String() string {
	if int(s) < len(scopeNames) {
		return scopeNames[s]
	}
	return "?"
}

// ParseScope parses a scope name ("span", "resource", ...; "" is any).
func ParseScope(s string) (Scope, bool) {
	if s == "" {
		return ScopeAny, true
	}
	for i, n := range scopeNames {
		if n == s {
			return Scope(i), true
		}
	}
	return 0, false
}

// Cond is one attribute condition. Value holds the operand: a string, int,
// double or bool. For OpRegex and OpNotRegex, Re holds the compiled,
// fully-anchored expression (see Compile).
type Cond struct {
	Scope Scope
	Key   string
	Op    Op
	Value span.Value
	Re    *regexp.Regexp
	// Elems makes an array value match when one of its elements does
	// (recursively), instead of comparing the array's JSON text: TraceQL's
	// semantics, which internal/traceql's pushdown asks for.
	Elems bool
}

// Query is a native search. A trace matches when at least one of its spans
// satisfies every condition at once. Zero-valued fields do not constrain.
type Query struct {
	// Service matches the resource's service.name exactly.
	Service string
	// SpanName matches the span name exactly.
	SpanName string
	// Kinds, when non-empty, lists the accepted span kinds.
	Kinds []span.Kind
	// Statuses, when non-empty, lists the accepted status codes.
	Statuses []span.StatusCode
	// MinDuration and MaxDuration bound the span duration in nanoseconds,
	// both inclusive; 0 means unbounded.
	MinDuration, MaxDuration uint64
	// Start and End bound the span start time in Unix nanoseconds, both
	// inclusive; 0 means unbounded.
	Start, End uint64
	// Conds are attribute conditions.
	Conds []Cond
}

// Compile validates q and compiles its regular expressions. Call it once
// before evaluating q.
func (q *Query) Compile() error {
	for i := range q.Conds {
		c := &q.Conds[i]
		switch c.Op {
		case OpRegex, OpNotRegex:
			if c.Value.Type != span.TypeString {
				return fmt.Errorf("condition on %q: operator %s needs a string operand", c.Key, c.Op)
			}
			re, err := regexp.Compile("^(?:" + c.Value.Str + ")$")
			if err != nil {
				return fmt.Errorf("condition on %q: bad regular expression: %w", c.Key, err)
			}
			c.Re = re
		case OpExists:
		default:
			switch c.Value.Type {
			case span.TypeString, span.TypeInt, span.TypeDouble, span.TypeBool:
			default:
				return fmt.Errorf("condition on %q: operand must be a string, number or bool", c.Key)
			}
		}
		if c.Key == "" {
			return fmt.Errorf("condition %d: empty attribute key", i)
		}
	}
	if q.MaxDuration != 0 && q.MinDuration > q.MaxDuration {
		return fmt.Errorf("minimum duration %d exceeds maximum %d", q.MinDuration, q.MaxDuration)
	}
	if q.End != 0 && q.Start > q.End {
		return fmt.Errorf("start %d is after end %d", q.Start, q.End)
	}
	return nil
}

// MatchSpan reports whether s satisfies every condition of q. It is the
// reference semantics; q must have been compiled.
func (q *Query) MatchSpan(s *span.Span) bool {
	if q.Service != "" && s.Resource.ServiceName() != q.Service {
		return false
	}
	if q.SpanName != "" && s.Name != q.SpanName {
		return false
	}
	if len(q.Kinds) > 0 && !contains(q.Kinds, s.Kind) {
		return false
	}
	if len(q.Statuses) > 0 && !contains(q.Statuses, s.StatusCode) {
		return false
	}
	d := s.Duration()
	if q.MinDuration != 0 && d < q.MinDuration {
		return false
	}
	if q.MaxDuration != 0 && d > q.MaxDuration {
		return false
	}
	if q.Start != 0 && s.StartUnixNano < q.Start {
		return false
	}
	if q.End != 0 && s.StartUnixNano > q.End {
		return false
	}
	for i := range q.Conds {
		if !q.Conds[i].matchSpan(s) {
			return false
		}
	}
	return true
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// matchSpan evaluates c on every attribute list its scope covers. For the
// negative operators (!=, !~) a span matches when the attribute is present
// with a different value, as in TraceQL: a missing attribute matches neither
// = nor !=.
func (c *Cond) matchSpan(s *span.Span) bool {
	look := func(attrs []span.Attr) bool {
		for i := range attrs {
			if attrs[i].Key == c.Key && c.MatchValue(attrs[i].Value) {
				return true
			}
		}
		return false
	}
	if c.Scope == ScopeAny || c.Scope == ScopeSpan {
		if look(s.Attrs) {
			return true
		}
	}
	if c.Scope == ScopeAny || c.Scope == ScopeResource {
		if s.Resource != nil && look(s.Resource.Attrs) {
			return true
		}
	}
	if c.Scope == ScopeAny || c.Scope == ScopeScope {
		if s.Scope != nil && look(s.Scope.Attrs) {
			return true
		}
	}
	if c.Scope == ScopeAny || c.Scope == ScopeEvent {
		for i := range s.Events {
			if look(s.Events[i].Attrs) {
				return true
			}
		}
	}
	if c.Scope == ScopeAny || c.Scope == ScopeLink {
		for i := range s.Links {
			if look(s.Links[i].Attrs) {
				return true
			}
		}
	}
	return false
}

// MatchValue reports whether one attribute value v satisfies the condition.
// Comparison rules:
//   - OpExists matches any value.
//   - A string operand compares with the value rendered by Value.AsString, so
//     "123" matches int 123 and "true" matches bool true (Jaeger semantics).
//   - A numeric operand compares numerically with int and double values, and
//     with strings that parse as numbers.
//   - A bool operand matches bool values only.
//   - Regular expressions match the rendered string.
//   - With Elems, an array matches when one of its elements does.
func (c *Cond) MatchValue(v span.Value) bool {
	if c.Elems && v.Type == span.TypeArray && c.Op != OpExists {
		for _, e := range v.Array {
			if c.MatchValue(e) {
				return true
			}
		}
		return false
	}
	switch c.Op {
	case OpExists:
		return true
	case OpRegex:
		return c.Re.MatchString(v.AsString())
	case OpNotRegex:
		return !c.Re.MatchString(v.AsString())
	}
	switch c.Value.Type {
	case span.TypeString:
		return compareOrdered(c.Op, strCmp(v.AsString(), c.Value.Str))
	case span.TypeBool:
		if v.Type != span.TypeBool {
			return c.Op == OpNe
		}
		if c.Op == OpEq {
			return v.Num == c.Value.Num
		}
		if c.Op == OpNe {
			return v.Num != c.Value.Num
		}
		return false
	case span.TypeInt, span.TypeDouble:
		x, ok := numeric(v)
		if !ok {
			return c.Op == OpNe
		}
		var y float64
		if c.Value.Type == span.TypeInt {
			y = float64(c.Value.Int())
			if v.Type == span.TypeInt {
				a, b := v.Int(), c.Value.Int()
				switch {
				case a < b:
					return compareOrdered(c.Op, -1)
				case a > b:
					return compareOrdered(c.Op, 1)
				}
				return compareOrdered(c.Op, 0)
			}
		} else {
			y = c.Value.Double()
		}
		if math.IsNaN(x) || math.IsNaN(y) {
			return c.Op == OpNe
		}
		switch {
		case x < y:
			return compareOrdered(c.Op, -1)
		case x > y:
			return compareOrdered(c.Op, 1)
		}
		return compareOrdered(c.Op, 0)
	}
	return false
}

func numeric(v span.Value) (float64, bool) {
	switch v.Type {
	case span.TypeInt:
		return float64(v.Int()), true
	case span.TypeDouble:
		return v.Double(), true
	case span.TypeString:
		f, err := strconv.ParseFloat(v.Str, 64)
		return f, err == nil
	}
	return 0, false
}

func strCmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareOrdered(op Op, cmp int) bool {
	switch op {
	case OpEq:
		return cmp == 0
	case OpNe:
		return cmp != 0
	case OpGt:
		return cmp > 0
	case OpGe:
		return cmp >= 0
	case OpLt:
		return cmp < 0
	case OpLe:
		return cmp <= 0
	}
	return false
}
