package otlp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

// fuzzLimits are small so that the fuzzer reaches the truncation and drop
// paths.
var fuzzLimits = Limits{MaxSpansPerRequest: 1000, MaxAttrValueBytes: 64, MaxAttrsPerSpan: 8, MaxEventsPerSpan: 4, MaxLinksPerSpan: 4, MaxNameBytes: 32}

// FuzzDecodeProto checks that DecodeProto never panics, that its errors are
// *DecodeError, and that decode → MarshalProto → decode is a fixed point.
func FuzzDecodeProto(f *testing.F) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 1))
		f.Add(MarshalProto(nil, randBatch(r, 1+r.IntN(5))))
	}
	f.Add(pbRequest(pbSpan(func(p pb) pb { return p.bytes(1, goodTrace[:15]) })))
	f.Add(pbRequest(pbSpan(func(p pb) pb { return p.bytes(9, pb{}.str(1, "k").bytes(2, nested(maxValueDepth))) })))
	f.Add([]byte{0x0b, 0x08, 0x01, 0x0c})
	f.Add([]byte{})
	d1, d2 := NewDecoder(fuzzLimits), NewDecoder(fuzzLimits)
	f.Fuzz(func(t *testing.T, in []byte) {
		var b1 span.Batch
		res, err := d1.DecodeProto(in, &b1)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if len(b1.Spans) != 0 {
				t.Fatalf("spans left after error")
			}
			return
		}
		if res.Spans != len(b1.Spans) {
			t.Fatalf("Result.Spans = %d, batch has %d", res.Spans, len(b1.Spans))
		}
		out := MarshalProto(nil, &b1)
		var b2 span.Batch
		res2, err := d2.DecodeProto(out, &b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if res2.Modified {
			t.Fatalf("re-decode modified: %+v", res2)
		}
		if diff := diffSpans(b2.Spans, b1.Spans); diff != "" {
			t.Fatalf("not a fixed point: %s", diff)
		}
		if again := MarshalProto(nil, &b2); !bytes.Equal(again, out) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzDecodeJSON checks that DecodeJSON never panics, that its errors are
// *DecodeError, and that decode → AppendJSON → decode is a fixed point once
// invalid UTF-8 has been replaced.
func FuzzDecodeJSON(f *testing.F) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 2))
		f.Add(AppendJSON(nil, randBatch(r, 1+r.IntN(5)).Spans))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "edge", "*.json"))
	for _, file := range files {
		in, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.ReplaceAll(bytes.ReplaceAll(in, []byte("__START_NS__"), []byte(edgeStartNS)), []byte("__END_NS__"), []byte(edgeEndNS)))
	}
	d1, d2, d3 := NewDecoder(fuzzLimits), NewDecoder(fuzzLimits), NewDecoder(fuzzLimits)
	f.Fuzz(func(t *testing.T, in []byte) {
		var b1 span.Batch
		res, err := d1.DecodeJSON(in, &b1)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
			if len(b1.Spans) != 0 {
				t.Fatalf("spans left after error")
			}
			return
		}
		if res.Spans != len(b1.Spans) {
			t.Fatalf("Result.Spans = %d, batch has %d", res.Spans, len(b1.Spans))
		}
		out := AppendJSON(nil, b1.Spans)
		var b2 span.Batch
		if _, err := d2.DecodeJSON(out, &b2); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if validUTF8(b1.Spans) {
			if diff := diffSpans(b2.Spans, b1.Spans); diff != "" {
				t.Fatalf("not a fixed point: %s", diff)
			}
		}
		out2 := AppendJSON(nil, b2.Spans)
		var b3 span.Batch
		if _, err := d3.DecodeJSON(out2, &b3); err != nil {
			t.Fatalf("third decode: %v", err)
		}
		if diff := diffSpans(b3.Spans, b2.Spans); diff != "" {
			t.Fatalf("not a fixed point after UTF-8 repair: %s", diff)
		}
		// The protobuf encoding of a JSON-decoded batch must decode the same.
		var b4 span.Batch
		if _, err := d2.DecodeProto(MarshalProto(nil, &b1), &b4); err != nil {
			t.Fatalf("proto of JSON batch: %v", err)
		}
		if diff := diffSpans(b4.Spans, b1.Spans); diff != "" {
			t.Fatalf("proto of JSON batch differs: %s", diff)
		}
	})
}
