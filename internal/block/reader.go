package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/span"
)

// The kinds of cache.Key a Reader caches under (searchcols.go adds
// kindNarrow and kindKeyCol).
const (
	kindGroupCol  = 0 // a decoded row group column (Col)
	kindTracePage = 1 // a trace index page
	kindValuePage = 2 // a value index page
	kindKeyAttrs  = 3 // one key's attributes of a row group (Attr: key id)
)

// ReaderOptions configure Open.
type ReaderOptions struct {
	// Cache, when set, holds decoded pages shared across Readers.
	Cache *cache.Cache
	// LocalRoot, when set, is the local directory the bucket keeps its
	// objects in (a filesystem bucket): the Reader then reads its data
	// object with positioned reads of one open file instead of opening the
	// object for every range. When the file cannot be opened the Reader
	// uses the bucket.
	LocalRoot string
}

// Reader answers queries on one block. It holds the block's index in memory
// and reads column pages by range on demand. It is safe for concurrent use.
type Reader struct {
	bkt        objstore.BucketReader
	dir        string
	meta       Meta
	cache      *cache.Cache
	tab        tables
	groups     []groupInfo
	tpages     []tracePageInfo
	vpages     []valuePageInfo
	namePost   postings // per span name id: the groups holding it
	originPost postings // per origin id: the groups holding it
	bloom      bloom
	dataSize   int64
	spans      int64
	traces     int64
	closed     atomic.Bool
	// data is the open data object when read from a local file (see
	// ReaderOptions.LocalRoot), else nil.
	data *os.File
}

// ReadMeta reads and validates the meta.json of the block under dir.
func ReadMeta(ctx context.Context, bkt objstore.BucketReader, dir string) (Meta, error) {
	b, err := readAll(ctx, bkt, path.Join(dir, MetaName))
	if err != nil {
		return Meta{}, err
	}
	m, err := unmarshalMeta(b)
	if err != nil {
		return Meta{}, fmt.Errorf("block %s: %w", dir, err)
	}
	return m, nil
}

func readAll(ctx context.Context, bkt objstore.BucketReader, name string) ([]byte, error) {
	rc, err := bkt.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// Open opens the block under dir: it reads meta.json and the index object.
func Open(ctx context.Context, bkt objstore.BucketReader, dir string, opts ReaderOptions) (*Reader, error) {
	meta, err := ReadMeta(ctx, bkt, dir)
	if err != nil {
		return nil, err
	}
	idx, err := readAll(ctx, bkt, path.Join(dir, IndexName))
	if err != nil {
		return nil, err
	}
	r := &Reader{bkt: bkt, dir: dir, meta: meta, cache: opts.Cache}
	if err := r.decodeIndex(idx); err != nil {
		return nil, err
	}
	if opts.LocalRoot != "" {
		if f, err := os.Open(filepath.Join(opts.LocalRoot, filepath.FromSlash(path.Join(dir, DataName)))); err == nil {
			if st, err := f.Stat(); err == nil && st.Size() >= r.dataSize {
				r.data = f
			} else {
				f.Close()
			}
		}
	}
	return r, nil
}

// Meta returns the block's meta.
func (r *Reader) Meta() Meta { return r.meta }

// Close releases the Reader. Queries after Close return an error; the
// caller must not close a Reader that queries still use.
func (r *Reader) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	if r.data != nil {
		return r.data.Close()
	}
	return nil
}

func (r *Reader) indexErr(off int, err error) error {
	return &CorruptionError{Object: path.Join(r.dir, IndexName), Offset: int64(off), Err: err}
}

