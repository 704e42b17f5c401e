package zipkin

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// Attribute keys the Zipkin mapping writes besides the tags. They follow the
// OpenTelemetry Collector's Zipkin receiver (semantic conventions 1.x names);
// net.host.ipv6 and net.peer.ipv6 are clew's own, for an endpoint that
// carries both an IPv4 and an IPv6 address, which one key cannot hold.
const (
	keyServiceName = "service.name"
	keyHostIP      = "net.host.ip"
	keyHostIPv6    = "net.host.ipv6"
	keyHostPort    = "net.host.port"
	keyPeerService = "peer.service"
	keyPeerIP      = "net.peer.ip"
	keyPeerIPv6    = "net.peer.ipv6"
	keyPeerPort    = "net.peer.port"
	keyShared      = "zipkin.shared"
	keyDebug       = "zipkin.debug"
	// keySpanKind is the tag the Collector writes for an internal span,
	// which Zipkin's kinds cannot express.
	keySpanKind = "span.kind"
	// keyError is Zipkin's error tag: its presence marks a failed span and
	// its value, when not "true" or empty, is the message.
	keyError = "error"
	// keyStatusCode and keyStatusDesc carry an OpenTelemetry status through
	// Zipkin; they win over the error tag.
	keyStatusCode = "otel.status_code"
	keyStatusDesc = "otel.status_description"
)

// endpoint is a Zipkin Endpoint as decoded. Invalid addresses are dropped,
// as Zipkin's own decoders do.
type endpoint struct {
	serviceName string
	ipv4, ipv6  netip.Addr
	port        int32
}

func (e *endpoint) setIP(a netip.Addr) {
	switch {
	case !a.IsValid():
	case a.Is4() || a.Is4In6():
		e.ipv4 = a.Unmap()
	default:
		e.ipv6 = a
	}
}

// parseIP parses an endpoint address. Dotted IPv4 octets may have leading
// zeros, read as decimal, as Zipkin's own parser reads them (Go's refuses
// them to avoid the octal ambiguity); the address is then written back in
// canonical form. A zone is refused. It reports false for anything else.
func parseIP(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, a.Zone() == ""
	}
	var b [4]byte
	part := 0
	n, digits := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || digits > 3 || n > 255 || part > 3 {
				return netip.Addr{}, false
			}
			b[part] = byte(n)
			part++
			n, digits = 0, 0
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return netip.Addr{}, false
		}
		n = n*10 + int(s[i]-'0')
		digits++
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// zspan is one Zipkin v2 span as decoded from JSON or protobuf, before it
// is mapped onto span.Span. Timestamps are microseconds.
type zspan struct {
	traceID         span.TraceID
	id, parentID    span.SpanID
	hasTrace, hasID bool
	kind            string
	name            string
	timestamp, dur  uint64
	local, remote   endpoint
	hasLocal        bool
	hasRemote       bool
	annotations     []annotation
	tags            []tag
	tagIdx          map[string]int // key → index in tags, once there are many
	debug, shared   bool
}

type annotation struct {
	timestamp uint64
	value     string
}

type tag struct{ key, value string }

func (z *zspan) reset() {
	ann, tags := z.annotations[:0], z.tags[:0]
	*z = zspan{annotations: ann, tags: tags}
}

// setTag records a tag; a repeated key keeps the last value, as a map would.
// Past a few tags an index keeps this linear in the number of tags.
func (z *zspan) setTag(k, v string) {
	if z.tagIdx == nil && len(z.tags) >= 16 {
		z.tagIdx = make(map[string]int, 2*len(z.tags))
		for i, t := range z.tags {
			z.tagIdx[t.key] = i
		}
	}
	if z.tagIdx != nil {
		if i, ok := z.tagIdx[k]; ok {
			z.tags[i].value = v
			return
		}
		z.tagIdx[k] = len(z.tags)
		z.tags = append(z.tags, tag{k, v})
		return
	}
	for i := range z.tags {
		if z.tags[i].key == k {
			z.tags[i].value = v
			return
		}
	}
	z.tags = append(z.tags, tag{k, v})
}

