package engine

import (
	"encoding/hex"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/traceql"
)

// ValueType is the type of a Value.
type ValueType uint8

// Value types. TypeNil is a missing attribute or a field that does not
// apply (the parent of a root span, the root of a trace without one).
const (
	TypeNil ValueType = iota
	TypeString
	TypeInt
	TypeFloat
	TypeBool
	TypeDuration
	TypeStatus
	TypeKind
)

var valueTypeNames = [...]string{"nil", "string", "int", "float", "bool", "duration", "status", "kind"}

// String returns the type's name.
func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return "?"
}

// Value is a typed TraceQL value. Str holds strings; Int holds ints,
// bools (0 or 1), durations (nanoseconds), statuses and kinds; Float holds
// floats. A value read from an array attribute, or from a field of events
// or links (one value per event), holds several values: a comparison is
// then true when it is true for one of them.
type Value struct {
	Type  ValueType
	Str   string
	Int   int64
	Float float64
	multi []Value
	// arr marks multi as the elements of an array attribute (rather than
	// one value per event or link): != and !~ then hold only when they
	// hold for every element, that is when no element is equal or
	// matches, as Tempo documents for arrays.
	arr bool
}

// Nil reports whether v is nil (absent).
func (v Value) Nil() bool { return v.Type == TypeNil && len(v.multi) == 0 }

// Values returns the values of a multi-valued Value (an array attribute or
// an event field); nil for a single value.
func (v Value) Values() []Value { return v.multi }

// String renders v as text: strings as they are, durations in Go syntax,
// statuses and kinds by name.
func (v Value) String() string {
	switch v.Type {
	case TypeString:
		return v.Str
	case TypeInt:
		return strconv.FormatInt(v.Int, 10)
	case TypeFloat:
		return strconv.FormatFloat(v.Float, 'g', -1, 64)
	case TypeBool:
		return strconv.FormatBool(v.Int != 0)
	case TypeDuration:
		return time.Duration(v.Int).String()
	case TypeStatus:
		return span.StatusCode(v.Int).String()
	case TypeKind:
		return span.Kind(v.Int).String()
	}
	if len(v.multi) > 0 {
		b := []byte{'['}
		for i, e := range v.multi {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, e.String()...)
		}
		return string(append(b, ']'))
	}
	return "nil"
}

// key returns a string that identifies v among values of all types, for
// grouping.
func (v Value) key() string {
	return string(rune('a'+v.Type)) + v.String()
}

// Constructors.
func strVal(s string) Value    { return Value{Type: TypeString, Str: s} }
func intVal(i int64) Value     { return Value{Type: TypeInt, Int: i} }
func floatVal(f float64) Value { return Value{Type: TypeFloat, Float: f} }
func durVal(ns int64) Value    { return Value{Type: TypeDuration, Int: ns} }
func boolVal(b bool) Value {
	if b {
		return Value{Type: TypeBool, Int: 1}
	}
	return Value{Type: TypeBool}
}

// fromSpan converts an attribute value. Arrays become multi-valued; bytes
// compare as their hex text and maps as their JSON text.
func fromSpan(v span.Value) Value {
	switch v.Type {
	case span.TypeString:
		return strVal(v.Str)
	case span.TypeInt:
		return intVal(v.Int())
	case span.TypeDouble:
		return floatVal(v.Double())
	case span.TypeBool:
		return boolVal(v.Bool())
	case span.TypeBytes:
		return strVal(hex.EncodeToString([]byte(v.Str)))
	case span.TypeMap:
		return strVal(v.AsString())
	case span.TypeArray:
		out := Value{multi: make([]Value, 0, len(v.Array)), arr: true}
		for _, e := range v.Array {
			if c := fromSpan(e); !c.Nil() {
				out.multi = append(out.multi, c)
			}
		}
		return out
	}
	return Value{}
}

// fromStatic converts a literal.
func fromStatic(s *traceql.Static) Value {
	switch s.Type {
	case traceql.StaticString:
		return strVal(s.Str)
	case traceql.StaticInt:
		return intVal(s.Int)
	case traceql.StaticFloat:
		return floatVal(s.Float)
	case traceql.StaticDuration:
		return durVal(s.Int)
	case traceql.StaticBool:
		return boolVal(s.Bool)
	case traceql.StaticStatus:
		return Value{Type: TypeStatus, Int: int64(s.Status)}
	case traceql.StaticKind:
		return Value{Type: TypeKind, Int: int64(s.Kind)}
	}
	return Value{}
}

// truthy reports whether v is the boolean true (or holds one).
func truthy(v Value) bool {
	if len(v.multi) > 0 {
		for _, e := range v.multi {
			if truthy(e) {
				return true
			}
		}
		return false
	}
	return v.Type == TypeBool && v.Int != 0
}

func isNumeric(t ValueType) bool { return t == TypeInt || t == TypeFloat || t == TypeDuration }

