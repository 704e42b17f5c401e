package otlp

import (
	"encoding/binary"
	"fmt"

	"github.com/clew-dev/clew/internal/span"
)

// Protobuf wire types.
const (
	wtVarint  = 0
	wtFixed64 = 1
	wtBytes   = 2
	wtStartGr = 3
	wtEndGr   = 4
	wtFixed32 = 5
)

// pcur walks the fields of one protobuf message. After next, num and wt
// describe the field; v holds a varint or fixed value and data the payload
// of a length-delimited field (a sub-slice of the message).
type pcur struct {
	m    []byte
	i    int
	num  uint64
	wt   uint8
	v    uint64
	data []byte
}

func (d *Decoder) perr(c *pcur, format string, args ...any) error {
	return &DecodeError{
		Offset: d.bufCap - cap(c.m) + c.i,
		Msg:    d.loc.prefix(false) + fmt.Sprintf(format, args...),
	}
}

func (c *pcur) more() bool { return c.i < len(c.m) }

// uvarint reads a varint at c.i; ok is false when it is truncated or longer
// than 10 bytes.
func (c *pcur) uvarint() (uint64, bool) {
	v, i, ok := uvarintAt(c.m, c.i)
	if ok {
		c.i = i
	}
	return v, ok
}

// uvarintAt reads the varint at m[i:] and returns it with the index after it.
func uvarintAt(m []byte, i int) (v uint64, j int, ok bool) {
	for s := uint(0); s < 64; s += 7 {
		if i >= len(m) {
			return 0, i, false
		}
		b := m[i]
		i++
		if b < 0x80 {
			if s == 63 && b > 1 {
				return 0, i, false
			}
			return v | uint64(b)<<s, i, true
		}
		v |= uint64(b&0x7f) << s
	}
	return 0, i, false
}

// next reads the next field of the message. One-byte tags and lengths, by
// far the most common, take the fast paths.
func (c *pcur) next(d *Decoder) error {
	m, i := c.m, c.i
	var tag uint64
	if i < len(m) && m[i] < 0x80 {
		tag = uint64(m[i])
		i++
	} else {
		var ok bool
		if tag, i, ok = uvarintAt(m, i); !ok {
			return d.perr(c, "malformed field tag")
		}
	}
	c.num, c.wt = tag>>3, uint8(tag&7)
	if c.num == 0 {
		return d.perr(c, "field number 0")
	}
	switch c.wt {
	case wtBytes:
		var n uint64
		if i < len(m) && m[i] < 0x80 {
			n = uint64(m[i])
			i++
		} else {
			var ok bool
			if n, i, ok = uvarintAt(m, i); !ok {
				c.i = i
				return d.perr(c, "field %d: malformed length", c.num)
			}
		}
		if n > uint64(len(m)-i) {
			c.i = i
			return d.perr(c, "field %d: length %d exceeds the %d bytes left", c.num, n, len(m)-i)
		}
		c.data = m[i : i+int(n)]
		c.i = i + int(n)
		return nil
	case wtVarint:
		if i < len(m) && m[i] < 0x80 {
			c.v = uint64(m[i])
			c.i = i + 1
			return nil
		}
		var ok bool
		if c.v, i, ok = uvarintAt(m, i); !ok {
			c.i = i
			return d.perr(c, "field %d: malformed varint", c.num)
		}
	case wtFixed64:
		if len(m)-i < 8 {
			c.i = i
			return d.perr(c, "field %d: truncated fixed64", c.num)
		}
		c.v = binary.LittleEndian.Uint64(m[i:])
		i += 8
	case wtFixed32:
		if len(m)-i < 4 {
			c.i = i
			return d.perr(c, "field %d: truncated fixed32", c.num)
		}
		c.v = uint64(binary.LittleEndian.Uint32(m[i:]))
		i += 4
	case wtStartGr:
		c.i = i
		return c.skipGroup(d)
	default:
		return d.perr(c, "field %d: invalid wire type %d", c.num, c.wt)
	}
	c.i = i
	return nil
}

