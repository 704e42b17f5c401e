package encoding

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The causes a Decbuf reports; DecodeError wraps them, so errors.Is finds
// them.
var (
	// ErrShort is the cause when a read needs more bytes than are left.
	ErrShort = errors.New("unexpected end of data")
	// ErrVarint is the cause when a varint is longer than ten bytes or
	// overflows 64 bits.
	ErrVarint = errors.New("malformed varint")
	// ErrRange is the cause when a value is larger than the reader allows.
	ErrRange = errors.New("value out of range")
)

// DecodeError is the error a Decbuf keeps: what was being read, where, and
// why it failed.
type DecodeError struct {
	// What names the read that failed ("uvarint", "uint32", "count", ...);
	// empty when the caller set the error with Fail.
	What string
	// Offset is the byte at which the failed read began, counted from the
	// start of the data plus the base given to NewDecbufAt.
	Offset int
	// Err is the cause: ErrShort, ErrVarint, ErrRange (possibly wrapped
	// with details) or the error given to Fail.
	Err error
}

// Error says what was read, where, and why it failed.
func (e *DecodeError) Error() string {
	if e.What == "" {
		return fmt.Sprintf("at byte %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("%s at byte %d: %v", e.What, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// Decbuf decodes a byte slice with a sticky error: every read checks its
// bounds, and the first one that fails records a *DecodeError; from then on
// every read returns a zero value and the error stays as it was. A decoder
// therefore makes a run of reads and checks Err once after them (and
// before it trusts a value to size an allocation or index a table).
//
// Reads of byte slices alias the decoded buffer. The zero Decbuf is an
// empty buffer. A Decbuf is not safe for concurrent use.
//
// It advances an index rather than reslicing the buffer, so a read stores
// no pointer (no GC write barrier per read while a collection runs), and a
// failure moves the index to the end, so the fast paths need not test the
// error.
type Decbuf struct {
	b    []byte
	i    int   // next byte of b; len(b) once err is set
	base int   // added to offsets in errors and Offset
	err  error // a *DecodeError once set; an interface so Err is a plain load
}

// NewDecbuf returns a decoder over b.
func NewDecbuf(b []byte) Decbuf { return Decbuf{b: b} }

// NewDecbufAt returns a decoder over b, which starts at byte base of a
// larger object: offsets in its errors and from Offset count from the
// object's start.
func NewDecbufAt(b []byte, base int) Decbuf { return Decbuf{b: b, base: base} }

// Reset makes d a fresh decoder over b, clearing its error.
func (d *Decbuf) Reset(b []byte) { *d = Decbuf{b: b} }

// Err returns the first failure (a *DecodeError), or nil.
func (d *Decbuf) Err() error { return d.err }

// Fail records err, at the current offset, as the decoder's error unless
// one is already set, and stops further reads. Callers use it for the
// checks of meaning the decoder cannot make (a count that does not match,
// an index past a table).
func (d *Decbuf) Fail(err error) { d.failAt(d.i, "", err) }

func (d *Decbuf) failAt(at int, what string, err error) {
	if d.err == nil {
		d.err = &DecodeError{What: what, Offset: d.base + at, Err: err}
	}
	d.i = len(d.b)
}

// Len returns the number of bytes not yet read (0 after a failure).
func (d *Decbuf) Len() int { return len(d.b) - d.i }

// Offset returns the offset of the next byte to read, or, after a failure,
// that of the read that failed (plus the base given to NewDecbufAt).
func (d *Decbuf) Offset() int {
	if d.err != nil {
		return d.err.(*DecodeError).Offset
	}
	return d.base + d.i
}

// Rest returns the bytes not yet read, aliasing the buffer; empty after a
// failure.
func (d *Decbuf) Rest() []byte { return d.b[d.i:] }

// Uvarint reads an unsigned varint (as AppendUvarint writes it).
func (d *Decbuf) Uvarint() uint64 {
	// One-byte values are the common case; after a failure i == len(b),
	// so this test also covers the sticky error.
	if i := d.i; i < len(d.b) {
		if v := d.b[i]; v < 0x80 {
			d.i = i + 1
			return uint64(v)
		}
	}
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		if n == 0 {
			d.failAt(d.i, "uvarint", ErrShort)
		} else {
			d.failAt(d.i, "uvarint", ErrVarint)
		}
		return 0
	}
	d.i += n
	return v
}

// Varint reads a zigzag-encoded signed varint (as AppendVarint writes it).
func (d *Decbuf) Varint() int64 { return Unzigzag(d.Uvarint()) }

// Uvarint32 reads an unsigned varint that must fit in 32 bits.
func (d *Decbuf) Uvarint32() uint32 {
	at := d.i
	v := d.Uvarint()
	if v > 1<<32-1 {
		d.failAt(at, "uvarint32", fmt.Errorf("%w: %d does not fit in 32 bits", ErrRange, v))
		return 0
	}
	return uint32(v)
}

// Count reads an unsigned varint count of items that take at least minSize
// bytes each (a minSize below 1 counts as 1), failing when the bytes left
// cannot hold that many: a count read from damaged data can then size an
// allocation safely.
func (d *Decbuf) Count(minSize int) int {
	at := d.i
	v := d.Uvarint()
	if minSize < 1 {
		minSize = 1
	}
	if v > uint64(d.Len()/minSize) {
		d.failAt(at, "count", fmt.Errorf("%w: %d items of at least %d bytes in %d bytes", ErrRange, v, minSize, d.Len()))
		return 0
	}
	return int(v)
}

// Limit reads an unsigned varint that must be at most max.
func (d *Decbuf) Limit(max uint64) uint64 {
	at := d.i
	v := d.Uvarint()
	if v > max {
		d.failAt(at, "uvarint", fmt.Errorf("%w: %d over the limit %d", ErrRange, v, max))
		return 0
	}
	return v
}

// Byte reads one byte.
func (d *Decbuf) Byte() byte {
	if d.i < len(d.b) {
		c := d.b[d.i]
		d.i++
		return c
	}
	d.failAt(d.i, "byte", ErrShort)
	return 0
}

// Uint32 reads four little-endian bytes (as AppendUint32 writes them).
func (d *Decbuf) Uint32() uint32 {
	if len(d.b)-d.i >= 4 {
		v := binary.LittleEndian.Uint32(d.b[d.i:])
		d.i += 4
		return v
	}
	d.failAt(d.i, "uint32", ErrShort)
	return 0
}

// Uint64 reads eight little-endian bytes (as AppendUint64 writes them).
func (d *Decbuf) Uint64() uint64 {
	if len(d.b)-d.i >= 8 {
		v := binary.LittleEndian.Uint64(d.b[d.i:])
		d.i += 8
		return v
	}
	d.failAt(d.i, "uint64", ErrShort)
	return 0
}

// Bytes reads the next n bytes, aliasing the buffer (with the capacity cut
// to n, so an append to them cannot overwrite what follows). It returns
// nil after a failure.
func (d *Decbuf) Bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b)-d.i < n {
		d.failAt(d.i, "bytes", fmt.Errorf("%w: %d bytes wanted, %d left", ErrShort, n, len(d.b)-d.i))
		return nil
	}
	v := d.b[d.i : d.i+n : d.i+n]
	d.i += n
	return v
}

// UvarintBytes reads a byte string with its length in front as an
// unsigned varint (as AppendBytes writes it), aliasing the buffer.
func (d *Decbuf) UvarintBytes() []byte {
	at := d.i
	n := d.Uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.i) {
		d.failAt(at, "length-prefixed bytes", fmt.Errorf("%w: length %d, %d bytes left", ErrShort, n, len(d.b)-d.i))
		return nil
	}
	end := d.i + int(n)
	v := d.b[d.i:end:end]
	d.i = end
	return v
}

// UvarintString reads a string with its length in front as an unsigned
// varint (as AppendString writes it). The string is a copy.
func (d *Decbuf) UvarintString() string { return string(d.UvarintBytes()) }
