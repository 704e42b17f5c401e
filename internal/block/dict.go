package block

import (
	"bytes"
	"hash/maphash"
)

// strDict interns strings into one byte arena. Ids are dense, starting at 0,
// and id 0 is always the empty string. A dict built by a decoder has no hash
// table; lookup then scans linearly, which is fine for page dictionaries.
type strDict struct {
	seed  maphash.Seed
	data  []byte
	offs  []uint32 // len = count+1
	table []uint32 // open addressing; slot holds id+1, 0 = empty
}

func newStrDict() *strDict {
	d := &strDict{}
	d.init()
	return d
}

func (d *strDict) init() {
	d.seed = maphash.MakeSeed()
	d.data = d.data[:0]
	d.offs = append(d.offs[:0], 0, 0) // id 0 = ""
	d.table = make([]uint32, 64)
	d.table[maphash.String(d.seed, "")&63] = 1
}

func (d *strDict) reset() {
	clear(d.table)
	d.data = d.data[:0]
	d.offs = append(d.offs[:0], 0, 0)
	d.table[maphash.String(d.seed, "")&uint64(len(d.table)-1)] = 1
}

// count returns the number of distinct strings, including "".
func (d *strDict) count() int { return len(d.offs) - 1 }

func (d *strDict) bytes(id uint32) []byte { return d.data[d.offs[id]:d.offs[id+1]] }

func (d *strDict) str(id uint32) string { return string(d.data[d.offs[id]:d.offs[id+1]]) }

func (d *strDict) memSize() int64 {
	return int64(cap(d.data) + 4*cap(d.offs) + 4*cap(d.table))
}

func (d *strDict) lookup(s string) (uint32, bool) {
	if d.table == nil {
		for i := 0; i < d.count(); i++ {
			if string(d.bytes(uint32(i))) == s {
				return uint32(i), true
			}
		}
		return 0, false
	}
	mask := uint64(len(d.table) - 1)
	for h := maphash.String(d.seed, s) & mask; ; h = (h + 1) & mask {
		slot := d.table[h]
		if slot == 0 {
			return 0, false
		}
		if string(d.bytes(slot-1)) == s {
			return slot - 1, true
		}
	}
}

func (d *strDict) internBytes(b []byte) uint32 {
	mask := uint64(len(d.table) - 1)
	h := maphash.Bytes(d.seed, b) & mask
	for ; ; h = (h + 1) & mask {
		slot := d.table[h]
		if slot == 0 {
			break
		}
		if bytes.Equal(d.bytes(slot-1), b) {
			return slot - 1
		}
	}
	id := uint32(d.count())
	d.data = append(d.data, b...)
	d.offs = append(d.offs, uint32(len(d.data)))
	d.table[h] = id + 1
	if uint64(d.count())*4 > uint64(len(d.table))*3 { // load factor 0.75
		d.grow()
	}
	return id
}

func (d *strDict) intern(s string) uint32 {
	mask := uint64(len(d.table) - 1)
	h := maphash.String(d.seed, s) & mask
	for ; ; h = (h + 1) & mask {
		slot := d.table[h]
		if slot == 0 {
			break
		}
		if string(d.bytes(slot-1)) == s {
			return slot - 1
		}
	}
	id := uint32(d.count())
	d.data = append(d.data, s...)
	d.offs = append(d.offs, uint32(len(d.data)))
	d.table[h] = id + 1
	if uint64(d.count())*4 > uint64(len(d.table))*3 {
		d.grow()
	}
	return id
}

func (d *strDict) grow() {
	t := make([]uint32, 2*len(d.table))
	mask := uint64(len(t) - 1)
	for id := 0; id < d.count(); id++ {
		h := maphash.Bytes(d.seed, d.bytes(uint32(id))) & mask
		for t[h] != 0 {
			h = (h + 1) & mask
		}
		t[h] = uint32(id) + 1
	}
	d.table = t
}