// decodeIndex parses and validates the index object.
func (r *Reader) decodeIndex(b []byte) error {
	name := path.Join(r.dir, IndexName)
	if len(b) < headerSize+4+2 {
		return r.indexErr(0, encoding.ErrShort)
	}
	if !bytes.Equal(b[:4], indexMagic[:]) {
		return r.indexErr(0, errors.New("bad magic"))
	}
	if b[4] != FormatVersion {
		return fmt.Errorf("open %s: version %d: %w", name, b[4], ErrUnknownVersion)
	}
	body := b[:len(b)-4]
	if encoding.CRC32C(body) != uint32(le32(b[len(b)-4:])) {
		return r.indexErr(len(b)-4, errCRC)
	}
	d := encoding.NewDecbufAt(body[headerSize:], headerSize)
	raw := d.Limit(maxPageRaw)
	if d.Err() != nil {
		return r.indexErr(d.Offset(), d.Err())
	}
	stored := d.Rest()
	ref := pageRef{size: uint32(len(stored)), raw: uint32(raw), crc: encoding.CRC32C(stored)}
	plain, err := decodePage(stored, ref, nil)
	if err != nil {
		return r.indexErr(d.Offset(), err)
	}
	if err := r.decodeIndexBody(plain); err != nil {
		var ce *CorruptionError
		if errors.As(err, &ce) {
			return err
		}
		return &CorruptionError{Object: name + " (decoded body)", Offset: 0, Err: err}
	}
	return nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func decodeDict(d *encoding.Decbuf) *strDict {
	n := d.Count(1)
	sd := &strDict{offs: make([]uint32, 1, n+1)}
	for i := 0; i < n && d.Err() == nil; i++ {
		l := d.Limit(uint64(d.Len()))
		sd.data = append(sd.data, d.Bytes(int(l))...)
		sd.offs = append(sd.offs, uint32(len(sd.data)))
	}
	return sd
}

// withTable adds a hash table to a decoded dict for fast lookups.
func withTable(sd *strDict) *strDict {
	out := newStrDict()
	for id := 1; id < sd.count(); id++ {
		out.internBytes(sd.bytes(uint32(id)))
	}
	if out.count() != sd.count() || (sd.count() > 0 && len(sd.bytes(0)) != 0) {
		return nil // duplicates or a non-empty id 0: keep ids as stored
	}
	return out
}

func (r *Reader) decodeIndexBody(b []byte) error {
	d := encoding.NewDecbuf(b)
	r.dataSize = int64(d.Uvarint())
	r.spans = int64(d.Limit(1 << 40))
	r.traces = int64(d.Limit(uint64(r.spans)))
	for _, step := range []func(*encoding.Decbuf) error{
		r.decodeIndexTables, r.decodeGroupDir, r.decodeTraceDir, r.decodePostingsDir, r.decodeValueDir, r.decodeBloom,
	} {
		if err := step(&d); err != nil {
			return err
		}
	}
	if d.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", d.Len())
	}
	return nil
}

// decodeStepErr returns the decoder's error, if any, as the failure to
// decode what.
func decodeStepErr(d *encoding.Decbuf, what string) error {
	if d.Err() != nil {
		return fmt.Errorf("decode %s: %w", what, d.Err())
	}
	return nil
}

// decodeIndexTables decodes the index's dictionaries (span names,
// attribute keys with their scopes and types) and its tables (resources,
// scopes, origins, misc entries).
func (r *Reader) decodeIndexTables(d *encoding.Decbuf) error {
	names := decodeDict(d)
	keys := decodeDict(d)
	if err := decodeStepErr(d, "dictionaries"); err != nil {
		return err
	}
	r.tab.names, r.tab.keys = names, keys
	if t := withTable(names); t != nil {
		r.tab.names = t
	}
	if t := withTable(keys); t != nil {
		r.tab.keys = t
	}
	if names.count() == 0 || keys.count() == 0 {
		return errors.New("empty dictionary")
	}
	r.tab.keyScopes = make([]uint8, 0, keys.count())
	r.tab.keyTypes = make([]uint8, 0, keys.count())
	for i := 0; i < keys.count() && d.Err() == nil; i++ {
		r.tab.keyScopes = append(r.tab.keyScopes, d.Byte())
		r.tab.keyTypes = append(r.tab.keyTypes, d.Byte())
	}
	n := d.Count(3)
	for i := 0; i < n && d.Err() == nil; i++ {
		res := decodeResource(d)
		r.tab.resources = append(r.tab.resources, res)
		r.tab.services = append(r.tab.services, res.ServiceName())
	}
	n = d.Count(5)
	for i := 0; i < n && d.Err() == nil; i++ {
		r.tab.scopes = append(r.tab.scopes, decodeScope(d))
	}
	n = d.Count(2)
	for i := 0; i < n && d.Err() == nil; i++ {
		o := origin{d.Uvarint32(), d.Uvarint32()}
		if int(o.res) >= len(r.tab.resources) || int(o.scope) >= len(r.tab.scopes) {
			d.Fail(encoding.ErrRange)
		}
		r.tab.origins = append(r.tab.origins, o)
	}
	n = d.Count(6)
	for i := 0; i < n && d.Err() == nil; i++ {
		m := miscEntry{kind: span.Kind(d.Limit(255)), status: span.StatusCode(d.Limit(255)), flags: d.Uvarint32(),
			dAttrs: d.Uvarint32(), dEvents: d.Uvarint32(), dLinks: d.Uvarint32()}
		r.tab.misc = append(r.tab.misc, m)
	}
	if err := decodeStepErr(d, "tables"); err != nil {
		return err
	}
	return nil
}

