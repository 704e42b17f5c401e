package otlp

import (
	"unicode/utf8"
	"unsafe"

	"github.com/clew-dev/clew/internal/span"
)

// maxValueDepth bounds the nesting of array and key-value list values. Deeper
// input is a request error, so that decoding never recurses without bound.
const maxValueDepth = 32

// Retention caps for the arenas, in elements: a decoder keeps at most this
// much scratch memory between requests.
// With these a Decoder keeps about 2.5 MB at most; a 500-span request of
// typical spans needs about a fifth of it.
const (
	retainAttrs  = 16 << 10
	retainValues = 4 << 10
	retainEvents = 4 << 10
	retainLinks  = 1 << 10
	retainRes    = 256
	retainBytes  = 1 << 20
)

// Decoder decodes OTLP trace export requests into span batches. It keeps
// scratch arenas for attributes, events, links, resources and scopes, so a
// warmed-up Decoder appends spans without allocating per span.
//
// Each DecodeProto or DecodeJSON call reuses those arenas: the Attrs, Events,
// Links, Resource and Scope of spans appended by the previous call on the
// same Decoder are overwritten. Strings in the batch may alias the input
// buffer. So a decoded batch is valid only while the input is unchanged and
// until the Decoder's next call; consumers clone what they keep. A Decoder
// is not safe for concurrent use; pool them.
type Decoder struct {
	lim Limits

	attrs     arena[span.Attr]
	values    arena[span.Value]
	events    arena[span.Event]
	links     arena[span.Link]
	resources arena[span.Resource]
	scopes    arena[span.Scope]
	bytes     arena[byte]

	res    Result
	loc    loc
	bufCap int

	// JSON scratch stacks; see decode_json.go.
	jattrs  []span.Attr
	jvals   []span.Value
	jevents []span.Event
	jlinks  []span.Link
}

// NewDecoder returns a Decoder that enforces l. Zero fields of l take their
// DefaultLimits values.
func NewDecoder(l Limits) *Decoder {
	return &Decoder{lim: l.withDefaults()}
}

// Limits returns the limits d enforces.
func (d *Decoder) Limits() Limits { return d.lim }

// Reset drops the decoder's references to the last decoded batch and its
// input, so that a pooled Decoder does not keep a request's buffer alive.
// Spans decoded before Reset must not be used afterwards. Calling Reset is
// optional: each decode rewinds the arenas anyway.
func (d *Decoder) Reset() {
	d.attrs.release(retainAttrs)
	d.values.release(retainValues)
	d.events.release(retainEvents)
	d.links.release(retainLinks)
	d.resources.release(retainRes)
	d.scopes.release(retainRes)
	d.bytes.reset(retainBytes) // holds no pointers
	clear(d.jattrs[:cap(d.jattrs)])
	clear(d.jvals[:cap(d.jvals)])
	clear(d.jevents[:cap(d.jevents)])
	clear(d.jlinks[:cap(d.jlinks)])
	d.res = Result{}
}

func (d *Decoder) reset(buf []byte) {
	d.attrs.reset(retainAttrs)
	d.values.reset(retainValues)
	d.events.reset(retainEvents)
	d.links.reset(retainLinks)
	d.resources.reset(retainRes)
	d.scopes.reset(retainRes)
	d.bytes.reset(retainBytes)
	d.res = Result{}
	d.loc.reset()
	d.bufCap = cap(buf)
}

// decode runs fn with rollback of b on error, and finishes the Result.
func (d *Decoder) decode(buf []byte, b *span.Batch, fn func([]byte, *span.Batch) error) (Result, error) {
	d.reset(buf)
	n0, r0, s0 := len(b.Spans), len(b.Resources), len(b.Scopes)
	if err := fn(buf, b); err != nil {
		clear(b.Spans[n0:])
		clear(b.Resources[r0:])
		clear(b.Scopes[s0:])
		b.Spans, b.Resources, b.Scopes = b.Spans[:n0], b.Resources[:r0], b.Scopes[:s0]
		return Result{}, err
	}
	d.res.Spans = len(b.Spans) - n0
	d.res.finish()
	return d.res, nil
}

// bstr returns the bytes of p as a string without copying.
func bstr(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	return unsafe.String(&p[0], len(p))
}

// name applies the string rule (CleanString) to a name or key, capped at
// MaxNameBytes, counting what it changed.
func (d *Decoder) name(s string) string {
	if len(s) <= d.lim.MaxNameBytes && utf8.ValidString(s) {
		return s
	}
	out, f := CleanString(s, d.lim.MaxNameBytes)
	d.countFix(f, true)
	return out
}

// value applies the string rule (CleanString) to a string value, trace
// state or status message, capped at MaxAttrValueBytes, counting what it
// changed.
func (d *Decoder) value(s string) string {
	if len(s) <= d.lim.MaxAttrValueBytes && utf8.ValidString(s) {
		return s
	}
	out, f := CleanString(s, d.lim.MaxAttrValueBytes)
	d.countFix(f, false)
	return out
}

func (d *Decoder) countFix(f Fix, name bool) { d.res.Count(f, name) }

// bytesValue caps a bytes value at MaxAttrValueBytes without regard to UTF-8.
func (d *Decoder) bytesValue(s string) string {
	if len(s) > d.lim.MaxAttrValueBytes {
		d.res.Truncated++
		return s[:d.lim.MaxAttrValueBytes]
	}
	return s
}

// keep returns how many of n items fit under limit.
func keep(n, limit int) int { return min(n, limit) }

// addDropped adds n to a uint32 dropped count, saturating.
func addDropped(c *uint32, n int) {
	if n <= 0 {
		return
	}
	s := uint64(*c) + uint64(n)
	if s > 1<<32-1 {
		s = 1<<32 - 1
	}
	*c = uint32(s)
}

// counters is a snapshot of the Result counts a rejected span must not add.
type counters struct{ trunc, truncNames, utf8, attrs, events, links int }

func (d *Decoder) save() counters {
	return counters{d.res.Truncated, d.res.TruncatedNames, d.res.InvalidUTF8, d.res.DroppedAttrs, d.res.DroppedEvents, d.res.DroppedLinks}
}

func (d *Decoder) restore(c counters) {
	d.res.Truncated, d.res.TruncatedNames, d.res.InvalidUTF8 = c.trunc, c.truncNames, c.utf8
	d.res.DroppedAttrs, d.res.DroppedEvents, d.res.DroppedLinks = c.attrs, c.events, c.links
}

func kindOf(v uint64) span.Kind {
	if v > uint64(span.KindConsumer) {
		return span.KindUnspecified
	}
	return span.Kind(v)
}

func statusOf(v uint64) span.StatusCode {
	if v > uint64(span.StatusError) {
		return span.StatusUnset
	}
	return span.StatusCode(v)
}
