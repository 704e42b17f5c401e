package logstore

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/logs"
)

var base = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// genRecords makes n records: record i at base+i ms, of service svc<i%3>,
// severity i%25, trace i/10 (so 10 records per trace), span i.
func genRecords(first, n int) []logs.Record {
	res := [][]logs.KV{
		{{Key: "service.name", Value: "svc0", Type: 's'}, {Key: "host.name", Value: "h0", Type: 's'}},
		{{Key: "service.name", Value: "svc1", Type: 's'}},
		{{Key: "service.name", Value: "svc2", Type: 's'}, {Key: "k8s.pod", Value: "p2", Type: 's'}},
	}
	out := make([]logs.Record, 0, n)
	for i := first; i < first+n; i++ {
		r := logs.Record{
			Time:     base + int64(i)*int64(time.Millisecond),
			Observed: base + int64(i)*int64(time.Millisecond) + 5,
			Severity: uint8(i % 25),
			Body:     fmt.Sprintf("request %d handled in %dms", i, i%97),
			BodyType: 's',
			Service:  fmt.Sprintf("svc%d", i%3),
			Scope:    "app",
			Resource: res[i%3],
			Attrs:    []logs.KV{{Key: "i", Value: fmt.Sprint(i), Type: 'i'}, {Key: "parity", Value: []string{"even", "odd"}[i%2], Type: 's'}},
		}
		r.TraceID[0], r.TraceID[15] = 1, byte(i/10)
		r.TraceID[14] = byte(i / 10 >> 8)
		r.SpanID[7], r.SpanID[6] = byte(i), byte(i>>8)
		out = append(out, r)
	}
	return out
}

func openTest(t *testing.T, bkt objstore.Bucket, dir string, cfg Config) *DB {
	t.Helper()
	db, err := Open(context.Background(), cfg, Options{Tenant: "t1", WALDir: filepath.Join(dir, "wal-logs"), Bucket: bkt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func traceOf(i int) *[16]byte {
	var id [16]byte
	id[0], id[15], id[14] = 1, byte(i/10), byte(i/10>>8)
	return &id
}

// all pages through q and returns the records' bodies.
func all(t *testing.T, db *DB, q *logs.Query, limit int) []logs.Record {
	t.Helper()
	var out []logs.Record
	var c logs.Cursor
	for range 10000 {
		p, err := db.SearchLogs(context.Background(), q, limit, c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Records...)
		if !p.Next.Set {
			return out
		}
		c = p.Next
	}
	t.Fatal("paging did not end")
	return nil
}

// oracle filters recs with q.Match, newest first.
func oracle(recs []logs.Record, q *logs.Query) []string {
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		if q.Match(&recs[i]) {
			out = append(out, recs[i].Body)
		}
	}
	return out
}

func bodies(recs []logs.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].Body
	}
	return out
}

