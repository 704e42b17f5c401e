package block

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"

	"github.com/cespare/xxhash/v2"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// Row-group pruning. The index maps every span name id and origin id, and
// the page holds every (attribute key, string value) pair of span, event and
// link attributes, to the sorted list of row groups that contain it. A
// search intersects the lists of its selective conditions and scans only the
// groups left.

// valuesPerPage bounds the entries of one value index page.
const valuesPerPage = 2048

// postings maps dense ids (span names or origins) to sorted row-group lists,
// kept encoded: entry i is data[off[i]:off[i+1]], a posting list.
type postings struct {
	off  []uint32 // len = entries+1
	data []byte
}

// appendPosting encodes a sorted, duplicate-free group list: uvarint count,
// the first group id, then the gaps to each next id (≥ 1).
func appendPosting(dst []byte, groups []uint32) []byte {
	dst = encoding.AppendUvarint(dst, uint64(len(groups)))
	prev := uint32(0)
	for i, g := range groups {
		if i == 0 {
			dst = encoding.AppendUvarint(dst, uint64(g))
		} else {
			dst = encoding.AppendUvarint(dst, uint64(g-prev))
		}
		prev = g
	}
	return dst
}

// decodePosting reads one posting list, checks it against ngroups and, when
// set is not nil, ORs its groups into the bitset.
func decodePosting(d *encoding.Decbuf, ngroups int, set []uint64) {
	n := d.Count(1)
	if d.Err() == nil && n == 0 {
		d.Fail(errors.New("empty posting list"))
	}
	g := uint64(0)
	for i := 0; i < n && d.Err() == nil; i++ {
		v := d.Uvarint()
		if i > 0 {
			if v == 0 {
				d.Fail(errors.New("posting list out of order"))
				return
			}
			v += g
		}
		if v >= uint64(ngroups) {
			d.Fail(errors.New("posting group out of range"))
			return
		}
		g = v
		if set != nil {
			set[g/64] |= 1 << (g % 64)
		}
	}
}

// buildPostings turns sorted, duplicate-free (id<<32 | group) pairs into
// postings of n ids; ids without pairs get an empty entry.
func buildPostings(pairs []uint64, n int) postings {
	p := postings{off: make([]uint32, 1, n+1)}
	var groups []uint32
	i := 0
	for id := 0; id < n; id++ {
		groups = groups[:0]
		for ; i < len(pairs) && int(pairs[i]>>32) == id; i++ {
			groups = append(groups, uint32(pairs[i]))
		}
		if len(groups) > 0 {
			p.data = appendPosting(p.data, groups)
		}
		p.off = append(p.off, uint32(len(p.data)))
	}
	return p
}

func appendPostings(b []byte, p *postings) []byte {
	b = encoding.AppendUvarint(b, uint64(len(p.off)-1))
	for i := 0; i+1 < len(p.off); i++ {
		b = encoding.AppendUvarint(b, uint64(p.off[i+1]-p.off[i]))
	}
	return append(b, p.data...)
}

// decodePostings reads n posting entries (an entry may be empty) and
// validates every list.
func decodePostings(d *encoding.Decbuf, n, ngroups int) postings {
	if k := d.Count(1); d.Err() == nil && k != n {
		d.Fail(fmt.Errorf("%d posting entries, want %d", k, n))
		return postings{}
	}
	p := postings{off: make([]uint32, 1, n+1)}
	total := uint64(0)
	for i := 0; i < n && d.Err() == nil; i++ {
		total += d.Limit(uint64(d.Len()))
		p.off = append(p.off, uint32(total))
	}
	if d.Err() == nil && total > uint64(d.Len()) {
		d.Fail(encoding.ErrShort)
	}
	p.data = d.Bytes(int(total))
	for i := 0; i < n && d.Err() == nil; i++ {
		if p.off[i] == p.off[i+1] {
			continue
		}
		e := encoding.NewDecbuf(p.data[p.off[i]:p.off[i+1]])
		decodePosting(&e, ngroups, nil)
		if e.Err() == nil && e.Len() != 0 {
			e.Fail(errTrailing)
		}
		if e.Err() != nil {
			d.Fail(fmt.Errorf("posting entry %d: %w", i, e.Err()))
		}
	}
	return p
}

// or adds the groups of entry id to set.
func (p *postings) or(id int, set []uint64, ngroups int) {
	if id+1 >= len(p.off) {
		return
	}
	d := encoding.NewDecbuf(p.data[p.off[id]:p.off[id+1]])
	if d.Len() > 0 {
		decodePosting(&d, ngroups, set)
	}
}

// valueHash is the 32-bit hash of an attribute key and string value under
// which the value index files the pair.
func valueHash(buf []byte, key, val string) (uint32, []byte) {
	buf = encoding.AppendString(buf[:0], key)
	buf = append(buf, val...)
	return uint32(xxhash.Sum64(buf)), buf
}

// valuePageInfo describes one page of the value index.
type valuePageInfo struct {
	firstHash uint32
	n         int
	ref       pageRef
}

// valuePage is a decoded page of the value index.
type valuePage struct {
	hashes []uint32
	off    []uint32 // posting of hashes[i] is data[off[i]:off[i+1]]
	data   []byte
}

