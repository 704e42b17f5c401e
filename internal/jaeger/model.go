package jaeger

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/span"
)

// Trace is a trace in Jaeger's UI model, the JSON the legacy API returns.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is a span in Jaeger's UI model. Times are in microseconds.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	Flags         uint32      `json:"flags,omitempty"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	StartTime     uint64      `json:"startTime"`
	Duration      uint64      `json:"duration"`
	Tags          []KeyValue  `json:"tags"`
	Logs          []Log       `json:"logs"`
	ProcessID     string      `json:"processID"`
	Warnings      []string    `json:"warnings"`
}

// Reference links a span to another: its parent (CHILD_OF) or a linked span
// (FOLLOWS_FROM, unless the link says otherwise).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// KeyValue is a Jaeger tag. Type is string, bool, int64, float64 or binary;
// Value is a JSON string, boolean or number, and base64 for binary.
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Log is a span event as a Jaeger log: a timestamp in microseconds and
// fields, the event name first as the "event" field.
type Log struct {
	Timestamp uint64     `json:"timestamp"`
	Fields    []KeyValue `json:"fields"`
}

// Process is a Jaeger process: the service name and the other resource
// attributes as tags.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Tag keys that carry OTLP fields Jaeger's model has no place for. They
// follow Jaeger's OTLP translator and the OpenTelemetry specification's
// mapping to non-OTLP formats.
const (
	tagSpanKind      = "span.kind"
	tagStatusCode    = "otel.status_code"
	tagStatusDesc    = "otel.status_description"
	tagError         = "error"
	tagScopeName     = "otel.scope.name"
	tagScopeVersion  = "otel.scope.version"
	tagTraceState    = "w3c.tracestate"
	tagDroppedAttrs  = "otel.dropped_attributes_count"
	tagDroppedEvents = "otel.dropped_events_count"
	tagDroppedLinks  = "otel.dropped_links_count"
	// linkRefType is the link attribute through which OpenTracing bridges
	// and Jaeger's own translator record a reference's type.
	linkRefType = "opentracing.ref_type"
	// noServiceName is Jaeger's service name for a resource without one.
	noServiceName = "OTLPResourceNoServiceName"
)

// Reference types.
const (
	refChildOf     = "CHILD_OF"
	refFollowsFrom = "FOLLOWS_FROM"
)

// toUITrace converts one trace's spans to Jaeger's UI model. Unless raw is
// set, attributes are sorted by key within each group (resource, scope,
// span, event), as Jaeger's query service sorts them before translating;
// the tags the translation adds keep their places around them.
func toUITrace(id span.TraceID, spans []span.Span, raw bool) Trace {
	t := Trace{TraceID: id.String(), Spans: make([]Span, len(spans)), Processes: map[string]Process{}}
	pc := processTable{byPtr: map[*span.Resource]string{}, byKey: map[string]string{}, out: t.Processes}
	for i := range spans {
		t.Spans[i] = toUISpan(&spans[i], pc.id(spans[i].Resource, raw), raw)
	}
	return t
}

// processTable gives each distinct resource a process ID, p1, p2, ..., in
// order of first use. Resources with equal content share an ID.
type processTable struct {
	byPtr map[*span.Resource]string
	byKey map[string]string
	out   map[string]Process
}

func (pt *processTable) id(r *span.Resource, raw bool) string {
	if id, ok := pt.byPtr[r]; ok {
		return id
	}
	p := Process{ServiceName: noServiceName, Tags: []KeyValue{}}
	var key strings.Builder
	if r != nil {
		if name := r.ServiceName(); name != "" {
			p.ServiceName = name
		}
		for _, a := range r.Attrs {
			if a.Key == "service.name" && a.Value.Type == span.TypeString {
				continue
			}
			p.Tags = append(p.Tags, toKeyValue(a.Key, a.Value))
		}
		if !raw {
			sortTags(p.Tags)
		}
		if r.DroppedAttrs > 0 {
			p.Tags = append(p.Tags, intTag(tagDroppedAttrs, int64(r.DroppedAttrs)))
		}
	}
	key.WriteString(p.ServiceName)
	for _, kv := range p.Tags {
		key.WriteByte(0)
		key.WriteString(kv.Key)
		key.WriteByte(0)
		key.WriteString(kv.Type)
		key.WriteByte(0)
		key.WriteString(tagString(kv))
	}
	id, ok := pt.byKey[key.String()]
	if !ok {
		id = "p" + strconv.Itoa(len(pt.out)+1)
		pt.byKey[key.String()] = id
		pt.out[id] = p
	}
	pt.byPtr[r] = id
	return id
}

func tagString(kv KeyValue) string {
	switch v := kv.Value.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return ""
}

