package logstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/logs"
)

// The objects of a block (docs/format/logs.md), under
// <tenant>/logs/<block ID>/.
const (
	dataName   = "data"
	indexName  = "index"
	tracesName = "traces"
	metaName   = "meta.json"

	formatName    = "clew-logs"
	formatVersion = 1

	indexMagic = "CLWLIDX1"
	// rowGroupRows is the most records of one row group, the unit a query
	// reads and decompresses.
	rowGroupRows = 4096
	// sparseEvery is how many trace index entries one sparse index entry
	// stands for.
	sparseEvery = 128
	traceEntry  = 20 // trace ID (16) and row (uint32 little endian)
	// maxRaw bounds a decompressed column or index, against damaged data.
	maxRaw = 256 << 20
)

// The columns of a row group, in the order they are stored.
const (
	colTime = iota
	colObserved
	colSeverity
	colSeverityText
	colBody
	colTrace
	colSpan
	colFlags
	colService
	colScope
	colResource
	colAttrs
	numCols
)

// Meta is a block's meta.json. It is written last: a block without it is
// incomplete and deleted at open.
type Meta struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	ID      string `json:"id"`
	Tenant  string `json:"tenant"`
	Records int64  `json:"records"`
	// MinTime and MaxTime bound the records' times (Unix nanoseconds).
	MinTime     int64 `json:"minTime"`
	MaxTime     int64 `json:"maxTime"`
	MaxSeverity uint8 `json:"maxSeverity"`
	// LastArrival is when the newest record arrived; retention counts
	// from it.
	LastArrival int64 `json:"lastArrival"`
	CreatedAt   int64 `json:"createdAt"`
	// WALSegmentEnd is the first write-ahead log segment the block does
	// not cover.
	WALSegmentEnd int `json:"walSegmentEnd"`
	// Sources are the blocks a compaction merged into this one; they are
	// deleted once it is durable, and at open if a crash came between.
	Sources      []string   `json:"sources,omitempty"`
	Services     []string   `json:"services"`
	DataBytes    int64      `json:"dataBytes"`
	IndexBytes   int64      `json:"indexBytes"`
	TracesBytes  int64      `json:"tracesBytes"`
	TraceEntries int        `json:"traceEntries"`
	RowGroups    []RowGroup `json:"rowGroups"`
}

// RowGroup locates one row group in the data object.
type RowGroup struct {
	Rows        int   `json:"rows"`
	MinTime     int64 `json:"minTime"`
	MaxTime     int64 `json:"maxTime"`
	MaxSeverity uint8 `json:"maxSeverity"`
	Offset      int64 `json:"offset"`
	// Cols are the compressed sizes of the columns, in column order.
	Cols [numCols]int64 `json:"cols"`
}

// Size is the block's bytes in the bucket.
func (m *Meta) Size() int64 { return m.DataBytes + m.IndexBytes + m.TracesBytes }

var codecs = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic(fmt.Sprintf("BUG: zstd encoder: %v", err))
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(maxRaw), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(fmt.Sprintf("BUG: zstd decoder: %v", err))
	}
	return enc, dec
})

// dict interns the strings of a block.
type dict struct {
	idx  map[string]uint32
	strs []string
}

func (d *dict) id(s string) uint32 {
	if i, ok := d.idx[s]; ok {
		return i
	}
	i := uint32(len(d.strs))
	d.idx[s] = i
	d.strs = append(d.strs, s)
	return i
}

