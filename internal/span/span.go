// Package span is clew's data model: trace and span identifiers, spans with
// their resource and instrumentation scope, attributes and values, and batches
// of spans as they travel from a decoder to the write-ahead log, the head and
// the blocks. It does no I/O and imports only the standard library.
package span

import (
	"encoding/hex"
	"errors"
	"math"
	"strconv"
)

// TraceID is a 16-byte W3C trace identifier. The zero value is invalid.
type TraceID [16]byte

// SpanID is an 8-byte span identifier. The zero value means "none" (a root
// span's parent).
type SpanID [8]byte

// IsZero reports whether id is all zero bytes.
func (id TraceID) IsZero() bool { return id == TraceID{} }

// IsZero reports whether id is all zero bytes.
func (id SpanID) IsZero() bool { return id == SpanID{} }

// String returns id as 32 lowercase hex digits.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// String returns id as 16 lowercase hex digits.
func (id SpanID) String() string { return hex.EncodeToString(id[:]) }

// ErrBadID is returned by ParseTraceID and ParseSpanID for malformed input.
var ErrBadID = errors.New("malformed id")

// ParseTraceID parses 1 to 32 hex digits (either case). Shorter IDs, as sent
// by Zipkin and Jaeger clients with 64-bit trace IDs, are left-padded with
// zeros. An all-zero ID is an error.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	if len(s) == 0 || len(s) > 32 {
		return id, ErrBadID
	}
	var buf [32]byte
	pad := 32 - len(s)
	for i := 0; i < pad; i++ {
		buf[i] = '0'
	}
	copy(buf[pad:], s)
	if _, err := hex.Decode(id[:], buf[:]); err != nil {
		return TraceID{}, ErrBadID
	}
	if id.IsZero() {
		return id, ErrBadID
	}
	return id, nil
}

// ParseSpanID parses 1 to 16 hex digits (either case), left-padding shorter
// input with zeros. An all-zero ID is an error.
func ParseSpanID(s string) (SpanID, error) {
	var id SpanID
	if len(s) == 0 || len(s) > 16 {
		return id, ErrBadID
	}
	var buf [16]byte
	pad := 16 - len(s)
	for i := 0; i < pad; i++ {
		buf[i] = '0'
	}
	copy(buf[pad:], s)
	if _, err := hex.Decode(id[:], buf[:]); err != nil {
		return SpanID{}, ErrBadID
	}
	if id.IsZero() {
		return id, ErrBadID
	}
	return id, nil
}

// Kind is the OTLP span kind; values match the OTLP enum.
type Kind uint8

// Span kinds, numbered as in OTLP.
const (
	KindUnspecified Kind = 0
	KindInternal    Kind = 1
	KindServer      Kind = 2
	KindClient      Kind = 3
	KindProducer    Kind = 4
	KindConsumer    Kind = 5
)

var kindNames = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// String returns the lowercase name TraceQL uses ("server", "client", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unspecified"
}

// ParseKind accepts the lowercase short name ("server").
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// StatusCode is the OTLP status code; values match the OTLP enum.
type StatusCode uint8

// Status codes, numbered as in OTLP.
const (
	StatusUnset StatusCode = 0
	StatusOK    StatusCode = 1
	StatusError StatusCode = 2
)

var statusNames = [...]string{"unset", "ok", "error"}

// String returns "unset", "ok" or "error".
func (s StatusCode) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unset"
}

// ParseStatus accepts "unset", "ok" or "error".
func ParseStatus(s string) (StatusCode, bool) {
	for i, n := range statusNames {
		if n == s {
			return StatusCode(i), true
		}
	}
	return 0, false
}

// ValueType is the type of an attribute value, as in OTLP's AnyValue.
type ValueType uint8

// Value types. The numbering is part of clew's on-disk formats: never reorder.
const (
	TypeEmpty  ValueType = 0
	TypeString ValueType = 1
	TypeBool   ValueType = 2
	TypeInt    ValueType = 3
	TypeDouble ValueType = 4
	TypeBytes  ValueType = 5
	TypeArray  ValueType = 6
	TypeMap    ValueType = 7
)

var typeNames = [...]string{"empty", "string", "bool", "int", "double", "bytes", "array", "map"}

