package jaegeringest

import (
	"testing"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// checkBatch checks what a decoder let through: IDs set, times in order,
// and an OTLP encoding the store's own decoder reads back.
func checkBatch(t *testing.T, b *span.Batch) {
	for i := range b.Spans {
		s := &b.Spans[i]
		if s.TraceID.IsZero() || s.SpanID.IsZero() {
			t.Fatalf("span %d stored without IDs", i)
		}
		if s.Resource == nil {
			t.Fatalf("span %d has no resource", i)
		}
	}
	rec := otlp.MarshalProto(nil, b)
	var b2 span.Batch
	if _, err := otlp.NewDecoder(ingest.DefaultConfig().Limits).DecodeProto(rec, &b2); err != nil {
		t.Fatalf("WAL record does not decode: %v", err)
	}
	if len(b2.Spans) != len(b.Spans) {
		t.Fatalf("WAL record holds %d spans, want %d", len(b2.Spans), len(b.Spans))
	}
}

// FuzzDecodeThrift feeds arbitrary bytes to the Thrift path: it must never
// panic and what it accepts must be storable.
func FuzzDecodeThrift(f *testing.F) {
	f.Add(encodeThrift(f, thriftBatch()))
	f.Add(encodeThrift(f, thriftBatchOther()))
	f.Add([]byte{0x0c, 0x00, 0x01, 0x0b, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x02, 0x0c, 0x3b, 0x9a, 0xca, 0x00})
	f.Add([]byte{})
	lim := ingest.DefaultConfig().Limits
	lim.MaxAttrsPerSpan = 4
	lim.MaxNameBytes = 8
	f.Fuzz(func(t *testing.T, data []byte) {
		var b span.Batch
		if _, err := decodeThrift(data, lim, &b); err != nil {
			return
		}
		checkBatch(t, &b)
	})
}

// FuzzDecodeProto does the same for the gRPC path: jaeger-idl's generated
// decoding, then clew's mapping.
func FuzzDecodeProto(f *testing.F) {
	req := api_v2.PostSpansRequest{Batch: *protoBatch()}
	seed, err := req.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0x01, 0x02})
	lim := ingest.DefaultConfig().Limits
	lim.MaxAttrsPerSpan = 4
	lim.MaxNameBytes = 8
	f.Fuzz(func(t *testing.T, data []byte) {
		var req api_v2.PostSpansRequest
		if err := unmarshalProto(data, &req); err != nil {
			return
		}
		var b span.Batch
		if _, err := mapProto(&req.Batch, lim, &b); err != nil {
			return
		}
		checkBatch(t, &b)
	})
}