// number returns v as a float64 when it is numeric (durations in
// nanoseconds).
func (v Value) number() (float64, bool) {
	switch v.Type {
	case TypeInt, TypeDuration:
		return float64(v.Int), true
	case TypeFloat:
		return v.Float, true
	}
	return 0, false
}

// compare evaluates "a op b" with TraceQL semantics: values of different
// types are never equal nor unequal (a string attribute never equals an
// int, and "!=" is false too); any comparison with a missing value is
// false (comparisons with the literal nil are presence tests, done by
// the caller, see isNilTest); multi-valued operands match when one of
// their values does, except that an array satisfies != and !~ only when
// every element does (no element is equal or matches). re is the
// compiled, fully anchored expression of =~ and !~.
func compare(op traceql.Op, a, b Value, re *regexp.Regexp) bool {
	if len(a.multi) > 0 {
		if a.arr && (op == traceql.OpNeq || op == traceql.OpNotRegex) {
			for _, e := range a.multi {
				if !compare(op, e, b, re) {
					return false
				}
			}
			return true
		}
		for _, e := range a.multi {
			if compare(op, e, b, re) {
				return true
			}
		}
		return false
	}
	if len(b.multi) > 0 {
		for _, e := range b.multi {
			if compare(op, a, e, re) {
				return true
			}
		}
		return false
	}
	if a.Type == TypeNil || b.Type == TypeNil {
		return false
	}
	switch op {
	case traceql.OpRegex, traceql.OpNotRegex:
		if a.Type != TypeString || re == nil {
			return false
		}
		return re.MatchString(a.Str) == (op == traceql.OpRegex)
	}
	var c int
	switch {
	case a.Type == TypeString && b.Type == TypeString:
		c = cmpOrdered(a.Str, b.Str)
	case (a.Type == TypeInt || a.Type == TypeDuration) && (b.Type == TypeInt || b.Type == TypeDuration):
		c = cmpOrdered(a.Int, b.Int)
	case isNumeric(a.Type) && isNumeric(b.Type):
		x, _ := a.number()
		y, _ := b.number()
		if math.IsNaN(x) || math.IsNaN(y) {
			return false
		}
		c = cmpOrdered(x, y)
	case a.Type == b.Type && (a.Type == TypeBool || a.Type == TypeStatus || a.Type == TypeKind):
		switch op {
		case traceql.OpEq:
			return a.Int == b.Int
		case traceql.OpNeq:
			return a.Int != b.Int
		}
		return false
	default:
		return false
	}
	switch op {
	case traceql.OpEq:
		return c == 0
	case traceql.OpNeq:
		return c != 0
	case traceql.OpLt:
		return c < 0
	case traceql.OpLte:
		return c <= 0
	case traceql.OpGt:
		return c > 0
	case traceql.OpGte:
		return c >= 0
	}
	return false
}

func cmpOrdered[T int64 | float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// arith evaluates "a op b" for + - * / % ^. Ints stay ints (division
// truncates); anything with a float is a float; durations follow the
// checker's rules (duration ± duration and duration × number are durations,
// duration / duration is a float). Division or modulo by zero, nil and
// non-numeric operands give nil.
func arith(op traceql.Op, a, b Value) Value {
	if len(a.multi) > 0 || len(b.multi) > 0 || !isNumeric(a.Type) || !isNumeric(b.Type) {
		return Value{}
	}
	ad, bd := a.Type == TypeDuration, b.Type == TypeDuration
	if a.Type != TypeFloat && b.Type != TypeFloat {
		x, y := a.Int, b.Int
		var r int64
		switch op {
		case traceql.OpAdd:
			r = x + y
		case traceql.OpSub:
			r = x - y
		case traceql.OpMul:
			r = x * y
		case traceql.OpDiv:
			if y == 0 {
				return Value{}
			}
			if ad && bd {
				return floatVal(float64(x) / float64(y))
			}
			r = x / y
		case traceql.OpMod:
			if y == 0 {
				return Value{}
			}
			r = x % y
		case traceql.OpPow:
			p := math.Pow(float64(x), float64(y))
			if p != math.Trunc(p) || math.Abs(p) >= 1<<63 {
				return floatVal(p)
			}
			r = int64(p)
		default:
			return Value{}
		}
		if ad || bd {
			return durVal(r)
		}
		return intVal(r)
	}
	x, _ := a.number()
	y, _ := b.number()
	var r float64
	switch op {
	case traceql.OpAdd:
		r = x + y
	case traceql.OpSub:
		r = x - y
	case traceql.OpMul:
		r = x * y
	case traceql.OpDiv:
		if y == 0 {
			return Value{}
		}
		r = x / y
		if ad && bd {
			return floatVal(r)
		}
	case traceql.OpMod:
		if y == 0 {
			return Value{}
		}
		r = math.Mod(x, y)
	case traceql.OpPow:
		r = math.Pow(x, y)
	default:
		return Value{}
	}
	if ad != bd {
		return durVal(int64(r))
	}
	return floatVal(r)
}
