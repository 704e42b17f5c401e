package zipkin

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// DecodeJSON decodes a Zipkin v2 JSON list of spans (zipkin2-api.yaml,
// ListOfSpans) into b, applying lim. It accepts what Zipkin's own decoder
// accepts: unknown fields are skipped, null stands for an absent field,
// trace IDs of 1 to 32 and span IDs of 1 to 16 hex digits are left-padded,
// and invalid IP addresses are dropped. Any other malformation fails the
// whole request; a span with an all-zero traceId or id is rejected alone
// (counted in the Result), and invalid UTF-8 in strings is replaced
// (otlp.CleanString), as on every clew receiver. Strings are copied: b does
// not alias data.
func DecodeJSON(data []byte, lim otlp.Limits, b *span.Batch) (otlp.Result, error) {
	d := jsonReader{b: data}
	bl := newBuilder(lim, b)
	var z zspan
	d.ws()
	if d.i >= len(d.b) {
		return bl.st, errors.New("empty body: want a JSON list of spans")
	}
	if d.b[d.i] != '[' {
		return bl.st, d.errorf("want a JSON list of spans")
	}
	idx := 0
	err := d.array(func() error {
		z.reset()
		if err := d.span(&z); err != nil {
			return fmt.Errorf("span %d: %w", idx, err)
		}
		if err := bl.add(&z, idx); err != nil {
			return err
		}
		idx++
		return nil
	})
	if err != nil {
		return bl.st, err
	}
	d.ws()
	if d.i < len(d.b) {
		return bl.st, d.errorf("unexpected data after the list")
	}
	return bl.done(), nil
}

// zeros reports whether s is 1 to max zero digits: an all-zero ID, which
// the builder rejects with its span rather than failing the request.
func zeros(s []byte, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for _, c := range s {
		if c != '0' {
			return false
		}
	}
	return true
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 64

// jsonReader is a small JSON scanner over a byte slice. Methods return an
// error that names the byte offset.
type jsonReader struct {
	b   []byte
	i   int
	buf []byte
}

func (d *jsonReader) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid JSON at offset %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *jsonReader) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonReader) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// null consumes a null literal if one is next.
func (d *jsonReader) null() bool {
	if d.peek() == 'n' && len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// array calls elem for each element of a JSON array.
func (d *jsonReader) array(elem func() error) error {
	if d.peek() != '[' {
		return d.errorf("want a list")
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.errorf("want , or ] in a list")
		}
	}
}

// object calls field for each member of a JSON object, with the key's
// bytes (valid until the next read).
func (d *jsonReader) object(field func(key []byte) error) error {
	if d.peek() != '{' {
		return d.errorf("want an object")
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.errorf("want a quoted key")
		}
		k, err := d.str()
		if err != nil {
			return err
		}
		if d.peek() != ':' {
			return d.errorf("want : after a key")
		}
		d.i++
		if err := field(k); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.errorf("want , or } in an object")
		}
	}
}

// str reads a string and returns its unescaped bytes, which alias the
// input or the reader's scratch buffer: valid until the next str.
func (d *jsonReader) str() ([]byte, error) {
	if d.peek() != '"' {
		return nil, d.errorf("want a string")
	}
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			return s, nil // invalid UTF-8 is the builder's to repair
		}
		if c == '\\' {
			return d.strSlow(start)
		}
		if c < 0x20 {
			return nil, d.errorf("control character in a string")
		}
		d.i++
	}
	return nil, d.errorf("unterminated string")
}

func (d *jsonReader) strSlow(start int) ([]byte, error) {
	out := append(d.buf[:0], d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			d.buf = out
			return out, nil
		case c < 0x20:
			return nil, d.errorf("control character in a string")
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			break
		}
		e := d.b[d.i]
		d.i++
		switch e {
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
			r, ok := d.hex4()
			if !ok {
				return nil, d.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					if x, ok := d.hex4(); ok {
						if dr := utf16.DecodeRune(r, x); dr != utf8.RuneError {
							r2 = dr
						} else {
							d.i = save
						}
					} else {
						return nil, d.errorf("bad \\u escape")
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, d.errorf("bad escape \\%c", e)
		}
	}
	return nil, d.errorf("unterminated string")
}

func (d *jsonReader) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// number returns the bytes of a JSON number.
func (d *jsonReader) number() ([]byte, error) {
	d.ws()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := 0
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c >= '0' && c <= '9' {
			digits++
		} else if c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-' {
			break
		}
		d.i++
	}
	if digits == 0 {
		d.i = start
		return nil, d.errorf("want a number")
	}
	return d.b[start:d.i], nil
}

