package otlp

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/clew-dev/clew/internal/span"
)

// maxSkipDepth bounds the nesting of unknown JSON values being skipped.
const maxSkipDepth = 512

// jdec is a JSON scanner over one request with a sticky error: after the
// first error every method is a no-op and every loop ends, so callers check
// err once at the end.
type jdec struct {
	d   *Decoder
	b   []byte
	i   int
	err error
	key string // the object key whose value is being read, for errors
}

// DecodeJSON decodes buf, an OTLP/JSON ExportTraceServiceRequest, and appends
// its spans to b. Strings in b may alias buf (those without escapes) or d's
// arenas: see Decoder for how long they are valid.
//
// It accepts lowerCamelCase and original proto field names, hex IDs in either
// case, 64-bit integers as strings or numbers (parsed exactly, never through
// float64), enums as integers or names, doubles as numbers or strings
// including "NaN", "Infinity" and "-Infinity", and ignores unknown fields.
// Malformed JSON, an ID that is not hex of the right length, values nested
// too deep or too many spans fail the whole request with a *DecodeError, and
// then b is left as it was. Spans with an all-zero trace or span ID are left
// out and counted in the Result.
func (d *Decoder) DecodeJSON(buf []byte, b *span.Batch) (Result, error) {
	return d.decode(buf, b, d.jsonRequest)
}

func (d *Decoder) jsonRequest(buf []byte, b *span.Batch) error {
	j := jdec{d: d, b: buf}
	j.ws()
	if j.i >= len(j.b) {
		j.fail("empty body: want a JSON object")
		return j.err
	}
	if j.b[j.i] != '{' {
		j.fail("not a JSON object")
		return j.err
	}
	j.object(func(key string) {
		switch key {
		case "resourceSpans", "resource_spans":
			j.array(func() {
				d.loc.rs++
				d.loc.ss, d.loc.sp = -1, -1
				j.resourceSpans(b)
			})
		default:
			j.skip(0)
		}
	})
	j.ws()
	if j.err == nil && j.i < len(j.b) {
		j.fail("unexpected data after the JSON object")
	}
	return j.err
}

func (j *jdec) fail(format string, args ...any) {
	if j.err != nil {
		return
	}
	j.err = &DecodeError{Offset: j.i, Msg: j.d.loc.prefix(true) + fmt.Sprintf(format, args...)}
}

