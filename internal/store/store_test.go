package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"
	"go.uber.org/goleak"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type testDB struct {
	*DB
	dir   string
	clock *fakeClock
}

func openTestDB(t *testing.T, dir string, cfg Config, clock *fakeClock) *testDB {
	t.Helper()
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), cfg, Options{
		Tenant: "t1", WALDir: filepath.Join(dir, "wal"), Bucket: bkt,
		Registerer: prometheus.NewRegistry(), Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return &testDB{DB: db, dir: dir, clock: clock}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.WALSync = "none"
	cfg.CompactionInterval = 0
	cfg.MaxHeadAge = time.Hour
	return cfg
}

// makeBatch builds n traces of k spans: trace i has ID (seed, i), service
// svc-(i%3), and attribute idx=i on its root.
func makeBatch(seed uint64, first, n, k int, startNS uint64) *span.Batch {
	b := &span.Batch{}
	res := make([]*span.Resource, 3)
	for i := range res {
		res[i] = &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue(fmt.Sprintf("svc-%d", i))}}}
		b.Resources = append(b.Resources, res[i])
	}
	sc := &span.Scope{Name: "test"}
	b.Scopes = append(b.Scopes, sc)
	rng := rand.New(rand.NewPCG(seed, uint64(first)))
	for i := first; i < first+n; i++ {
		var tid span.TraceID
		binary.BigEndian.PutUint64(tid[:8], seed)
		binary.BigEndian.PutUint64(tid[8:], uint64(i)+1)
		for j := 0; j < k; j++ {
			var sid span.SpanID
			binary.BigEndian.PutUint64(sid[:], uint64(i)<<20|uint64(j)+1)
			s := span.Span{
				TraceID: tid, SpanID: sid, Name: fmt.Sprintf("op-%d", j%3), Kind: span.KindServer,
				StartUnixNano: startNS + uint64(i)*1000 + uint64(j),
				Resource:      res[i%3], Scope: sc,
				Attrs: []span.Attr{{Key: "n", Value: span.IntValue(int64(rng.IntN(100)))}},
			}
			s.EndUnixNano = s.StartUnixNano + 500
			if j == 0 {
				s.Attrs = append(s.Attrs, span.Attr{Key: "idx", Value: span.IntValue(int64(i))})
			} else {
				binary.BigEndian.PutUint64(s.ParentSpanID[:], uint64(i)<<20|1)
			}
			b.Spans = append(b.Spans, s)
		}
	}
	return b
}