// uint reads a non-negative integer. Numbers written in exponent or
// fractional form are accepted when their value is a whole number, as
// JavaScript clients may write large microsecond timestamps that way.
func (d *jsonReader) uint() (uint64, error) {
	nb, err := d.number()
	if err != nil {
		return 0, err
	}
	if v, err := strconv.ParseUint(string(nb), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(nb), 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f >= 1<<63 {
		return 0, d.errorf("%q is not a non-negative integer", nb)
	}
	return uint64(f), nil
}

func (d *jsonReader) bool() (bool, error) {
	d.ws()
	switch {
	case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		return true, nil
	case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		return false, nil
	}
	return false, d.errorf("want true or false")
}

// skip skips one value of any type.
func (d *jsonReader) skip(depth int) error {
	if depth > maxDepth {
		return d.errorf("nested deeper than %d", maxDepth)
	}
	switch c := d.peek(); {
	case c == '"':
		_, err := d.str()
		return err
	case c == '{':
		return d.object(func([]byte) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
	case c == 't' || c == 'f':
		_, err := d.bool()
		return err
	case c == 'n':
		if d.null() {
			return nil
		}
		return d.errorf("want a value")
	default:
		_, err := d.number()
		return err
	}
}

// span reads one Zipkin v2 span object.
func (d *jsonReader) span(z *zspan) error {
	if d.null() {
		return errors.New("a span must be an object, not null")
	}
	return d.object(func(key []byte) error {
		if d.null() {
			return nil
		}
		var err error
		switch string(key) {
		case "traceId":
			var s []byte
			if s, err = d.str(); err == nil {
				if z.traceID, err = span.ParseTraceID(string(s)); err != nil && !zeros(s, 32) {
					return fmt.Errorf("traceId %q: want 1 to 32 hex digits", s)
				}
				err = nil
				z.hasTrace = true
			}
		case "id":
			var s []byte
			if s, err = d.str(); err == nil {
				if z.id, err = span.ParseSpanID(string(s)); err != nil && !zeros(s, 16) {
					return fmt.Errorf("id %q: want 1 to 16 hex digits", s)
				}
				err = nil
				z.hasID = true
			}
		case "parentId":
			var s []byte
			if s, err = d.str(); err == nil && len(s) > 0 {
				if z.parentID, err = span.ParseSpanID(string(s)); err != nil {
					return fmt.Errorf("parentId %q: want 1 to 16 hex digits", s)
				}
			}
		case "kind":
			var s []byte
			if s, err = d.str(); err == nil {
				z.kind = string(s)
			}
		case "name":
			var s []byte
			if s, err = d.str(); err == nil {
				z.name = string(s)
			}
		case "timestamp":
			z.timestamp, err = d.uint()
		case "duration":
			z.dur, err = d.uint()
		case "localEndpoint":
			z.hasLocal = true
			err = d.endpoint(&z.local)
		case "remoteEndpoint":
			z.hasRemote = true
			err = d.endpoint(&z.remote)
		case "annotations":
			err = d.array(func() error {
				var a annotation
				if err := d.object(func(k []byte) error {
					if d.null() {
						return nil
					}
					switch string(k) {
					case "timestamp":
						v, err := d.uint()
						a.timestamp = v
						return err
					case "value":
						s, err := d.str()
						a.value = string(s)
						return err
					}
					return d.skip(0)
				}); err != nil {
					return err
				}
				z.annotations = append(z.annotations, a)
				return nil
			})
		case "tags":
			err = d.object(func(k []byte) error {
				key := string(k)
				if d.null() {
					return nil
				}
				var v string
				switch c := d.peek(); {
				case c == '"':
					s, err := d.str()
					if err != nil {
						return err
					}
					v = string(s)
				case c == 't' || c == 'f':
					b, err := d.bool()
					if err != nil {
						return err
					}
					v = strconv.FormatBool(b)
				default:
					// Zipkin's reader takes a number where it wants a
					// string, as its literal text.
					nb, err := d.number()
					if err != nil {
						return fmt.Errorf("tag %q: want a string value", key)
					}
					v = string(nb)
				}
				z.setTag(key, v)
				return nil
			})
		case "debug":
			z.debug, err = d.bool()
		case "shared":
			z.shared, err = d.bool()
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *jsonReader) endpoint(e *endpoint) error {
	return d.object(func(key []byte) error {
		if d.null() {
			return nil
		}
		switch string(key) {
		case "serviceName":
			s, err := d.str()
			e.serviceName = string(s)
			return err
		case "ipv4", "ipv6":
			s, err := d.str()
			if err != nil {
				return err
			}
			if a, ok := parseIP(string(s)); ok {
				e.setIP(a)
			}
			return nil
		case "port":
			nb, err := d.number()
			if err != nil {
				return err
			}
			if p, err := strconv.ParseInt(string(nb), 10, 32); err == nil {
				e.port = int32(p)
			}
			return nil
		}
		return d.skip(0)
	})
}
