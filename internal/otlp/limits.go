package otlp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/clew-dev/clew/internal/span"
)

// Limits bounds what one request may carry. Over-long strings are truncated
// and extra attributes, events and links are dropped; both are counted in
// Result. More spans than MaxSpansPerRequest make the whole request fail.
// A zero field takes its DefaultLimits value.
type Limits struct {
	// MaxSpansPerRequest is the most spans one request may hold.
	MaxSpansPerRequest int `yaml:"max_spans_per_request"`
	// MaxAttrValueBytes caps string and bytes attribute values, trace
	// states and status messages.
	MaxAttrValueBytes int `yaml:"max_attr_value_bytes"`
	// MaxAttrsPerSpan caps the attributes of a span, event, link, resource
	// or scope, and the elements of one array or key-value list value.
	MaxAttrsPerSpan int `yaml:"max_attrs_per_span"`
	// MaxEventsPerSpan caps the events of a span.
	MaxEventsPerSpan int `yaml:"max_events_per_span"`
	// MaxLinksPerSpan caps the links of a span.
	MaxLinksPerSpan int `yaml:"max_links_per_span"`
	// MaxNameBytes caps span, event and scope names, scope versions,
	// schema URLs and attribute keys.
	MaxNameBytes int `yaml:"max_name_bytes"`
}

// DefaultLimits returns limits that fit what well-behaved SDKs send while
// keeping a single request's decoded size bounded.
func DefaultLimits() Limits {
	return Limits{
		MaxSpansPerRequest: 100_000,
		MaxAttrValueBytes:  64 << 10,
		MaxAttrsPerSpan:    128,
		MaxEventsPerSpan:   128,
		MaxLinksPerSpan:    128,
		MaxNameBytes:       1 << 10,
	}
}

// WithDefaults returns l with every zero or negative field set to its
// DefaultLimits value: the limits a Decoder, and every receiver, enforces.
func (l Limits) WithDefaults() Limits { return l.withDefaults() }

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxSpansPerRequest <= 0 {
		l.MaxSpansPerRequest = d.MaxSpansPerRequest
	}
	if l.MaxAttrValueBytes <= 0 {
		l.MaxAttrValueBytes = d.MaxAttrValueBytes
	}
	if l.MaxAttrsPerSpan <= 0 {
		l.MaxAttrsPerSpan = d.MaxAttrsPerSpan
	}
	if l.MaxEventsPerSpan <= 0 {
		l.MaxEventsPerSpan = d.MaxEventsPerSpan
	}
	if l.MaxLinksPerSpan <= 0 {
		l.MaxLinksPerSpan = d.MaxLinksPerSpan
	}
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = d.MaxNameBytes
	}
	return l
}

// Reason says why a span was rejected.
type Reason uint8

// Reject reasons. They double as metric label values through String.
const (
	// ReasonInvalidTraceID: the trace ID is all zero (or, in protobuf,
	// not 16 bytes long).
	ReasonInvalidTraceID Reason = iota
	// ReasonInvalidSpanID: the span ID is all zero (or, in protobuf, not
	// 8 bytes long).
	ReasonInvalidSpanID
	// ReasonInvalidParentSpanID: the parent span ID is neither empty nor
	// 8 bytes long (protobuf only).
	ReasonInvalidParentSpanID
	// ReasonMaxSpansPerTrace: the trace already holds its tenant's
	// max_spans_per_trace (applied by the receiver core, not a decoder).
	ReasonMaxSpansPerTrace
	numReasons
)

var reasonNames = [numReasons]string{"invalid_trace_id", "invalid_span_id", "invalid_parent_span_id", "max_spans_per_trace"}

// NumReasons is the number of distinct reject reasons.
const NumReasons = int(numReasons)

