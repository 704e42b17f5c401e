package logstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/thanos-io/objstore"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/clew-dev/clew/internal/logs"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/wal"
)

// benchRequest is an OTLP logs request of n records shaped like an
// instrumented service's: 4 attributes, trace context, a 60-90 byte body.
func benchRequest(n int) []byte {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("host.name", "node-17")
	rl.Resource().Attributes().PutStr("service.version", "1.4.2")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("checkout.handler")
	for i := range n {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + int64(i)*1_000_000))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(fmt.Sprintf("order %d placed by customer %d: %d items, total %d.%02d EUR", 100000+i, i*7919%100000, i%9+1, i%500, i%100))
		lr.Attributes().PutStr("http.route", "/api/orders")
		lr.Attributes().PutInt("http.status_code", 200)
		lr.Attributes().PutStr("customer.tier", []string{"gold", "silver", "bronze"}[i%3])
		lr.Attributes().PutInt("items", int64(i%9+1))
		lr.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
		lr.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), 3, 4, 5, 6, 7, 8})
	}
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkDecodeAppend measures the ingest hot path of log records:
// decoding an OTLP protobuf request of 500 records (pdata) and appending
// it to the store (batch encoding, write-ahead log, head), with the
// write-ahead log's sync off (the CPU cost) and with group commit. It
// reports records/s, request bytes per record and, once the head is
// written as blocks, block bytes on disk per record.
func BenchmarkDecodeAppend(b *testing.B) {
	for _, sync := range []wal.SyncPolicy{wal.SyncNone, wal.SyncGroup} {
		b.Run("sync="+string(sync), func(b *testing.B) {
			const per = 500
			body := benchRequest(per)
			ctx := context.Background()
			bkt := objstore.NewInMemBucket()
			db, err := Open(ctx, Config{WALSync: sync, MaxHeadRecords: 1 << 30, MaxHeadBytes: 1 << 40, MaxHeadAge: 1 << 62}, Options{Tenant: "b", WALDir: b.TempDir(), Bucket: bkt})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			dec := logs.NewDecoder(otlp.DefaultLimits())
			var batch logs.Batch
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				batch.Reset()
				if _, err := dec.DecodeProto(body, &batch); err != nil {
					b.Fatal(err)
				}
				if err := db.Append(ctx, &batch); err != nil {
					b.Fatal(err)
				}
				n += per
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(len(body))/per, "B/record-otlp")
			b.StopTimer()
			if err := db.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			st := db.LogStats(ctx)
			b.ReportMetric(float64(st.BlockBytes)/float64(st.BlockRecords), "B/record-disk")
		})
	}
}

// BenchmarkDecode is the decoding part of BenchmarkDecodeAppend alone.
func BenchmarkDecode(b *testing.B) {
	const per = 500
	body := benchRequest(per)
	dec := logs.NewDecoder(otlp.DefaultLimits())
	var batch logs.Batch
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		batch.Reset()
		if _, err := dec.DecodeProto(body, &batch); err != nil {
			b.Fatal(err)
		}
		n += per
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