// writeBlock writes recs (in any order; they are sorted here, so the
// caller must not share the slice) as block meta.ID under dir.
func writeBlock(ctx context.Context, bkt objstore.Bucket, dir string, recs []logs.Record, meta Meta) (Meta, error) {
	enc, _ := codecs()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time < recs[j].Time })
	meta.Format, meta.Version = formatName, formatVersion
	meta.Records = int64(len(recs))
	if len(recs) > 0 {
		meta.MinTime, meta.MaxTime = recs[0].Time, recs[len(recs)-1].Time
	}
	d := &dict{idx: map[string]uint32{}}
	d.id("")
	type resKey struct {
		p *logs.KV
		n int
	}
	resIdx := map[resKey]uint32{}
	var resources [][]logs.KV
	services := map[string]bool{}
	var traces []byte
	var data []byte
	var cols [numCols][]byte
	for start := 0; start < len(recs); start += rowGroupRows {
		end := min(start+rowGroupRows, len(recs))
		for i := range cols {
			cols[i] = cols[i][:0]
		}
		rg := RowGroup{Rows: end - start, MinTime: recs[start].Time, MaxTime: recs[end-1].Time, Offset: int64(len(data))}
		prev := int64(0)
		for i := start; i < end; i++ {
			r := &recs[i]
			cols[colTime] = encoding.AppendVarint(cols[colTime], r.Time-prev)
			prev = r.Time
			cols[colObserved] = encoding.AppendVarint(cols[colObserved], r.Observed-r.Time)
			cols[colSeverity] = append(cols[colSeverity], r.Severity)
			rg.MaxSeverity = max(rg.MaxSeverity, r.Severity)
			cols[colSeverityText] = encoding.AppendUvarint(cols[colSeverityText], uint64(d.id(r.SeverityText)))
			cols[colBody] = append(cols[colBody], r.BodyType)
			cols[colBody] = encoding.AppendString(cols[colBody], r.Body)
			cols[colTrace] = append(cols[colTrace], r.TraceID[:]...)
			cols[colSpan] = append(cols[colSpan], r.SpanID[:]...)
			cols[colFlags] = encoding.AppendUvarint(cols[colFlags], uint64(r.Flags))
			cols[colService] = encoding.AppendUvarint(cols[colService], uint64(d.id(r.Service)))
			services[r.Service] = true
			cols[colScope] = encoding.AppendUvarint(cols[colScope], uint64(d.id(r.Scope)))
			k := resKey{n: len(r.Resource)}
			if len(r.Resource) > 0 {
				k.p = &r.Resource[0]
			}
			ri, ok := resIdx[k]
			if !ok {
				ri = uint32(len(resources))
				resIdx[k] = ri
				resources = append(resources, r.Resource)
			}
			cols[colResource] = encoding.AppendUvarint(cols[colResource], uint64(ri))
			cols[colAttrs] = encoding.AppendUvarint(cols[colAttrs], uint64(len(r.Attrs)))
			for _, a := range r.Attrs {
				cols[colAttrs] = encoding.AppendUvarint(cols[colAttrs], uint64(d.id(a.Key)))
				cols[colAttrs] = append(cols[colAttrs], a.Type)
				cols[colAttrs] = encoding.AppendString(cols[colAttrs], a.Value)
			}
			if r.HasTrace() {
				traces = append(traces, r.TraceID[:]...)
				traces = encoding.AppendUint32(traces, uint32(i))
			}
		}
		meta.MaxSeverity = max(meta.MaxSeverity, rg.MaxSeverity)
		for c := range cols {
			n := len(data)
			data = enc.EncodeAll(cols[c], data)
			rg.Cols[c] = int64(len(data) - n)
		}
		meta.RowGroups = append(meta.RowGroups, rg)
	}
	// The trace index: (trace ID, row) sorted, and every sparseEvery-th
	// trace ID in the index object.
	n := len(traces) / traceEntry
	ents := make([][]byte, n)
	for i := range ents {
		ents[i] = traces[i*traceEntry : (i+1)*traceEntry]
	}
	slices.SortStableFunc(ents, func(a, b []byte) int { return bytes.Compare(a[:16], b[:16]) })
	sorted := make([]byte, 0, len(traces))
	var sparse []byte
	for i, e := range ents {
		if i%sparseEvery == 0 {
			sparse = append(sparse, e[:16]...)
		}
		sorted = append(sorted, e...)
	}
	meta.TraceEntries = n
	for s := range services {
		meta.Services = append(meta.Services, s)
	}
	slices.Sort(meta.Services)

	var idx []byte
	idx = encoding.AppendUvarint(idx, uint64(len(d.strs)))
	for _, s := range d.strs {
		idx = encoding.AppendString(idx, s)
	}
	idx = encoding.AppendUvarint(idx, uint64(len(resources)))
	for _, r := range resources {
		idx = encoding.AppendUvarint(idx, uint64(len(r)))
		for _, a := range r {
			idx = encoding.AppendString(idx, a.Key)
			idx = append(idx, a.Type)
			idx = encoding.AppendString(idx, a.Value)
		}
	}
	idx = encoding.AppendUvarint(idx, uint64(len(sparse)/16))
	idx = append(idx, sparse...)
	obj := append([]byte(indexMagic), enc.EncodeAll(idx, nil)...)
	obj = encoding.AppendUint32(obj, encoding.CRC32C(obj))

	meta.DataBytes, meta.IndexBytes, meta.TracesBytes = int64(len(data)), int64(len(obj)), int64(len(sorted))
	for _, o := range []struct {
		name string
		b    []byte
	}{{dataName, data}, {tracesName, sorted}, {indexName, obj}} {
		if err := bkt.Upload(ctx, path.Join(dir, o.name), bytes.NewReader(o.b)); err != nil {
			return meta, fmt.Errorf("upload %s: %w", o.name, err)
		}
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return meta, err
	}
	if err := bkt.Upload(ctx, path.Join(dir, metaName), bytes.NewReader(mj)); err != nil {
		return meta, fmt.Errorf("upload %s: %w", metaName, err)
	}
	return meta, nil
}

