package otlp

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/clew-dev/clew/internal/span"
)

// cspan is a span with its resource and scope inlined, for comparisons that
// do not depend on pointer identity or on nil versus empty slices.
type cspan struct {
	Span span.Span
	Res  span.Resource
	Sc   span.Scope
}

func canon(spans []span.Span) []cspan {
	out := make([]cspan, 0, len(spans))
	for _, s := range spans {
		c := cspan{Span: s}
		if s.Resource != nil {
			c.Res = *s.Resource
		}
		if s.Scope != nil {
			c.Sc = *s.Scope
		}
		c.Span.Resource, c.Span.Scope = nil, nil
		c.Res.Attrs = canonAttrs(c.Res.Attrs)
		c.Sc.Attrs = canonAttrs(c.Sc.Attrs)
		c.Span.Attrs = canonAttrs(c.Span.Attrs)
		if len(s.Events) == 0 {
			c.Span.Events = nil
		} else {
			c.Span.Events = make([]span.Event, len(s.Events))
			for i, e := range s.Events {
				e.Attrs = canonAttrs(e.Attrs)
				c.Span.Events[i] = e
			}
		}
		if len(s.Links) == 0 {
			c.Span.Links = nil
		} else {
			c.Span.Links = make([]span.Link, len(s.Links))
			for i, l := range s.Links {
				l.Attrs = canonAttrs(l.Attrs)
				c.Span.Links[i] = l
			}
		}
		out = append(out, c)
	}
	return out
}

func canonAttrs(a []span.Attr) []span.Attr {
	if len(a) == 0 {
		return nil
	}
	out := make([]span.Attr, len(a))
	for i, kv := range a {
		out[i] = span.Attr{Key: kv.Key, Value: canonValue(kv.Value)}
	}
	return out
}

func canonValue(v span.Value) span.Value {
	switch v.Type {
	case span.TypeArray:
		var arr []span.Value
		for _, e := range v.Array {
			arr = append(arr, canonValue(e))
		}
		return span.Value{Type: v.Type, Array: arr}
	case span.TypeMap:
		return span.Value{Type: v.Type, Map: canonAttrs(v.Map)}
	}
	return v
}

// diffSpans describes the first difference between two span lists, or
// returns "" when they are equal.
func diffSpans(got, want []span.Span) string {
	g, w := canon(got), canon(want)
	if len(g) != len(w) {
		return fmt.Sprintf("got %d spans, want %d", len(g), len(w))
	}
	for i := range g {
		if !reflect.DeepEqual(g[i], w[i]) {
			return fmt.Sprintf("span %d:\n got  %+v\n want %+v", i, g[i], w[i])
		}
	}
	return ""
}

// randString returns short ASCII or multi-byte text.
func randString(r *rand.Rand, n int) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz_.-/ 0123456789\"\\\n"
	var sb strings.Builder
	for range r.IntN(n + 1) {
		if r.IntN(20) == 0 {
			sb.WriteString("é☃")
			continue
		}
		sb.WriteByte(alpha[r.IntN(len(alpha))])
	}
	return sb.String()
}

func randValue(r *rand.Rand, depth int) span.Value {
	k := r.IntN(8)
	if depth > 2 && k >= 6 {
		k = 1
	}
	switch k {
	case 0, 1:
		return span.StringValue(randString(r, 24))
	case 2:
		return span.BoolValue(r.IntN(2) == 0)
	case 3:
		return span.IntValue(int64(r.Uint64()) >> r.IntN(64))
	case 4:
		switch r.IntN(10) {
		case 0:
			return span.DoubleValue(math.NaN())
		case 1:
			return span.DoubleValue(math.Inf(1 - 2*r.IntN(2)))
		}
		return span.DoubleValue(r.NormFloat64() * 1e6)
	case 5:
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return span.BytesValue(b)
	case 6:
		arr := make([]span.Value, r.IntN(4))
		for i := range arr {
			arr[i] = randValue(r, depth+1)
		}
		return span.Value{Type: span.TypeArray, Array: arr}
	default:
		return span.Value{Type: span.TypeMap, Map: randAttrs(r, 3, depth+1)}
	}
}