func (t ValueType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// Value is an attribute value. Which fields are meaningful depends on Type:
// Str holds strings and bytes, Num holds ints (as int64 bits), bools (0 or 1)
// and doubles (as float64 bits), Array holds array elements and Map holds the
// entries of a key-value list.
type Value struct {
	Type  ValueType
	Str   string
	Num   uint64
	Array []Value
	Map   []Attr
}

// StringValue returns a string value.
func StringValue(s string) Value { return Value{Type: TypeString, Str: s} }

// IntValue returns an int value.
func IntValue(v int64) Value { return Value{Type: TypeInt, Num: uint64(v)} }

// DoubleValue returns a double value.
func DoubleValue(v float64) Value { return Value{Type: TypeDouble, Num: math.Float64bits(v)} }

// BoolValue returns a bool value.
func BoolValue(v bool) Value {
	if v {
		return Value{Type: TypeBool, Num: 1}
	}
	return Value{Type: TypeBool}
}

// BytesValue returns a bytes value; b is stored as a string.
func BytesValue(b []byte) Value { return Value{Type: TypeBytes, Str: string(b)} }

// Int returns the value of an int.
func (v Value) Int() int64 { return int64(v.Num) }

// Double returns the value of a double.
func (v Value) Double() float64 { return math.Float64frombits(v.Num) }

// Bool returns the value of a bool.
func (v Value) Bool() bool { return v.Num != 0 }

// AsString renders scalar values the way Jaeger compares tags: strings as they
// are, ints in decimal, doubles in the shortest form, bools as true/false.
// Arrays, maps and bytes render as their OTLP JSON would.
func (v Value) AsString() string {
	switch v.Type {
	case TypeString:
		return v.Str
	case TypeBool:
		return strconv.FormatBool(v.Bool())
	case TypeInt:
		return strconv.FormatInt(v.Int(), 10)
	case TypeDouble:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	case TypeBytes:
		return hex.EncodeToString([]byte(v.Str))
	case TypeArray, TypeMap:
		return string(AppendValueJSON(nil, v))
	}
	return ""
}

// Attr is one key-value attribute.
type Attr struct {
	Key   string
	Value Value
}

// Resource describes the entity that produced spans. It is shared by all spans
// of one OTLP ResourceSpans.
type Resource struct {
	Attrs        []Attr
	DroppedAttrs uint32
	SchemaURL    string
}

// ServiceName returns the service.name attribute, or "" when absent.
func (r *Resource) ServiceName() string {
	if r == nil {
		return ""
	}
	for i := range r.Attrs {
		if r.Attrs[i].Key == "service.name" && r.Attrs[i].Value.Type == TypeString {
			return r.Attrs[i].Value.Str
		}
	}
	return ""
}

// Scope is the instrumentation scope that produced spans. It is shared by all
// spans of one OTLP ScopeSpans.
type Scope struct {
	Name         string
	Version      string
	Attrs        []Attr
	DroppedAttrs uint32
	SchemaURL    string
}

// Event is a timestamped annotation on a span.
type Event struct {
	TimeUnixNano uint64
	Name         string
	Attrs        []Attr
	DroppedAttrs uint32
}

// Link points from a span to a span of the same or another trace.
type Link struct {
	TraceID      TraceID
	SpanID       SpanID
	TraceState   string
	Flags        uint32
	Attrs        []Attr
	DroppedAttrs uint32
}

// Span is one timed operation. Resource and Scope are shared between spans
// of one batch and must not be modified through a span.
type Span struct {
	TraceID       TraceID
	SpanID        SpanID
	ParentSpanID  SpanID
	TraceState    string
	Flags         uint32
	Name          string
	Kind          Kind
	StartUnixNano uint64
	EndUnixNano   uint64
	Attrs         []Attr
	DroppedAttrs  uint32
	Events        []Event
	DroppedEvents uint32
	Links         []Link
	DroppedLinks  uint32
	StatusCode    StatusCode
	StatusMessage string
	Resource      *Resource
	Scope         *Scope
}

// Duration returns end minus start in nanoseconds, or 0 when end precedes
// start.
func (s *Span) Duration() uint64 {
	if s.EndUnixNano < s.StartUnixNano {
		return 0
	}
	return s.EndUnixNano - s.StartUnixNano
}

// Batch is a set of spans received together. Spans point into Resources and
// Scopes owned by the batch. A batch is owned by one goroutine at a time;
// whoever receives it from a decoder owns it.
type Batch struct {
	Resources []*Resource
	Scopes    []*Scope
	Spans     []Span
}

// Reset empties b, keeping its capacity for reuse.
func (b *Batch) Reset() {
	clear(b.Resources)
	clear(b.Scopes)
	clear(b.Spans)
	b.Resources = b.Resources[:0]
	b.Scopes = b.Scopes[:0]
	b.Spans = b.Spans[:0]
}