func (j *jdec) ws() {
	for j.i < len(j.b) && j.b[j.i] <= ' ' {
		switch j.b[j.i] {
		case ' ', '\t', '\n', '\r':
			j.i++
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (j *jdec) peek() byte {
	j.ws()
	if j.i >= len(j.b) {
		return 0
	}
	return j.b[j.i]
}

func (j *jdec) expect(c byte) {
	if j.peek() != c {
		if j.i >= len(j.b) {
			j.fail("unexpected end of input, want %q", c)
		} else {
			j.fail("unexpected %q, want %q", j.b[j.i], c)
		}
		return
	}
	j.i++
}

// null consumes a null literal if one is next.
func (j *jdec) null() bool {
	if j.err == nil && j.peek() == 'n' {
		j.literal("null")
		return true
	}
	return false
}

func (j *jdec) literal(lit string) {
	if len(j.b)-j.i < len(lit) || string(j.b[j.i:j.i+len(lit)]) != lit {
		j.fail("%s: invalid literal, want %s", j.key, lit)
		return
	}
	j.i += len(lit)
}

// object calls fn for each key of an object; fn must consume the value. A
// null counts as an empty object.
func (j *jdec) object(fn func(key string)) {
	if j.err != nil || j.null() {
		return
	}
	j.expect('{')
	if j.peek() == '}' {
		j.i++
		return
	}
	for j.err == nil {
		if j.peek() != '"' {
			j.fail("want an object key")
			return
		}
		key := j.str()
		j.expect(':')
		if j.err != nil {
			return
		}
		j.key = key
		fn(key)
		j.key = ""
		switch j.peek() {
		case ',':
			j.i++
		case '}':
			j.i++
			return
		default:
			j.fail("want ',' or '}' in object")
		}
	}
}

// array calls fn for each element of an array; fn must consume it. A null
// counts as an empty array.
func (j *jdec) array(fn func()) {
	if j.err != nil || j.null() {
		return
	}
	j.expect('[')
	if j.peek() == ']' {
		j.i++
		return
	}
	for j.err == nil {
		fn()
		switch j.peek() {
		case ',':
			j.i++
		case ']':
			j.i++
			return
		default:
			j.fail("want ',' or ']' in array")
		}
	}
}

// str reads a string; null reads as "". Without escapes it aliases the input; otherwise it is
// unescaped into the decoder's byte arena. Invalid UTF-8 is kept as is.
func (j *jdec) str() string {
	if j.err != nil {
		return ""
	}
	if j.peek() != '"' {
		if !j.null() {
			j.fail("%s: want a string", j.key)
		}
		return ""
	}
	j.i++
	start := j.i
	for i := start; i < len(j.b); i++ {
		switch j.b[i] {
		case '"':
			j.i = i + 1
			return bstr(j.b[start:i])
		case '\\':
			return j.unescape(start)
		}
	}
	j.fail("unterminated string")
	return ""
}

// unescape decodes a string with escapes that starts at start. The result
// is never longer than the raw text.
func (j *jdec) unescape(start int) string {
	end := start
	for ; end < len(j.b); end++ {
		if j.b[end] == '\\' {
			end++
			continue
		}
		if j.b[end] == '"' {
			break
		}
	}
	if end >= len(j.b) {
		j.i = start
		j.fail("unterminated string")
		return ""
	}
	out := j.d.bytes.alloc(end - start)[:0]
	for i := start; i < end; {
		c := j.b[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		i++
		switch e := j.b[i]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(j.b, i+1)
			if !ok {
				j.i = i
				j.fail("invalid \\u escape")
				return ""
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(j.b, i+3); ok && j.b[i+1] == '\\' && j.b[i+2] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			// A \u escape is 6 bytes and its UTF-8 at most 3, and a pair is
			// 12 bytes for 4, so out never outgrows its arena slice.
			out = utf8.AppendRune(out, r)
		default:
			j.i = i
			j.fail("invalid escape \\%c", e)
			return ""
		}
		i++
	}
	j.i = end + 1
	return bstr(out)
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v := unhex(c)
		if v > 15 {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// number reads a JSON number token and returns its text.
func (j *jdec) number() string {
	b, s := j.b, j.i
	i := s
	digits := func() bool {
		k := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > k
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if !digits() {
		j.fail("%s: invalid number", j.key)
		return ""
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			j.fail("%s: invalid number", j.key)
			return ""
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			j.fail("%s: invalid number", j.key)
			return ""
		}
	}
	j.i = i
	return bstr(b[s:i])
}

// intText reads an integer given as a JSON number or a string.
func (j *jdec) intText(what string) (neg bool, mag uint64) {
	var s string
	switch c := j.peek(); {
	case c == '"':
		s = j.str()
	case c == '-' || '0' <= c && c <= '9':
		s = j.number()
	default:
		j.fail("%s: want an integer", what)
		return false, 0
	}
	if j.err != nil {
		return false, 0
	}
	neg, mag, ok := parseInteger(s)
	if !ok {
		j.fail("%s: %q is not an integer in range", what, s)
	}
	return neg, mag
}

func (j *jdec) u64(what string) uint64 {
	if j.null() {
		return 0
	}
	neg, mag := j.intText(what)
	if neg && mag != 0 {
		j.fail("%s: negative value for an unsigned field", what)
		return 0
	}
	return mag
}

func (j *jdec) u32(what string) uint32 {
	v := j.u64(what)
	if v > math.MaxUint32 {
		j.fail("%s: %d overflows uint32", what, v)
		return 0
	}
	return uint32(v)
}

func (j *jdec) i64(what string) int64 {
	neg, mag := j.intText(what)
	if !neg {
		if mag > math.MaxInt64 {
			j.fail("%s: %d overflows int64", what, mag)
			return 0
		}
		return int64(mag)
	}
	if mag > 1<<63 {
		j.fail("%s: -%d overflows int64", what, mag)
		return 0
	}
	return -int64(mag)
}

// parseInteger parses an integer written as JSON number text, exactly. A
// fraction or exponent is allowed when the value is still a whole number
// ("1.0", "15e2").
func parseInteger(s string) (neg bool, mag uint64, ok bool) {
	// Fast path: up to 19 plain digits cannot overflow.
	if len(s) > 0 && len(s) <= 19 {
		var v uint64
		k := 0
		for ; k < len(s); k++ {
			c := s[k] - '0'
			if c > 9 {
				break
			}
			v = v*10 + uint64(c)
		}
		if k == len(s) {
			return false, v, true
		}
	}
	i := 0
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	is := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	intD := s[is:i]
	var fracD string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		fracD = s[fs:i]
		if fracD == "" {
			return false, 0, false
		}
	}
	if intD == "" {
		return false, 0, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			if exp < 10000 {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == es {
			return false, 0, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return false, 0, false
	}
	total := len(intD) + len(fracD)
	e := exp - len(fracD)
	keepN := total
	if e < 0 {
		keepN = total + e
	}
	for k := 0; k < total; k++ {
		var c byte
		if k < len(intD) {
			c = intD[k]
		} else {
			c = fracD[k-len(intD)]
		}
		dg := uint64(c - '0')
		if k >= keepN {
			if dg != 0 {
				return false, 0, false
			}
			continue
		}
		if mag > (math.MaxUint64-dg)/10 {
			return false, 0, false
		}
		mag = mag*10 + dg
	}
	for ; e > 0 && mag != 0; e-- {
		if mag > math.MaxUint64/10 {
			return false, 0, false
		}
		mag *= 10
	}
	return neg, mag, true
}

func (j *jdec) f64(what string) float64 {
	var s string
	switch c := j.peek(); {
	case c == '"':
		s = j.str()
		switch s {
		case "NaN":
			return math.NaN()
		case "Infinity":
			return math.Inf(1)
		case "-Infinity":
			return math.Inf(-1)
		}
	case c == '-' || '0' <= c && c <= '9':
		s = j.number()
	default:
		j.fail("%s: want a number", what)
		return 0
	}
	if j.err != nil {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		j.fail("%s: %q is not a number", what, s)
		return 0
	}
	return f
}

func (j *jdec) boolean(what string) bool {
	switch j.peek() {
	case 't':
		j.literal("true")
		return true
	case 'f':
		j.literal("false")
		return false
	case '"':
		switch s := j.str(); s {
		case "true":
			return true
		case "false":
			return false
		}
	}
	j.fail("%s: want true or false", what)
	return false
}

var (
	kindEnum   = []string{"UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"}
	statusEnum = []string{"UNSET", "OK", "ERROR"}
)

// enum reads an enum as an integer or, leniently, as its name with or
// without prefix in any case. Integers outside the enum become 0; unknown
// names are an error.
func (j *jdec) enum(what, prefix string, names []string) uint64 {
	if j.null() {
		return 0
	}
	if j.peek() == '"' {
		save := j.i
		s := j.str()
		if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			s = s[len(prefix):]
		}
		for i, n := range names {
			if strings.EqualFold(s, n) {
				return uint64(i)
			}
		}
		j.i = save
	}
	v := j.i64(what)
	if v < 0 || v >= int64(len(names)) {
		return 0
	}
	return uint64(v)
}

// id reads a hex ID into dst; an empty string or null leaves dst zero.
func (j *jdec) id(dst []byte, what string) {
	if j.null() {
		return
	}
	s := j.str()
	if j.err != nil || s == "" {
		return
	}
	for k := 0; k < len(s); k++ {
		if unhex(s[k]) > 15 {
			j.fail("%s %q is not hex (OTLP/JSON IDs are hex, not base64)", what, s)
			return
		}
	}
	if len(s) != 2*len(dst) {
		if len(s)%2 != 0 {
			j.fail("%s has an odd number of hex digits (%d), want %d", what, len(s), 2*len(dst))
		} else {
			j.fail("%s is %d bytes, want %d", what, len(s)/2, len(dst))
		}
		return
	}
	for k := range dst {
		dst[k] = unhex(s[2*k])<<4 | unhex(s[2*k+1])
	}
}

// skip consumes any JSON value.
func (j *jdec) skip(depth int) {
	if depth > maxSkipDepth {
		j.fail("JSON nested deeper than %d", maxSkipDepth)
		return
	}
	switch c := j.peek(); {
	case c == '{':
		j.object(func(string) { j.skip(depth + 1) })
	case c == '[':
		j.array(func() { j.skip(depth + 1) })
	case c == '"':
		j.str()
	case c == 't':
		j.literal("true")
	case c == 'f':
		j.literal("false")
	case c == 'n':
		j.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		j.number()
	case c == 0:
		j.fail("unexpected end of input")
	default:
		j.fail("unexpected %q", c)
	}
}

func (j *jdec) resourceSpans(b *span.Batch) {
	d := j.d
	res := d.resources.one()
	added := false
	j.object(func(key string) {
		switch key {
		case "resource":
			j.object(func(key string) {
				switch key {
				case "attributes":
					res.Attrs = j.attrs(&res.DroppedAttrs)
				case "droppedAttributesCount", "dropped_attributes_count":
					addDropped(&res.DroppedAttrs, int(j.u32(key)))
				default:
					j.skip(0)
				}
			})
		case "scopeSpans", "scope_spans":
			j.array(func() {
				d.loc.ss++
				d.loc.sp = -1
				n0 := len(b.Spans)
				j.scopeSpans(res, b)
				if !added && len(b.Spans) > n0 {
					b.Resources = append(b.Resources, res)
					added = true
				}
			})
		case "schemaUrl", "schema_url":
			res.SchemaURL = d.name(j.str())
		default:
			j.skip(0)
		}
	})
}

func (j *jdec) scopeSpans(res *span.Resource, b *span.Batch) {
	d := j.d
	sc := d.scopes.one()
	added := false
	j.object(func(key string) {
		switch key {
		case "scope":
			j.object(func(key string) {
				switch key {
				case "name":
					sc.Name = d.name(j.str())
				case "version":
					sc.Version = d.name(j.str())
				case "attributes":
					sc.Attrs = j.attrs(&sc.DroppedAttrs)
				case "droppedAttributesCount", "dropped_attributes_count":
					addDropped(&sc.DroppedAttrs, int(j.u32(key)))
				default:
					j.skip(0)
				}
			})
		case "spans":
			j.array(func() {
				d.loc.sp++
				d.loc.nspan++
				if d.loc.nspan > d.lim.MaxSpansPerRequest {
					j.fail("more than %d spans in request", d.lim.MaxSpansPerRequest)
					j.err.(*DecodeError).Err = ErrTooManySpans
					return
				}
				b.Spans = append(b.Spans, span.Span{})
				sp := &b.Spans[len(b.Spans)-1]
				saved := d.save()
				j.span(sp)
				why, ok := Reason(0), true
				switch {
				case sp.TraceID.IsZero():
					why, ok = ReasonInvalidTraceID, false
				case sp.SpanID.IsZero():
					why, ok = ReasonInvalidSpanID, false
				}
				if !ok || j.err != nil {
					d.restore(saved)
					if j.err == nil {
						d.res.reject(why)
					}
					*sp = span.Span{}
					b.Spans = b.Spans[:len(b.Spans)-1]
					return
				}
				sp.Resource, sp.Scope = res, sc
				if !added {
					b.Scopes = append(b.Scopes, sc)
					added = true
				}
			})
		case "schemaUrl", "schema_url":
			sc.SchemaURL = d.name(j.str())
		default:
			j.skip(0)
		}
	})
}

func (j *jdec) span(sp *span.Span) {
	d := j.d
	j.object(func(key string) {
		switch key {
		case "traceId", "trace_id":
			j.id(sp.TraceID[:], "traceId")
		case "spanId", "span_id":
			j.id(sp.SpanID[:], "spanId")
		case "parentSpanId", "parent_span_id":
			j.id(sp.ParentSpanID[:], "parentSpanId")
		case "traceState", "trace_state":
			sp.TraceState = d.value(j.str())
		case "flags":
			sp.Flags = j.u32(key)
		case "name":
			sp.Name = d.name(j.str())
		case "kind":
			sp.Kind = span.Kind(j.enum(key, "SPAN_KIND_", kindEnum))
		case "startTimeUnixNano", "start_time_unix_nano":
			sp.StartUnixNano = j.u64(key)
		case "endTimeUnixNano", "end_time_unix_nano":
			sp.EndUnixNano = j.u64(key)
		case "attributes":
			sp.Attrs = j.attrs(&sp.DroppedAttrs)
		case "droppedAttributesCount", "dropped_attributes_count":
			addDropped(&sp.DroppedAttrs, int(j.u32(key)))
		case "events":
			sp.Events = j.events(&sp.DroppedEvents)
		case "droppedEventsCount", "dropped_events_count":
			addDropped(&sp.DroppedEvents, int(j.u32(key)))
		case "links":
			sp.Links = j.links(&sp.DroppedLinks)
		case "droppedLinksCount", "dropped_links_count":
			addDropped(&sp.DroppedLinks, int(j.u32(key)))
		case "status":
			sp.StatusCode, sp.StatusMessage = span.StatusUnset, ""
			j.object(func(key string) {
				switch key {
				case "code":
					sp.StatusCode = span.StatusCode(j.enum(key, "STATUS_CODE_", statusEnum))
				case "message":
					sp.StatusMessage = d.value(j.str())
				default:
					j.skip(0)
				}
			})
		default:
			j.skip(0)
		}
	})
}

func (j *jdec) events(dropped *uint32) []span.Event {
	d := j.d
	mark := len(d.jevents)
	j.array(func() {
		if len(d.jevents)-mark >= d.lim.MaxEventsPerSpan {
			j.skip(0)
			addDropped(dropped, 1)
			d.res.DroppedEvents++
			return
		}
		var ev span.Event
		j.object(func(key string) {
			switch key {
			case "timeUnixNano", "time_unix_nano":
				ev.TimeUnixNano = j.u64(key)
			case "name":
				ev.Name = d.name(j.str())
			case "attributes":
				ev.Attrs = j.attrs(&ev.DroppedAttrs)
			case "droppedAttributesCount", "dropped_attributes_count":
				addDropped(&ev.DroppedAttrs, int(j.u32(key)))
			default:
				j.skip(0)
			}
		})
		d.jevents = append(d.jevents, ev)
	})
	out := d.events.alloc(len(d.jevents) - mark)
	copy(out, d.jevents[mark:])
	clear(d.jevents[mark:])
	d.jevents = d.jevents[:mark]
	return out
}

func (j *jdec) links(dropped *uint32) []span.Link {
	d := j.d
	mark := len(d.jlinks)
	j.array(func() {
		if len(d.jlinks)-mark >= d.lim.MaxLinksPerSpan {
			j.skip(0)
			addDropped(dropped, 1)
			d.res.DroppedLinks++
			return
		}
		var l span.Link
		j.object(func(key string) {
			switch key {
			case "traceId", "trace_id":
				j.id(l.TraceID[:], "link traceId")
			case "spanId", "span_id":
				j.id(l.SpanID[:], "link spanId")
			case "traceState", "trace_state":
				l.TraceState = d.value(j.str())
			case "attributes":
				l.Attrs = j.attrs(&l.DroppedAttrs)
			case "droppedAttributesCount", "dropped_attributes_count":
				addDropped(&l.DroppedAttrs, int(j.u32(key)))
			case "flags":
				l.Flags = j.u32(key)
			default:
				j.skip(0)
			}
		})
		d.jlinks = append(d.jlinks, l)
	})
	out := d.links.alloc(len(d.jlinks) - mark)
	copy(out, d.jlinks[mark:])
	clear(d.jlinks[mark:])
	d.jlinks = d.jlinks[:mark]
	return out
}

// attrs reads a list of KeyValue; attributes over the limit are dropped and
// added to *dropped.
func (j *jdec) attrs(dropped *uint32) []span.Attr {
	d := j.d
	kvs, n := j.kvList(0)
	if n > 0 {
		addDropped(dropped, n)
		d.res.DroppedAttrs += n
	}
	return kvs
}

// kvList reads a list of KeyValue, keeping at most MaxAttrsPerSpan; it
// returns how many it left out.
func (j *jdec) kvList(depth int) ([]span.Attr, int) {
	d := j.d
	mark := len(d.jattrs)
	over := 0
	j.array(func() {
		if len(d.jattrs)-mark >= d.lim.MaxAttrsPerSpan {
			j.skip(depth)
			over++
			return
		}
		var kv span.Attr
		j.object(func(key string) {
			switch key {
			case "key":
				kv.Key = d.name(j.str())
			case "value":
				j.value(&kv.Value, depth)
			default:
				j.skip(depth)
			}
		})
		d.jattrs = append(d.jattrs, kv)
	})
	out := d.attrs.alloc(len(d.jattrs) - mark)
	copy(out, d.jattrs[mark:])
	clear(d.jattrs[mark:])
	d.jattrs = d.jattrs[:mark]
	return out, over
}

// value reads an AnyValue object; a member set to null counts as absent.
func (j *jdec) value(v *span.Value, depth int) {
	if depth >= maxValueDepth {
		j.fail("attribute values nested deeper than %d", maxValueDepth)
		return
	}
	d := j.d
	j.object(func(key string) {
		if j.null() {
			return
		}
		switch key {
		case "stringValue", "string_value":
			*v = span.Value{Type: span.TypeString, Str: d.value(j.str())}
		case "boolValue", "bool_value":
			*v = span.BoolValue(j.boolean(key))
		case "intValue", "int_value":
			*v = span.IntValue(j.i64(key))
		case "doubleValue", "double_value":
			*v = span.DoubleValue(j.f64(key))
		case "bytesValue", "bytes_value":
			*v = span.Value{Type: span.TypeBytes, Str: d.bytesValue(j.base64())}
		case "arrayValue", "array_value":
			*v = span.Value{Type: span.TypeArray}
			j.object(func(key string) {
				if key != "values" {
					j.skip(depth + 1)
					return
				}
				v.Array = j.valueList(depth + 1)
			})
		case "kvlistValue", "kvlist_value":
			*v = span.Value{Type: span.TypeMap}
			j.object(func(key string) {
				if key != "values" {
					j.skip(depth + 1)
					return
				}
				var over int
				v.Map, over = j.kvList(depth + 1)
				if over > 0 {
					d.res.Truncated++
				}
			})
		default:
			j.skip(depth)
		}
	})
}

// valueList reads the values of an ArrayValue.
func (j *jdec) valueList(depth int) []span.Value {
	d := j.d
	mark := len(d.jvals)
	over := false
	j.array(func() {
		if len(d.jvals)-mark >= d.lim.MaxAttrsPerSpan {
			j.skip(depth)
			over = true
			return
		}
		var v span.Value
		j.value(&v, depth)
		d.jvals = append(d.jvals, v)
	})
	if over {
		d.res.Truncated++
	}
	out := d.values.alloc(len(d.jvals) - mark)
	copy(out, d.jvals[mark:])
	clear(d.jvals[mark:])
	d.jvals = d.jvals[:mark]
	return out
}

// base64 reads a bytes value: standard or URL alphabet, padded or not. The
// decoded bytes live in the decoder's byte arena.
func (j *jdec) base64() string {
	s := j.str()
	if j.err != nil || s == "" {
		return ""
	}
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	out := j.d.bytes.alloc(enc.DecodedLen(len(s)))
	n, err := enc.Decode(out, unsafe.Slice(unsafe.StringData(s), len(s)))
	if err != nil {
		j.fail("bytesValue is not base64: %v", err)
		return ""
	}
	return bstr(out[:n])
}
