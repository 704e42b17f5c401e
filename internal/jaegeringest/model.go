package jaegeringest

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// Tag keys the mapping reads or writes. They follow the OpenTelemetry
// Collector's Jaeger receiver (pkg/translator/jaeger), so that a Jaeger span
// stored by clew reads like one stored by Tempo or the Collector.
const (
	keyServiceName     = "service.name"
	keyHostname        = "hostname"  // Jaeger clients' process tag ...
	keyHostName        = "host.name" // ... and its OpenTelemetry name
	keyJaegerVersion   = "jaeger.version"
	keyExporterVersion = "opencensus.exporterversion" // "Jaeger-" + jaeger.version, as the Collector writes it
	keySpanKind        = "span.kind"
	keyError           = "error"
	keyStatusCode      = "otel.status_code"
	keyStatusDesc      = "otel.status_description"
	keyHTTPStatusCode  = "http.status_code"
	keyHTTPStatusMsg   = "http.status_message"
	keyTraceState      = "w3c.tracestate"
	keyScopeName       = "otel.scope.name"
	keyScopeVersion    = "otel.scope.version"
	keyLibraryName     = "otel.library.name" // the older name of otel.scope.name
	keyLibraryVersion  = "otel.library.version"
	keyEventName       = "event" // a log field naming the event
	keyRefType         = "opentracing.ref_type"
)

// jref is a Jaeger span reference.
type jref struct {
	childOf                     bool // CHILD_OF; else FOLLOWS_FROM
	traceHigh, traceLow, spanID uint64
}

// jlog is a Jaeger log: a timestamp and fields.
type jlog struct {
	timeNanos uint64
	fields    []span.Attr
}

// jspan is one Jaeger span from either wire format, its tags and log fields
// already converted (and cut to the size limits), before it is mapped onto
// span.Span. Times are nanoseconds since the Unix epoch.
type jspan struct {
	traceHigh, traceLow uint64
	spanID              uint64
	parentID            uint64 // Thrift's parentSpanId; 0 when absent
	name                string
	startNanos, endNano uint64
	refs                []jref
	tags                []span.Attr
	logs                []jlog
	res                 *span.Resource
}

func (j *jspan) reset() {
	refs, logs := j.refs[:0], j.logs[:0]
	*j = jspan{refs: refs, logs: logs}
}

// errTooManySpans is returned when a request holds more spans than allowed.
var errTooManySpans = otlp.ErrTooManySpans

// maxMicros is the largest microsecond count whose nanoseconds fit a uint64.
const maxMicros = math.MaxUint64 / 1000

// builder maps Jaeger spans onto a span.Batch, applying the ingest limits
// as every receiver does: strings go through otlp.CleanString (invalid
// UTF-8 replaced, then cut at a rune boundary), tags, logs and references
// over the per-span limits are dropped, a span with a zero trace or span
// ID is rejected, and all of it counted in st.
type builder struct {
	lim    otlp.Limits
	b      *span.Batch
	scopes map[[2]string]*span.Scope
	st     otlp.Result
	count  int
}

func newBuilder(lim otlp.Limits, b *span.Batch) *builder {
	return &builder{lim: lim.WithDefaults(), b: b}
}

// name applies the string rule to a name or key.
func (bl *builder) name(s string) string { return bl.st.Clean(s, bl.lim.MaxNameBytes, true) }

// value applies the string rule to a string value.
func (bl *builder) value(s string) string { return bl.st.Clean(s, bl.lim.MaxAttrValueBytes, false) }

// cutBytes cuts a binary value to max bytes.
func (bl *builder) cutBytes(b []byte, max int) []byte {
	if max <= 0 || len(b) <= max {
		return b
	}
	bl.st.Truncated++
	return b[:max]
}

// done finishes the counts of the request.
func (bl *builder) done() otlp.Result {
	bl.st.Spans = len(bl.b.Spans)
	bl.st.Finish()
	return bl.st
}