func (db *testDB) appendBatch(t *testing.T, b *span.Batch) {
	t.Helper()
	if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func tid(seed uint64, i int) span.TraceID {
	var id span.TraceID
	binary.BigEndian.PutUint64(id[:8], seed)
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

func (db *testDB) mustTrace(t *testing.T, seed uint64, i, spans int) {
	t.Helper()
	b, ok, err := db.FindTrace(context.Background(), tid(seed, i))
	if err != nil || !ok {
		t.Fatalf("trace %d: found=%v err=%v", i, ok, err)
	}
	if len(b.Spans) != spans {
		t.Fatalf("trace %d: %d spans, want %d", i, len(b.Spans), spans)
	}
}

func (db *testDB) count(t *testing.T, q search.Query) int {
	t.Helper()
	if err := q.Compile(); err != nil {
		t.Fatal(err)
	}
	res, err := db.Search(context.Background(), &q, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.Total
}

func TestAppendFlushReopen(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{}
	clock.ns.Store(time.Now().UnixNano())
	db := openTestDB(t, dir, testConfig(), clock)
	now := uint64(clock.Now().UnixNano())
	db.appendBatch(t, makeBatch(1, 0, 30, 4, now))
	db.mustTrace(t, 1, 7, 4)
	if got := db.count(t, search.Query{Service: "svc-1"}); got != 10 {
		t.Fatalf("head search: %d traces, want 10", got)
	}
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Late spans of the same traces land in the new head: one trace, two sources.
	db.appendBatch(t, makeBatch(1, 0, 30, 4, now))
	db.mustTrace(t, 1, 7, 4) // exact duplicates are returned once
	if got := db.count(t, search.Query{Service: "svc-1"}); got != 10 {
		t.Fatalf("search over block and head: %d traces, want 10", got)
	}
	db.appendBatch(t, makeBatch(2, 0, 5, 3, now))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTestDB(t, dir, testConfig(), clock)
	defer db.Close()
	st := db.Stats(context.Background())
	if len(st.Blocks) != 1 || st.HeadSpans != 30*4+5*3 {
		t.Fatalf("after reopen: %d blocks, %d head spans; want 1 block and %d spans replayed", len(st.Blocks), st.HeadSpans, 30*4+5*3)
	}
	db.mustTrace(t, 2, 4, 3)
	db.mustTrace(t, 1, 29, 4)
	q := search.Query{Conds: []search.Cond{{Key: "idx", Op: search.OpEq, Value: span.IntValue(12)}}}
	if got := db.count(t, q); got != 1 {
		t.Fatalf("needle: %d", got)
	}
}

func TestSearchPagingAcrossSources(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testConfig(), newClock())
	defer db.Close()
	now := uint64(db.clock.Now().UnixNano())
	for round := 0; round < 3; round++ {
		db.appendBatch(t, makeBatch(3, round*40, 40, 2, now))
		if round < 2 {
			if err := db.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	q := &search.Query{}
	if err := q.Compile(); err != nil {
		t.Fatal(err)
	}
	var got []storage.Hit
	var cur *storage.Cursor
	for {
		res, err := db.Search(context.Background(), q, 7, cur)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 120 {
			t.Fatalf("total %d, want 120", res.Total)
		}
		got = append(got, res.Hits...)
		if res.Next == nil {
			break
		}
		cur = res.Next
	}
	if len(got) != 120 {
		t.Fatalf("paged %d hits, want 120", len(got))
	}
	if !slices.IsSortedFunc(got, func(a, b storage.Hit) int {
		if storage.Less(a, b) {
			return -1
		}
		if storage.Less(b, a) {
			return 1
		}
		return 0
	}) {
		t.Fatal("hits not in result order")
	}
	// Newest first: trace 119 started last.
	if got[0].TraceID != tid(3, 119) {
		t.Fatalf("first hit %s, want trace 119", got[0].TraceID)
	}
}

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func TestCompactionAndRetention(t *testing.T) {
	cfg := testConfig()
	cfg.CompactionMinBlocks = 3
	cfg.Retention = time.Hour
	db := openTestDB(t, t.TempDir(), cfg, newClock())
	defer db.Close()
	now := uint64(db.clock.Now().UnixNano())
	for i := 0; i < 6; i++ {
		db.appendBatch(t, makeBatch(4, i*10, 10, 3, now))
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(db.Stats(context.Background()).Blocks); n != 6 {
		t.Fatalf("%d blocks before compaction, want 6", n)
	}
	db.Compact(context.Background())
	blocks := db.Stats(context.Background()).Blocks
	if len(blocks) != 2 {
		t.Fatalf("%d blocks after compaction, want 2", len(blocks))
	}
	for _, b := range blocks {
		if b.Level != 1 || b.Spans != 90 {
			t.Fatalf("compacted block %+v: want level 1 with 90 spans", b)
		}
	}
	for i := 0; i < 60; i++ {
		db.mustTrace(t, 4, i, 3)
	}
	// Nothing is old yet.
	db.RunRetention(context.Background())
	if n := len(db.Stats(context.Background()).Blocks); n != 2 {
		t.Fatalf("retention dropped young blocks: %d left", n)
	}
	db.clock.Advance(2 * time.Hour)
	db.RunRetention(context.Background())
	if n := len(db.Stats(context.Background()).Blocks); n != 0 {
		t.Fatalf("%d blocks after retention, want 0", n)
	}
	if _, ok, _ := db.FindTrace(context.Background(), tid(4, 3)); ok {
		t.Fatal("trace still found after retention")
	}
}

func TestRetentionByDiskSize(t *testing.T) {
	cfg := testConfig()
	db := openTestDB(t, t.TempDir(), cfg, newClock())
	now := uint64(db.clock.Now().UnixNano())
	for i := 0; i < 4; i++ {
		db.appendBatch(t, makeBatch(5, i*50, 50, 4, now))
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		db.clock.Advance(time.Second)
	}
	blocks := db.Stats(context.Background()).Blocks
	var total int64
	for _, b := range blocks {
		total += b.Size
	}
	db.Close()
	// Allow the two newest blocks plus room for the (empty) log's segment
	// headers, less than a third block.
	if blocks[1].Size < 1024 {
		t.Fatalf("blocks too small for this test: %d bytes", blocks[1].Size)
	}
	cfg.MaxDiskBytes = blocks[2].Size + blocks[3].Size + 512
	db = openTestDB(t, db.dir, cfg, db.clock)
	defer db.Close()
	db.RunRetention(context.Background())
	left := db.Stats(context.Background()).Blocks
	if len(left) != 2 || left[0].ID != blocks[2].ID || left[1].ID != blocks[3].ID {
		t.Fatalf("disk retention kept %v, want the two newest of %v", statIDs(left), statIDs(blocks))
	}
}

func ids(ms []block.Meta) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestPlanCompaction(t *testing.T) {
	m := func(id string, lvl int, spans int64) block.Meta { return block.Meta{ID: id, Level: lvl, Spans: spans} }
	cases := []struct {
		name   string
		blocks []block.Meta
		want   []string
	}{
		{"too few", []block.Meta{m("a", 0, 10), m("b", 0, 10)}, nil},
		{"oldest run", []block.Meta{m("c", 0, 10), m("a", 0, 10), m("b", 0, 10), m("d", 0, 10)}, []string{"a", "b", "c"}},
		{"lowest level first", []block.Meta{m("a", 1, 10), m("b", 1, 10), m("c", 1, 10), m("d", 0, 10), m("e", 0, 10), m("f", 0, 10)}, []string{"d", "e", "f"}},
		{"size bound slides", []block.Meta{m("a", 0, 90), m("b", 0, 10), m("c", 0, 10), m("d", 0, 10)}, []string{"b", "c", "d"}},
		{"full blocks skipped", []block.Meta{m("a", 0, 100), m("b", 0, 100), m("c", 0, 100)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ids(planCompaction(c.blocks, 3, 100))
			if !slices.Equal(got, c.want) {
				t.Fatalf("planCompaction = %v, want %v", got, c.want)
			}
		})
	}
}

// TestAppendDoesNotAliasRequestBuffers appends batches decoded zero-copy
// from one reused buffer, as ingest does, and checks that nothing stored
// still points into the buffer.
func TestAppendDoesNotAliasRequestBuffers(t *testing.T) {
	db := openTestDB(t, t.TempDir(), testConfig(), newClock())
	defer db.Close()
	now := uint64(db.clock.Now().UnixNano())
	dec := otlp.NewDecoder(otlp.DefaultLimits())
	buf := make([]byte, 0, 1<<20)
	for round := 0; round < 3; round++ {
		buf = otlp.MarshalProto(buf[:0], makeBatch(uint64(10+round), 0, 6, 3, now))
		var b span.Batch
		if _, err := dec.DecodeProto(buf, &b); err != nil {
			t.Fatal(err)
		}
		if err := db.Append(context.Background(), buf, &b); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = 'x' // what the next request would do to a pooled buffer
		}
	}
	for round := 0; round < 3; round++ {
		for svc := 0; svc < 3; svc++ {
			q := search.Query{Service: fmt.Sprintf("svc-%d", svc)}
			if got := db.count(t, q); got != 6 {
				t.Fatalf("service svc-%d: %d traces, want 6", svc, got)
			}
		}
		b, ok, err := db.FindTrace(context.Background(), tid(uint64(10+round), 2))
		if err != nil || !ok || b.Spans[0].Resource.ServiceName() != "svc-2" || b.Spans[0].Name != "op-0" {
			t.Fatalf("trace read back wrong: ok=%v err=%v", ok, err)
		}
	}
	svcs, _ := db.Services(context.Background())
	if fmt.Sprint(svcs) != "[svc-0 svc-1 svc-2]" {
		t.Fatalf("services %v", svcs)
	}
}

// TestCompactionWhileQuerying keeps searching and reading traces while
// blocks are compacted away under the queries.
func TestCompactionWhileQuerying(t *testing.T) {
	cfg := testConfig()
	cfg.CompactionMinBlocks = 2
	db := openTestDB(t, t.TempDir(), cfg, newClock())
	defer db.Close()
	now := uint64(db.clock.Now().UnixNano())
	for i := 0; i < 8; i++ {
		db.appendBatch(t, makeBatch(6, i*20, 20, 3, now))
		if err := db.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		q := &search.Query{Service: "svc-1"}
		_ = q.Compile()
		for i := 0; i < 200; i++ {
			res, err := db.Search(context.Background(), q, 5, nil)
			if err == nil && res.Total != 53 {
				err = fmt.Errorf("total %d, want 53", res.Total)
			}
			if err == nil {
				_, ok, ferr := db.FindTrace(context.Background(), tid(6, i%160))
				if ferr != nil || !ok {
					err = fmt.Errorf("trace %d: found=%v err=%v", i%160, ok, ferr)
				}
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	db.Compact(context.Background())
	<-done
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if n := len(db.Stats(context.Background()).Blocks); n != 1 {
		t.Fatalf("%d blocks after compaction, want 1", n)
	}
}

// gatedBucket is the real filesystem bucket whose uploads wait for a gate,
// to hold block writes back.
type gatedBucket struct {
	objstore.Bucket
	gate chan struct{}
}

func (g *gatedBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Bucket.Upload(ctx, name, r, opts...)
}

// TestOverloadWhenFlushesLag holds block writes back until sealed heads
// pile up, checks that appends are then refused with ErrOverloaded (and
// nothing is half-stored), and that everything acknowledged is kept once
// writes resume.
func TestOverloadWhenFlushesLag(t *testing.T) {
	dir := t.TempDir()
	fsb, err := filesystem.NewBucket(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	gb := &gatedBucket{Bucket: fsb, gate: make(chan struct{})}
	cfg := testConfig()
	cfg.MaxHeadSpans = 100
	cfg.MaxPendingFlushes = 2
	clock := newClock()
	db, err := Open(context.Background(), cfg, Options{Tenant: "t1", WALDir: filepath.Join(dir, "wal"), Bucket: gb, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tdb := &testDB{DB: db, dir: dir, clock: clock}
	now := uint64(clock.Now().UnixNano())
	acked := 0
	var refused error
	for i := 0; i < 20 && refused == nil; i++ {
		b := makeBatch(8, i*10, 10, 5, now) // 50 spans
		if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
			refused = err
			break
		}
		acked++
	}
	if !errors.Is(refused, ErrOverloaded) {
		t.Fatalf("after %d appends: err %v, want ErrOverloaded", acked, refused)
	}
	// Two sealed heads of 100 spans and a full head: 6 appends of 50 spans.
	if acked != 6 {
		t.Fatalf("%d appends acknowledged before overload, want 6", acked)
	}
	close(gb.gate) // block writes resume
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < acked*10; i++ {
		tdb.mustTrace(t, 8, i, 5)
	}
	if _, ok, _ := db.FindTrace(context.Background(), tid(8, acked*10)); ok {
		t.Fatal("a refused batch was stored")
	}
	b := makeBatch(8, 1000, 1, 5, now)
	if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
		t.Fatalf("append after recovery: %v", err)
	}
	db.Close()
}

func statIDs(ms []storage.BlockMeta) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestRetentionOverride checks that Options.Retention (a tenant's
// overrides) is asked at every run: a shorter one drops blocks the
// configured retention keeps, and 0 leaves the configured one in force.
func TestRetentionOverride(t *testing.T) {
	cfg := testConfig()
	cfg.Retention = 24 * time.Hour
	db := openTestDB(t, t.TempDir(), cfg, newClock())
	defer db.Close()
	var override atomic.Int64
	db.opts.Retention = func() time.Duration { return time.Duration(override.Load()) }
	db.appendBatch(t, makeBatch(6, 0, 10, 2, uint64(db.clock.Now().UnixNano())))
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.clock.Advance(2 * time.Hour)
	db.RunRetention(context.Background()) // no override: 24h
	if n := len(db.Stats(context.Background()).Blocks); n != 1 {
		t.Fatalf("%d blocks, want 1: the configured 24h keeps a 2h old block", n)
	}
	override.Store(int64(3 * time.Hour)) // a reload
	db.RunRetention(context.Background())
	if n := len(db.Stats(context.Background()).Blocks); n != 1 {
		t.Fatalf("%d blocks, want 1: a 3h override keeps a 2h old block", n)
	}
	override.Store(int64(time.Hour))
	db.RunRetention(context.Background())
	if n := len(db.Stats(context.Background()).Blocks); n != 0 {
		t.Fatalf("%d blocks, want 0: a 1h override drops a 2h old block", n)
	}
}