// skipGroup skips a deprecated group up to its matching end-group tag.
func (c *pcur) skipGroup(d *Decoder) error {
	num := c.num
	depth := 1
	for depth > 0 {
		if !c.more() {
			return d.perr(c, "field %d: unterminated group", num)
		}
		tag, ok := c.uvarint()
		if !ok {
			return d.perr(c, "malformed field tag in group")
		}
		switch wt := tag & 7; wt {
		case wtVarint:
			if _, ok := c.uvarint(); !ok {
				return d.perr(c, "malformed varint in group")
			}
		case wtFixed64, wtFixed32:
			n := 8
			if wt == wtFixed32 {
				n = 4
			}
			if len(c.m)-c.i < n {
				return d.perr(c, "truncated fixed field in group")
			}
			c.i += n
		case wtBytes:
			n, ok := c.uvarint()
			if !ok || n > uint64(len(c.m)-c.i) {
				return d.perr(c, "malformed length in group")
			}
			c.i += int(n)
		case wtStartGr:
			depth++
			if depth > maxValueDepth {
				return d.perr(c, "groups nested deeper than %d", maxValueDepth)
			}
		case wtEndGr:
			depth--
			if depth == 0 && tag>>3 != num {
				return d.perr(c, "group %d ended by field %d", num, tag>>3)
			}
		default:
			return d.perr(c, "invalid wire type %d in group", wt)
		}
	}
	c.wt = wtStartGr
	return nil
}

// count returns how many length-delimited fields numbered a, b and c the
// message m holds, checking its framing on the way.
func (d *Decoder) count(m []byte, a, b, c uint64) (na, nb, nc int, err error) {
	cur := pcur{m: m}
	for cur.more() {
		if err := cur.next(d); err != nil {
			return 0, 0, 0, err
		}
		if cur.wt != wtBytes {
			continue
		}
		switch cur.num {
		case a:
			na++
		case b:
			nb++
		case c:
			nc++
		}
	}
	return na, nb, nc, nil
}

// DecodeProto decodes buf, an OTLP ExportTraceServiceRequest (or TracesData:
// the wire shape is the same), and appends its spans to b. Strings in b
// alias buf and slices in b come from d's arenas: see Decoder for how long
// they are valid.
//
// Spans with an invalid trace, span or parent span ID are left out and
// counted in the Result. A malformed message, values nested too deep or too
// many spans fail the whole request with a *DecodeError, and then b is left
// as it was.
func (d *Decoder) DecodeProto(buf []byte, b *span.Batch) (Result, error) {
	return d.decode(buf, b, d.protoRequest)
}

// ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
func (d *Decoder) protoRequest(buf []byte, b *span.Batch) error {
	c := pcur{m: buf}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		if c.num == 1 && c.wt == wtBytes {
			d.loc.rs++
			d.loc.ss = -1
			if err := d.protoResourceSpans(c.data, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2;
// string schema_url = 3; }
func (d *Decoder) protoResourceSpans(m []byte, b *span.Batch) error {
	res := d.resources.one()
	added := false
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		if c.wt != wtBytes {
			continue
		}
		switch c.num {
		case 1:
			if err := d.protoResource(c.data, res); err != nil {
				return err
			}
		case 2:
			d.loc.ss++
			d.loc.sp = -1
			n0 := len(b.Spans)
			if err := d.protoScopeSpans(c.data, res, b); err != nil {
				return err
			}
			if !added && len(b.Spans) > n0 {
				b.Resources = append(b.Resources, res)
				added = true
			}
		case 3:
			res.SchemaURL = d.name(bstr(c.data))
		}
	}
	return nil
}

// Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
func (d *Decoder) protoResource(m []byte, res *span.Resource) error {
	na, _, _, err := d.count(m, 1, 0, 0)
	if err != nil {
		return err
	}
	res.Attrs = d.attrs.alloc(keep(na, d.lim.MaxAttrsPerSpan))
	ai := 0
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		switch {
		case c.num == 1 && c.wt == wtBytes:
			if ai == len(res.Attrs) {
				addDropped(&res.DroppedAttrs, 1)
				d.res.DroppedAttrs++
				continue
			}
			if err := d.protoKV(c.data, &res.Attrs[ai], 0); err != nil {
				return err
			}
			ai++
		case c.num == 2 && c.wt == wtVarint:
			addDropped(&res.DroppedAttrs, int(uint32(c.v)))
		}
	}
	return nil
}

// ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2;
// string schema_url = 3; }
func (d *Decoder) protoScopeSpans(m []byte, res *span.Resource, b *span.Batch) error {
	sc := d.scopes.one()
	added := false
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		if c.wt != wtBytes {
			continue
		}
		switch c.num {
		case 1:
			if err := d.protoScope(c.data, sc); err != nil {
				return err
			}
		case 2:
			d.loc.sp++
			d.loc.nspan++
			if d.loc.nspan > d.lim.MaxSpansPerRequest {
				return &DecodeError{
					Offset: d.bufCap - cap(c.data),
					Msg:    fmt.Sprintf("more than %d spans in request", d.lim.MaxSpansPerRequest),
					Err:    ErrTooManySpans,
				}
			}
			b.Spans = append(b.Spans, span.Span{})
			sp := &b.Spans[len(b.Spans)-1]
			saved := d.save()
			ok, why, err := d.protoSpan(c.data, sp)
			if err != nil {
				return err
			}
			if !ok {
				d.restore(saved)
				d.res.reject(why)
				*sp = span.Span{}
				b.Spans = b.Spans[:len(b.Spans)-1]
				continue
			}
			sp.Resource, sp.Scope = res, sc
			if !added {
				b.Scopes = append(b.Scopes, sc)
				added = true
			}
		case 3:
			sc.SchemaURL = d.name(bstr(c.data))
		}
	}
	return nil
}