func (bl *builder) str(v string) span.Value {
	return span.StringValue(bl.value(v))
}

func (bl *builder) bytes(v []byte) span.Value {
	return span.BytesValue(bl.cutBytes(v, bl.lim.MaxAttrValueBytes))
}

// unknownType is the value of a tag whose type Jaeger does not define, as
// the Collector writes it.
func (bl *builder) unknownType(t int64) span.Value {
	return span.StringValue(fmt.Sprintf("<Unknown Jaeger TagType %d>", t))
}

// limitAttrs cuts attrs to the per-span attribute limit and returns it with
// the number dropped.
// Keys are cut to the name limit here, after the tags that carry a span's
// kind, status or scope were found under their full names.
func (bl *builder) limitAttrs(attrs []span.Attr) ([]span.Attr, uint32) {
	var dropped uint32
	if bl.lim.MaxAttrsPerSpan > 0 && len(attrs) > bl.lim.MaxAttrsPerSpan {
		n := len(attrs) - bl.lim.MaxAttrsPerSpan
		bl.st.DroppedAttrs += n
		attrs, dropped = attrs[:bl.lim.MaxAttrsPerSpan:bl.lim.MaxAttrsPerSpan], uint32(n)
	}
	if len(attrs) == 0 {
		return nil, dropped
	}
	for i := range attrs {
		attrs[i].Key = bl.name(attrs[i].Key)
	}
	return attrs, dropped
}

// resource maps a Jaeger process onto a resource: the service name as
// service.name, the process tags as attributes, hostname renamed host.name
// and jaeger.version rewritten as the Collector does.
func (bl *builder) resource(service string, tags []span.Attr) *span.Resource {
	attrs := make([]span.Attr, 0, len(tags)+1)
	if service != "" {
		attrs = append(attrs, span.Attr{Key: keyServiceName, Value: bl.str(service)})
	}
	attrs = dedupe(append(attrs, tags...))
	if i := index(attrs, keyHostname); i >= 0 && index(attrs, keyHostName) < 0 {
		attrs[i].Key = keyHostName
	}
	if i := index(attrs, keyJaegerVersion); i >= 0 && index(attrs, keyExporterVersion) < 0 {
		attrs[i] = span.Attr{Key: keyExporterVersion, Value: span.StringValue("Jaeger-" + attrs[i].Value.AsString())}
	}
	r := &span.Resource{}
	r.Attrs, r.DroppedAttrs = bl.limitAttrs(attrs)
	bl.b.Resources = append(bl.b.Resources, r)
	return r
}

func (bl *builder) scope(name, version string) *span.Scope {
	if name == "" {
		return nil
	}
	k := [2]string{name, version}
	if s, ok := bl.scopes[k]; ok {
		return s
	}
	if bl.scopes == nil {
		bl.scopes = map[[2]string]*span.Scope{}
	}
	s := &span.Scope{Name: bl.name(name), Version: bl.name(version)}
	bl.scopes[k] = s
	bl.b.Scopes = append(bl.b.Scopes, s)
	return s
}

// countSpan counts one more span against the per-request limit.
func (bl *builder) countSpan() error {
	bl.count++
	if bl.lim.MaxSpansPerRequest > 0 && bl.count > bl.lim.MaxSpansPerRequest {
		return fmt.Errorf("%w: more than %d spans in one request", errTooManySpans, bl.lim.MaxSpansPerRequest)
	}
	return nil
}

// rejectIDs rejects and counts a span with a zero trace or span ID, as
// OTLP rejects it; the request's other spans are kept. Callers check it
// before converting the span, so that nothing of a rejected span is
// counted as truncated.
func (bl *builder) rejectIDs(traceHigh, traceLow, spanID uint64) bool {
	switch {
	case traceHigh == 0 && traceLow == 0:
		bl.st.Reject(otlp.ReasonInvalidTraceID)
	case spanID == 0:
		bl.st.Reject(otlp.ReasonInvalidSpanID)
	default:
		return false
	}
	return true
}