// decodeGroupDir decodes the row group directory and checks it covers
// the header's spans in order.
func (r *Reader) decodeGroupDir(d *encoding.Decbuf) error {
	n := d.Count(8 + 3*numCols)
	var row, lastTrace int64
	var end int64 = headerSize
	for i := 0; i < n && d.Err() == nil; i++ {
		g := groupInfo{firstRow: row}
		g.rows = int(d.Limit(maxGroupRows * 16))
		g.firstTrace = int64(d.Uvarint())
		g.minStart = d.Uvarint()
		g.maxStart = g.minStart + d.Uvarint()
		g.minDur = d.Uvarint()
		g.maxDur = g.minDur + d.Uvarint()
		g.nstrs = d.Uvarint32()
		off := int64(d.Uvarint())
		for c := range g.cols {
			g.cols[c] = decodePageRef(d, off)
			off += int64(g.cols[c].size)
		}
		if d.Err() != nil {
			break
		}
		if g.rows == 0 || g.firstTrace < lastTrace || g.firstTrace >= r.traces || g.cols[0].off < end || off > r.dataSize || g.nstrs == 0 {
			return fmt.Errorf("decode group %d: inconsistent directory entry", i)
		}
		end = off
		lastTrace = g.firstTrace
		row += int64(g.rows)
		r.groups = append(r.groups, g)
	}
	if err := decodeStepErr(d, "group directory"); err != nil {
		return err
	}
	if row != r.spans {
		return fmt.Errorf("group directory holds %d rows, header says %d", row, r.spans)
	}
	return nil
}

// decodeTraceDir decodes the trace page directory and checks it covers
// the header's traces in trace ID order.
func (r *Reader) decodeTraceDir(d *encoding.Decbuf) error {
	n := d.Count(16 + 4)
	var ord int64
	var row int64
	for i := 0; i < n && d.Err() == nil; i++ {
		var tp tracePageInfo
		copy(tp.firstID[:], d.Bytes(16))
		tp.n = int(d.Limit(1 << 20))
		tp.firstRow = int64(d.Limit(uint64(r.spans)))
		off := int64(d.Uvarint())
		tp.ref = decodePageRef(d, off)
		tp.firstOrd = ord
		if d.Err() != nil {
			break
		}
		if tp.n == 0 || tp.firstRow < row || off < headerSize || off+int64(tp.ref.size) > r.dataSize {
			return fmt.Errorf("decode trace page %d: inconsistent directory entry", i)
		}
		if i > 0 && bytes.Compare(tp.firstID[:], r.tpages[i-1].firstID[:]) <= 0 {
			return fmt.Errorf("decode trace page %d: trace ids out of order", i)
		}
		ord += int64(tp.n)
		row = tp.firstRow
		r.tpages = append(r.tpages, tp)
	}
	if err := decodeStepErr(d, "trace directory"); err != nil {
		return err
	}
	if ord != r.traces {
		return fmt.Errorf("trace directory holds %d traces, header says %d", ord, r.traces)
	}
	return nil
}

// decodePostingsDir decodes the span name and origin postings (which
// groups hold each).
func (r *Reader) decodePostingsDir(d *encoding.Decbuf) error {
	r.namePost = decodePostings(d, r.tab.names.count(), len(r.groups))
	r.originPost = decodePostings(d, len(r.tab.origins), len(r.groups))
	if err := decodeStepErr(d, "group postings"); err != nil {
		return err
	}
	return nil
}

// decodeValueDir decodes the value index's page directory.
func (r *Reader) decodeValueDir(d *encoding.Decbuf) error {
	n := d.Count(4 + 4)
	for i := 0; i < n && d.Err() == nil; i++ {
		vp := valuePageInfo{firstHash: d.Uvarint32(), n: int(d.Limit(valuesPerPage))}
		off := int64(d.Uvarint())
		vp.ref = decodePageRef(d, off)
		if d.Err() != nil {
			break
		}
		if vp.n == 0 || off < headerSize || off+int64(vp.ref.size) > r.dataSize || (i > 0 && vp.firstHash <= r.vpages[i-1].firstHash) {
			return fmt.Errorf("decode value page %d: inconsistent directory entry", i)
		}
		r.vpages = append(r.vpages, vp)
	}
	if err := decodeStepErr(d, "value page directory"); err != nil {
		return err
	}
	return nil
}

// decodeBloom decodes the trace ID bloom filter.
func (r *Reader) decodeBloom(d *encoding.Decbuf) error {
	r.bloom.k = uint32(d.Limit(32))
	nw := d.Count(8)
	r.bloom.words = make([]uint64, nw)
	for i := range r.bloom.words {
		r.bloom.words[i] = d.Uint64()
	}
	if err := decodeStepErr(d, "bloom filter"); err != nil {
		return err
	}
	return nil
}

func decodePageRef(d *encoding.Decbuf, off int64) pageRef {
	ref := pageRef{off: off}
	ref.size = uint32(d.Limit(maxPageRaw + 1024))
	ref.raw = uint32(d.Limit(maxPageRaw))
	ref.crc = d.Uint32()
	return ref
}

// readRange reads size bytes at off of the data object.
func (r *Reader) readRange(ctx context.Context, off, size int64, what string) ([]byte, error) {
	return r.readRangeInto(ctx, off, size, what, nil)
}

