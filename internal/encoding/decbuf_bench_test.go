package encoding

import (
	"math/rand/v2"
	"testing"
)

// benchRecords is how many records benchData holds.
const benchRecords = 4096

// benchData builds records shaped like a block column's: mostly one-byte
// uvarints (dictionary ids, small counts), some long ones (timestamps,
// sizes), a zigzag delta, a fixed-width checksum and a short string.
func benchData() []byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	var b []byte
	for range benchRecords {
		b = AppendUvarint(b, uint64(rnd.IntN(100)))
		b = AppendUvarint(b, rnd.Uint64()>>rnd.IntN(64))
		b = AppendVarint(b, int64(rnd.IntN(2000)-1000))
		b = AppendUint32(b, rnd.Uint32())
		b = append(b, byte(rnd.IntN(4)))
		b = AppendString(b, "GET /api/v1/items"[:rnd.IntN(18)])
	}
	return b
}

// decodeBench reads every record of benchData and returns a checksum of
// the values, so the reads cannot be optimized away.
func decodeBench(data []byte) (uint64, error) {
	d := NewDecbuf(data)
	var sum uint64
	for range benchRecords {
		sum += d.Uvarint()
		sum += d.Uvarint()
		sum += uint64(d.Varint())
		sum += uint64(d.Uint32())
		sum += uint64(d.Byte())
		sum += uint64(len(d.UvarintBytes()))
	}
	return sum, d.Err()
}

// BenchmarkDecbuf decodes benchRecords records of six fields each.
func BenchmarkDecbuf(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBench(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(6*benchRecords), "ns/read")
}