// readMeta reads and checks a block's meta.json.
func readMeta(ctx context.Context, bkt objstore.Bucket, dir string) (Meta, error) {
	rc, err := bkt.Get(ctx, path.Join(dir, metaName))
	if err != nil {
		return Meta{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return Meta{}, fmt.Errorf("read %s: %w", metaName, err)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("parse %s: %w", metaName, err)
	}
	if m.Format != formatName || m.Version != formatVersion {
		return Meta{}, fmt.Errorf("block format %q version %d: this clew reads %s version %d", m.Format, m.Version, formatName, formatVersion)
	}
	var off int64
	for i, rg := range m.RowGroups {
		if rg.Offset != off || rg.Rows <= 0 || rg.Rows > rowGroupRows {
			return Meta{}, fmt.Errorf("%s: row group %d is out of place", metaName, i)
		}
		for _, c := range rg.Cols {
			if c < 0 {
				return Meta{}, fmt.Errorf("%s: row group %d has a negative column size", metaName, i)
			}
			off += c
		}
	}
	if off != m.DataBytes || m.TracesBytes != int64(m.TraceEntries)*traceEntry {
		return Meta{}, fmt.Errorf("%s: sizes do not add up", metaName)
	}
	return m, nil
}

// blockReader reads one block. Its dictionary, resources and sparse trace
// index are in memory; row groups and trace index ranges are read from
// the bucket on demand.
type blockReader struct {
	bkt       objstore.Bucket
	dir       string
	meta      Meta
	strs      []string
	resources [][]logs.KV
	sparse    [][16]byte
}

var errCorrupt = errors.New("corrupt log block")

func openBlock(ctx context.Context, bkt objstore.Bucket, dir string) (*blockReader, error) {
	m, err := readMeta(ctx, bkt, dir)
	if err != nil {
		return nil, err
	}
	b := &blockReader{bkt: bkt, dir: dir, meta: m}
	obj, err := b.readAll(ctx, indexName, m.IndexBytes)
	if err != nil {
		return nil, err
	}
	if len(obj) < len(indexMagic)+4 || string(obj[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: %s: bad magic", errCorrupt, indexName)
	}
	body, sum := obj[:len(obj)-4], obj[len(obj)-4:]
	if encoding.CRC32C(body) != uint32(sum[0])|uint32(sum[1])<<8|uint32(sum[2])<<16|uint32(sum[3])<<24 {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", errCorrupt, indexName)
	}
	_, dec := codecs()
	raw, err := dec.DecodeAll(body[len(indexMagic):], nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errCorrupt, indexName, err)
	}
	d := encoding.NewDecbuf(raw)
	ns := d.Count(1)
	b.strs = make([]string, 0, ns)
	for range ns {
		b.strs = append(b.strs, d.UvarintString())
	}
	nr := d.Count(1)
	b.resources = make([][]logs.KV, 0, nr)
	for range nr {
		n := d.Count(3)
		var kvs []logs.KV
		for range n {
			k := d.UvarintString()
			t := d.Byte()
			kvs = append(kvs, logs.KV{Key: k, Type: t, Value: d.UvarintString()})
		}
		b.resources = append(b.resources, kvs)
	}
	nsp := d.Count(16)
	for range nsp {
		b.sparse = append(b.sparse, [16]byte(d.Bytes(16)))
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errCorrupt, indexName, err)
	}
	if len(b.strs) == 0 || want(m.TraceEntries) != len(b.sparse) {
		return nil, fmt.Errorf("%w: %s: %d sparse entries for %d trace entries", errCorrupt, indexName, len(b.sparse), m.TraceEntries)
	}
	return b, nil
}

func want(entries int) int { return (entries + sparseEvery - 1) / sparseEvery }

func (b *blockReader) readAll(ctx context.Context, name string, size int64) ([]byte, error) {
	return b.readRange(ctx, name, 0, size)
}

func (b *blockReader) readRange(ctx context.Context, name string, off, n int64) ([]byte, error) {
	rc, err := b.bkt.GetRange(ctx, path.Join(b.dir, name), off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s of block %s: %w", name, b.meta.ID, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s of block %s: %w", name, b.meta.ID, err)
	}
	return buf, nil
}

