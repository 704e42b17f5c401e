package loadgen

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/clew-dev/clew/internal/span"
)

// This file hand-encodes OTLP trace export requests so that the generator can
// append spans straight into request bytes without building pdata objects.
// Field numbers follow opentelemetry/proto/trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto and
// collector/trace/v1/trace_service.proto. Tests decode the output with pdata.

// Field numbers of the OTLP messages written here.
const (
	// ExportTraceServiceRequest.
	fReqResourceSpans = 1
	// ResourceSpans.
	fRSResource   = 1
	fRSScopeSpans = 2
	fRSSchemaURL  = 3
	// Resource.
	fResAttrs = 1
	// ScopeSpans.
	fSSScope = 1
	fSSSpans = 2
	// InstrumentationScope.
	fScopeName    = 1
	fScopeVersion = 2
	fScopeAttrs   = 3
	// Span.
	fSpanTraceID    = 1
	fSpanSpanID     = 2
	fSpanTraceState = 3
	fSpanParentID   = 4
	fSpanName       = 5
	fSpanKind       = 6
	fSpanStart      = 7
	fSpanEnd        = 8
	fSpanAttrs      = 9
	fSpanEvents     = 11
	fSpanLinks      = 13
	fSpanStatus     = 15
	fSpanFlags      = 16
	// Span.Event.
	fEventTime  = 1
	fEventName  = 2
	fEventAttrs = 3
	// Span.Link.
	fLinkTraceID = 1
	fLinkSpanID  = 2
	fLinkAttrs   = 4
	// Status.
	fStatusMessage = 2
	fStatusCode    = 3
	// KeyValue.
	fKVKey   = 1
	fKVValue = 2
	// AnyValue.
	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3
	fAnyDouble = 4
	fAnyArray  = 5
	fAnyKVList = 6
	fAnyBytes  = 7
	// ArrayValue and KeyValueList.
	fListValues = 1
	// ExportTraceServiceResponse and ExportTracePartialSuccess.
	fRespPartialSuccess = 1
	fPSRejectedSpans    = 1
	fPSErrorMessage     = 2
)

// encoder appends protobuf to b. Nested messages are opened with begin, which
// reserves one length byte, and closed with end, which writes the length and
// shifts the body when the length needs more than one byte. The output is the
// canonical encoding.
type encoder struct {
	b     []byte
	stack []int
}

func (e *encoder) begin(field protowire.Number) {
	e.b = protowire.AppendTag(e.b, field, protowire.BytesType)
	e.stack = append(e.stack, len(e.b))
	e.b = append(e.b, 0)
}

func (e *encoder) end() {
	start := e.stack[len(e.stack)-1]
	e.stack = e.stack[:len(e.stack)-1]
	n := len(e.b) - start - 1
	sz := protowire.SizeVarint(uint64(n))
	if sz > 1 {
		for range sz - 1 {
			e.b = append(e.b, 0)
		}
		copy(e.b[start+sz:], e.b[start+1:start+1+n])
	}
	protowire.AppendVarint(e.b[start:start], uint64(n))
}

func (e *encoder) str(field protowire.Number, s string) {
	if s == "" {
		return
	}
	e.b = protowire.AppendTag(e.b, field, protowire.BytesType)
	e.b = protowire.AppendString(e.b, s)
}

func (e *encoder) bytes(field protowire.Number, v []byte) {
	e.b = protowire.AppendTag(e.b, field, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, v)
}

func (e *encoder) varint(field protowire.Number, v uint64) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, field, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, v)
}

func (e *encoder) fixed64(field protowire.Number, v uint64) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, field, protowire.Fixed64Type)
	e.b = protowire.AppendFixed64(e.b, v)
}

func (e *encoder) fixed32(field protowire.Number, v uint32) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, field, protowire.Fixed32Type)
	e.b = protowire.AppendFixed32(e.b, v)
}

// attrs writes each attribute as a KeyValue in field.
func (e *encoder) attrs(field protowire.Number, attrs []span.Attr) {
	for i := range attrs {
		e.begin(field)
		e.str(fKVKey, attrs[i].Key)
		e.begin(fKVValue)
		e.anyValue(attrs[i].Value)
		e.end()
		e.end()
	}
}

// anyValue writes the body of an AnyValue. Oneof members are written even
// when they hold the zero value, so that the type survives.
func (e *encoder) anyValue(v span.Value) {
	switch v.Type {
	case span.TypeString:
		e.b = protowire.AppendTag(e.b, fAnyString, protowire.BytesType)
		e.b = protowire.AppendString(e.b, v.Str)
	case span.TypeBool:
		e.b = protowire.AppendTag(e.b, fAnyBool, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, v.Num&1)
	case span.TypeInt:
		e.b = protowire.AppendTag(e.b, fAnyInt, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, v.Num)
	case span.TypeDouble:
		e.b = protowire.AppendTag(e.b, fAnyDouble, protowire.Fixed64Type)
		e.b = protowire.AppendFixed64(e.b, v.Num)
	case span.TypeBytes:
		e.b = protowire.AppendTag(e.b, fAnyBytes, protowire.BytesType)
		e.b = protowire.AppendString(e.b, v.Str)
	case span.TypeArray:
		e.begin(fAnyArray)
		for _, el := range v.Array {
			e.begin(fListValues)
			e.anyValue(el)
			e.end()
		}
		e.end()
	case span.TypeMap:
		e.begin(fAnyKVList)
		e.attrs(fListValues, v.Map)
		e.end()
	}
}

