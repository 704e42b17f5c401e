package block

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func appendVarint(dst []byte, v int64) []byte { return appendUvarint(dst, zigzag(v)) }

func appendU32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

func appendU64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

func appendString(dst []byte, s string) []byte {
	dst = appendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var (
	errShort  = errors.New("unexpected end of data")
	errVarint = errors.New("malformed varint")
	errRange  = errors.New("value out of range")
)

// decbuf is a sticky-error decoder over a byte slice: after the first
// failure every read returns a zero value and err stays set. It advances an
// index rather than reslicing b, so reads store no pointers: no GC write
// barrier per read while a collection runs.
type decbuf struct {
	b   []byte
	i   int // next byte of b
	off int // bytes consumed (plus the caller's base), for error offsets
	err error
}

func (d *decbuf) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.i = len(d.b)
}

func (d *decbuf) len() int { return len(d.b) - d.i }

// rest returns the bytes not yet consumed.
func (d *decbuf) rest() []byte { return d.b[d.i:] }

func (d *decbuf) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if d.i < len(d.b) && d.b[d.i] < 0x80 {
		v := d.b[d.i]
		d.i++
		d.off++
		return uint64(v)
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		if n == 0 {
			d.fail(errShort)
		} else {
			d.fail(errVarint)
		}
		return 0
	}
	d.i += n
	d.off += n
	return v
}

func (d *decbuf) varint() int64 { return unzigzag(d.uvarint()) }

// uvarint32 reads a uvarint that must fit in 32 bits.
func (d *decbuf) uvarint32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail(errRange)
		return 0
	}
	return uint32(v)
}

// count reads a uvarint count of items that take at least minSize bytes each,
// failing when the remaining data cannot hold that many.
func (d *decbuf) count(minSize int) int {
	v := d.uvarint()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if v > uint64(d.len()/minSize) {
		d.fail(errRange)
		return 0
	}
	return int(v)
}

// limit reads a uvarint that must be at most max.
func (d *decbuf) limit(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(errRange)
		return 0
	}
	return v
}

func (d *decbuf) byte1() byte {
	if d.err != nil {
		return 0
	}
	if d.len() < 1 {
		d.fail(errShort)
		return 0
	}
	c := d.b[d.i]
	d.i++
	d.off++
	return c
}

func (d *decbuf) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if d.len() < 4 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.i:])
	d.i += 4
	d.off += 4
	return v
}

func (d *decbuf) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if d.len() < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.i:])
	d.i += 8
	d.off += 8
	return v
}

// bytes returns the next n bytes, aliasing the buffer.
func (d *decbuf) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || d.len() < n {
		d.fail(errShort)
		return nil
	}
	v := d.b[d.i : d.i+n : d.i+n]
	d.i += n
	d.off += n
	return v
}

func (d *decbuf) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(d.len()) {
		d.fail(errShort)
		return ""
	}
	return string(d.bytes(int(n)))
}
