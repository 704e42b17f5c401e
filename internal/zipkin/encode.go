package zipkin

import (
	"encoding/hex"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/span"
)

// consumed lists the attributes that become Zipkin fields rather than tags.
var consumed = map[string]bool{
	keyHostIP: true, keyHostIPv6: true, keyHostPort: true,
	keyPeerService: true, keyPeerIP: true, keyPeerIPv6: true, keyPeerPort: true,
	keyShared: true, keyDebug: true,
}

// appendTraceIDJSON writes a trace ID as Zipkin does: 16 hex digits when
// its high 64 bits are zero, else 32.
func appendTraceID(dst []byte, id span.TraceID) []byte {
	if [8]byte(id[:8]) == [8]byte{} {
		return hex.AppendEncode(dst, id[8:])
	}
	return hex.AppendEncode(dst, id[:])
}

// zipkinTraceID is the trace ID as Zipkin writes it.
func zipkinTraceID(id span.TraceID) string { return string(appendTraceID(nil, id)) }

// AppendSpanJSON appends s as one Zipkin v2 JSON span: the inverse of the
// mapping DecodeJSON applies, so that a span sent to clew over Zipkin reads
// back as it was sent (tags sorted by key, as Zipkin writes them). Spans
// that arrived over OTLP map the same way; besides, their resource
// attributes other than service.name and their scope's name and version
// become tags, an OK or error status becomes the otel.status_code or error
// tag, an event with attributes becomes an annotation "name|{json}|dropped"
// (the Collector's format), and links are left out.
func AppendSpanJSON(dst []byte, s *span.Span) []byte {
	dst = append(dst, `{"traceId":"`...)
	dst = appendTraceID(dst, s.TraceID)
	dst = append(dst, '"')
	if !s.ParentSpanID.IsZero() {
		dst = append(dst, `,"parentId":"`...)
		dst = hex.AppendEncode(dst, s.ParentSpanID[:])
		dst = append(dst, '"')
	}
	dst = append(dst, `,"id":"`...)
	dst = hex.AppendEncode(dst, s.SpanID[:])
	dst = append(dst, '"')
	switch s.Kind {
	case span.KindClient:
		dst = append(dst, `,"kind":"CLIENT"`...)
	case span.KindServer:
		dst = append(dst, `,"kind":"SERVER"`...)
	case span.KindProducer:
		dst = append(dst, `,"kind":"PRODUCER"`...)
	case span.KindConsumer:
		dst = append(dst, `,"kind":"CONSUMER"`...)
	}
	if s.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = span.AppendJSONString(dst, s.Name)
	}
	if ts := s.StartUnixNano / 1000; ts > 0 {
		dst = append(dst, `,"timestamp":`...)
		dst = strconv.AppendUint(dst, ts, 10)
	}
	if d := s.Duration(); d > 0 {
		dst = append(dst, `,"duration":`...)
		dst = strconv.AppendUint(dst, max(d/1000, 1), 10)
	}
	attr := attrOf(s)
	str := func(k string) string {
		if v, ok := attr(k); ok && v.Type == span.TypeString {
			return v.Str
		}
		return ""
	}
	local := endpointOf(s.Resource.ServiceName(), str(keyHostIP), str(keyHostIPv6), attr, keyHostPort)
	dst = appendEndpoint(dst, "localEndpoint", &local)
	remote := endpointOf(str(keyPeerService), str(keyPeerIP), str(keyPeerIPv6), attr, keyPeerPort)
	dst = appendEndpoint(dst, "remoteEndpoint", &remote)
	if len(s.Events) > 0 {
		dst = append(dst, `,"annotations":[`...)
		for i := range s.Events {
			e := &s.Events[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"timestamp":`...)
			dst = strconv.AppendUint(dst, e.TimeUnixNano/1000, 10)
			dst = append(dst, `,"value":`...)
			dst = span.AppendJSONString(dst, annotationValue(e))
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	tags := spanTags(s, attr)
	if len(tags) > 0 {
		dst = append(dst, `,"tags":{`...)
		for i, t := range tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = span.AppendJSONString(dst, t.key)
			dst = append(dst, ':')
			dst = span.AppendJSONString(dst, t.value)
		}
		dst = append(dst, '}')
	}
	if v, ok := attr(keyDebug); ok && v.Type == span.TypeBool && v.Bool() {
		dst = append(dst, `,"debug":true`...)
	}
	if v, ok := attr(keyShared); ok && v.Type == span.TypeBool && v.Bool() {
		dst = append(dst, `,"shared":true`...)
	}
	return append(dst, '}')
}

// attrOf returns a lookup of s's span attributes by key (the first one).
func attrOf(s *span.Span) func(string) (span.Value, bool) {
	return func(k string) (span.Value, bool) {
		for i := range s.Attrs {
			if s.Attrs[i].Key == k {
				return s.Attrs[i].Value, true
			}
		}
		return span.Value{}, false
	}
}

// annotationValue is the Zipkin annotation value an event is written as:
// its name, or "name|{json}|dropped" when it has attributes.
func annotationValue(e *span.Event) string {
	if len(e.Attrs) == 0 && e.DroppedAttrs == 0 {
		return e.Name
	}
	b := append([]byte(e.Name), '|')
	b = span.AppendValueJSON(b, span.Value{Type: span.TypeMap, Map: e.Attrs})
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(e.DroppedAttrs), 10)
	return string(b)
}

// spanTags collects s's Zipkin tags, sorted by key.
func spanTags(s *span.Span, attr func(string) (span.Value, bool)) []tag {
	tags := make([]tag, 0, len(s.Attrs)+2)
	seen := func(k string) bool {
		return slices.ContainsFunc(tags, func(t tag) bool { return t.key == k })
	}
	for i := range s.Attrs {
		a := &s.Attrs[i]
		if consumed[a.Key] || seen(a.Key) {
			continue
		}
		tags = append(tags, tag{a.Key, a.Value.AsString()})
	}
	if s.Kind == span.KindInternal && !seen(keySpanKind) {
		tags = append(tags, tag{keySpanKind, "internal"})
	}
	if _, ok := attr(keyStatusCode); !ok {
		switch s.StatusCode {
		case span.StatusOK:
			tags = append(tags, tag{keyStatusCode, "OK"})
		case span.StatusError:
			if !seen(keyError) {
				msg := s.StatusMessage
				if msg == "" {
					msg = "true"
				}
				tags = append(tags, tag{keyError, msg})
			}
		}
	}
	if s.Resource != nil {
		for _, a := range s.Resource.Attrs {
			if a.Key != keyServiceName && !seen(a.Key) {
				tags = append(tags, tag{a.Key, a.Value.AsString()})
			}
		}
	}
	if s.Scope != nil && s.Scope.Name != "" {
		if !seen("otel.scope.name") {
			tags = append(tags, tag{"otel.scope.name", s.Scope.Name})
		}
		if s.Scope.Version != "" && !seen("otel.scope.version") {
			tags = append(tags, tag{"otel.scope.version", s.Scope.Version})
		}
	}
	slices.SortFunc(tags, func(a, b tag) int { return strings.Compare(a.key, b.key) })
	return tags
}

// endpointOf builds an endpoint from the mapped attributes. The port may be
// an int or a numeric string.
func endpointOf(service, ip, ipv6 string, attr func(string) (span.Value, bool), portKey string) endpoint {
	e := endpoint{serviceName: service}
	if a, err := netip.ParseAddr(ip); err == nil {
		e.setIP(a)
	}
	if a, err := netip.ParseAddr(ipv6); err == nil {
		e.setIP(a)
	}
	if v, ok := attr(portKey); ok {
		var p int64
		switch v.Type {
		case span.TypeInt:
			p = v.Int()
		case span.TypeString:
			p, _ = strconv.ParseInt(v.Str, 10, 32)
		}
		if p > 0 && p <= 65535 {
			e.port = int32(p)
		}
	}
	return e
}

func appendEndpoint(dst []byte, name string, e *endpoint) []byte {
	if e.serviceName == "" && !e.ipv4.IsValid() && !e.ipv6.IsValid() && e.port == 0 {
		return dst
	}
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":{`...)
	sep := ""
	if e.serviceName != "" {
		dst = append(dst, `"serviceName":`...)
		dst = span.AppendJSONString(dst, e.serviceName)
		sep = ","
	}
	if e.ipv4.IsValid() {
		dst = append(dst, sep+`"ipv4":"`...)
		dst = e.ipv4.AppendTo(dst)
		dst = append(dst, '"')
		sep = ","
	}
	if e.ipv6.IsValid() {
		dst = append(dst, sep+`"ipv6":"`...)
		dst = e.ipv6.AppendTo(dst)
		dst = append(dst, '"')
		sep = ","
	}
	if e.port > 0 {
		dst = append(dst, sep+`"port":`...)
		dst = strconv.AppendInt(dst, int64(e.port), 10)
	}
	return append(dst, '}')
}

// AppendTraceJSON appends spans as a Zipkin v2 trace: a JSON list of spans.
func AppendTraceJSON(dst []byte, spans []span.Span) []byte {
	dst = append(dst, '[')
	for i := range spans {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendSpanJSON(dst, &spans[i])
	}
	return append(dst, ']')
}
