package logstore

import (
	"context"
	"regexp"
	"testing"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/logs"
)

// BenchmarkSearch: 500 k records in 5 blocks (of 100 k, in an in-memory
// bucket, so the figures leave out disk reads) and a head of 20 k.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, Config{MaxHeadRecords: 1 << 30, MaxHeadBytes: 1 << 40, MaxHeadAge: 1 << 62}, Options{Tenant: "b", WALDir: b.TempDir(), Bucket: objstore.NewInMemBucket()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const perBlock, blocks = 100_000, 5
	for i := range blocks + 1 {
		n := perBlock
		if i == blocks {
			n = 20_000
		}
		for j := 0; j < n; j += 10_000 {
			if err := db.Append(ctx, &logs.Batch{Records: genRecords(i*perBlock+j, 10_000)}); err != nil {
				b.Fatal(err)
			}
		}
		if i < blocks {
			if err := db.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	st := db.LogStats(ctx)
	b.Logf("%+v: %.1f B/record in blocks", st, float64(st.BlockBytes)/float64(st.BlockRecords))
	cases := []struct {
		name  string
		q     logs.Query
		limit int
		want  int
	}{
		{"trace in an old block", logs.Query{TraceID: traceOf(123_456)}, 100, 10},
		{"trace in the head", logs.Query{TraceID: traceOf(505_000)}, 100, 10},
		{"newest page", logs.Query{Service: "svc1", MinSeverity: 9}, 100, 100},
		{"rare substring", logs.Query{Contains: []string{"request 123457 "}}, 100, 1},
		{"regexp", logs.Query{Regexp: []*regexp.Regexp{regexp.MustCompile(`request 4\d*7 handled in 96ms`)}}, 100, 100},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := db.SearchLogs(ctx, &c.q, c.limit, logs.Cursor{})
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Records) != c.want {
					b.Fatalf("%d records, want %d", len(p.Records), c.want)
				}
			}
		})
	}
}
