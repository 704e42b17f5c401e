package block

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/span"
)

// The attrs column of a row group (format 3) is cut into sections, each a
// page of its own (codec byte + payload) so that a scan of one key
// decompresses and parses only that key's values:
//
//	uvarint k, uvarint order size, uvarint order raw,
//	k × (uvarint key id, uvarint size, uvarint raw)   key ids ascending
//	order section, then the k key sections
//
// The order section holds per row the attribute count, then per attribute
// key<<3|type, rows in order: it restores the attribute order of a row. A
// key section holds the key's entries in row order (layout at secDec);
// each entry's header is `uvarint rowΔ<<3|type`, its row minus the previous
// entry's row (the first from row 0).

// secDec reads the entries of one key section: `uvarint m`, `uvarint h`,
// then m headers (`uvarint rowΔ<<3|type`, h bytes), the values of the
// entries that are not ints, in order, and last the ints as 8 byte planes
// (byte p of every int's zigzag encoding for p = 0..7): fixed-width planes
// let zstd entropy-code numbers it would store raw as varints.
type secDec struct {
	hdr, val encoding.Decbuf
	ints     []uint64 // decoded int planes
	i        int
	left     int
}

func newSecDec(b []byte) (secDec, error) {
	d := encoding.NewDecbuf(b)
	m := d.Count(1)
	h := d.Limit(uint64(d.Len()))
	hb := d.Bytes(int(h))
	hdr := encoding.NewDecbuf(hb)
	if d.Err() != nil {
		return secDec{}, d.Err()
	}
	ints := 0
	for k := 0; k < m && hdr.Err() == nil; k++ {
		if h := hdr.Uvarint(); span.ValueType(h&7) == span.TypeInt {
			ints++
		}
	}
	if hdr.Err() != nil || hdr.Len() != 0 {
		return secDec{}, errors.New("malformed attribute headers")
	}
	if ints > d.Len()/8 {
		return secDec{}, encoding.ErrShort
	}
	rest := d.Rest()
	s := secDec{hdr: encoding.NewDecbuf(hb), val: encoding.NewDecbuf(rest[:len(rest)-8*ints]), left: m}
	if ints > 0 {
		s.ints = make([]uint64, ints)
		unplane64(s.ints, rest[len(rest)-8*ints:])
	}
	return s, nil
}

// next returns the next entry's header and value (kt carries the key; its
// type is replaced by the header's).
func (s *secDec) next(kt uint32, a *attrList, nstrs uint32) (h uint64, okt, v uint32, err error) {
	if s.left == 0 {
		return 0, 0, 0, errors.New("attribute section too short")
	}
	s.left--
	h = s.hdr.Uvarint()
	kt = kt&^ktTypeMask | uint32(h&7)
	if span.ValueType(h&7) == span.TypeInt {
		u := s.ints[s.i]
		s.i++
		num := uint64(encoding.Unzigzag(u))
		if num <= 1<<32-1 {
			return h, kt, uint32(num), s.hdr.Err()
		}
		return h, kt | ktBig, a.addNum(num), s.hdr.Err()
	}
	okt, v = decodeAttrValue(&s.val, kt, a, nstrs)
	if s.val.Err() != nil {
		return 0, 0, 0, s.val.Err()
	}
	return h, okt, v, s.hdr.Err()
}

func (s *secDec) done() bool { return s.left == 0 && s.val.Len() == 0 }

// attrSection is one section of an attrs column in the directory.
type attrSection struct {
	key       uint32
	off, size int // within the column's raw page
	raw       uint64
}

// attrDir parses the directory of an attrs column.
func (r *Reader) attrDir(raw []byte) (order attrSection, keys []attrSection, err error) {
	d := encoding.NewDecbuf(raw)
	k := d.Count(3)
	order.size = int(d.Limit(uint64(len(raw))))
	order.raw = d.Limit(maxPageRaw)
	nkeys := uint64(r.tab.keys.count())
	keys = make([]attrSection, 0, k)
	for i := 0; i < k && d.Err() == nil; i++ {
		s := attrSection{key: uint32(d.Limit(nkeys - 1))}
		s.size = int(d.Limit(uint64(len(raw))))
		s.raw = d.Limit(maxPageRaw)
		if i > 0 && s.key <= keys[i-1].key {
			d.Fail(errors.New("attribute sections out of order"))
		}
		keys = append(keys, s)
	}
	if d.Err() != nil {
		return order, nil, d.Err()
	}
	off := d.Offset()
	order.off = off
	off += order.size
	for i := range keys {
		keys[i].off = off
		off += keys[i].size
	}
	if off != len(raw) {
		return order, nil, fmt.Errorf("attribute sections end at %d of %d bytes", off, len(raw))
	}
	return order, keys, nil
}