// readRangeInto is readRange reading into dst's memory when it is large
// enough.
func (r *Reader) readRangeInto(ctx context.Context, off, size int64, what string, dst []byte) ([]byte, error) {
	if r.data != nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var buf []byte
		if int64(cap(dst)) >= size {
			buf = dst[:size]
		} else {
			buf = make([]byte, size)
		}
		if n, err := r.data.ReadAt(buf, off); int64(n) != size {
			if r.closed.Load() {
				return nil, errClosed
			}
			return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: off, Err: fmt.Errorf("read %s: %w", what, err)}
		}
		return buf, nil
	}
	rc, err := r.bkt.GetRange(ctx, path.Join(r.dir, DataName), off, size)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", path.Join(r.dir, DataName), what, err)
	}
	defer rc.Close()
	var buf []byte
	if int64(cap(dst)) >= size {
		buf = dst[:size]
	} else {
		buf = make([]byte, size)
	}
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: off, Err: fmt.Errorf("read %s: %w", what, err)}
	}
	return buf, nil
}

// readPage fetches and decodes one page of the data object.
func (r *Reader) readPage(ctx context.Context, ref pageRef, what string) ([]byte, error) {
	stored, err := r.readRange(ctx, ref.off, int64(ref.size), what)
	if err != nil {
		return nil, err
	}
	raw, err := decodePage(stored, ref, nil)
	if err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	return raw, nil
}

// tracePage is a decoded page of the trace index.
type tracePage struct {
	ids      []span.TraceID
	firstRow []int64
	rows     []int32
	minStart []uint64
	maxEnd   []uint64
}

func (r *Reader) tracePage(ctx context.Context, i int) (*tracePage, error) {
	key := cache.Key{Dir: r.dir, Kind: kindTracePage, Idx: int32(i)}
	if v, ok := r.cache.Get(key); ok {
		return v.(*tracePage), nil
	}
	tp, err := r.tracePageInto(ctx, i, &tracePage{}, nil)
	if err != nil {
		return nil, err
	}
	r.cache.Put(key, tp, int64(len(tp.ids))*52)
	return tp, nil
}

// traceScratch holds the buffers tracePageInto reuses.
type traceScratch struct{ stored, raw []byte }

// tracePageInto decodes trace page i into tp, reusing its memory (and that
// of sc when not nil). It bypasses the cache.
func (r *Reader) tracePageInto(ctx context.Context, i int, tp *tracePage, sc *traceScratch) (*tracePage, error) {
	tpi := &r.tpages[i]
	what := fmt.Sprintf("trace page %d", i)
	var stored, rawBuf []byte
	if sc != nil {
		stored, rawBuf = sc.stored, sc.raw
	}
	stored, err := r.readRangeInto(ctx, tpi.ref.off, int64(tpi.ref.size), what, stored)
	if err != nil {
		return nil, err
	}
	raw, err := decodePage(stored, tpi.ref, rawBuf)
	if err != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: tpi.ref.off, Err: fmt.Errorf("%s: %w", what, err)}
	}
	if sc != nil {
		sc.stored, sc.raw = stored, raw
	}
	tp.ids, tp.firstRow, tp.rows, tp.minStart, tp.maxEnd = tp.ids[:0], tp.firstRow[:0], tp.rows[:0], tp.minStart[:0], tp.maxEnd[:0]
	d := encoding.NewDecbuf(raw)
	row := tpi.firstRow
	var prevMin uint64
	for j := 0; j < tpi.n && d.Err() == nil; j++ {
		var id span.TraceID
		copy(id[:], d.Bytes(16))
		n := d.Limit(uint64(r.spans))
		minS := prevMin + uint64(d.Varint())
		maxE := minS + uint64(d.Varint())
		prevMin = minS
		if j > 0 && bytes.Compare(id[:], tp.ids[j-1][:]) <= 0 {
			d.Fail(errors.New("trace ids out of order"))
		}
		if n == 0 || row+int64(n) > r.spans {
			d.Fail(encoding.ErrRange)
		}
		tp.ids = append(tp.ids, id)
		tp.firstRow = append(tp.firstRow, row)
		tp.rows = append(tp.rows, int32(n))
		tp.minStart = append(tp.minStart, minS)
		tp.maxEnd = append(tp.maxEnd, maxE)
		row += int64(n)
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail(errors.New("trailing bytes"))
	}
	if d.Err() == nil && tp.ids[0] != tpi.firstID {
		d.Fail(errors.New("first trace id differs from the directory"))
	}
	if d.Err() != nil {
		return nil, &CorruptionError{Object: path.Join(r.dir, DataName), Offset: tpi.ref.off, Err: fmt.Errorf("%s: %w", what, d.Err())}
	}
	return tp, nil
}
