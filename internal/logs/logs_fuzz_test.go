package logs

import (
	"testing"

	"github.com/clew-dev/clew/internal/otlp"
)

// FuzzDecode feeds arbitrary bytes to the protobuf and JSON decoders and
// to the batch decoder: never a panic, and whatever decodes re-encodes and
// decodes to the same records.
func FuzzDecode(f *testing.F) {
	req := sampleRequest(4)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	f.Add(pb)
	f.Add(js)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":99,"body":{"kvlistValue":{"values":[{"key":"a","value":{"intValue":"1"}}]}}}]}]}]}`))
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := otlp.Limits{MaxSpansPerRequest: 1000, MaxAttrValueBytes: 64, MaxAttrsPerSpan: 8, MaxNameBytes: 32}
		d := NewDecoder(lim)
		for _, dec := range []func([]byte, *Batch) (Result, error){d.DecodeProto, d.DecodeJSON} {
			var b Batch
			if _, err := dec(data, &b); err != nil {
				continue
			}
			for i := range b.Records {
				r := &b.Records[i]
				if len(r.Body) > lim.MaxAttrValueBytes || r.Severity > MaxSeverity || len(r.Attrs) > lim.MaxAttrsPerSpan {
					t.Fatalf("limits not applied: %+v", r)
				}
			}
			enc := AppendBatch(nil, b.Records)
			var c Batch
			if err := DecodeBatch(enc, &c); err != nil || len(c.Records) != len(b.Records) {
				t.Fatalf("batch round trip: %v, %d of %d records", err, len(c.Records), len(b.Records))
			}
		}
		var b Batch
		_ = DecodeBatch(data, &b)
	})
}