// String returns the reason's snake_case name, e.g. "invalid_trace_id".
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Result tells what a decode kept, rejected and changed.
type Result struct {
	// Spans is the number of spans appended to the batch.
	Spans int
	// Rejected is the number of spans left out; RejectReasons splits it by
	// Reason.
	Rejected      int
	RejectReasons [NumReasons]int
	// Truncated counts strings (names, keys, values) cut to a limit, and
	// array or key-value list values cut short. TruncatedNames is the part
	// of it that were names or keys (cut to MaxNameBytes).
	Truncated      int
	TruncatedNames int
	// InvalidUTF8 counts strings whose invalid UTF-8 sequences were
	// replaced with U+FFFD (see CleanString).
	InvalidUTF8 int
	// DroppedAttrs, DroppedEvents and DroppedLinks count items left out
	// because of a limit (or, for links, a malformed protobuf ID). They
	// are also added to the Dropped* counts of the owning span, event,
	// link, resource or scope.
	DroppedAttrs  int
	DroppedEvents int
	DroppedLinks  int
	// Modified is true when the batch differs from what the request says:
	// a span was rejected, or something was truncated or dropped. The
	// caller then re-encodes the batch instead of logging the raw bytes.
	Modified bool
	// Message is the human-readable text for OTLP's
	// partial_success.error_message; empty when nothing was changed.
	Message string
}

func (r *Result) reject(why Reason) { r.Reject(why) }

// Reject counts one span left out for why. Decoders of other protocols
// (Zipkin, Jaeger) report their rejections through it, so that every
// receiver's outcome reads alike.
func (r *Result) Reject(why Reason) {
	r.Rejected++
	r.RejectReasons[why]++
}

// Finish sets Modified and Message from the counts. Decoders outside this
// package call it once they are done; DecodeProto and DecodeJSON call it
// themselves.
func (r *Result) Finish() { r.finish() }

// finish sets Modified and Message from the counts.
func (r *Result) finish() {
	r.Modified = r.Rejected > 0 || r.Truncated > 0 || r.InvalidUTF8 > 0 || r.DroppedAttrs > 0 || r.DroppedEvents > 0 || r.DroppedLinks > 0
	if !r.Modified {
		return
	}
	var sb strings.Builder
	if r.Rejected > 0 {
		sb.WriteString("rejected ")
		sb.WriteString(strconv.Itoa(r.Rejected))
		sb.WriteString(" spans (")
		first := true
		for i, n := range r.RejectReasons {
			if n == 0 {
				continue
			}
			if !first {
				sb.WriteString(", ")
			}
			first = false
			sb.WriteString(Reason(i).String())
			sb.WriteString(": ")
			sb.WriteString(strconv.Itoa(n))
		}
		sb.WriteString(")")
	}
	add := func(n int, what string) {
		if n == 0 {
			return
		}
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		sb.WriteString(what)
		sb.WriteString(strconv.Itoa(n))
	}
	add(r.InvalidUTF8, "repaired invalid UTF-8 strings: ")
	add(r.Truncated, "truncated values over limits: ")
	add(r.DroppedAttrs, "dropped attributes over limits: ")
	add(r.DroppedEvents, "dropped events over limits: ")
	add(r.DroppedLinks, "dropped links: ")
	r.Message = sb.String()
}

// ErrTooManySpans is wrapped by the DecodeError returned when a request holds
// more than Limits.MaxSpansPerRequest spans. Callers answer it with 400 or
// RESOURCE_EXHAUSTED.
var ErrTooManySpans = errors.New("too many spans in request")

// DecodeError is a request-level decode failure: the input is malformed or
// over a hard limit, and nothing of it should be stored. Offset is the byte
// offset in the input where the problem was found; Msg says what is wrong
// and where in the message tree.
type DecodeError struct {
	Offset int
	Msg    string
	// Err is an optional sentinel such as ErrTooManySpans.
	Err error
}

func (e *DecodeError) Error() string {
	return "decode otlp: " + e.Msg + " (at byte " + strconv.Itoa(e.Offset) + ")"
}

// Unwrap returns the sentinel behind e, if any.
func (e *DecodeError) Unwrap() error { return e.Err }

// loc tracks where in the message tree the decoder is, for error messages.
type loc struct {
	rs, ss, sp int // indexes in resource spans, scope spans, spans; -1 when outside
	nspan      int // spans seen so far in the request
}

func (l *loc) reset() { *l = loc{rs: -1, ss: -1, sp: -1} }