// span writes s as a Span message in field.
func (e *encoder) span(field protowire.Number, s *span.Span) {
	e.begin(field)
	e.bytes(fSpanTraceID, s.TraceID[:])
	e.bytes(fSpanSpanID, s.SpanID[:])
	e.str(fSpanTraceState, s.TraceState)
	if !s.ParentSpanID.IsZero() {
		e.bytes(fSpanParentID, s.ParentSpanID[:])
	}
	e.str(fSpanName, s.Name)
	e.varint(fSpanKind, uint64(s.Kind))
	e.fixed64(fSpanStart, s.StartUnixNano)
	e.fixed64(fSpanEnd, s.EndUnixNano)
	e.attrs(fSpanAttrs, s.Attrs)
	for i := range s.Events {
		ev := &s.Events[i]
		e.begin(fSpanEvents)
		e.fixed64(fEventTime, ev.TimeUnixNano)
		e.str(fEventName, ev.Name)
		e.attrs(fEventAttrs, ev.Attrs)
		e.end()
	}
	for i := range s.Links {
		l := &s.Links[i]
		e.begin(fSpanLinks)
		e.bytes(fLinkTraceID, l.TraceID[:])
		e.bytes(fLinkSpanID, l.SpanID[:])
		e.attrs(fLinkAttrs, l.Attrs)
		e.end()
	}
	if s.StatusCode != span.StatusUnset || s.StatusMessage != "" {
		e.begin(fSpanStatus)
		e.str(fStatusMessage, s.StatusMessage)
		e.varint(fStatusCode, uint64(s.StatusCode))
		e.end()
	}
	e.fixed32(fSpanFlags, s.Flags)
	e.end()
}

// group holds the encoded Span messages (each with its field-2 tag) of one
// resource and scope within a pending request.
type group struct {
	rank  int // orders groups so that those of one resource are adjacent
	res   *span.Resource
	scope *span.Scope
	spans []byte
}

// appendRequest appends an ExportTraceServiceRequest made of groups to dst.
// Groups of one resource must be adjacent.
func appendRequest(dst []byte, groups []*group) []byte {
	e := encoder{b: dst}
	for i := 0; i < len(groups); {
		res := groups[i].res
		e.begin(fReqResourceSpans)
		e.begin(fRSResource)
		e.attrs(fResAttrs, res.Attrs)
		e.end()
		for ; i < len(groups) && groups[i].res == res; i++ {
			g := groups[i]
			e.begin(fRSScopeSpans)
			e.begin(fSSScope)
			e.str(fScopeName, g.scope.Name)
			e.str(fScopeVersion, g.scope.Version)
			e.attrs(fScopeAttrs, g.scope.Attrs)
			e.end()
			e.b = append(e.b, g.spans...)
			e.end()
		}
		e.str(fRSSchemaURL, res.SchemaURL)
		e.end()
	}
	return e.b
}

// errBadResponse reports an ExportTraceServiceResponse that does not parse.
var errBadResponse = errors.New("malformed export response")

// parsePartialSuccess reads rejected_spans and error_message from an encoded
// ExportTraceServiceResponse. An empty response means full success.
func parsePartialSuccess(b []byte) (rejected int64, msg string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, "", errBadResponse
		}
		b = b[n:]
		if num != fRespPartialSuccess || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, "", errBadResponse
			}
			b = b[n:]
			continue
		}
		ps, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, "", errBadResponse
		}
		b = b[n:]
		for len(ps) > 0 {
			pnum, ptyp, pn := protowire.ConsumeTag(ps)
			if pn < 0 {
				return 0, "", errBadResponse
			}
			ps = ps[pn:]
			switch {
			case pnum == fPSRejectedSpans && ptyp == protowire.VarintType:
				v, vn := protowire.ConsumeVarint(ps)
				if vn < 0 {
					return 0, "", errBadResponse
				}
				rejected, ps = int64(v), ps[vn:]
			case pnum == fPSErrorMessage && ptyp == protowire.BytesType:
				v, vn := protowire.ConsumeString(ps)
				if vn < 0 {
					return 0, "", errBadResponse
				}
				msg, ps = v, ps[vn:]
			default:
				vn := protowire.ConsumeFieldValue(pnum, ptyp, ps)
				if vn < 0 {
					return 0, "", errBadResponse
				}
				ps = ps[vn:]
			}
		}
	}
	return rejected, msg, nil
}

// appendPartialSuccess appends an ExportTraceServiceResponse carrying a
// partial success to dst. The test server uses it.
func appendPartialSuccess(dst []byte, rejected int64, msg string) []byte {
	e := encoder{b: dst}
	e.begin(fRespPartialSuccess)
	e.varint(fPSRejectedSpans, uint64(rejected))
	e.str(fPSErrorMessage, msg)
	e.end()
	return e.b
}
