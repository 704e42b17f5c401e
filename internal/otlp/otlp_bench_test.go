package otlp

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/clew-dev/clew/internal/span"
)

const benchSpans = 500

func reportSpans(b *testing.B, nspans, nbytes int) {
	total := float64(b.N) * float64(nspans)
	b.ReportMetric(total/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/span")
	b.ReportMetric(float64(nbytes)/float64(nspans), "B/span")
}

// BenchmarkDecodeProto decodes the same 500-span request (traces of 10 spans,
// about 10 attributes each) with clew's decoder and with pdata's.
func BenchmarkDecodeProto(b *testing.B) {
	buf := MarshalProto(nil, benchBatch(benchSpans))
	b.Run("clew", func(b *testing.B) {
		d := NewDecoder(DefaultLimits())
		var batch span.Batch
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			batch.Reset()
			if _, err := d.DecodeProto(buf, &batch); err != nil {
				b.Fatal(err)
			}
		}
		reportSpans(b, benchSpans, len(buf))
	})
	b.Run("pdata", func(b *testing.B) {
		u := &ptrace.ProtoUnmarshaler{}
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := u.UnmarshalTraces(buf); err != nil {
				b.Fatal(err)
			}
		}
		reportSpans(b, benchSpans, len(buf))
	})
}

// BenchmarkDecodeJSON decodes the same OTLP/JSON request with clew's decoder
// and with pdata's.
func BenchmarkDecodeJSON(b *testing.B) {
	buf := AppendJSON(nil, benchBatch(benchSpans).Spans)
	b.Run("clew", func(b *testing.B) {
		d := NewDecoder(DefaultLimits())
		var batch span.Batch
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			batch.Reset()
			if _, err := d.DecodeJSON(buf, &batch); err != nil {
				b.Fatal(err)
			}
		}
		reportSpans(b, benchSpans, len(buf))
	})
	b.Run("pdata", func(b *testing.B) {
		u := &ptrace.JSONUnmarshaler{}
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, err := u.UnmarshalTraces(buf); err != nil {
				b.Fatal(err)
			}
		}
		reportSpans(b, benchSpans, len(buf))
	})
}

func BenchmarkMarshalProto(b *testing.B) {
	batch := benchBatch(benchSpans)
	var buf []byte
	b.Run("clew", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = MarshalProto(buf[:0], batch)
		}
		reportSpans(b, benchSpans, len(buf))
	})
	b.Run("pdata", func(b *testing.B) {
		td := toPdata(batch.Spans)
		m := &ptrace.ProtoMarshaler{}
		b.ReportAllocs()
		var out []byte
		for b.Loop() {
			out, _ = m.MarshalTraces(td)
		}
		reportSpans(b, benchSpans, len(out))
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	batch := benchBatch(benchSpans)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], batch.Spans)
	}
	reportSpans(b, benchSpans, len(buf))
}
