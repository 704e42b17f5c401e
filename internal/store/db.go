// Package store is clew's database for one tenant: it appends batches to
// the write-ahead log and the in-memory head, cuts the head into immutable
// blocks in an object-storage bucket, compacts small blocks, applies
// retention, and answers queries over head and blocks together.
package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/block/cache"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/wal"
)

// ErrOverloaded is returned by Append when the store cannot take more data
// right now; the sender should retry later.
var ErrOverloaded = errors.New("store overloaded: sealed heads are waiting to be written, retry later")

// LogsDir is the directory under a tenant's prefix that holds its log
// blocks (internal/logstore); the store leaves it alone.
const LogsDir = "logs"

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("store closed")

// Options carries what the code, not the user, provides.
type Options struct {
	// Tenant names the tenant; it prefixes every object key.
	Tenant string
	// WALDir is the directory of this tenant's write-ahead log.
	WALDir string
	// Bucket holds the blocks.
	Bucket     objstore.Bucket
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Cache is the shared page cache; nil creates one of Config.PageCacheBytes.
	Cache *cache.Cache
	// Retention, when set, is asked at every retention run for the
	// tenant's retention (its overrides, which a reload can change); a
	// result of 0 or less leaves Config.Retention in force.
	Retention func() time.Duration
}

// DB is one tenant's store. Its methods are safe for concurrent use.
type DB struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	m      *metrics
	wal    *wal.WAL
	bkt    objstore.Bucket
	cache  *cache.Cache
	now    func() time.Time
	prefix string // "<tenant>/"
	// localRoot is the directory of a filesystem bucket (see localRoot).
	localRoot string

	// cutMu orders appends against head cuts: an append holds it for
	// reading across its log write and head append, a cut holds it for
	// writing, so that every record in a log segment below a head's first
	// segment is in an older head.
	cutMu sync.RWMutex

	// mu guards the fields below it.
	mu       sync.Mutex
	head     *head
	flushing []*head      // sealed heads, oldest first, still being written
	blocks   []*diskBlock // sorted by meta.ID
	closed   bool

	flushReq chan struct{} // wakes the flusher to cut the head
	flushed  *sync.Cond    // broadcast (with mu) when flushing shrinks
	stop     chan struct{}
	done     sync.WaitGroup

	bgMu sync.Mutex // serializes compaction and retention
}