func randAttrs(r *rand.Rand, n, depth int) []span.Attr {
	attrs := make([]span.Attr, r.IntN(n+1))
	for i := range attrs {
		attrs[i] = span.Attr{Key: fmt.Sprintf("k%d.%s", i, randString(r, 8)), Value: randValue(r, depth)}
	}
	return attrs
}

func randTraceID(r *rand.Rand) span.TraceID {
	var id span.TraceID
	for id.IsZero() {
		for i := range id {
			id[i] = byte(r.Uint32())
		}
	}
	return id
}

func randSpanID(r *rand.Rand) span.SpanID {
	var id span.SpanID
	for id.IsZero() {
		for i := range id {
			id[i] = byte(r.Uint32())
		}
	}
	return id
}

// randBatch builds a batch of about n spans over a few resources and scopes,
// using every field and value type.
func randBatch(r *rand.Rand, n int) *span.Batch {
	b := &span.Batch{}
	for len(b.Spans) < n {
		res := &span.Resource{Attrs: randAttrs(r, 4, 0), DroppedAttrs: uint32(r.IntN(2)), SchemaURL: randString(r, 10)}
		res.Attrs = append(res.Attrs, span.Attr{Key: "service.name", Value: span.StringValue("svc" + randString(r, 4))})
		b.Resources = append(b.Resources, res)
		for range 1 + r.IntN(2) {
			sc := &span.Scope{Name: randString(r, 10), Version: randString(r, 4), Attrs: randAttrs(r, 2, 0), DroppedAttrs: uint32(r.IntN(2)), SchemaURL: randString(r, 10)}
			b.Scopes = append(b.Scopes, sc)
			for range 1 + r.IntN(6) {
				b.Spans = append(b.Spans, randSpan(r, res, sc))
			}
		}
	}
	return b
}

func randSpan(r *rand.Rand, res *span.Resource, sc *span.Scope) span.Span {
	s := span.Span{
		TraceID:       randTraceID(r),
		SpanID:        randSpanID(r),
		TraceState:    randString(r, 8),
		Flags:         r.Uint32() >> r.IntN(32),
		Name:          randString(r, 20),
		Kind:          span.Kind(r.IntN(6)),
		StartUnixNano: 1_700_000_000_000_000_000 + r.Uint64N(1e18),
		Attrs:         randAttrs(r, 12, 0),
		DroppedAttrs:  uint32(r.IntN(3)),
		DroppedEvents: uint32(r.IntN(2)),
		DroppedLinks:  uint32(r.IntN(2)),
		StatusCode:    span.StatusCode(r.IntN(3)),
		StatusMessage: randString(r, 6),
		Resource:      res,
		Scope:         sc,
	}
	s.EndUnixNano = s.StartUnixNano + r.Uint64N(1e9)
	if r.IntN(3) > 0 {
		s.ParentSpanID = randSpanID(r)
	}
	for range r.IntN(3) {
		s.Events = append(s.Events, span.Event{TimeUnixNano: s.StartUnixNano + r.Uint64N(1e6), Name: randString(r, 8), Attrs: randAttrs(r, 3, 0), DroppedAttrs: uint32(r.IntN(2))})
	}
	for range r.IntN(3) {
		s.Links = append(s.Links, span.Link{TraceID: randTraceID(r), SpanID: randSpanID(r), TraceState: randString(r, 5), Flags: r.Uint32() >> 20, Attrs: randAttrs(r, 2, 0), DroppedAttrs: uint32(r.IntN(2))})
	}
	return s
}