// add maps j onto a span and appends it to the batch. idx is j's position
// in the request, for error messages.
func (bl *builder) add(j *jspan, idx int) error {
	s := span.Span{
		Name:          bl.name(j.name),
		StartUnixNano: j.startNanos,
		EndUnixNano:   j.endNano,
		Resource:      j.res,
	}
	binary.BigEndian.PutUint64(s.TraceID[:8], j.traceHigh)
	binary.BigEndian.PutUint64(s.TraceID[8:], j.traceLow)
	binary.BigEndian.PutUint64(s.SpanID[:], j.spanID)

	// The parent is Thrift's parentSpanId when set, else the first CHILD_OF
	// reference within the trace (Jaeger's Span.ParentSpanID). Every other
	// reference becomes a link.
	parent := j.parentID
	if parent == 0 {
		for _, r := range j.refs {
			if r.childOf && r.traceHigh == j.traceHigh && r.traceLow == j.traceLow {
				parent = r.spanID
				break
			}
		}
	}
	binary.BigEndian.PutUint64(s.ParentSpanID[:], parent)
	for _, r := range j.refs {
		if r.childOf && r.spanID == parent {
			continue
		}
		if r.spanID == 0 || r.traceHigh == 0 && r.traceLow == 0 || bl.lim.MaxLinksPerSpan > 0 && len(s.Links) >= bl.lim.MaxLinksPerSpan {
			s.DroppedLinks++
			bl.st.DroppedLinks++
			continue
		}
		l := span.Link{Attrs: []span.Attr{{Key: keyRefType, Value: span.StringValue("follows_from")}}}
		if r.childOf {
			l.Attrs[0].Value = span.StringValue("child_of")
		}
		binary.BigEndian.PutUint64(l.TraceID[:8], r.traceHigh)
		binary.BigEndian.PutUint64(l.TraceID[8:], r.traceLow)
		binary.BigEndian.PutUint64(l.SpanID[:], r.spanID)
		s.Links = append(s.Links, l)
	}

	bl.mapTags(&s, dedupe(j.tags))

	if len(j.logs) > 0 {
		s.Events = make([]span.Event, 0, len(j.logs))
		for _, lg := range j.logs {
			if bl.lim.MaxEventsPerSpan > 0 && len(s.Events) >= bl.lim.MaxEventsPerSpan {
				s.DroppedEvents++
				bl.st.DroppedEvents++
				continue
			}
			ev := span.Event{TimeUnixNano: lg.timeNanos}
			fields := dedupe(lg.fields)
			if i := index(fields, keyEventName); i >= 0 {
				if v := fields[i].Value; v.Type == span.TypeString {
					ev.Name = bl.name(v.Str)
				}
				fields = slices.Delete(fields, i, i+1)
			}
			ev.Attrs, ev.DroppedAttrs = bl.limitAttrs(fields)
			s.Events = append(s.Events, ev)
		}
	}
	bl.b.Spans = append(bl.b.Spans, s)
	return nil
}