// Open opens or creates the store: it loads the blocks' metadata, removes
// leftovers of interrupted writes and compactions, replays the write-ahead
// log into the head and starts the background loops.
func Open(ctx context.Context, cfg Config, opts Options) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid store config: %w", err)
	}
	if opts.Tenant == "" || strings.ContainsAny(opts.Tenant, "/\\") {
		return nil, fmt.Errorf("invalid tenant name %q", opts.Tenant)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db := &DB{
		cfg:       cfg,
		opts:      opts,
		log:       opts.Logger.With("component", "store", "tenant", opts.Tenant),
		m:         newMetrics(opts.Registerer, opts.Tenant),
		bkt:       opts.Bucket,
		cache:     opts.Cache,
		now:       opts.Now,
		prefix:    opts.Tenant + "/",
		localRoot: localRoot(opts.Bucket),
		flushReq:  make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	db.flushed = sync.NewCond(&db.mu)
	if db.cache == nil && cfg.PageCacheBytes > 0 {
		db.cache = cache.New(cfg.PageCacheBytes)
	}
	if err := db.loadBlocks(ctx); err != nil {
		return nil, err
	}
	w, err := wal.Open(wal.Options{
		Dir:               opts.WALDir,
		SegmentSize:       cfg.WALSegmentBytes,
		Sync:              cfg.WALSync,
		GroupCommitWindow: cfg.WALGroupCommitWindow,
		Logger:            opts.Logger,
		Registerer:        prometheus.WrapRegistererWith(prometheus.Labels{"tenant": opts.Tenant}, registererOrNil(opts.Registerer)),
	})
	if err != nil {
		db.closeBlocks()
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	db.wal = w
	if err := db.replay(); err != nil {
		_ = w.Close()
		db.closeBlocks()
		return nil, err
	}
	db.done.Add(2)
	go db.flushLoop()
	go db.backgroundLoop()
	return db, nil
}

type nopRegisterer struct{}

func (nopRegisterer) Register(prometheus.Collector) error  { return nil }
func (nopRegisterer) MustRegister(...prometheus.Collector) {}
func (nopRegisterer) Unregister(prometheus.Collector) bool { return true }

func registererOrNil(r prometheus.Registerer) prometheus.Registerer {
	if r == nil {
		return nopRegisterer{}
	}
	return r
}

// newBlockID returns a 26-character identifier that sorts by creation time:
// 13 hex digits of unix milliseconds, then 13 of randomness.
func newBlockID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%013x%013x", now.UnixMilli(), binary.BigEndian.Uint64(r[:])>>12)
}

func (db *DB) blockDir(id string) string { return db.prefix + id }

// readerOptions are the options of every block reader the store opens.
func (db *DB) readerOptions() block.ReaderOptions {
	return block.ReaderOptions{Cache: db.cache, LocalRoot: db.localRoot}
}

// localRoot returns the directory a local bucket keeps its objects in, or
// "" for other buckets: a bucket's LocalDir method (the durable local
// bucket's), else a filesystem bucket's Name "fs: <root>" (objstore does
// not export the root). A wrong guess costs only speed: a Reader that
// cannot open its data file reads through the bucket.
func localRoot(bkt objstore.Bucket) string {
	if l, ok := bkt.(interface{ LocalDir() string }); ok {
		return l.LocalDir()
	}
	fb, ok := bkt.(*filesystem.Bucket)
	if !ok {
		return ""
	}
	root, ok := strings.CutPrefix(fb.Name(), "fs: ")
	if !ok || !filepath.IsAbs(root) {
		return ""
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return ""
	}
	return root
}

// loadBlocks opens every complete block of the tenant, deletes blocks
// without meta.json (interrupted writes) and blocks that a completed
// compaction replaced.
func (db *DB) loadBlocks(ctx context.Context) error {
	var dirs []string
	err := db.bkt.Iter(ctx, db.prefix, func(name string) error {
		// <tenant>/logs/ holds the tenant's log blocks (internal/logstore),
		// not a block of spans: a block ID is 26 hex digits.
		if id, ok := strings.CutSuffix(strings.TrimPrefix(name, db.prefix), "/"); ok && id != LogsDir {
			dirs = append(dirs, id)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list blocks: %w", err)
	}
	metas := map[string]block.Meta{}
	for _, id := range dirs {
		m, err := block.ReadMeta(ctx, db.bkt, db.blockDir(id))
		if err != nil {
			if isNotFound(db.bkt, err) {
				db.log.Warn("deleting incomplete block", "block", id)
				if err := db.deleteBlockObjects(ctx, id); err != nil {
					db.log.Error("delete incomplete block", "block", id, "err", err)
				}
				continue
			}
			return fmt.Errorf("read meta of block %s: %w (move the block directory aside to start without it)", id, err)
		}
		metas[id] = m
	}
	replaced := map[string]bool{}
	for _, m := range metas {
		for _, src := range m.Sources {
			replaced[src] = true
		}
	}
	ids := make([]string, 0, len(metas))
	for id := range metas {
		if replaced[id] {
			db.log.Warn("deleting block replaced by a finished compaction", "block", id)
			if err := db.deleteBlock(ctx, id); err != nil {
				db.log.Error("delete replaced block", "block", id, "err", err)
			}
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r, err := block.Open(ctx, db.bkt, db.blockDir(id), db.readerOptions())
		if err != nil {
			db.closeBlocks()
			return fmt.Errorf("open block %s: %w", id, err)
		}
		db.blocks = append(db.blocks, newDiskBlock(r))
	}
	db.updateBlockMetrics()
	db.log.Info("blocks loaded", "blocks", len(db.blocks))
	return nil
}

func isNotFound(bkt objstore.Bucket, err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if bkt.IsObjNotFoundErr(e) {
			return true
		}
	}
	return false
}

func newDiskBlock(r *block.Reader) *diskBlock {
	d := &diskBlock{Reader: r, meta: r.Meta()}
	d.refs.Store(1)
	return d
}

func (db *DB) closeBlocks() {
	for _, b := range db.blocks {
		b.release()
	}
	db.blocks = nil
}

// deleteBlock removes a block: meta.json first, so that a crash midway
// leaves an incomplete block that the next start deletes.
func (db *DB) deleteBlock(ctx context.Context, id string) error {
	dir := db.blockDir(id)
	if err := db.bkt.Delete(ctx, path.Join(dir, "meta.json")); err != nil && !db.bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("delete meta of block %s: %w", id, err)
	}
	return db.deleteBlockObjects(ctx, id)
}

func (db *DB) deleteBlockObjects(ctx context.Context, id string) error {
	dir := db.blockDir(id) + "/"
	var names []string
	if err := db.bkt.Iter(ctx, dir, func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return fmt.Errorf("list block %s: %w", id, err)
	}
	for _, n := range names {
		if err := db.bkt.Delete(ctx, n); err != nil && !db.bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("delete %s: %w", n, err)
		}
	}
	return nil
}

// replay loads the write-ahead log segments that no block covers yet into
// a fresh head.
func (db *DB) replay() error {
	from := 0
	for _, b := range db.blocks {
		from = max(from, b.meta.WALSegmentEnd)
	}
	_, last := db.wal.Segments()
	db.head = newHead(max(from, last))
	dec := otlp.NewDecoder(replayLimits())
	var batch span.Batch
	start := time.Now()
	stats, err := db.wal.ReplayFrom(from, func(pos wal.Pos, rec []byte) error {
		batch.Reset()
		if _, err := dec.DecodeProto(rec, &batch); err != nil {
			// A record that passed its checksum but does not decode was
			// written by a different version or is damaged beyond what the
			// checksum sees; skip it, loudly.
			db.m.replayErrors.Inc()
			db.log.Error("skipping undecodable write-ahead log record", "segment", pos.Segment, "offset", pos.Offset, "err", err)
			return nil
		}
		if pos.Segment < db.head.seg {
			db.head.seg = pos.Segment
		}
		db.head.b.Append(&batch)
		db.m.replayedRecords.Inc()
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay write-ahead log: %w", err)
	}
	for _, c := range stats.Corruptions {
		db.log.Error("write-ahead log corruption skipped", "segment", c.Segment, "offset", c.Offset, "err", c.Err)
	}
	if db.head.b.Len() > 0 {
		db.head.firstAppend.Store(db.now().UnixNano())
	}
	db.m.headSpans.Set(float64(db.head.b.Len()))
	db.m.headBytes.Set(float64(db.head.b.MemSize()))
	db.log.Info("write-ahead log replayed", "records", stats.Records, "spans", db.head.b.Len(), "from_segment", from, "took", time.Since(start))
	return nil
}

// replayLimits are generous: records were already validated when written.
func replayLimits() otlp.Limits {
	l := otlp.DefaultLimits()
	l.MaxSpansPerRequest = 1 << 30
	return l
}

// Append makes batch durable and visible to queries. rec is the batch
// encoded as an OTLP ExportTraceServiceRequest; it is what the write-ahead
// log keeps. Append returns only once rec is durable under the configured
// sync policy. It does not retain rec or batch.
//
// A head that reaches its size or span budget is sealed at once (the block
// is written in the background). While MaxPendingFlushes sealed heads wait
// to be written and the current head is full too, Append refuses with
// ErrOverloaded, which bounds memory to MaxPendingFlushes+1 heads.
func (db *DB) Append(ctx context.Context, rec []byte, batch *span.Batch) error {
	if len(batch.Spans) == 0 {
		return nil
	}
	full, err := db.append(ctx, rec, batch)
	if err != nil {
		return err
	}
	if full {
		if _, err := db.cut(true); err != nil {
			db.log.Error("cut head", "err", err)
		}
		db.requestFlush()
	}
	return nil
}

func (db *DB) append(ctx context.Context, rec []byte, batch *span.Batch) (full bool, err error) {
	db.cutMu.RLock()
	defer db.cutMu.RUnlock()
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return false, ErrClosed
	}
	h := db.head
	pending := len(db.flushing)
	db.mu.Unlock()
	if pending >= db.cfg.MaxPendingFlushes && h.full.Load() {
		db.m.overloaded.Inc()
		return false, ErrOverloaded
	}

	if _, err := db.wal.Append(ctx, rec); err != nil {
		return false, fmt.Errorf("append to write-ahead log: %w", err)
	}
	h.mu.Lock()
	h.b.Append(batch)
	n, size := h.b.Len(), h.b.MemSize()
	h.mu.Unlock()
	h.firstAppend.CompareAndSwap(0, db.now().UnixNano())
	db.m.headSpans.Set(float64(n))
	db.m.headBytes.Set(float64(size))
	if n >= db.cfg.MaxHeadSpans || size >= db.cfg.MaxHeadBytes {
		h.full.Store(true)
		return true, nil
	}
	return false, nil
}

func (db *DB) requestFlush() {
	select {
	case db.flushReq <- struct{}{}:
	default:
	}
}

// cut seals the current head and starts a new one. It returns the sealed
// head, or nil when the head was empty. With onlyIfFull it cuts only a
// full head, and only while fewer than MaxPendingFlushes heads wait.
func (db *DB) cut(onlyIfFull bool) (*head, error) {
	db.cutMu.Lock()
	defer db.cutMu.Unlock()
	db.mu.Lock()
	old := db.head
	pending := len(db.flushing)
	db.mu.Unlock()
	if old.b.Len() == 0 {
		return nil, nil
	}
	if onlyIfFull && (!old.full.Load() || pending >= db.cfg.MaxPendingFlushes) {
		return nil, nil
	}
	seg, err := db.wal.Cut()
	if err != nil {
		return nil, fmt.Errorf("cut write-ahead log: %w", err)
	}
	old.mu.Lock()
	old.sealed.Store(true)
	old.mu.Unlock()
	db.mu.Lock()
	db.head = newHead(seg)
	db.flushing = append(db.flushing, old)
	db.m.pendingFlushes.Set(float64(len(db.flushing)))
	db.mu.Unlock()
	db.m.headCuts.Inc()
	db.m.headSpans.Set(0)
	db.m.headBytes.Set(0)
	return old, nil
}

// flushLoop cuts the head when asked or when it is old enough and writes
// sealed heads as blocks, oldest first, retrying failures.
func (db *DB) flushLoop() {
	defer db.done.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-db.flushReq:
		case <-tick.C:
			first := db.currentHead().firstAppend.Load()
			if first != 0 && db.now().Sub(time.Unix(0, first)) >= db.cfg.MaxHeadAge {
				if _, err := db.cut(false); err != nil {
					db.log.Error("cut head", "err", err)
				}
			}
		}
		for {
			db.writePending(context.Background())
			// A full head that waited for room is sealed now.
			h, err := db.cut(true)
			if err != nil {
				db.log.Error("cut head", "err", err)
			}
			if h == nil {
				break
			}
		}
	}
}