// hasTag reports whether a tag named k was sent.
func (z *zspan) hasTag(k string) bool {
	if z.tagIdx != nil {
		_, ok := z.tagIdx[k]
		return ok
	}
	for i := range z.tags {
		if z.tags[i].key == k {
			return true
		}
	}
	return false
}

// errTooManySpans is returned when a request holds more spans than allowed.
var errTooManySpans = otlp.ErrTooManySpans

// builder maps decoded Zipkin spans onto a span.Batch, applying the ingest
// limits as every receiver does: strings go through otlp.CleanString
// (invalid UTF-8 replaced, then cut at a rune boundary), tags and
// annotations over the per-span limits are dropped, a span with an
// all-zero trace or span ID is rejected, and all of it counted in st.
type builder struct {
	lim   otlp.Limits
	b     *span.Batch
	res   map[string]*span.Resource
	st    otlp.Result
	count int
}

func newBuilder(lim otlp.Limits, b *span.Batch) *builder {
	return &builder{lim: lim.WithDefaults(), b: b, res: map[string]*span.Resource{}}
}

// name applies the string rule to a name or key.
func (bl *builder) name(s string) string { return bl.st.Clean(s, bl.lim.MaxNameBytes, true) }

// value applies the string rule to a string value.
func (bl *builder) value(s string) string { return bl.st.Clean(s, bl.lim.MaxAttrValueBytes, false) }

// done finishes the counts of the request.
func (bl *builder) done() otlp.Result {
	bl.st.Spans = len(bl.b.Spans)
	bl.st.Finish()
	return bl.st
}

func (bl *builder) resource(service string) *span.Resource {
	if r, ok := bl.res[service]; ok {
		return r
	}
	r := &span.Resource{}
	if service != "" {
		r.Attrs = []span.Attr{{Key: keyServiceName, Value: span.StringValue(service)}}
	}
	bl.res[service] = r
	bl.b.Resources = append(bl.b.Resources, r)
	return r
}