// InstrumentationScope { string name = 1; string version = 2;
// repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
func (d *Decoder) protoScope(m []byte, sc *span.Scope) error {
	_, _, na, err := d.count(m, 0, 0, 3)
	if err != nil {
		return err
	}
	sc.Attrs = d.attrs.alloc(keep(na, d.lim.MaxAttrsPerSpan))
	ai := 0
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		switch {
		case c.num == 1 && c.wt == wtBytes:
			sc.Name = d.name(bstr(c.data))
		case c.num == 2 && c.wt == wtBytes:
			sc.Version = d.name(bstr(c.data))
		case c.num == 3 && c.wt == wtBytes:
			if ai == len(sc.Attrs) {
				addDropped(&sc.DroppedAttrs, 1)
				d.res.DroppedAttrs++
				continue
			}
			if err := d.protoKV(c.data, &sc.Attrs[ai], 0); err != nil {
				return err
			}
			ai++
		case c.num == 4 && c.wt == wtVarint:
			addDropped(&sc.DroppedAttrs, int(uint32(c.v)))
		}
	}
	return nil
}

// Span: see trace.proto. Returns ok=false with a reason when the span's IDs
// make it unusable.
//
// The span's attributes, events and links are gathered on the decoder's
// scratch stacks and copied into the arenas once their number is known,
// which is cheaper than a counting pass over the span.
func (d *Decoder) protoSpan(m []byte, sp *span.Span) (ok bool, why Reason, err error) {
	markA, markE, markL := len(d.jattrs), len(d.jevents), len(d.jlinks)
	defer func() {
		d.jattrs, d.jevents, d.jlinks = d.jattrs[:markA], d.jevents[:markE], d.jlinks[:markL]
	}()
	ok = true
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return false, 0, err
		}
		switch c.wt {
		case wtBytes:
			switch c.num {
			case 1: // trace_id
				if len(c.data) != len(sp.TraceID) {
					if ok {
						ok, why = false, ReasonInvalidTraceID
					}
					continue
				}
				copy(sp.TraceID[:], c.data)
			case 2: // span_id
				if len(c.data) != len(sp.SpanID) {
					if ok {
						ok, why = false, ReasonInvalidSpanID
					}
					continue
				}
				copy(sp.SpanID[:], c.data)
			case 3:
				sp.TraceState = d.value(bstr(c.data))
			case 4: // parent_span_id; empty means root
				switch len(c.data) {
				case 0:
					sp.ParentSpanID = span.SpanID{}
				case len(sp.ParentSpanID):
					copy(sp.ParentSpanID[:], c.data)
				default:
					if ok {
						ok, why = false, ReasonInvalidParentSpanID
					}
				}
			case 5:
				sp.Name = d.name(bstr(c.data))
			case 9:
				if len(d.jattrs)-markA >= d.lim.MaxAttrsPerSpan {
					addDropped(&sp.DroppedAttrs, 1)
					d.res.DroppedAttrs++
					continue
				}
				var kv span.Attr
				if err := d.protoKV(c.data, &kv, 0); err != nil {
					return false, 0, err
				}
				d.jattrs = append(d.jattrs, kv)
			case 11:
				if len(d.jevents)-markE >= d.lim.MaxEventsPerSpan {
					addDropped(&sp.DroppedEvents, 1)
					d.res.DroppedEvents++
					continue
				}
				var ev span.Event
				if err := d.protoEvent(c.data, &ev); err != nil {
					return false, 0, err
				}
				d.jevents = append(d.jevents, ev)
			case 13:
				if len(d.jlinks)-markL >= d.lim.MaxLinksPerSpan {
					addDropped(&sp.DroppedLinks, 1)
					d.res.DroppedLinks++
					continue
				}
				var l span.Link
				good, err := d.protoLink(c.data, &l)
				if err != nil {
					return false, 0, err
				}
				if !good {
					addDropped(&sp.DroppedLinks, 1)
					d.res.DroppedLinks++
					continue
				}
				d.jlinks = append(d.jlinks, l)
			case 15:
				if err := d.protoStatus(c.data, sp); err != nil {
					return false, 0, err
				}
			}
		case wtVarint:
			switch c.num {
			case 6:
				sp.Kind = kindOf(c.v)
			case 10:
				addDropped(&sp.DroppedAttrs, int(uint32(c.v)))
			case 12:
				addDropped(&sp.DroppedEvents, int(uint32(c.v)))
			case 14:
				addDropped(&sp.DroppedLinks, int(uint32(c.v)))
			}
		case wtFixed64:
			switch c.num {
			case 7:
				sp.StartUnixNano = c.v
			case 8:
				sp.EndUnixNano = c.v
			}
		case wtFixed32:
			if c.num == 16 {
				sp.Flags = uint32(c.v)
			}
		}
	}
	if ok && sp.TraceID.IsZero() {
		ok, why = false, ReasonInvalidTraceID
	}
	if ok && sp.SpanID.IsZero() {
		ok, why = false, ReasonInvalidSpanID
	}
	if !ok {
		return false, why, nil
	}
	sp.Attrs = d.attrs.alloc(len(d.jattrs) - markA)
	copy(sp.Attrs, d.jattrs[markA:])
	sp.Events = d.events.alloc(len(d.jevents) - markE)
	copy(sp.Events, d.jevents[markE:])
	sp.Links = d.links.alloc(len(d.jlinks) - markL)
	copy(sp.Links, d.jlinks[markL:])
	return true, 0, nil
}

