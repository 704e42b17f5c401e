package otlp

import (
	"encoding/binary"

	"github.com/clew-dev/clew/internal/span"
)

// Protobuf tags (field number << 3 | wire type) as single bytes; every field
// clew writes has a number below 16.
func tag(num, wt byte) byte { return num<<3 | wt }

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// beginMsg appends the tag of an embedded message and a one-byte length
// placeholder, and returns where the message body starts.
func beginMsg(dst []byte, t byte) ([]byte, int) {
	dst = append(dst, t, 0)
	return dst, len(dst)
}

// endMsg writes the length of the message body that started at start. Bodies
// of 128 bytes or more need a longer varint: the body is shifted right to make
// room, which costs one memmove per large message.
func endMsg(dst []byte, start int) []byte {
	n := len(dst) - start
	if n < 0x80 {
		dst[start-1] = byte(n)
		return dst
	}
	extra := uvarintLen(uint64(n)) - 1
	for range extra {
		dst = append(dst, 0)
	}
	copy(dst[start+extra:], dst[start:start+n])
	appendUvarint(dst[start-1:start-1], uint64(n))
	return dst
}

func appendBytesField(dst []byte, t byte, b []byte) []byte {
	dst = append(dst, t)
	dst = appendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendStringField(dst []byte, t byte, s string) []byte {
	dst = append(dst, t)
	dst = appendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendString appends a string field unless s is empty (proto3 default).
func appendString(dst []byte, t byte, s string) []byte {
	if s == "" {
		return dst
	}
	return appendStringField(dst, t, s)
}

func appendVarintField(dst []byte, t byte, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return appendUvarint(append(dst, t), v)
}

func appendFixed64Field(dst []byte, t byte, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return binary.LittleEndian.AppendUint64(append(dst, t), v)
}

func appendFixed32Field(dst []byte, t byte, v uint32) []byte {
	if v == 0 {
		return dst
	}
	return binary.LittleEndian.AppendUint32(append(dst, t), v)
}

// MarshalProto appends b's spans to dst as an OTLP ExportTraceServiceRequest.
// See AppendSpansProto for how spans are grouped.
func MarshalProto(dst []byte, b *span.Batch) []byte {
	return AppendSpansProto(dst, b.Spans)
}

// AppendSpansProto appends spans to dst as an OTLP ExportTraceServiceRequest
// (the same wire shape as TracesData). Consecutive spans with the same
// Resource pointer share one ResourceSpans, and consecutive spans of those
// with the same Scope pointer share one ScopeSpans; order is kept. A nil
// Resource or Scope is written as an absent message.
func AppendSpansProto(dst []byte, spans []span.Span) []byte {
	for i := 0; i < len(spans); {
		res := spans[i].Resource
		j := i + 1
		for j < len(spans) && spans[j].Resource == res {
			j++
		}
		var rs int
		dst, rs = beginMsg(dst, tag(1, wtBytes)) // resource_spans
		if res != nil {
			var r int
			dst, r = beginMsg(dst, tag(1, wtBytes))
			dst = appendAttrs(dst, tag(1, wtBytes), res.Attrs)
			dst = appendVarintField(dst, tag(2, wtVarint), uint64(res.DroppedAttrs))
			dst = endMsg(dst, r)
		}
		for k := i; k < j; {
			sc := spans[k].Scope
			l := k + 1
			for l < j && spans[l].Scope == sc {
				l++
			}
			var ss int
			dst, ss = beginMsg(dst, tag(2, wtBytes)) // scope_spans
			if sc != nil {
				var s int
				dst, s = beginMsg(dst, tag(1, wtBytes))
				dst = appendString(dst, tag(1, wtBytes), sc.Name)
				dst = appendString(dst, tag(2, wtBytes), sc.Version)
				dst = appendAttrs(dst, tag(3, wtBytes), sc.Attrs)
				dst = appendVarintField(dst, tag(4, wtVarint), uint64(sc.DroppedAttrs))
				dst = endMsg(dst, s)
			}
			for m := k; m < l; m++ {
				var sp int
				dst, sp = beginMsg(dst, tag(2, wtBytes))
				dst = appendSpan(dst, &spans[m])
				dst = endMsg(dst, sp)
			}
			if sc != nil {
				dst = appendString(dst, tag(3, wtBytes), sc.SchemaURL)
			}
			dst = endMsg(dst, ss)
			k = l
		}
		if res != nil {
			dst = appendString(dst, tag(3, wtBytes), res.SchemaURL)
		}
		dst = endMsg(dst, rs)
		i = j
	}
	return dst
}

// appendSpan appends the body of a Span message.
func appendSpan(dst []byte, s *span.Span) []byte {
	dst = appendBytesField(dst, tag(1, wtBytes), s.TraceID[:])
	dst = appendBytesField(dst, tag(2, wtBytes), s.SpanID[:])
	dst = appendString(dst, tag(3, wtBytes), s.TraceState)
	if !s.ParentSpanID.IsZero() {
		dst = appendBytesField(dst, tag(4, wtBytes), s.ParentSpanID[:])
	}
	dst = appendString(dst, tag(5, wtBytes), s.Name)
	dst = appendVarintField(dst, tag(6, wtVarint), uint64(s.Kind))
	dst = appendFixed64Field(dst, tag(7, wtFixed64), s.StartUnixNano)
	dst = appendFixed64Field(dst, tag(8, wtFixed64), s.EndUnixNano)
	dst = appendAttrs(dst, tag(9, wtBytes), s.Attrs)
	dst = appendVarintField(dst, tag(10, wtVarint), uint64(s.DroppedAttrs))
	for i := range s.Events {
		e := &s.Events[i]
		var st int
		dst, st = beginMsg(dst, tag(11, wtBytes))
		dst = appendFixed64Field(dst, tag(1, wtFixed64), e.TimeUnixNano)
		dst = appendString(dst, tag(2, wtBytes), e.Name)
		dst = appendAttrs(dst, tag(3, wtBytes), e.Attrs)
		dst = appendVarintField(dst, tag(4, wtVarint), uint64(e.DroppedAttrs))
		dst = endMsg(dst, st)
	}
	dst = appendVarintField(dst, tag(12, wtVarint), uint64(s.DroppedEvents))
	for i := range s.Links {
		l := &s.Links[i]
		var st int
		dst, st = beginMsg(dst, tag(13, wtBytes))
		dst = appendBytesField(dst, tag(1, wtBytes), l.TraceID[:])
		dst = appendBytesField(dst, tag(2, wtBytes), l.SpanID[:])
		dst = appendString(dst, tag(3, wtBytes), l.TraceState)
		dst = appendAttrs(dst, tag(4, wtBytes), l.Attrs)
		dst = appendVarintField(dst, tag(5, wtVarint), uint64(l.DroppedAttrs))
		dst = appendFixed32Field(dst, tag(6, wtFixed32), l.Flags)
		dst = endMsg(dst, st)
	}
	dst = appendVarintField(dst, tag(14, wtVarint), uint64(s.DroppedLinks))
	if s.StatusCode != span.StatusUnset || s.StatusMessage != "" {
		var st int
		dst, st = beginMsg(dst, tag(15, wtBytes))
		dst = appendString(dst, tag(2, wtBytes), s.StatusMessage)
		dst = appendVarintField(dst, tag(3, wtVarint), uint64(s.StatusCode))
		dst = endMsg(dst, st)
	}
	if s.Flags != 0 {
		// Field 16 needs a two-byte tag: 16<<3|5 = 133.
		dst = append(dst, 0x85, 0x01)
		dst = binary.LittleEndian.AppendUint32(dst, s.Flags)
	}
	return dst
}

// appendAttrs appends each attribute as a KeyValue field tagged t.
func appendAttrs(dst []byte, t byte, attrs []span.Attr) []byte {
	for i := range attrs {
		var st int
		dst, st = beginMsg(dst, t)
		dst = appendKV(dst, &attrs[i])
		dst = endMsg(dst, st)
	}
	return dst
}

// appendKV appends the body of a KeyValue message.
func appendKV(dst []byte, kv *span.Attr) []byte {
	dst = appendString(dst, tag(1, wtBytes), kv.Key)
	if kv.Value.Type == span.TypeEmpty {
		return dst
	}
	var st int
	dst, st = beginMsg(dst, tag(2, wtBytes))
	dst = appendValue(dst, &kv.Value)
	return endMsg(dst, st)
}

// appendValue appends the body of an AnyValue message. Oneof members are
// written even when they hold their zero value, so that the type survives.
func appendValue(dst []byte, v *span.Value) []byte {
	switch v.Type {
	case span.TypeString:
		dst = appendStringField(dst, tag(1, wtBytes), v.Str)
	case span.TypeBool:
		dst = append(dst, tag(2, wtVarint), byte(min(v.Num, 1)))
	case span.TypeInt:
		dst = appendUvarint(append(dst, tag(3, wtVarint)), v.Num)
	case span.TypeDouble:
		dst = binary.LittleEndian.AppendUint64(append(dst, tag(4, wtFixed64)), v.Num)
	case span.TypeBytes:
		dst = appendStringField(dst, tag(7, wtBytes), v.Str)
	case span.TypeArray:
		var st int
		dst, st = beginMsg(dst, tag(5, wtBytes))
		for i := range v.Array {
			var e int
			dst, e = beginMsg(dst, tag(1, wtBytes))
			dst = appendValue(dst, &v.Array[i])
			dst = endMsg(dst, e)
		}
		dst = endMsg(dst, st)
	case span.TypeMap:
		var st int
		dst, st = beginMsg(dst, tag(6, wtBytes))
		dst = appendAttrs(dst, tag(1, wtBytes), v.Map)
		dst = endMsg(dst, st)
	}
	return dst
}

// AppendExportResponseProto appends an ExportTraceServiceResponse to dst.
// partial_success is written when rejected is non-zero or msg is non-empty
// (OTLP treats a message with no rejections as a warning); otherwise the
// response is empty.
func AppendExportResponseProto(dst []byte, rejected int64, msg string) []byte {
	if rejected == 0 && msg == "" {
		return dst
	}
	var st int
	dst, st = beginMsg(dst, tag(1, wtBytes))
	dst = appendVarintField(dst, tag(1, wtVarint), uint64(rejected))
	dst = appendString(dst, tag(2, wtBytes), msg)
	return endMsg(dst, st)
}
