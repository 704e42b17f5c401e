package encoding

import "encoding/binary"

// AppendUvarint appends v as an unsigned varint (7 bits a byte, least
// significant first, the high bit set on every byte but the last: the
// encoding of encoding/binary and protobuf) to dst and returns the extended
// slice.
func AppendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// AppendVarint appends v zigzag-encoded (Zigzag) as an unsigned varint, so
// that small negative numbers take few bytes.
func AppendVarint(dst []byte, v int64) []byte { return AppendUvarint(dst, Zigzag(v)) }

// Zigzag maps signed to unsigned integers so that numbers of small magnitude
// map to small numbers: 0, -1, 1, -2 become 0, 1, 2, 3.
func Zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// Unzigzag is the inverse of Zigzag.
func Unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// AppendUint32 appends v as four little-endian bytes.
func AppendUint32(dst []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(dst, v) }

// AppendUint64 appends v as eight little-endian bytes.
func AppendUint64(dst []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(dst, v) }

// AppendString appends s with its length in front as an unsigned varint
// (what Decbuf.UvarintString reads).
func AppendString(dst []byte, s string) []byte {
	dst = AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// AppendBytes appends b with its length in front as an unsigned varint
// (what Decbuf.UvarintBytes reads).
func AppendBytes(dst, b []byte) []byte {
	dst = AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}