// Status { string message = 2; StatusCode code = 3; }
func (d *Decoder) protoStatus(m []byte, sp *span.Span) error {
	sp.StatusCode, sp.StatusMessage = span.StatusUnset, ""
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		switch {
		case c.num == 2 && c.wt == wtBytes:
			sp.StatusMessage = d.value(bstr(c.data))
		case c.num == 3 && c.wt == wtVarint:
			sp.StatusCode = statusOf(c.v)
		}
	}
	return nil
}

// Event { fixed64 time_unix_nano = 1; string name = 2;
// repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
func (d *Decoder) protoEvent(m []byte, ev *span.Event) error {
	_, _, na, err := d.count(m, 0, 0, 3)
	if err != nil {
		return err
	}
	ev.Attrs = d.attrs.alloc(keep(na, d.lim.MaxAttrsPerSpan))
	ai := 0
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		switch {
		case c.num == 1 && c.wt == wtFixed64:
			ev.TimeUnixNano = c.v
		case c.num == 2 && c.wt == wtBytes:
			ev.Name = d.name(bstr(c.data))
		case c.num == 3 && c.wt == wtBytes:
			if ai == len(ev.Attrs) {
				addDropped(&ev.DroppedAttrs, 1)
				d.res.DroppedAttrs++
				continue
			}
			if err := d.protoKV(c.data, &ev.Attrs[ai], 0); err != nil {
				return err
			}
			ai++
		case c.num == 4 && c.wt == wtVarint:
			addDropped(&ev.DroppedAttrs, int(uint32(c.v)))
		}
	}
	return nil
}

// Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3;
// repeated KeyValue attributes = 4; uint32 dropped_attributes_count = 5;
// fixed32 flags = 6; }. good is false when an ID has the wrong length.
func (d *Decoder) protoLink(m []byte, l *span.Link) (good bool, err error) {
	_, _, na, err := d.count(m, 0, 0, 4)
	if err != nil {
		return false, err
	}
	l.Attrs = d.attrs.alloc(keep(na, d.lim.MaxAttrsPerSpan))
	ai := 0
	good = true
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return false, err
		}
		switch {
		case c.num == 1 && c.wt == wtBytes:
			if len(c.data) != len(l.TraceID) {
				good = false
				continue
			}
			copy(l.TraceID[:], c.data)
		case c.num == 2 && c.wt == wtBytes:
			if len(c.data) != len(l.SpanID) {
				good = false
				continue
			}
			copy(l.SpanID[:], c.data)
		case c.num == 3 && c.wt == wtBytes:
			l.TraceState = d.value(bstr(c.data))
		case c.num == 4 && c.wt == wtBytes:
			if ai == len(l.Attrs) {
				addDropped(&l.DroppedAttrs, 1)
				d.res.DroppedAttrs++
				continue
			}
			if err := d.protoKV(c.data, &l.Attrs[ai], 0); err != nil {
				return false, err
			}
			ai++
		case c.num == 5 && c.wt == wtVarint:
			addDropped(&l.DroppedAttrs, int(uint32(c.v)))
		case c.num == 6 && c.wt == wtFixed32:
			l.Flags = uint32(c.v)
		}
	}
	return good, nil
}

// KeyValue { string key = 1; AnyValue value = 2; }
func (d *Decoder) protoKV(m []byte, kv *span.Attr, depth int) error {
	c := pcur{m: m}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		if c.wt != wtBytes {
			continue
		}
		switch c.num {
		case 1:
			kv.Key = d.name(bstr(c.data))
		case 2:
			if err := d.protoValue(c.data, &kv.Value, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// AnyValue { oneof value { string string_value = 1; bool bool_value = 2;
// int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5;
// KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
// The last member present wins, as protobuf's oneof rules say.
func (d *Decoder) protoValue(m []byte, v *span.Value, depth int) error {
	c := pcur{m: m}
	if depth >= maxValueDepth {
		return d.perr(&c, "attribute values nested deeper than %d", maxValueDepth)
	}
	for c.more() {
		if err := c.next(d); err != nil {
			return err
		}
		switch c.wt {
		case wtBytes:
			switch c.num {
			case 1:
				*v = span.Value{Type: span.TypeString, Str: d.value(bstr(c.data))}
			case 7:
				*v = span.Value{Type: span.TypeBytes, Str: d.bytesValue(bstr(c.data))}
			case 5: // ArrayValue { repeated AnyValue values = 1; }
				n, _, _, err := d.count(c.data, 1, 0, 0)
				if err != nil {
					return err
				}
				k := keep(n, d.lim.MaxAttrsPerSpan)
				if k < n {
					d.res.Truncated++
				}
				*v = span.Value{Type: span.TypeArray, Array: d.values.alloc(k)}
				ac := pcur{m: c.data}
				for i := 0; i < k && ac.more(); {
					if err := ac.next(d); err != nil {
						return err
					}
					if ac.num == 1 && ac.wt == wtBytes {
						if err := d.protoValue(ac.data, &v.Array[i], depth+1); err != nil {
							return err
						}
						i++
					}
				}
			case 6: // KeyValueList { repeated KeyValue values = 1; }
				n, _, _, err := d.count(c.data, 1, 0, 0)
				if err != nil {
					return err
				}
				k := keep(n, d.lim.MaxAttrsPerSpan)
				if k < n {
					d.res.Truncated++
				}
				*v = span.Value{Type: span.TypeMap, Map: d.attrs.alloc(k)}
				kc := pcur{m: c.data}
				for i := 0; i < k && kc.more(); {
					if err := kc.next(d); err != nil {
						return err
					}
					if kc.num == 1 && kc.wt == wtBytes {
						if err := d.protoKV(kc.data, &v.Map[i], depth+1); err != nil {
							return err
						}
						i++
					}
				}
			}
		case wtVarint:
			switch c.num {
			case 2:
				*v = span.BoolValue(c.v != 0)
			case 3:
				*v = span.Value{Type: span.TypeInt, Num: c.v}
			}
		case wtFixed64:
			if c.num == 4 {
				*v = span.Value{Type: span.TypeDouble, Num: c.v}
			}
		}
	}
	return nil
}