// section decodes one section of an attrs column into dst's memory.
func section(raw []byte, s attrSection, dst []byte) ([]byte, error) {
	out, err := decodePayload(raw[s.off:s.off+s.size], uint32(s.raw), dst)
	if err != nil {
		return nil, fmt.Errorf("attribute section of key %d: %w", s.key, err)
	}
	return out, nil
}

// decodeAttrCol decodes a whole attrs column into a. The decoded sections
// go to (*bufs)[i], reused when a chunk is decoded into again.
func (r *Reader) decodeAttrCol(raw []byte, g *groupInfo, a *attrList, bufs *[][]byte) error {
	n := g.rows
	order, keys, err := r.attrDir(raw)
	if err != nil {
		return err
	}
	for len(*bufs) < len(keys)+1 {
		*bufs = append(*bufs, nil)
	}
	sb := *bufs
	ob, err := section(raw, order, sb[0])
	sb[0] = ob
	if err != nil {
		return err
	}
	d := encoding.NewDecbuf(ob)
	a.off = resize(a.off, n+1)
	a.nums = a.nums[:0]
	total := uint64(0)
	for i := 0; i < n && d.Err() == nil; i++ {
		total += d.Limit(uint64(d.Len()))
		if total > uint64(len(ob)) {
			d.Fail(encoding.ErrRange)
		}
		a.off[i+1] = uint32(total)
	}
	if d.Err() != nil {
		return fmt.Errorf("attribute order: %w", d.Err())
	}
	a.kt = slices.Grow(a.kt[:0], int(total))
	a.val = slices.Grow(a.val[:0], int(total))
	nkeys := uint64(r.tab.keys.count())
	for j := uint64(0); j < total && d.Err() == nil; j++ {
		kt := d.Uvarint()
		if kt>>3 >= nkeys {
			d.Fail(errors.New("attribute key id out of range"))
		}
		a.kt = append(a.kt, uint32(kt>>3)<<ktKeyShift|uint32(kt&7))
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail(errTrailing)
	}
	if d.Err() != nil {
		return fmt.Errorf("attribute order: %w", d.Err())
	}
	// one decoder per key section, consumed in row order
	secs := make([]secDec, len(keys))
	last := make([]int, len(keys))
	for i := range keys {
		b, err := section(raw, keys[i], sb[i+1])
		if err != nil {
			return err
		}
		sb[i+1] = b
		if secs[i], err = newSecDec(b); err != nil {
			return fmt.Errorf("attribute section of key %d: %w", keys[i].key, err)
		}
	}
	// secOf maps a key id (checked above to be below nkeys) to its
	// section, -1 for none: one lookup per entry, whatever the order of
	// the keys in the rows.
	secOf := make([]int32, nkeys)
	for i := range secOf {
		secOf[i] = -1
	}
	for i := range keys {
		secOf[keys[i].key] = int32(i)
	}
	row := 0
	// Locals, not a's fields, in the loop: no write barrier per entry.
	kts, vals, off := a.kt, a.val[:0], a.off
	for j := range kts {
		for uint32(j) >= off[row+1] {
			row++
		}
		key := kts[j] >> ktKeyShift
		x := int(secOf[key])
		if x < 0 {
			return fmt.Errorf("attribute key %d has no section", key)
		}
		h, kt, v, err := secs[x].next(kts[j], a, g.nstrs)
		if err == nil && (last[x]+int(h>>3) != row || uint32(h&7) != kts[j]&ktTypeMask) {
			err = errors.New("attribute section disagrees with the order")
		}
		if err != nil {
			return fmt.Errorf("attribute section of key %d: %w", key, err)
		}
		last[x] = row
		kts[j] = kt
		vals = append(vals, v)
	}
	a.val = vals
	for x := range secs {
		if !secs[x].done() {
			return fmt.Errorf("attribute section of key %d: %w", keys[x].key, errTrailing)
		}
	}
	return nil
}