func (l *loc) prefix(json bool) string {
	if l.rs < 0 {
		return ""
	}
	rs, ss := "resource_spans", "scope_spans"
	if json {
		rs, ss = "resourceSpans", "scopeSpans"
	}
	s := fmt.Sprintf("%s[%d]", rs, l.rs)
	if l.ss >= 0 {
		s += fmt.Sprintf(".%s[%d]", ss, l.ss)
		if l.sp >= 0 {
			s += fmt.Sprintf(".spans[%d] (span %d of request)", l.sp, l.nspan-1)
		}
	}
	return s + ": "
}

// Fix says what CleanString changed.
type Fix uint8

// Fix flags.
const (
	// FixRepaired: the string held invalid UTF-8, replaced with U+FFFD.
	FixRepaired Fix = 1 << iota
	// FixTruncated: the string was longer than the limit and was cut.
	FixTruncated
)

// CleanString is clew's one rule for strings received over any protocol
// (OTLP, Zipkin, Jaeger): every run of invalid UTF-8 bytes is replaced
// with one U+FFFD (OTLP requires valid UTF-8 strings, and a replaced run
// is visible where dropping it would not be), and then a string longer
// than max bytes is cut to at most max bytes at a rune boundary. The
// repair comes first, so that the result is always valid UTF-8 and never
// longer than max. A max of zero or less means no length limit. The
// returned string may alias s.
func CleanString(s string, max int) (string, Fix) {
	var f Fix
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		f |= FixRepaired
	}
	if max > 0 && len(s) > max {
		s = truncate(s, max)
		f |= FixTruncated
	}
	return s, f
}

// truncate cuts s to at most max bytes, backing off to a rune boundary when
// the cut would split a UTF-8 sequence.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for j := 0; j < utf8.UTFMax-1 && i > 0 && !utf8.RuneStart(s[i]); j++ {
		i--
	}
	if !utf8.RuneStart(s[i]) { // not UTF-8 anyway: cut at the byte limit
		i = max
	}
	return s[:i]
}

// Count adds what CleanString fixed in one string to r; name says the
// string is a name or key (its truncation is counted in TruncatedNames too).
func (r *Result) Count(f Fix, name bool) {
	if f&FixRepaired != 0 {
		r.InvalidUTF8++
	}
	if f&FixTruncated != 0 {
		r.Truncated++
		if name {
			r.TruncatedNames++
		}
	}
}

// Clean applies CleanString to s with max and counts what it fixed in r:
// the string rule every receiver's decoder applies.
func (r *Result) Clean(s string, max int, name bool) string {
	out, f := CleanString(s, max)
	r.Count(f, name)
	return out
}

// CapValues cuts every string and bytes attribute value of b (of spans,
// events, links, resources and scopes, nested ones included) to at most
// max bytes, as a tenant's max_attribute_value_bytes lower than the
// decoder's asks, and counts each cut in r.Truncated. Call Finish after.
func (r *Result) CapValues(b *span.Batch, max int) {
	for _, res := range b.Resources {
		r.capAttrs(res.Attrs, max)
	}
	for _, sc := range b.Scopes {
		r.capAttrs(sc.Attrs, max)
	}
	for i := range b.Spans {
		sp := &b.Spans[i]
		r.capAttrs(sp.Attrs, max)
		for j := range sp.Events {
			r.capAttrs(sp.Events[j].Attrs, max)
		}
		for j := range sp.Links {
			r.capAttrs(sp.Links[j].Attrs, max)
		}
	}
}

func (r *Result) capAttrs(attrs []span.Attr, max int) {
	for i := range attrs {
		r.capValue(&attrs[i].Value, max)
	}
}

func (r *Result) capValue(v *span.Value, max int) {
	switch v.Type {
	case span.TypeString:
		if len(v.Str) > max {
			v.Str = truncate(v.Str, max)
			r.Truncated++
		}
	case span.TypeBytes:
		if len(v.Str) > max {
			v.Str = v.Str[:max]
			r.Truncated++
		}
	case span.TypeArray:
		for i := range v.Array {
			r.capValue(&v.Array[i], max)
		}
	case span.TypeMap:
		r.capAttrs(v.Map, max)
	}
}