// toUISpan converts one span. Its tags are, in this order: the scope's
// name, version and attributes, the span's attributes, then span.kind,
// otel.status_code, error, otel.status_description, w3c.tracestate and the
// dropped counts, each only when set. Log fields start with the event's
// name as "event" unless an attribute of that name overrides it.
func toUISpan(s *span.Span, processID string, raw bool) Span {
	traceID := s.TraceID.String()
	out := Span{
		TraceID:       traceID,
		SpanID:        s.SpanID.String(),
		Flags:         s.Flags & 0xff, // the W3C trace flags; bit 0 (sampled) is Jaeger's too
		OperationName: s.Name,
		StartTime:     s.StartUnixNano / 1000,
		Duration:      s.Duration() / 1000,
		ProcessID:     processID,
	}

	out.References = make([]Reference, 0, len(s.Links)+1)
	if !s.ParentSpanID.IsZero() {
		out.References = append(out.References, Reference{RefType: refChildOf, TraceID: traceID, SpanID: s.ParentSpanID.String()})
	}
	for i := range s.Links {
		l := &s.Links[i]
		if l.TraceID == s.TraceID && l.SpanID == s.ParentSpanID {
			continue // the parent, already referenced
		}
		out.References = append(out.References, Reference{RefType: linkType(l.Attrs), TraceID: l.TraceID.String(), SpanID: l.SpanID.String()})
	}

	n := len(s.Attrs) + 8
	if s.Scope != nil {
		n += len(s.Scope.Attrs)
	}
	tags := make([]KeyValue, 0, n)
	if sc := s.Scope; sc != nil {
		if sc.Name != "" {
			tags = append(tags, KeyValue{Key: tagScopeName, Type: "string", Value: sc.Name})
		}
		if sc.Version != "" {
			tags = append(tags, KeyValue{Key: tagScopeVersion, Type: "string", Value: sc.Version})
		}
		tags = appendAttrs(tags, sc.Attrs, raw)
	}
	tags = appendAttrs(tags, s.Attrs, raw)
	if s.Kind != span.KindUnspecified {
		tags = append(tags, KeyValue{Key: tagSpanKind, Type: "string", Value: s.Kind.String()})
	}
	switch s.StatusCode {
	case span.StatusOK:
		tags = append(tags, KeyValue{Key: tagStatusCode, Type: "string", Value: "OK"})
	case span.StatusError:
		tags = append(tags, KeyValue{Key: tagStatusCode, Type: "string", Value: "ERROR"})
		tags = append(tags, KeyValue{Key: tagError, Type: "bool", Value: true})
	}
	if s.StatusMessage != "" {
		tags = append(tags, KeyValue{Key: tagStatusDesc, Type: "string", Value: s.StatusMessage})
	}
	if s.TraceState != "" {
		tags = append(tags, KeyValue{Key: tagTraceState, Type: "string", Value: s.TraceState})
	}
	if s.DroppedAttrs > 0 {
		tags = append(tags, intTag(tagDroppedAttrs, int64(s.DroppedAttrs)))
	}
	if s.DroppedEvents > 0 {
		tags = append(tags, intTag(tagDroppedEvents, int64(s.DroppedEvents)))
	}
	if s.DroppedLinks > 0 {
		tags = append(tags, intTag(tagDroppedLinks, int64(s.DroppedLinks)))
	}
	out.Tags = tags

	out.Logs = make([]Log, len(s.Events))
	for i := range s.Events {
		e := &s.Events[i]
		fields := make([]KeyValue, 0, len(e.Attrs)+1)
		// An "event" attribute takes precedence over the event's name.
		if e.Name != "" && !slices.ContainsFunc(e.Attrs, func(a span.Attr) bool { return a.Key == "event" }) {
			fields = append(fields, KeyValue{Key: "event", Type: "string", Value: e.Name})
		}
		fields = appendAttrs(fields, e.Attrs, raw)
		out.Logs[i] = Log{Timestamp: e.TimeUnixNano / 1000, Fields: fields}
	}
	return out
}

// linkType reads a link's reference type from its opentracing.ref_type
// attribute; a link without one is FOLLOWS_FROM.
func linkType(attrs []span.Attr) string {
	for _, a := range attrs {
		if a.Key == linkRefType && a.Value.Type == span.TypeString {
			if a.Value.Str == "child_of" {
				return refChildOf
			}
			return refFollowsFrom
		}
	}
	return refFollowsFrom
}

// toKeyValue converts an attribute to a Jaeger tag. Arrays and maps become
// strings holding their JSON, as Jaeger's translator does; an empty value
// is an empty string. A double that JSON cannot carry (NaN, ±Inf) keeps
// type float64 with its value as a string, so the response stays valid.
func toKeyValue(key string, v span.Value) KeyValue {
	switch v.Type {
	case span.TypeBool:
		return KeyValue{Key: key, Type: "bool", Value: v.Bool()}
	case span.TypeInt:
		return KeyValue{Key: key, Type: "int64", Value: v.Int()}
	case span.TypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return KeyValue{Key: key, Type: "float64", Value: strconv.FormatFloat(f, 'g', -1, 64)}
		}
		return KeyValue{Key: key, Type: "float64", Value: f}
	case span.TypeBytes:
		return KeyValue{Key: key, Type: "binary", Value: []byte(v.Str)}
	case span.TypeArray, span.TypeMap:
		return KeyValue{Key: key, Type: "string", Value: string(span.AppendValueJSON(nil, v))}
	case span.TypeString:
		return KeyValue{Key: key, Type: "string", Value: v.Str}
	}
	return KeyValue{Key: key, Type: "string", Value: ""}
}

func intTag(key string, n int64) KeyValue { return KeyValue{Key: key, Type: "int64", Value: n} }

func sortTags(tags []KeyValue) {
	slices.SortStableFunc(tags, func(a, b KeyValue) int { return strings.Compare(a.Key, b.Key) })
}

// appendAttrs appends attrs to tags as Jaeger tags, sorted by key unless
// raw is set.
func appendAttrs(tags []KeyValue, attrs []span.Attr, raw bool) []KeyValue {
	n := len(tags)
	for _, a := range attrs {
		tags = append(tags, toKeyValue(a.Key, a.Value))
	}
	if !raw {
		sortTags(tags[n:])
	}
	return tags
}