// add maps z onto a span and appends it to the batch. idx is z's position
// in the request, for error messages.
func (bl *builder) add(z *zspan, idx int) error {
	bl.count++
	if bl.lim.MaxSpansPerRequest > 0 && bl.count > bl.lim.MaxSpansPerRequest {
		return fmt.Errorf("%w: more than %d spans in one request", errTooManySpans, bl.lim.MaxSpansPerRequest)
	}
	if !z.hasTrace {
		return fmt.Errorf("span %d: traceId is required", idx)
	}
	if !z.hasID {
		return fmt.Errorf("span %d: id is required", idx)
	}
	// An all-zero ID is rejected with the span alone, as OTLP rejects it.
	if z.traceID.IsZero() {
		bl.st.Reject(otlp.ReasonInvalidTraceID)
		return nil
	}
	if z.id.IsZero() {
		bl.st.Reject(otlp.ReasonInvalidSpanID)
		return nil
	}
	const maxMicros = math.MaxUint64 / 1000
	if z.timestamp > maxMicros || z.dur > maxMicros-z.timestamp {
		return fmt.Errorf("span %d: timestamp or duration out of range", idx)
	}
	s := span.Span{
		TraceID:       z.traceID,
		SpanID:        z.id,
		Name:          bl.name(z.name),
		StartUnixNano: z.timestamp * 1000,
		EndUnixNano:   (z.timestamp + z.dur) * 1000,
	}
	if z.parentID != z.id {
		s.ParentSpanID = z.parentID
	}
	switch z.kind {
	case "":
	case "CLIENT":
		s.Kind = span.KindClient
	case "SERVER":
		s.Kind = span.KindServer
	case "PRODUCER":
		s.Kind = span.KindProducer
	case "CONSUMER":
		s.Kind = span.KindConsumer
	default:
		return fmt.Errorf("span %d: kind %q: want CLIENT, SERVER, PRODUCER or CONSUMER", idx, z.kind)
	}
	s.Resource = bl.resource(bl.value(z.local.serviceName))

	// Tags become attributes, all kept as strings (a tag is a string in
	// Zipkin); the status is derived from them without removing them, so a
	// span reads back with the tags it was sent with.
	n := len(z.tags) + 9
	attrs := make([]span.Attr, 0, min(n, max(bl.lim.MaxAttrsPerSpan, 0)+1))
	var statusCode, statusDesc, errTag string
	var hasStatusCode, hasError bool
	put := func(k string, v span.Value) {
		if bl.lim.MaxAttrsPerSpan > 0 && len(attrs) >= bl.lim.MaxAttrsPerSpan {
			s.DroppedAttrs++
			bl.st.DroppedAttrs++
			return
		}
		attrs = append(attrs, span.Attr{Key: k, Value: v})
	}
	for _, t := range z.tags {
		switch t.key {
		case keySpanKind:
			if s.Kind == span.KindUnspecified && t.value == "internal" {
				s.Kind = span.KindInternal
				continue
			}
		case keyStatusCode:
			statusCode, hasStatusCode = t.value, true
		case keyStatusDesc:
			statusDesc = t.value
		case keyError:
			errTag, hasError = t.value, true
		}
		put(bl.name(t.key), span.StringValue(bl.value(t.value)))
	}
	switch {
	case hasStatusCode:
		switch statusCode {
		case "OK", "STATUS_CODE_OK":
			s.StatusCode = span.StatusOK
		case "ERROR", "STATUS_CODE_ERROR":
			s.StatusCode = span.StatusError
			s.StatusMessage = bl.value(statusDesc)
		}
	case hasError:
		s.StatusCode = span.StatusError
		if errTag != "true" {
			s.StatusMessage = bl.value(errTag)
		}
	}
	// Endpoint fields and flags never shadow a tag of the same name.
	derived := func(k string, v span.Value) {
		if !z.hasTag(k) {
			put(k, v)
		}
	}
	if z.hasLocal {
		putEndpoint(derived, &z.local, keyHostIP, keyHostIPv6, keyHostPort)
	}
	if z.hasRemote {
		if z.remote.serviceName != "" {
			derived(keyPeerService, span.StringValue(bl.value(z.remote.serviceName)))
		}
		putEndpoint(derived, &z.remote, keyPeerIP, keyPeerIPv6, keyPeerPort)
	}
	if z.shared {
		derived(keyShared, span.BoolValue(true))
	}
	if z.debug {
		derived(keyDebug, span.BoolValue(true))
	}
	if len(attrs) > 0 {
		s.Attrs = attrs
	}
	if len(z.annotations) > 0 {
		ev := make([]span.Event, 0, len(z.annotations))
		for _, a := range z.annotations {
			if bl.lim.MaxEventsPerSpan > 0 && len(ev) >= bl.lim.MaxEventsPerSpan {
				s.DroppedEvents++
				bl.st.DroppedEvents++
				continue
			}
			if a.timestamp > maxMicros {
				return fmt.Errorf("span %d: annotation timestamp out of range", idx)
			}
			ev = append(ev, span.Event{TimeUnixNano: a.timestamp * 1000, Name: bl.name(a.value)})
		}
		s.Events = ev
	}
	bl.b.Spans = append(bl.b.Spans, s)
	return nil
}

// putEndpoint writes an endpoint's addresses and port: the first address
// (IPv4 if there is one) under ipKey, an IPv6 address beside an IPv4 one
// under ipv6Key.
func putEndpoint(put func(string, span.Value), e *endpoint, ipKey, ipv6Key, portKey string) {
	switch {
	case e.ipv4.IsValid():
		put(ipKey, span.StringValue(e.ipv4.String()))
		if e.ipv6.IsValid() {
			put(ipv6Key, span.StringValue(e.ipv6.String()))
		}
	case e.ipv6.IsValid():
		put(ipKey, span.StringValue(e.ipv6.String()))
	}
	if e.port > 0 && e.port <= math.MaxUint16 {
		put(portKey, span.IntValue(int64(e.port)))
	}
}
