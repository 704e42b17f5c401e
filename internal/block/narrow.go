package block

import "encoding/binary"

// narrow holds small unsigned integers at the width (0, 1, 2 or 4 bytes)
// their maximum needs. Searches keep the id columns of row groups (span
// names, misc and origin ids, trace runs) in the page cache in this form:
// most tables have fewer than 256 entries, so a cached column takes a
// quarter of its decoded []uint32, and a scan widens it into reused
// memory.
type narrow struct {
	n int
	w uint8
	b []byte
}

// makeNarrow returns vals at their narrowest width.
func makeNarrow(vals []uint32) narrow {
	var mx uint32
	for _, v := range vals {
		mx = max(mx, v)
	}
	x := narrow{n: len(vals)}
	switch {
	case mx == 0:
		return x
	case mx < 1<<8:
		x.w = 1
		x.b = make([]byte, len(vals))
		for i, v := range vals {
			x.b[i] = byte(v)
		}
	case mx < 1<<16:
		x.w = 2
		x.b = make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(x.b[2*i:], uint16(v))
		}
	default:
		x.w = 4
		x.b = make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(x.b[4*i:], v)
		}
	}
	return x
}

// at returns element i.
func (x *narrow) at(i int) uint32 {
	switch x.w {
	case 1:
		return uint32(x.b[i])
	case 2:
		return uint32(binary.LittleEndian.Uint16(x.b[2*i:]))
	case 4:
		return binary.LittleEndian.Uint32(x.b[4*i:])
	}
	return 0
}

// expand returns the elements in dst's memory, widened to 32 bits.
func (x *narrow) expand(dst []uint32) []uint32 {
	dst = resize(dst, x.n)
	switch x.w {
	case 1:
		for i, c := range x.b[:x.n] {
			dst[i] = uint32(c)
		}
	case 2:
		b := x.b[:2*x.n]
		for i := range dst {
			dst[i] = uint32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case 4:
		b := x.b[:4*x.n]
		for i := range dst {
			dst[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
	}
	return dst
}

// size returns the bytes x holds, for the cache.
func (x *narrow) size() int64 { return int64(len(x.b)) + 32 }
