package zipkin

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/span"
)

func fuzzSeeds(f *testing.F) [][]zspanJSON {
	var out [][]zspanJSON
	for _, file := range exampleFiles(f) {
		if st, err := os.Stat(file); err == nil && st.Size() > 20<<10 {
			continue // keep the corpus small
		}
		out = append(out, loadExample(f, file))
	}
	return out
}

// checkRoundTrip encodes what was decoded back to Zipkin JSON, decodes that
// and encodes again: the two encodings must agree (the mapping is stable).
func checkRoundTrip(t *testing.T, b *span.Batch) {
	enc := AppendTraceJSON(nil, b.Spans)
	if !json.Valid(enc) {
		t.Fatalf("invalid JSON encoding: %s", enc)
	}
	var b2 span.Batch
	if _, err := DecodeJSON(enc, ingest.DefaultConfig().Limits, &b2); err != nil {
		t.Fatalf("re-decode %s: %v", enc, err)
	}
	if enc2 := AppendTraceJSON(nil, b2.Spans); !bytes.Equal(enc, enc2) {
		t.Fatalf("unstable encoding:\n%s\n%s", enc, enc2)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, spans := range fuzzSeeds(f) {
		b, _ := json.Marshal(spans)
		f.Add(b)
	}
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"traceId":"1","id":"1","tags":{"a":"\ud83d\ude00\u00e9"},"annotations":[{"timestamp":1,"value":"v"}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b span.Batch
		if _, err := DecodeJSON(data, ingest.DefaultConfig().Limits, &b); err != nil {
			return
		}
		checkRoundTrip(t, &b)
	})
}

func FuzzDecodeProto(f *testing.F) {
	for _, spans := range fuzzSeeds(f) {
		f.Add(encodeProto(f, spans))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b span.Batch
		if _, err := DecodeProto(data, ingest.DefaultConfig().Limits, &b); err != nil {
			return
		}
		checkRoundTrip(t, &b)
	})
}
