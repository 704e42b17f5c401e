package wal

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// benchRecordSize is a typical OTLP export request.
const benchRecordSize = 75 << 10

// BenchmarkAppend measures 4 concurrent appenders of 75 KB records under
// each sync policy. Each b.Loop iteration hands one append to a pool of 4
// workers, so 4 appends are in flight at all times; ns/op is wall time per
// append.
func BenchmarkAppend(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncAlways, SyncNone} {
		b.Run(string(policy), func(b *testing.B) {
			opts := DefaultOptions(b.TempDir())
			opts.Sync = policy
			w, err := Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			rec := testRecord(1, benchRecordSize)
			jobs := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range jobs {
						if _, err := w.Append(context.Background(), rec); err != nil {
							b.Error(err)
						}
					}
				})
			}
			syncs0 := metricValue(b, w.m.fsyncs)
			b.SetBytes(benchRecordSize)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				jobs <- struct{}{}
				n++
			}
			close(jobs)
			wg.Wait()
			elapsed := b.Elapsed().Seconds()
			b.ReportMetric(float64(n)*benchRecordSize/1e6/elapsed, "MB/s")
			b.ReportMetric((metricValue(b, w.m.fsyncs)-syncs0)/float64(n), "fsyncs/op")
		})
	}
}

// BenchmarkAppendSerial measures one appender alone, the latency a single
// sender sees.
func BenchmarkAppendSerial(b *testing.B) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncNone} {
		b.Run(string(policy), func(b *testing.B) {
			opts := DefaultOptions(b.TempDir())
			opts.Sync = policy
			w, err := Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			rec := testRecord(1, benchRecordSize)
			b.SetBytes(benchRecordSize)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Append(context.Background(), rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplay measures reading back 64 MB of 75 KB records.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	w, err := Open(Options{Dir: dir, Sync: SyncNone, SegmentSize: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	rec := testRecord(1, benchRecordSize)
	const records = (64 << 20) / benchRecordSize
	for range records {
		if _, err := w.Append(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(records * benchRecordSize)
	b.ReportAllocs()
	var replayTime time.Duration
	for b.Loop() {
		w, err := Open(Options{Dir: dir, Sync: SyncNone})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		st, err := w.Replay(func(Pos, []byte) error { return nil })
		replayTime += time.Since(start)
		if err != nil || st.Records != records {
			b.Fatalf("Replay() = %+v, %v", st, err)
		}
		_, last := w.Segments()
		w.Close()
		// Drop the empty segment each replay opens.
		if err := os.Remove(segPath(dir, last)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(replayTime.Nanoseconds())/float64(b.N*records), "ns/record")
}