// traceRows returns the rows holding trace id, in ascending order.
func (b *blockReader) traceRows(ctx context.Context, id [16]byte) ([]int, error) {
	if b.meta.TraceEntries == 0 {
		return nil, nil
	}
	// The first sparse entry >= id may be preceded by entries equal to id
	// in the window before it.
	i := sort.Search(len(b.sparse), func(i int) bool { return bytes.Compare(b.sparse[i][:], id[:]) >= 0 })
	first := max(i-1, 0) * sparseEvery
	last := min((i+1)*sparseEvery, b.meta.TraceEntries) // exclusive
	var rows []int
	for first < b.meta.TraceEntries {
		buf, err := b.readRange(ctx, tracesName, int64(first)*traceEntry, int64(last-first)*traceEntry)
		if err != nil {
			return nil, err
		}
		past := false
		for e := 0; e+traceEntry <= len(buf); e += traceEntry {
			switch c := bytes.Compare(buf[e:e+16], id[:]); {
			case c == 0:
				row := int(uint32(buf[e+16]) | uint32(buf[e+17])<<8 | uint32(buf[e+18])<<16 | uint32(buf[e+19])<<24)
				if row >= int(b.meta.Records) {
					return nil, fmt.Errorf("%w: trace index row %d of %d", errCorrupt, row, b.meta.Records)
				}
				rows = append(rows, row)
			case c > 0:
				past = true
			}
		}
		if past || last >= b.meta.TraceEntries {
			break
		}
		first, last = last, min(last+sparseEvery, b.meta.TraceEntries)
	}
	slices.Sort(rows)
	return rows, nil
}

// readRowGroup decodes row group g into records; the strings and
// resources are the block's (shared, immutable).
func (b *blockReader) readRowGroup(ctx context.Context, g int) ([]logs.Record, error) {
	rg := &b.meta.RowGroups[g]
	var total int64
	for _, c := range rg.Cols {
		total += c
	}
	buf, err := b.readRange(ctx, dataName, rg.Offset, total)
	if err != nil {
		return nil, err
	}
	_, dec := codecs()
	var cols [numCols]encoding.Decbuf
	// The strings of the body and attribute columns are substrings of one
	// copy of each column: two allocations per row group, not per value.
	var bodyStr, attrStr string
	off := int64(0)
	for c := range cols {
		raw, err := dec.DecodeAll(buf[off:off+rg.Cols[c]], nil)
		if err != nil {
			return nil, fmt.Errorf("%w: block %s row group %d column %d: %v", errCorrupt, b.meta.ID, g, c, err)
		}
		cols[c] = encoding.NewDecbuf(raw)
		switch c {
		case colBody:
			bodyStr = string(raw)
		case colAttrs:
			attrStr = string(raw)
		}
		off += rg.Cols[c]
	}
	sub := func(d *encoding.Decbuf, s string) string {
		v := d.UvarintBytes()
		if d.Err() != nil {
			return ""
		}
		end := d.Offset()
		return s[end-len(v) : end]
	}
	str := func(d *encoding.Decbuf) string {
		return b.strs[d.Limit(uint64(len(b.strs)-1))]
	}
	recs := make([]logs.Record, rg.Rows)
	// The attributes of all rows share backing arrays (a row's slice is
	// capped, so appending to it copies).
	kvs := make([]logs.KV, 0, 2*rg.Rows)
	t := int64(0)
	for i := range recs {
		r := &recs[i]
		t += cols[colTime].Varint()
		r.Time = t
		r.Observed = t + cols[colObserved].Varint()
		r.Severity = cols[colSeverity].Byte()
		r.SeverityText = str(&cols[colSeverityText])
		r.BodyType = cols[colBody].Byte()
		r.Body = sub(&cols[colBody], bodyStr)
		copy(r.TraceID[:], cols[colTrace].Bytes(16))
		copy(r.SpanID[:], cols[colSpan].Bytes(8))
		r.Flags = cols[colFlags].Uvarint32()
		r.Service = str(&cols[colService])
		r.Scope = str(&cols[colScope])
		if len(b.resources) > 0 {
			r.Resource = b.resources[cols[colResource].Limit(uint64(len(b.resources)-1))]
		} else {
			cols[colResource].Limit(0)
		}
		na := cols[colAttrs].Count(3)
		if na > 0 {
			first := len(kvs)
			for range na {
				k := str(&cols[colAttrs])
				ty := cols[colAttrs].Byte()
				kvs = append(kvs, logs.KV{Key: k, Type: ty, Value: sub(&cols[colAttrs], attrStr)})
			}
			r.Attrs = kvs[first:len(kvs):len(kvs)]
		}
	}
	for c := range cols {
		if err := cols[c].Err(); err != nil {
			return nil, fmt.Errorf("%w: block %s row group %d column %d: %w", errCorrupt, b.meta.ID, g, c, err)
		}
	}
	return recs, nil
}