// decodeKeyAttrs decodes only the section of key of an attrs column: an
// attrList over the group's rows holding that key's entries.
func (r *Reader) decodeKeyAttrs(raw []byte, g *groupInfo, key uint32) (*attrList, error) {
	n := g.rows
	_, keys, err := r.attrDir(raw)
	if err != nil {
		return nil, err
	}
	a := &attrList{off: make([]uint32, n+1)}
	x := sort.Search(len(keys), func(i int) bool { return keys[i].key >= key })
	if x == len(keys) || keys[x].key != key {
		return a, nil
	}
	b, err := section(raw, keys[x], nil)
	if err != nil {
		return nil, err
	}
	s, err := newSecDec(b)
	if err != nil {
		return nil, fmt.Errorf("attribute section of key %d: %w", key, err)
	}
	row := 0
	// Locals, not a's fields, in the loop: no write barrier per entry.
	kts := make([]uint32, 0, s.left)
	vals := make([]uint32, 0, s.left)
	off := a.off
	for s.left > 0 {
		h, kt, v, err := s.next(key<<ktKeyShift, a, g.nstrs)
		if err == nil && h>>3 >= uint64(n-row) {
			err = errors.New("attribute row out of range")
		}
		if err != nil {
			return nil, fmt.Errorf("attribute section of key %d: %w", key, err)
		}
		row += int(h >> 3)
		kts = append(kts, kt)
		vals = append(vals, v)
		off[row+1]++
	}
	if !s.done() {
		return nil, fmt.Errorf("attribute section of key %d: %w", key, errTrailing)
	}
	a.kt, a.val = slices.Clip(kts), slices.Clip(vals)
	for i := 0; i < n; i++ {
		a.off[i+1] += a.off[i]
	}
	return a, nil
}

// attrColWriter builds the sections of one attrs column.
type attrColWriter struct {
	order []byte
	idx   map[uint32]int // block key id -> section
	keys  []uint32
	hdrs  [][]byte   // per section: entry headers
	bufs  [][]byte   // per section: values other than ints
	ints  [][]uint64 // per section: zigzag ints
	cnt   []int
	last  []int
	sort  []int
	sec   []byte
}

func (c *attrColWriter) reset() {
	if c.idx == nil {
		c.idx = make(map[uint32]int)
	}
	clear(c.idx)
	c.order = c.order[:0]
	c.keys = c.keys[:0]
	c.last = c.last[:0]
}

// entry returns the section buffer index of key for an entry on row.
func (c *attrColWriter) entry(key uint32, row int, typ uint32) int {
	x, ok := c.idx[key]
	if !ok {
		x = len(c.keys)
		c.idx[key] = x
		c.keys = append(c.keys, key)
		c.last = append(c.last, 0)
		c.cnt = append(c.cnt[:x], 0)
		if x < len(c.bufs) {
			c.bufs[x], c.hdrs[x], c.ints[x] = c.bufs[x][:0], c.hdrs[x][:0], c.ints[x][:0]
		} else {
			c.bufs, c.hdrs, c.ints = append(c.bufs, nil), append(c.hdrs, nil), append(c.ints, nil)
		}
	}
	c.hdrs[x] = encoding.AppendUvarint(c.hdrs[x], uint64(row-c.last[x])<<3|uint64(typ))
	c.cnt[x]++
	c.last[x] = row
	return x
}

// section returns the raw bytes of section x.
func (c *attrColWriter) section(x int) []byte {
	s := encoding.AppendUvarint(c.sec[:0], uint64(c.cnt[x]))
	s = encoding.AppendUvarint(s, uint64(len(c.hdrs[x])))
	s = append(s, c.hdrs[x]...)
	s = append(s, c.bufs[x]...)
	ints := c.ints[x]
	for p := 0; p < 8; p++ {
		for _, u := range ints {
			s = append(s, byte(u>>(8*p)))
		}
	}
	c.sec = s
	return s
}

// finish appends the column to dst.
func (c *attrColWriter) finish(dst []byte, pageBuf *[]byte) []byte {
	c.sort = c.sort[:0]
	for i := range c.keys {
		c.sort = append(c.sort, i)
	}
	slices.SortFunc(c.sort, func(a, b int) int { return int(c.keys[a]) - int(c.keys[b]) })
	// compress every section into pageBuf, then write directory and bodies
	pb := appendPage((*pageBuf)[:0], c.order)
	ends := make([]int, 0, len(c.keys)+1)
	ends = append(ends, len(pb))
	raws := make([]int, 0, len(c.keys))
	for _, x := range c.sort {
		s := c.section(x)
		raws = append(raws, len(s))
		pb = appendPage(pb, s)
		ends = append(ends, len(pb))
	}
	*pageBuf = pb
	dst = encoding.AppendUvarint(dst, uint64(len(c.keys)))
	dst = encoding.AppendUvarint(dst, uint64(ends[0]))
	dst = encoding.AppendUvarint(dst, uint64(len(c.order)))
	for i, x := range c.sort {
		dst = encoding.AppendUvarint(dst, uint64(c.keys[x]))
		dst = encoding.AppendUvarint(dst, uint64(ends[i+1]-ends[i]))
		dst = encoding.AppendUvarint(dst, uint64(raws[i]))
	}
	return append(dst, pb...)
}