// mapTags sets the span's kind, status, trace state and scope from the
// tags that carry them, removes those tags as the Collector does, and keeps
// the rest as attributes.
func (bl *builder) mapTags(s *span.Span, tags []span.Attr) {
	var removed [8]string
	nrem := 0
	remove := func(k string) { removed[nrem] = k; nrem++ }
	get := func(k string) (span.Value, bool) {
		if i := index(tags, k); i >= 0 {
			return tags[i].Value, true
		}
		return span.Value{}, false
	}

	if v, ok := get(keySpanKind); ok {
		switch v.AsString() {
		case "client":
			s.Kind = span.KindClient
		case "server":
			s.Kind = span.KindServer
		case "producer":
			s.Kind = span.KindProducer
		case "consumer":
			s.Kind = span.KindConsumer
		case "internal":
			s.Kind = span.KindInternal
		}
		remove(keySpanKind)
	}

	// Status: a true error tag wins, then otel.status_code, then an HTTP
	// status code (4xx is an error for clients only, 5xx always).
	desc, hasDesc := get(keyStatusDesc)
	httpMsg, hasHTTPMsg := get(keyHTTPStatusMsg)
	statusSet := false
	if v, ok := get(keyError); ok && (v.Type == span.TypeBool && v.Bool() || v.Type == span.TypeString && v.Str == "true") {
		s.StatusCode, statusSet = span.StatusError, true
		remove(keyError)
		switch {
		case hasDesc:
			s.StatusMessage = desc.AsString()
			remove(keyStatusDesc)
		case hasHTTPMsg:
			s.StatusMessage = httpMsg.AsString()
		}
	}
	if v, ok := get(keyStatusCode); ok {
		if !statusSet {
			statusSet = true
			switch strings.ToUpper(v.AsString()) {
			case "OK":
				s.StatusCode = span.StatusOK
			case "ERROR":
				s.StatusCode = span.StatusError
			}
			if hasDesc {
				s.StatusMessage = desc.AsString()
				remove(keyStatusDesc)
			}
		}
		remove(keyStatusCode)
	} else if v, ok := get(keyHTTPStatusCode); ok && !statusSet {
		if code, ok := httpCode(v); ok {
			if c := statusFromHTTP(code, s.Kind); c != span.StatusUnset {
				s.StatusCode = c
			}
			if hasHTTPMsg {
				s.StatusMessage = httpMsg.AsString()
			}
		}
	}
	s.StatusMessage = bl.value(s.StatusMessage)

	if v, ok := get(keyTraceState); ok {
		s.TraceState = bl.value(v.AsString())
		remove(keyTraceState)
	}
	nameKey, versionKey := keyScopeName, keyScopeVersion
	name, ok := get(nameKey)
	if !ok {
		nameKey, versionKey = keyLibraryName, keyLibraryVersion
		name, ok = get(nameKey)
	}
	if ok {
		remove(nameKey)
		version, hasVersion := get(versionKey)
		if hasVersion {
			remove(versionKey)
		}
		s.Scope = bl.scope(name.AsString(), version.AsString())
	}

	if nrem > 0 {
		tags = slices.DeleteFunc(tags, func(a span.Attr) bool { return slices.Contains(removed[:nrem], a.Key) })
	}
	s.Attrs, s.DroppedAttrs = bl.limitAttrs(tags)
}

// httpCode reads an HTTP status code from an int or decimal string tag.
func httpCode(v span.Value) (int64, bool) {
	switch v.Type {
	case span.TypeInt:
		return v.Int(), true
	case span.TypeString:
		n, err := strconv.ParseInt(v.Str, 10, 64)
		return n, err == nil
	}
	return 0, false
}

func statusFromHTTP(code int64, kind span.Kind) span.StatusCode {
	switch {
	case code >= 100 && code < 400:
		return span.StatusUnset
	case code >= 400 && code < 500 && kind == span.KindServer:
		return span.StatusUnset
	}
	return span.StatusError
}

// index returns the position of the attribute named k, or -1.
func index(attrs []span.Attr, k string) int {
	for i := range attrs {
		if attrs[i].Key == k {
			return i
		}
	}
	return -1
}

// dedupe keeps one attribute per key in place, as a map would: the last
// value sent, at the position of the first. Past a few attributes an index
// keeps this linear.
func dedupe(attrs []span.Attr) []span.Attr {
	if len(attrs) < 2 {
		return attrs
	}
	out := attrs[:0]
	if len(attrs) <= 16 {
		for _, a := range attrs {
			if i := index(out, a.Key); i >= 0 {
				out[i].Value = a.Value
				continue
			}
			out = append(out, a)
		}
		return out
	}
	seen := make(map[string]int, len(attrs))
	for _, a := range attrs {
		if i, ok := seen[a.Key]; ok {
			out[i].Value = a.Value
			continue
		}
		seen[a.Key] = len(out)
		out = append(out, a)
	}
	clear(attrs[len(out):])
	return out
}
