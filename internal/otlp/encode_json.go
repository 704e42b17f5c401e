package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"strconv"

	"github.com/clew-dev/clew/internal/span"
)

// AppendJSON appends spans to dst as an OTLP/JSON ExportTraceServiceRequest,
// grouped by Resource and Scope pointer as AppendSpansProto does. It follows
// the proto3 JSON mapping with OTLP's exceptions: lowerCamelCase keys, trace
// and span IDs as lowercase hex, 64-bit integers as decimal strings, doubles
// as numbers ("NaN", "Infinity", "-Infinity" as strings), bytes as base64,
// enums as integers, and fields with zero values left out. Invalid UTF-8 in
// strings is replaced by U+FFFD.
func AppendJSON(dst []byte, spans []span.Span) []byte {
	dst = append(dst, `{"resourceSpans":[`...)
	for i := 0; i < len(spans); {
		res := spans[i].Resource
		j := i + 1
		for j < len(spans) && spans[j].Resource == res {
			j++
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		if res != nil {
			dst = append(dst, `"resource":{`...)
			n := len(dst)
			dst = appendAttrsJSON(dst, "attributes", res.Attrs, false)
			dst = appendUintJSON(dst, "droppedAttributesCount", uint64(res.DroppedAttrs), len(dst) > n)
			dst = append(dst, `},`...)
		}
		dst = append(dst, `"scopeSpans":[`...)
		for k := i; k < j; {
			sc := spans[k].Scope
			l := k + 1
			for l < j && spans[l].Scope == sc {
				l++
			}
			if k > i {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			if sc != nil {
				dst = append(dst, `"scope":{`...)
				n := len(dst)
				dst = appendStringJSON(dst, "name", sc.Name, false)
				dst = appendStringJSON(dst, "version", sc.Version, len(dst) > n)
				dst = appendAttrsJSON(dst, "attributes", sc.Attrs, len(dst) > n)
				dst = appendUintJSON(dst, "droppedAttributesCount", uint64(sc.DroppedAttrs), len(dst) > n)
				dst = append(dst, `},`...)
			}
			dst = append(dst, `"spans":[`...)
			for m := k; m < l; m++ {
				if m > k {
					dst = append(dst, ',')
				}
				dst = appendSpanJSON(dst, &spans[m])
			}
			dst = append(dst, ']')
			if sc != nil {
				dst = appendStringJSON(dst, "schemaUrl", sc.SchemaURL, true)
			}
			dst = append(dst, '}')
			k = l
		}
		dst = append(dst, ']')
		if res != nil {
			dst = appendStringJSON(dst, "schemaUrl", res.SchemaURL, true)
		}
		dst = append(dst, '}')
		i = j
	}
	return append(dst, "]}"...)
}

func appendKeyJSON(dst []byte, key string, comma bool) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendStringJSON(dst []byte, key, s string, comma bool) []byte {
	if s == "" {
		return dst
	}
	dst = appendKeyJSON(dst, key, comma)
	return span.AppendJSONString(dst, s)
}

// appendUintJSON writes a 32-bit count or enum as a bare number.
func appendUintJSON(dst []byte, key string, v uint64, comma bool) []byte {
	if v == 0 {
		return dst
	}
	dst = appendKeyJSON(dst, key, comma)
	return strconv.AppendUint(dst, v, 10)
}

// appendUint64JSON writes a 64-bit integer as a decimal string.
func appendUint64JSON(dst []byte, key string, v uint64, comma bool) []byte {
	if v == 0 {
		return dst
	}
	dst = appendKeyJSON(dst, key, comma)
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, v, 10)
	return append(dst, '"')
}

func appendHexJSON(dst []byte, key string, id []byte, comma bool) []byte {
	dst = appendKeyJSON(dst, key, comma)
	dst = append(dst, '"')
	dst = hex.AppendEncode(dst, id)
	return append(dst, '"')
}

func appendSpanJSON(dst []byte, s *span.Span) []byte {
	dst = append(dst, '{')
	dst = appendHexJSON(dst, "traceId", s.TraceID[:], false)
	dst = appendHexJSON(dst, "spanId", s.SpanID[:], true)
	dst = appendStringJSON(dst, "traceState", s.TraceState, true)
	if !s.ParentSpanID.IsZero() {
		dst = appendHexJSON(dst, "parentSpanId", s.ParentSpanID[:], true)
	}
	dst = appendUintJSON(dst, "flags", uint64(s.Flags), true)
	dst = appendStringJSON(dst, "name", s.Name, true)
	dst = appendUintJSON(dst, "kind", uint64(s.Kind), true)
	dst = appendUint64JSON(dst, "startTimeUnixNano", s.StartUnixNano, true)
	dst = appendUint64JSON(dst, "endTimeUnixNano", s.EndUnixNano, true)
	dst = appendAttrsJSON(dst, "attributes", s.Attrs, true)
	dst = appendUintJSON(dst, "droppedAttributesCount", uint64(s.DroppedAttrs), true)
	if len(s.Events) > 0 {
		dst = appendKeyJSON(dst, "events", true)
		dst = append(dst, '[')
		for i := range s.Events {
			e := &s.Events[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			n := len(dst)
			dst = appendUint64JSON(dst, "timeUnixNano", e.TimeUnixNano, false)
			dst = appendStringJSON(dst, "name", e.Name, len(dst) > n)
			dst = appendAttrsJSON(dst, "attributes", e.Attrs, len(dst) > n)
			dst = appendUintJSON(dst, "droppedAttributesCount", uint64(e.DroppedAttrs), len(dst) > n)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = appendUintJSON(dst, "droppedEventsCount", uint64(s.DroppedEvents), true)
	if len(s.Links) > 0 {
		dst = appendKeyJSON(dst, "links", true)
		dst = append(dst, '[')
		for i := range s.Links {
			l := &s.Links[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '{')
			dst = appendHexJSON(dst, "traceId", l.TraceID[:], false)
			dst = appendHexJSON(dst, "spanId", l.SpanID[:], true)
			dst = appendStringJSON(dst, "traceState", l.TraceState, true)
			dst = appendAttrsJSON(dst, "attributes", l.Attrs, true)
			dst = appendUintJSON(dst, "droppedAttributesCount", uint64(l.DroppedAttrs), true)
			dst = appendUintJSON(dst, "flags", uint64(l.Flags), true)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = appendUintJSON(dst, "droppedLinksCount", uint64(s.DroppedLinks), true)
	if s.StatusCode != span.StatusUnset || s.StatusMessage != "" {
		dst = appendKeyJSON(dst, "status", true)
		dst = append(dst, '{')
		dst = appendStringJSON(dst, "message", s.StatusMessage, false)
		dst = appendUintJSON(dst, "code", uint64(s.StatusCode), s.StatusMessage != "")
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendAttrsJSON(dst []byte, key string, attrs []span.Attr, comma bool) []byte {
	if len(attrs) == 0 {
		return dst
	}
	dst = appendKeyJSON(dst, key, comma)
	return appendKVsJSON(dst, attrs)
}

func appendKVsJSON(dst []byte, attrs []span.Attr) []byte {
	dst = append(dst, '[')
	for i := range attrs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = span.AppendJSONString(dst, attrs[i].Key)
		dst = append(dst, `,"value":`...)
		dst = appendValueJSON(dst, &attrs[i].Value)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendValueJSON appends an AnyValue object.
func appendValueJSON(dst []byte, v *span.Value) []byte {
	switch v.Type {
	case span.TypeString:
		dst = append(dst, `{"stringValue":`...)
		dst = span.AppendJSONString(dst, v.Str)
	case span.TypeBool:
		dst = append(dst, `{"boolValue":`...)
		dst = strconv.AppendBool(dst, v.Bool())
	case span.TypeInt:
		dst = append(dst, `{"intValue":"`...)
		dst = strconv.AppendInt(dst, v.Int(), 10)
		dst = append(dst, '"')
	case span.TypeDouble:
		dst = append(dst, `{"doubleValue":`...)
		dst = appendDoubleJSON(dst, v.Double())
	case span.TypeBytes:
		dst = append(dst, `{"bytesValue":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(v.Str))
		dst = append(dst, '"')
	case span.TypeArray:
		dst = append(dst, `{"arrayValue":{"values":[`...)
		for i := range v.Array {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValueJSON(dst, &v.Array[i])
		}
		dst = append(dst, "]}"...)
	case span.TypeMap:
		dst = append(dst, `{"kvlistValue":{"values":`...)
		dst = appendKVsJSON(dst, v.Map)
		dst = append(dst, '}')
	default:
		dst = append(dst, '{')
	}
	return append(dst, '}')
}

func appendDoubleJSON(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// AppendExportResponseJSON appends an OTLP/JSON ExportTraceServiceResponse
// to dst: {"partialSuccess":{"rejectedSpans":"2","errorMessage":"..."}}
// when rejected is non-zero or msg is non-empty, {} otherwise.
func AppendExportResponseJSON(dst []byte, rejected int64, msg string) []byte {
	if rejected == 0 && msg == "" {
		return append(dst, "{}"...)
	}
	dst = append(dst, `{"partialSuccess":{`...)
	if rejected != 0 {
		dst = append(dst, `"rejectedSpans":"`...)
		dst = strconv.AppendInt(dst, rejected, 10)
		dst = append(dst, '"')
	}
	dst = appendStringJSON(dst, "errorMessage", msg, rejected != 0)
	return append(dst, "}}"...)
}