// benchBatch builds the typical request of the benchmarks: n spans in traces
// of 10 spans, about 10 attributes each, one resource and scope.
func benchBatch(n int) *span.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	res := &span.Resource{Attrs: []span.Attr{
		{Key: "service.name", Value: span.StringValue("checkout")},
		{Key: "service.version", Value: span.StringValue("1.4.2")},
		{Key: "host.name", Value: span.StringValue("ip-10-0-3-17")},
		{Key: "telemetry.sdk.language", Value: span.StringValue("go")},
	}}
	sc := &span.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", Version: "0.60.0"}
	b := &span.Batch{Resources: []*span.Resource{res}, Scopes: []*span.Scope{sc}}
	var tid span.TraceID
	var root span.SpanID
	for i := range n {
		if i%10 == 0 {
			tid, root = randTraceID(r), randSpanID(r)
		}
		s := span.Span{
			TraceID:       tid,
			SpanID:        randSpanID(r),
			Flags:         1,
			Name:          "GET /api/v1/orders/{id}",
			Kind:          span.KindServer,
			StartUnixNano: 1_760_000_000_000_000_000 + uint64(i)*1_000_000,
			Resource:      res,
			Scope:         sc,
			Attrs: []span.Attr{
				{Key: "http.request.method", Value: span.StringValue("GET")},
				{Key: "http.route", Value: span.StringValue("/api/v1/orders/{id}")},
				{Key: "http.response.status_code", Value: span.IntValue(200)},
				{Key: "url.scheme", Value: span.StringValue("https")},
				{Key: "url.path", Value: span.StringValue(fmt.Sprintf("/api/v1/orders/%d", r.IntN(1e6)))},
				{Key: "server.address", Value: span.StringValue("shop.example.com")},
				{Key: "server.port", Value: span.IntValue(443)},
				{Key: "network.protocol.version", Value: span.StringValue("1.1")},
				{Key: "user_agent.original", Value: span.StringValue("Mozilla/5.0 (X11; Linux x86_64)")},
				{Key: "sampled.ratio", Value: span.DoubleValue(0.25)},
			},
		}
		s.EndUnixNano = s.StartUnixNano + 1_234_567
		if i%10 != 0 {
			s.ParentSpanID = root
			s.Kind = span.KindClient
		}
		if i%5 == 0 {
			s.StatusCode = span.StatusError
			s.StatusMessage = "upstream timeout"
			s.Events = []span.Event{{TimeUnixNano: s.StartUnixNano + 1000, Name: "exception", Attrs: []span.Attr{
				{Key: "exception.type", Value: span.StringValue("context.DeadlineExceeded")},
			}}}
		}
		b.Spans = append(b.Spans, s)
	}
	return b
}

