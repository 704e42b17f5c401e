package spanmetrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/clew-dev/clew/internal/span"
)

// The history's file format; docs/format/spanmetrics.md draws it.
const (
	fileMagic     = "CLEWSM01"
	frameHeader   = 8 // u32 payload length, u32 CRC32C
	frameVersion  = 1
	maxFrameBytes = 64 << 20
	maxDiskEx     = 2 // exemplars kept per bucket on disk
)

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt span metrics frame")

// seriesRec and edgeRec are the minutes of one series or edge written in
// one frame, all within the frame's hour.
type seriesRec struct {
	key     Key
	buckets []*minuteBucket
}

type edgeRec struct {
	key     EdgeKey
	buckets []*minuteBucket
}

// encodeFrame appends the frame (header and payload) holding recs of hour
// (unix hours) to dst.
func encodeFrame(dst []byte, hour int64, series []seriesRec, edges []edgeRec) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	p := len(dst)
	dst = append(dst, frameVersion)
	dst = encoding.AppendUvarint(dst, uint64(hour))

	// String table, in first-use order.
	idx := map[string]uint64{}
	var strs []string
	ref := func(s string) uint64 {
		if i, ok := idx[s]; ok {
			return i
		}
		idx[s] = uint64(len(strs))
		strs = append(strs, s)
		return uint64(len(strs) - 1)
	}
	for _, r := range series {
		ref(r.key.Service)
		ref(r.key.Operation)
		ref(r.key.Version)
	}
	for _, r := range edges {
		ref(r.key.Client)
		ref(r.key.Server)
		ref(r.key.ConnectionType)
	}
	dst = encoding.AppendUvarint(dst, uint64(len(strs)))
	for _, s := range strs {
		dst = encoding.AppendString(dst, s)
	}
	var block []byte
	dst = encoding.AppendUvarint(dst, uint64(len(series)))
	for _, r := range series {
		dst = encoding.AppendUvarint(dst, idx[r.key.Service])
		dst = encoding.AppendUvarint(dst, idx[r.key.Operation])
		dst = encoding.AppendUvarint(dst, idx[r.key.Version])
		dst = append(dst, byte(r.key.Kind))
		block = encodeBuckets(block[:0], hour, r.buckets)
		dst = encoding.AppendBytes(dst, block)
	}
	dst = encoding.AppendUvarint(dst, uint64(len(edges)))
	for _, r := range edges {
		dst = encoding.AppendUvarint(dst, idx[r.key.Client])
		dst = encoding.AppendUvarint(dst, idx[r.key.Server])
		dst = encoding.AppendUvarint(dst, idx[r.key.ConnectionType])
		block = encodeBuckets(block[:0], hour, r.buckets)
		dst = encoding.AppendBytes(dst, block)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-p))
	binary.LittleEndian.PutUint32(dst[start+4:], encoding.CRC32C(dst[p:]))
	return dst
}

