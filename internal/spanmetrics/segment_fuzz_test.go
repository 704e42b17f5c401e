package spanmetrics

import (
	"bytes"
	"testing"
	"time"
)

// seedFrame is a valid frame of hour h with a series and an edge.
func seedFrame(h int64) []byte {
	b := &minuteBucket{minute: h*60 + 7, calls: 3, errors: 1, durSum: 30 * time.Millisecond}
	b.hist[bucketIndex(10*time.Millisecond)] = 3
	b.ex.observe(&Exemplar{TraceID: tid(1), SpanID: sid(1), Duration: 12 * time.Millisecond, Error: true})
	return encodeFrame(nil, h,
		[]seriesRec{{key: Key{Service: "a", Operation: "GET /", Kind: 2, Version: "1"}, buckets: []*minuteBucket{b}}},
		[]edgeRec{{key: EdgeKey{Client: "a", Server: "postgresql", ConnectionType: ConnDatabase}, buckets: []*minuteBucket{b}}})
}

// FuzzDecodeFrame feeds arbitrary payloads to the frame decoder: it must
// never panic nor allocate beyond its input, and what it accepts must
// re-encode to a frame that decodes the same.
func FuzzDecodeFrame(f *testing.F) {
	const h = 490000
	fr := seedFrame(h)
	f.Add(fr[frameHeader:])
	f.Add([]byte{frameVersion, 0x90, 0xf4, 0x1d, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, payload []byte) {
		var series []seriesRec
		var edges []edgeRec
		v := &frameVisitor{
			wantSeries: func(Key) bool { return true },
			onSeries: func(k Key, b *minuteBucket) {
				c := *b
				series = append(series, seriesRec{key: k, buckets: []*minuteBucket{&c}})
			},
			wantEdge: func(EdgeKey) bool { return true },
			onEdge: func(k EdgeKey, b *minuteBucket) {
				c := *b
				edges = append(edges, edgeRec{key: k, buckets: []*minuteBucket{&c}})
			},
		}
		if err := decodeFrame(payload, h, v); err != nil {
			return
		}
		again := encodeFrame(nil, h, series, edges)
		var n int
		v2 := &frameVisitor{wantSeries: func(Key) bool { return true }, onSeries: func(Key, *minuteBucket) { n++ },
			wantEdge: func(EdgeKey) bool { return true }, onEdge: func(EdgeKey, *minuteBucket) { n++ }}
		p, _, ok := nextFrame(again)
		if !ok {
			t.Fatalf("re-encoded frame does not check")
		}
		if err := decodeFrame(p, h, v2); err != nil || n != len(series)+len(edges) {
			t.Fatalf("re-encoded frame: %v, %d buckets, want %d", err, n, len(series)+len(edges))
		}
	})
}

// FuzzFile feeds arbitrary file contents to the start-up check and the
// reader, in two halves as a torn write would leave them.
func FuzzFile(f *testing.F) {
	const h = 490000
	f.Add(append([]byte(fileMagic), append(seedFrame(h), seedFrame(h)...)...), 10)
	f.Add([]byte(fileMagic), 3)
	f.Fuzz(func(t *testing.T, file []byte, cut int) {
		if !bytes.HasPrefix(file, []byte(fileMagic)) {
			return
		}
		for _, b := range [][]byte{file, file[:len(fileMagic)+max(0, min(cut, len(file)-len(fileMagic)))]} {
			good, frames := validPrefix(b)
			if good > len(b) || good < len(fileMagic) {
				t.Fatalf("validPrefix %d of %d", good, len(b))
			}
			rest := b[len(fileMagic):good]
			for range frames {
				p, r, ok := nextFrame(rest)
				if !ok {
					t.Fatalf("frame counted but not readable")
				}
				_ = decodeFrame(p, h, &frameVisitor{wantSeries: func(Key) bool { return true }, onSeries: func(Key, *minuteBucket) {},
					wantEdge: func(EdgeKey) bool { return true }, onEdge: func(EdgeKey, *minuteBucket) {}})
				rest = r
			}
			if len(rest) != 0 {
				t.Fatalf("%d bytes left in the valid prefix", len(rest))
			}
		}
	})
}