// toPdata converts spans to pdata, one ResourceSpans per Resource pointer
// run, as AppendSpansProto groups them.
func toPdata(spans []span.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	var rs ptrace.ResourceSpans
	var ss ptrace.ScopeSpans
	var lastRes *span.Resource
	var lastSc *span.Scope
	for i := range spans {
		s := &spans[i]
		if i == 0 || s.Resource != lastRes {
			rs = td.ResourceSpans().AppendEmpty()
			if s.Resource != nil {
				putAttrs(rs.Resource().Attributes(), s.Resource.Attrs)
				rs.Resource().SetDroppedAttributesCount(s.Resource.DroppedAttrs)
				rs.SetSchemaUrl(s.Resource.SchemaURL)
			}
			lastRes, lastSc = s.Resource, nil
		}
		if lastSc == nil || s.Scope != lastSc {
			ss = rs.ScopeSpans().AppendEmpty()
			if s.Scope != nil {
				ss.Scope().SetName(s.Scope.Name)
				ss.Scope().SetVersion(s.Scope.Version)
				putAttrs(ss.Scope().Attributes(), s.Scope.Attrs)
				ss.Scope().SetDroppedAttributesCount(s.Scope.DroppedAttrs)
				ss.SetSchemaUrl(s.Scope.SchemaURL)
			}
			lastSc = s.Scope
		}
		p := ss.Spans().AppendEmpty()
		p.SetTraceID(pcommon.TraceID(s.TraceID))
		p.SetSpanID(pcommon.SpanID(s.SpanID))
		p.SetParentSpanID(pcommon.SpanID(s.ParentSpanID))
		p.TraceState().FromRaw(s.TraceState)
		p.SetFlags(s.Flags)
		p.SetName(s.Name)
		p.SetKind(ptrace.SpanKind(s.Kind))
		p.SetStartTimestamp(pcommon.Timestamp(s.StartUnixNano))
		p.SetEndTimestamp(pcommon.Timestamp(s.EndUnixNano))
		putAttrs(p.Attributes(), s.Attrs)
		p.SetDroppedAttributesCount(s.DroppedAttrs)
		for _, e := range s.Events {
			pe := p.Events().AppendEmpty()
			pe.SetTimestamp(pcommon.Timestamp(e.TimeUnixNano))
			pe.SetName(e.Name)
			putAttrs(pe.Attributes(), e.Attrs)
			pe.SetDroppedAttributesCount(e.DroppedAttrs)
		}
		p.SetDroppedEventsCount(s.DroppedEvents)
		for _, l := range s.Links {
			pl := p.Links().AppendEmpty()
			pl.SetTraceID(pcommon.TraceID(l.TraceID))
			pl.SetSpanID(pcommon.SpanID(l.SpanID))
			pl.TraceState().FromRaw(l.TraceState)
			pl.SetFlags(l.Flags)
			putAttrs(pl.Attributes(), l.Attrs)
			pl.SetDroppedAttributesCount(l.DroppedAttrs)
		}
		p.SetDroppedLinksCount(s.DroppedLinks)
		p.Status().SetCode(ptrace.StatusCode(s.StatusCode))
		p.Status().SetMessage(s.StatusMessage)
	}
	return td
}

// putAttrs appends attrs to m keeping duplicates and order (Map.Put* would
// replace an existing key).
func putAttrs(m pcommon.Map, attrs []span.Attr) {
	m.EnsureCapacity(len(attrs))
	for _, kv := range attrs {
		// PutEmpty replaces an existing key, but random keys are unique.
		setValue(m.PutEmpty(kv.Key), kv.Value)
	}
}

func setValue(pv pcommon.Value, v span.Value) {
	switch v.Type {
	case span.TypeString:
		pv.SetStr(v.Str)
	case span.TypeBool:
		pv.SetBool(v.Bool())
	case span.TypeInt:
		pv.SetInt(v.Int())
	case span.TypeDouble:
		pv.SetDouble(v.Double())
	case span.TypeBytes:
		pv.SetEmptyBytes().FromRaw([]byte(v.Str))
	case span.TypeArray:
		sl := pv.SetEmptySlice()
		for _, e := range v.Array {
			setValue(sl.AppendEmpty(), e)
		}
	case span.TypeMap:
		putAttrs(pv.SetEmptyMap(), v.Map)
	}
}