func (db *DB) currentHead() *head {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.head
}

func (db *DB) pending() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.flushing)
}

// writePending writes every sealed head as a block, oldest first, and
// truncates the write-ahead log behind them. On failure it leaves the
// rest for the next round.
func (db *DB) writePending(ctx context.Context) {
	for {
		db.mu.Lock()
		if len(db.flushing) == 0 {
			db.mu.Unlock()
			return
		}
		h := db.flushing[0]
		var next int
		if len(db.flushing) > 1 {
			next = db.flushing[1].seg
		} else {
			next = db.head.seg
		}
		db.mu.Unlock()

		start := time.Now()
		id := newBlockID(db.now())
		meta, err := h.b.Write(ctx, db.bkt, db.blockDir(id), block.Meta{
			ID: id, Tenant: db.opts.Tenant, Level: 0,
			CreatedAt: db.now().UnixNano(), WALSegmentEnd: next,
		})
		var r *block.Reader
		if err == nil {
			r, err = block.Open(ctx, db.bkt, db.blockDir(id), db.readerOptions())
		}
		if err != nil {
			db.m.flushFailures.Inc()
			db.log.Error("write head as block; will retry", "block", id, "spans", h.b.Len(), "err", err)
			_ = db.deleteBlock(ctx, id)
			return
		}
		db.m.flushDuration.Observe(time.Since(start).Seconds())
		db.mu.Lock()
		db.blocks = append(db.blocks, newDiskBlock(r))
		db.flushing = db.flushing[1:]
		db.m.pendingFlushes.Set(float64(len(db.flushing)))
		db.updateBlockMetricsLocked()
		db.flushed.Broadcast()
		db.mu.Unlock()
		db.log.Info("head written as block", "block", id, "spans", meta.Spans, "traces", meta.Traces, "bytes", meta.Size, "took", time.Since(start))
		if err := db.wal.Truncate(next); err != nil {
			db.log.Error("truncate write-ahead log", "before_segment", next, "err", err)
		}
	}
}