// writeValuePages writes the value index from sorted, duplicate-free
// (hash<<32 | group) pairs.
func (w *blockWriter) writeValuePages() error {
	var page []byte
	var groups []uint32
	n := 0
	var first, prev uint32
	flush := func() error {
		if n == 0 {
			return nil
		}
		ref, err := w.writePage(page)
		if err != nil {
			return err
		}
		w.vpages = append(w.vpages, valuePageInfo{firstHash: first, n: n, ref: ref})
		page, n = page[:0], 0
		return nil
	}
	// k-way merge of the groups' sorted hash lists, by hash then group
	var hp hashHeap
	for g, l := range w.valGroups {
		if len(l) > 0 {
			hp = append(hp, hashCursor{l: l, g: uint32(g)})
		}
	}
	heap.Init(&hp)
	for len(hp) > 0 {
		h := hp[0].l[0]
		groups = groups[:0]
		for len(hp) > 0 && hp[0].l[0] == h {
			groups = append(groups, hp[0].g)
			if hp[0].l = hp[0].l[1:]; len(hp[0].l) == 0 {
				heap.Pop(&hp)
			} else {
				heap.Fix(&hp, 0)
			}
		}
		if n == 0 {
			first, prev = h, h
		}
		page = encoding.AppendUvarint(page, uint64(h-prev))
		page = appendPosting(page, groups)
		prev = h
		n++
		if n == valuesPerPage {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// hashCursor is the unmerged rest of one group's value hashes.
type hashCursor struct {
	l []uint32
	g uint32
}

type hashHeap []hashCursor

func (h hashHeap) Len() int { return len(h) }
func (h hashHeap) Less(i, j int) bool {
	if h[i].l[0] != h[j].l[0] {
		return h[i].l[0] < h[j].l[0]
	}
	return h[i].g < h[j].g
}
func (h hashHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *hashHeap) Push(x any)   { *h = append(*h, x.(hashCursor)) }
func (h *hashHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// valuePage reads (or takes from the cache) value index page i.
func (r *Reader) valuePage(ctx context.Context, i int) (*valuePage, error) {
	key := cache.Key{Dir: r.dir, Kind: kindValuePage, Idx: int32(i)}
	if v, ok := r.cache.Get(key); ok {
		return v.(*valuePage), nil
	}
	vi := &r.vpages[i]
	what := fmt.Sprintf("value page %d", i)
	raw, err := r.readPage(ctx, vi.ref, what)
	if err != nil {
		return nil, err
	}
	vp := &valuePage{hashes: make([]uint32, 0, vi.n), off: make([]uint32, 0, vi.n+1), data: raw}
	d := encoding.NewDecbuf(raw)
	h := vi.firstHash
	for j := 0; j < vi.n && d.Err() == nil; j++ {
		delta := d.Uvarint()
		if (j == 0 && delta != 0) || (j > 0 && delta == 0) || uint64(h)+delta > 1<<32-1 {
			d.Fail(errors.New("value hashes out of order"))
			break
		}
		h += uint32(delta)
		vp.hashes = append(vp.hashes, h)
		vp.off = append(vp.off, uint32(d.Offset()))
		decodePosting(&d, len(r.groups), nil)
	}
	vp.off = append(vp.off, uint32(d.Offset()))
	if d.Err() == nil && d.Len() != 0 {
		d.Fail(errTrailing)
	}
	if d.Err() != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: vi.ref.off, Err: fmt.Errorf("%s: %w", what, d.Err())}
	}
	r.cache.Put(key, vp, int64(len(raw)+8*vi.n+64))
	return vp, nil
}

// orValueGroups adds to set the groups whose span, event or link attributes
// hold key with the string value val.
func (r *Reader) orValueGroups(ctx context.Context, key, val string, set []uint64) error {
	var buf [64]byte
	h, _ := valueHash(buf[:0], key, val)
	pi := sort.Search(len(r.vpages), func(i int) bool { return r.vpages[i].firstHash > h }) - 1
	if pi < 0 {
		return nil
	}
	vp, err := r.valuePage(ctx, pi)
	if err != nil {
		return err
	}
	j, ok := slices.BinarySearch(vp.hashes, h)
	if !ok {
		return nil
	}
	d := encoding.NewDecbuf(vp.data[vp.off[j]:vp.off[j+1]])
	decodePosting(&d, len(r.groups), set)
	return d.Err()
}

// candidateGroups returns the bitset of the groups that may hold a match
// of p, or nil when the plan has no selective condition (every group may).
func (r *Reader) candidateGroups(ctx context.Context, p *plan) ([]uint64, error) {
	ng := len(r.groups)
	words := (ng + 63) / 64
	var cand []uint64
	tmp := make([]uint64, words)
	and := func() {
		if cand == nil {
			cand = slices.Clone(tmp)
		} else {
			for i := range cand {
				cand[i] &= tmp[i]
			}
		}
		clear(tmp)
	}
	if p.hasName {
		r.namePost.or(int(p.nameID), tmp, ng)
		and()
	}
	if p.originOK != nil {
		for o, ok := range p.originOK {
			if ok {
				r.originPost.or(o, tmp, ng)
			}
		}
		and()
	}
	for i := range p.conds {
		cp := &p.conds[i]
		indexed := cp.rowScopes == 0 || (cp.c.Op == search.OpEq && cp.c.Value.Type == span.TypeString && cp.onlyStrings)
		if !indexed {
			continue
		}
		for o, hit := range cp.originHit {
			if hit {
				r.originPost.or(o, tmp, ng)
			}
		}
		if cp.rowScopes != 0 {
			if err := r.orValueGroups(ctx, cp.c.Key, cp.c.Value.Str, tmp); err != nil {
				return nil, err
			}
		}
		and()
	}
	return cand, nil
}