func encodeBuckets(dst []byte, hour int64, bs []*minuteBucket) []byte {
	dst = encoding.AppendUvarint(dst, uint64(len(bs)))
	for _, b := range bs {
		dst = append(dst, byte(b.minute-hour*60))
		dst = encoding.AppendUvarint(dst, b.calls)
		dst = encoding.AppendUvarint(dst, b.errors)
		dst = encoding.AppendUvarint(dst, uint64(max(b.durSum, 0)))
		n := 0
		for _, c := range b.hist {
			if c != 0 {
				n++
			}
		}
		dst = encoding.AppendUvarint(dst, uint64(n))
		prev := -1
		for i, c := range b.hist {
			if c != 0 {
				dst = encoding.AppendUvarint(dst, uint64(i-prev-1))
				dst = encoding.AppendUvarint(dst, c)
				prev = i
			}
		}
		ex := b.ex.list(maxDiskEx)
		dst = append(dst, byte(len(ex)))
		for _, x := range ex {
			dst = append(dst, x.TraceID[:]...)
			dst = append(dst, x.SpanID[:]...)
			dst = encoding.AppendUvarint(dst, uint64(max(x.Duration, 0)))
			if x.Error {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
	}
	return dst
}

// corruptf records a failed check of meaning (what was wrong) in d.
func corruptf(d *encoding.Decbuf, what string) { d.Fail(errors.New(what)) }

// decodeErr wraps d's error, if any, in errCorrupt.
func decodeErr(d *encoding.Decbuf) error {
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	return nil
}

// frameVisitor receives a frame's contents. wantSeries and wantEdge choose
// what is decoded (nil: nothing); the bucket passed to onSeries and onEdge
// is reused after the call returns.
type frameVisitor struct {
	wantSeries func(Key) bool
	onSeries   func(Key, *minuteBucket)
	wantEdge   func(EdgeKey) bool
	onEdge     func(EdgeKey, *minuteBucket)
}

// decodeFrame decodes one frame's payload (after the header and the
// checksum check) and checks it belongs to hour.
func decodeFrame(payload []byte, hour int64, v *frameVisitor) error {
	dec := encoding.NewDecbuf(payload)
	d := &dec
	if ver := d.Byte(); d.Err() == nil && ver != frameVersion {
		return fmt.Errorf("%w: version %d", errCorrupt, ver)
	}
	if h := d.Uvarint(); d.Err() == nil && int64(h) != hour {
		return fmt.Errorf("%w: frame of hour %d in the file of hour %d", errCorrupt, h, hour)
	}
	n := d.Count(1) // strings
	strs := make([]string, 0, min(n, 1<<16))
	for i := 0; i < n && d.Err() == nil; i++ {
		strs = append(strs, d.UvarintString())
	}
	str := func(i uint64) string {
		if i >= uint64(len(strs)) {
			corruptf(d, "string index")
			return ""
		}
		return strs[i]
	}
	var mb minuteBucket
	n = d.Count(1) // series
	for i := 0; i < n && d.Err() == nil; i++ {
		k := Key{Service: str(d.Uvarint()), Operation: str(d.Uvarint()), Version: str(d.Uvarint()), Kind: span.Kind(d.Byte())}
		blk := d.UvarintBytes()
		if d.Err() != nil || v.wantSeries == nil || !v.wantSeries(k) {
			continue
		}
		if err := decodeBuckets(blk, hour, &mb, func(b *minuteBucket) { v.onSeries(k, b) }); err != nil {
			return err
		}
	}
	n = d.Count(1) // edges
	for i := 0; i < n && d.Err() == nil; i++ {
		k := EdgeKey{Client: str(d.Uvarint()), Server: str(d.Uvarint()), ConnectionType: str(d.Uvarint())}
		blk := d.UvarintBytes()
		if d.Err() != nil || v.wantEdge == nil || !v.wantEdge(k) {
			continue
		}
		if err := decodeBuckets(blk, hour, &mb, func(b *minuteBucket) { v.onEdge(k, b) }); err != nil {
			return err
		}
	}
	if d.Err() == nil && d.Len() != 0 {
		corruptf(d, "trailing bytes")
	}
	return decodeErr(d)
}

func decodeBuckets(blk []byte, hour int64, mb *minuteBucket, fn func(*minuteBucket)) error {
	dec := encoding.NewDecbuf(blk)
	d := &dec
	n := d.Count(1) // buckets
	for i := 0; i < n && d.Err() == nil; i++ {
		*mb = minuteBucket{}
		min := d.Byte()
		if min >= 60 {
			corruptf(d, "minute")
		}
		mb.minute = hour*60 + int64(min)
		mb.calls = d.Uvarint()
		mb.errors = d.Uvarint()
		mb.durSum = time.Duration(d.Uvarint())
		nh := d.Limit(numBuckets) // histogram length
		idx := -1
		for j := uint64(0); j < nh && d.Err() == nil; j++ {
			delta := d.Uvarint()
			if delta >= numBuckets {
				corruptf(d, "histogram index")
				break
			}
			idx += int(delta) + 1
			if idx >= numBuckets {
				corruptf(d, "histogram index")
				break
			}
			mb.hist[idx] = d.Uvarint()
		}
		ne := d.Byte()
		if ne > maxDiskEx {
			corruptf(d, "exemplar count")
		}
		for j := byte(0); j < ne && d.Err() == nil; j++ {
			var x Exemplar
			copy(x.TraceID[:], d.Bytes(16))
			copy(x.SpanID[:], d.Bytes(8))
			x.Duration = time.Duration(d.Uvarint())
			x.Error = d.Byte() != 0
			if d.Err() == nil {
				mb.ex.observe(&x)
			}
		}
		if d.Err() == nil {
			fn(mb)
		}
	}
	if d.Err() == nil && d.Len() != 0 {
		corruptf(d, "trailing bytes in bucket block")
	}
	return decodeErr(d)
}

// nextFrame splits the first frame off b: its payload, the rest, and
// whether it was whole with a good checksum (a torn or bad frame ends the
// file's valid part).
func nextFrame(b []byte) (payload, rest []byte, ok bool) {
	if len(b) < frameHeader {
		return nil, b, false
	}
	n := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if n > maxFrameBytes || uint64(n) > uint64(len(b)-frameHeader) {
		return nil, b, false
	}
	p := b[frameHeader : frameHeader+int(n)]
	if encoding.CRC32C(p) != sum {
		return nil, b, false
	}
	return p, b[frameHeader+int(n):], true
}

// groupByHour splits minute buckets into per-hour records, sorted for a
// deterministic file.
func groupByHour(series map[Key][]*minuteBucket, edges map[EdgeKey][]*minuteBucket) map[int64]*hourRecs {
	out := map[int64]*hourRecs{}
	get := func(h int64) *hourRecs {
		r := out[h]
		if r == nil {
			r = &hourRecs{}
			out[h] = r
		}
		return r
	}
	for k, bs := range series {
		byHour := map[int64][]*minuteBucket{}
		for _, b := range bs {
			byHour[floorDiv(b.minute, 60)] = append(byHour[floorDiv(b.minute, 60)], b)
		}
		for h, hb := range byHour {
			slices.SortFunc(hb, func(a, b *minuteBucket) int { return int(a.minute - b.minute) })
			r := get(h)
			r.series = append(r.series, seriesRec{key: k, buckets: hb})
		}
	}
	for k, bs := range edges {
		byHour := map[int64][]*minuteBucket{}
		for _, b := range bs {
			byHour[floorDiv(b.minute, 60)] = append(byHour[floorDiv(b.minute, 60)], b)
		}
		for h, hb := range byHour {
			slices.SortFunc(hb, func(a, b *minuteBucket) int { return int(a.minute - b.minute) })
			r := get(h)
			r.edges = append(r.edges, edgeRec{key: k, buckets: hb})
		}
	}
	for _, r := range out {
		slices.SortFunc(r.series, func(a, b seriesRec) int { return CompareKey(a.key, b.key) })
		slices.SortFunc(r.edges, func(a, b edgeRec) int { return compareEdgeKey(a.key, b.key) })
	}
	return out
}

type hourRecs struct {
	series []seriesRec
	edges  []edgeRec
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// CompareKey orders keys by service, operation, kind and version, the
// order of Range's series.
func CompareKey(a, b Key) int {
	switch {
	case a.Service != b.Service:
		return cmpStr(a.Service, b.Service)
	case a.Operation != b.Operation:
		return cmpStr(a.Operation, b.Operation)
	case a.Kind != b.Kind:
		return int(a.Kind) - int(b.Kind)
	}
	return cmpStr(a.Version, b.Version)
}

func compareEdgeKey(a, b EdgeKey) int {
	switch {
	case a.Client != b.Client:
		return cmpStr(a.Client, b.Client)
	case a.Server != b.Server:
		return cmpStr(a.Server, b.Server)
	}
	return cmpStr(a.ConnectionType, b.ConnectionType)
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