// Flush seals the head and waits until it and every earlier sealed head
// are written as blocks.
func (db *DB) Flush(ctx context.Context) error {
	h, err := db.cut(false)
	if err != nil {
		return err
	}
	db.requestFlush()
	if h == nil && db.pending() == 0 {
		return nil
	}
	done := make(chan struct{})
	go func() {
		db.mu.Lock()
		for len(db.flushing) > 0 && !db.closed {
			db.flushed.Wait()
		}
		db.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (db *DB) updateBlockMetrics() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.updateBlockMetricsLocked()
}

func (db *DB) updateBlockMetricsLocked() {
	var size, spans int64
	for _, b := range db.blocks {
		size += b.meta.Size
		spans += b.meta.Spans
	}
	db.m.blocks.Set(float64(len(db.blocks)))
	db.m.blockBytes.Set(float64(size))
	db.m.blockSpans.Set(float64(spans))
}

// Close flushes nothing to blocks (the write-ahead log keeps the head),
// stops the background loops and closes the log. It is idempotent.
func (db *DB) Close() error {
	db.cutMu.Lock() // waits for in-flight appends
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		db.cutMu.Unlock()
		return nil
	}
	db.closed = true
	db.flushed.Broadcast()
	db.mu.Unlock()
	db.cutMu.Unlock()
	close(db.stop)
	db.done.Wait()
	err := db.wal.Close()
	db.mu.Lock()
	db.closeBlocks()
	db.mu.Unlock()
	return err
}