// fromPdata converts pdata traces to spans, one Resource per ResourceSpans
// and one Scope per ScopeSpans.
func fromPdata(td ptrace.Traces) []span.Span {
	var out []span.Span
	for _, rs := range td.ResourceSpans().All() {
		res := &span.Resource{Attrs: getAttrs(rs.Resource().Attributes()), DroppedAttrs: rs.Resource().DroppedAttributesCount(), SchemaURL: rs.SchemaUrl()}
		for _, ss := range rs.ScopeSpans().All() {
			sc := &span.Scope{Name: ss.Scope().Name(), Version: ss.Scope().Version(), Attrs: getAttrs(ss.Scope().Attributes()), DroppedAttrs: ss.Scope().DroppedAttributesCount(), SchemaURL: ss.SchemaUrl()}
			for _, p := range ss.Spans().All() {
				s := span.Span{
					TraceID:       span.TraceID(p.TraceID()),
					SpanID:        span.SpanID(p.SpanID()),
					ParentSpanID:  span.SpanID(p.ParentSpanID()),
					TraceState:    p.TraceState().AsRaw(),
					Flags:         p.Flags(),
					Name:          p.Name(),
					Kind:          span.Kind(p.Kind()),
					StartUnixNano: uint64(p.StartTimestamp()),
					EndUnixNano:   uint64(p.EndTimestamp()),
					Attrs:         getAttrs(p.Attributes()),
					DroppedAttrs:  p.DroppedAttributesCount(),
					DroppedEvents: p.DroppedEventsCount(),
					DroppedLinks:  p.DroppedLinksCount(),
					StatusCode:    span.StatusCode(p.Status().Code()),
					StatusMessage: p.Status().Message(),
					Resource:      res,
					Scope:         sc,
				}
				for _, e := range p.Events().All() {
					s.Events = append(s.Events, span.Event{TimeUnixNano: uint64(e.Timestamp()), Name: e.Name(), Attrs: getAttrs(e.Attributes()), DroppedAttrs: e.DroppedAttributesCount()})
				}
				for _, l := range p.Links().All() {
					s.Links = append(s.Links, span.Link{TraceID: span.TraceID(l.TraceID()), SpanID: span.SpanID(l.SpanID()), TraceState: l.TraceState().AsRaw(), Flags: l.Flags(), Attrs: getAttrs(l.Attributes()), DroppedAttrs: l.DroppedAttributesCount()})
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func getAttrs(m pcommon.Map) []span.Attr {
	var out []span.Attr
	for k, v := range m.All() {
		out = append(out, span.Attr{Key: k, Value: getValue(v)})
	}
	return out
}

func getValue(v pcommon.Value) span.Value {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return span.StringValue(v.Str())
	case pcommon.ValueTypeBool:
		return span.BoolValue(v.Bool())
	case pcommon.ValueTypeInt:
		return span.IntValue(v.Int())
	case pcommon.ValueTypeDouble:
		return span.DoubleValue(v.Double())
	case pcommon.ValueTypeBytes:
		return span.BytesValue(v.Bytes().AsRaw())
	case pcommon.ValueTypeSlice:
		var arr []span.Value
		for _, e := range v.Slice().All() {
			arr = append(arr, getValue(e))
		}
		return span.Value{Type: span.TypeArray, Array: arr}
	case pcommon.ValueTypeMap:
		return span.Value{Type: span.TypeMap, Map: getAttrs(v.Map())}
	}
	return span.Value{}
}

// validUTF8 reports whether every string in spans is valid UTF-8.
func validUTF8(spans []span.Span) bool {
	ok := true
	str := func(s string) {
		if !utf8.ValidString(s) {
			ok = false
		}
	}
	var val func(v span.Value)
	attrs := func(a []span.Attr) {
		for _, kv := range a {
			str(kv.Key)
			val(kv.Value)
		}
	}
	val = func(v span.Value) {
		if v.Type == span.TypeString {
			str(v.Str)
		}
		for _, e := range v.Array {
			val(e)
		}
		attrs(v.Map)
	}
	for _, s := range spans {
		str(s.Name)
		str(s.TraceState)
		str(s.StatusMessage)
		attrs(s.Attrs)
		for _, e := range s.Events {
			str(e.Name)
			attrs(e.Attrs)
		}
		for _, l := range s.Links {
			str(l.TraceState)
			attrs(l.Attrs)
		}
		if s.Resource != nil {
			str(s.Resource.SchemaURL)
			attrs(s.Resource.Attrs)
		}
		if s.Scope != nil {
			str(s.Scope.Name)
			str(s.Scope.Version)
			str(s.Scope.SchemaURL)
			attrs(s.Scope.Attrs)
		}
	}
	return ok
}
