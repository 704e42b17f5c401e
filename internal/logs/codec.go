package logs

import (
	"errors"
	"fmt"

	"github.com/clew-dev/clew/internal/encoding"
)

// Batch encoding: what the log store's write-ahead log keeps for one
// request (docs/format/logs.md). Resources are written once per batch and
// referenced by index from each record.
//
//	batch    := version:byte(1) uvarint(#resources) resource* uvarint(#records) record*
//	resource := kvs
//	record   := varint(time) varint(observed-time) byte(severity) str(severity text)
//	            byte(body type) str(body) [16]trace [8]span uvarint(flags)
//	            str(service) str(scope) uvarint(resource index) kvs
//	kvs      := uvarint(n) (str(key) byte(type) str(value))*
//	str      := uvarint(len) bytes
const batchVersion = 1

// AppendBatch appends the encoding of recs to dst.
func AppendBatch(dst []byte, recs []Record) []byte {
	dst = append(dst, batchVersion)
	// Records of one resource share its slice: index them by its first
	// element's address (nil resources share index 0 of an empty one).
	type key struct {
		p *KV
		n int
	}
	idx := map[key]int{}
	var res [][]KV
	refs := make([]int, len(recs))
	for i := range recs {
		r := recs[i].Resource
		k := key{n: len(r)}
		if len(r) > 0 {
			k.p = &r[0]
		}
		j, ok := idx[k]
		if !ok {
			j = len(res)
			idx[k] = j
			res = append(res, r)
		}
		refs[i] = j
	}
	dst = encoding.AppendUvarint(dst, uint64(len(res)))
	for _, r := range res {
		dst = appendKVs(dst, r)
	}
	dst = encoding.AppendUvarint(dst, uint64(len(recs)))
	for i := range recs {
		dst = appendRecord(dst, &recs[i], refs[i])
	}
	return dst
}

func appendRecord(dst []byte, r *Record, res int) []byte {
	dst = encoding.AppendVarint(dst, r.Time)
	dst = encoding.AppendVarint(dst, r.Observed-r.Time)
	dst = append(dst, r.Severity)
	dst = encoding.AppendString(dst, r.SeverityText)
	dst = append(dst, r.BodyType)
	dst = encoding.AppendString(dst, r.Body)
	dst = append(dst, r.TraceID[:]...)
	dst = append(dst, r.SpanID[:]...)
	dst = encoding.AppendUvarint(dst, uint64(r.Flags))
	dst = encoding.AppendString(dst, r.Service)
	dst = encoding.AppendString(dst, r.Scope)
	dst = encoding.AppendUvarint(dst, uint64(res))
	return appendKVs(dst, r.Attrs)
}

func appendKVs(dst []byte, kvs []KV) []byte {
	dst = encoding.AppendUvarint(dst, uint64(len(kvs)))
	for _, a := range kvs {
		dst = encoding.AppendString(dst, a.Key)
		dst = append(dst, a.Type)
		dst = encoding.AppendString(dst, a.Value)
	}
	return dst
}

// ErrBatchVersion is returned by DecodeBatch for an encoding of another
// version.
var ErrBatchVersion = errors.New("unknown log batch encoding version")

// DecodeBatch decodes what AppendBatch wrote, appending the records to b.
// Strings are copied: b does not alias data.
func DecodeBatch(data []byte, b *Batch) error {
	d := encoding.NewDecbuf(data)
	if v := d.Byte(); d.Err() == nil && v != batchVersion {
		return fmt.Errorf("%w %d", ErrBatchVersion, v)
	}
	nres := d.Count(1)
	res := make([][]KV, 0, nres)
	for range nres {
		res = append(res, decodeKVs(&d))
	}
	n := d.Count(35) // the smallest record
	for range n {
		var r Record
		r.Time = d.Varint()
		r.Observed = r.Time + d.Varint()
		r.Severity = d.Byte()
		r.SeverityText = d.UvarintString()
		r.BodyType = d.Byte()
		r.Body = d.UvarintString()
		copy(r.TraceID[:], d.Bytes(16))
		copy(r.SpanID[:], d.Bytes(8))
		r.Flags = d.Uvarint32()
		r.Service = d.UvarintString()
		r.Scope = d.UvarintString()
		ri := int(d.Limit(uint64(max(len(res)-1, 0))))
		r.Attrs = decodeKVs(&d)
		if d.Err() != nil {
			break
		}
		if len(res) > 0 {
			r.Resource = res[ri]
		}
		b.Records = append(b.Records, r)
	}
	if d.Err() == nil && d.Len() != 0 {
		d.Fail(fmt.Errorf("%d bytes after the last record", d.Len()))
	}
	return d.Err()
}

func decodeKVs(d *encoding.Decbuf) []KV {
	n := d.Count(3)
	if n == 0 || d.Err() != nil {
		return nil
	}
	out := make([]KV, 0, n)
	for range n {
		k := d.UvarintString()
		t := d.Byte()
		v := d.UvarintString()
		out = append(out, KV{Key: k, Value: v, Type: t})
	}
	return out
}