func TestSearchHeadBlocksAndReopen(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	dir := t.TempDir()
	db := openTest(t, bkt, dir, Config{})
	all10k := genRecords(0, 10000)
	// 6000 records flushed into blocks (two appends, two blocks with
	// several row groups), 4000 left in the head.
	for i, part := range [][]logs.Record{all10k[:5000], all10k[5000:6000]} {
		if err := db.Append(ctx, &logs.Batch{Records: append([]logs.Record(nil), part...)}); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if st := db.LogStats(ctx); st.Blocks != i+1 {
			t.Fatalf("after flush %d: %+v", i, st)
		}
	}
	for i := 6000; i < 10000; i += 500 {
		if err := db.Append(ctx, &logs.Batch{Records: append([]logs.Record(nil), all10k[i:i+500]...)}); err != nil {
			t.Fatal(err)
		}
	}
	re := regexp.MustCompile(`handled in 9[0-6]ms`)
	cases := []struct {
		name  string
		q     logs.Query
		limit int
	}{
		{"everything", logs.Query{}, 777},
		{"service", logs.Query{Service: "svc1"}, 100},
		{"severity", logs.Query{MinSeverity: 21}, 50},
		{"time range", logs.Query{Start: base + 2500*1e6, End: base + 7500*1e6}, 1000},
		{"attribute", logs.Query{Attrs: []logs.KV{{Key: "parity", Value: "odd"}, {Key: "host.name", Value: "h0"}}}, 300},
		{"substring", logs.Query{Contains: []string{"request 77"}}, 3},
		{"regexp", logs.Query{Regexp: []*regexp.Regexp{re}}, 40},
		{"trace in a block", logs.Query{TraceID: traceOf(1234)}, 3},
		{"trace in the head", logs.Query{TraceID: traceOf(8888)}, 100},
		{"trace and service", logs.Query{TraceID: traceOf(4321), Service: "svc2"}, 100},
		{"span", logs.Query{SpanID: &all10k[5555].SpanID}, 10},
		{"none", logs.Query{Service: "nope"}, 10},
	}
	check := func(t *testing.T, db *DB) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got, want := bodies(all(t, db, &c.q, c.limit)), oracle(all10k, &c.q)
				if len(got) != len(want) {
					t.Fatalf("%d records, want %d", len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
					}
				}
			})
		}
	}
	t.Run("open", func(t *testing.T) { check(t, db) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, bkt, dir, Config{})
	if st := db2.LogStats(ctx); st.Blocks != 2 || st.HeadRecords != 4000 || st.BlockRecords != 6000 {
		t.Fatalf("after reopen: %+v", st)
	}
	t.Run("reopened", func(t *testing.T) { check(t, db2) })
	// The records round-trip through a block whole.
	p, err := db2.SearchLogs(ctx, &logs.Query{SpanID: &all10k[1234].SpanID}, 10, logs.Cursor{})
	if err != nil || len(p.Records) != 1 {
		t.Fatalf("span lookup: %v %d", err, len(p.Records))
	}
	if got, want := string(logs.AppendJSON(nil, &p.Records[0])), string(logs.AppendJSON(nil, &all10k[1234])); got != want {
		t.Fatalf("round trip:\n got %s\nwant %s", got, want)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	now := time.Now()
	db, err := Open(ctx, Config{Retention: time.Hour}, Options{Tenant: "t1", WALDir: t.TempDir(), Bucket: bkt, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Append(ctx, &logs.Batch{Records: genRecords(0, 100)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.RunRetention(ctx)
	if st := db.LogStats(ctx); st.Blocks != 1 {
		t.Fatalf("deleted too early: %+v", st)
	}
	now = now.Add(2 * time.Hour)
	db.RunRetention(ctx)
	if st := db.LogStats(ctx); st.Blocks != 0 {
		t.Fatalf("not deleted: %+v", st)
	}
	n := 0
	_ = bkt.Iter(ctx, "", func(string) error { n++; return nil }, objstore.WithRecursiveIter())
	if n != 0 {
		t.Fatalf("%d objects left in the bucket", n)
	}
}

func TestIncompleteBlockDeleted(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	dir := t.TempDir()
	db := openTest(t, bkt, dir, Config{})
	if err := db.Append(ctx, &logs.Batch{Records: genRecords(0, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// A block whose meta.json never arrived.
	if err := bkt.Upload(ctx, "t1/logs/0000000000000aaaaaaaaaaaaa/data", bytesReader("x")); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, bkt, dir, Config{})
	if st := db2.LogStats(ctx); st.Blocks != 1 || st.BlockRecords != 10 {
		t.Fatalf("%+v", st)
	}
	if ok, _ := bkt.Exists(ctx, "t1/logs/0000000000000aaaaaaaaaaaaa/data"); ok {
		t.Fatal("incomplete block not deleted")
	}
}

func bytesReader(s string) *strings.Reader { return strings.NewReader(s) }

// TestRetentionWaitsForReaders: a block past retention that a query still
// reads keeps its objects until the query releases it.
func TestRetentionWaitsForReaders(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	now := time.Now()
	db, err := Open(ctx, Config{Retention: time.Hour}, Options{Tenant: "t1", WALDir: t.TempDir(), Bucket: bkt, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Append(ctx, &logs.Batch{Records: genRecords(0, 100)}); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	db.mu.Lock()
	b := db.blocks[0]
	b.acquire() // a query in flight
	db.mu.Unlock()
	now = now.Add(2 * time.Hour)
	db.RunRetention(ctx)
	if st := db.LogStats(ctx); st.Blocks != 0 {
		t.Fatalf("block still listed: %+v", st)
	}
	if _, err := b.readRowGroup(ctx, 0); err != nil {
		t.Fatalf("the reader lost its block: %v", err)
	}
	b.release()
	if ok, _ := bkt.Exists(ctx, b.dir+"/"+dataName); ok {
		t.Fatal("block objects not deleted after the last reader")
	}
}

func TestCompaction(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	dir := t.TempDir()
	cfg := Config{CompactMinBlocks: 3, MaxBlockRecords: 4000}
	db := openTest(t, bkt, dir, cfg)
	recs := genRecords(0, 3000)
	for i := 0; i < 3000; i += 300 { // 10 blocks of 300
		if err := db.Append(ctx, &logs.Batch{Records: append([]logs.Record(nil), recs[i:i+300]...)}); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A query holding the old blocks while they are compacted.
	db.mu.Lock()
	held := db.blocks[0]
	held.acquire()
	db.mu.Unlock()
	db.Compact(ctx)
	st := db.LogStats(ctx)
	if st.BlockRecords != 3000 || st.Blocks >= 10 || st.Blocks < 1 {
		t.Fatalf("after compaction: %+v", st)
	}
	if _, err := held.readRowGroup(ctx, 0); err != nil {
		t.Fatalf("a reader lost its block to compaction: %v", err)
	}
	held.release()
	if ok, _ := bkt.Exists(ctx, held.dir+"/"+metaName); ok {
		t.Fatal("a compacted source was not deleted")
	}
	q := &logs.Query{}
	if got, want := bodies(all(t, db, q, 333)), oracle(recs, q); len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("after compaction: %d records, want %d", len(got), len(want))
	}
	tq := &logs.Query{TraceID: traceOf(1234)}
	if got := all(t, db, tq, 100); len(got) != 10 {
		t.Fatalf("trace after compaction: %d records", len(got))
	}
	db.Close()
	db2 := openTest(t, bkt, dir, cfg)
	if st2 := db2.LogStats(ctx); st2.Blocks != st.Blocks || st2.BlockRecords != 3000 || st2.HeadRecords != 0 {
		t.Fatalf("after reopen: %+v, before %+v", st2, st)
	}
}

// TestCompactionCrash: a compacted block whose sources were not deleted
// (a crash in between) replaces them at open.
func TestCompactionCrash(t *testing.T) {
	ctx := context.Background()
	bkt := objstore.NewInMemBucket()
	dir := t.TempDir()
	db := openTest(t, bkt, dir, Config{CompactMinBlocks: -1})
	recs := genRecords(0, 600)
	var ids []string
	for i := 0; i < 600; i += 200 {
		if err := db.Append(ctx, &logs.Batch{Records: append([]logs.Record(nil), recs[i:i+200]...)}); err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	db.mu.Lock()
	for _, b := range db.blocks {
		ids = append(ids, b.meta.ID)
	}
	db.mu.Unlock()
	db.Close()
	// The compacted block, written as Compact writes it; the sources stay.
	id := newBlockID(time.Now().Add(time.Second))
	if _, err := writeBlock(ctx, bkt, "t1/logs/"+id, append([]logs.Record(nil), recs...), Meta{ID: id, Tenant: "t1", Sources: ids}); err != nil {
		t.Fatal(err)
	}
	db2 := openTest(t, bkt, dir, Config{CompactMinBlocks: -1})
	if st := db2.LogStats(ctx); st.Blocks != 1 || st.BlockRecords != 600 {
		t.Fatalf("after open: %+v", st)
	}
	for _, src := range ids {
		if ok, _ := bkt.Exists(ctx, "t1/logs/"+src+"/"+metaName); ok {
			t.Fatalf("source %s not deleted", src)
		}
	}
}
