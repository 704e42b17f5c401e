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
// failure every read returns a zero value and err stays set.
type decbuf struct {
	b   []byte
	off int // bytes consumed, for error offsets
	err error
}

func (d *decbuf) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decbuf) len() int { return len(d.b) }

func (d *decbuf) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	b := d.b
	if len(b) > 0 && b[0] < 0x80 {
		d.b = b[1:]
		d.off++
		return uint64(b[0])
	}
	v, n := binary.Uvarint(b)
	if n <= 0 {
		if n == 0 {
			d.fail(errShort)
		} else {
			d.fail(errVarint)
		}
		return 0
	}
	d.b = b[n:]
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
	if v > uint64(len(d.b)/minSize) {
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
	if len(d.b) < 1 {
		d.fail(errShort)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	d.off++
	return c
}

func (d *decbuf) u32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	d.off += 4
	return v
}

func (d *decbuf) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	d.off += 8
	return v
}

// bytes returns the next n bytes, aliasing the buffer.
func (d *decbuf) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail(errShort)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	d.off += n
	return v
}

func (d *decbuf) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return ""
	}
	return string(d.bytes(int(n)))
}
