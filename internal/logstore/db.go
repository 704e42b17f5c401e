// Package logstore is clew's log database for one tenant: it appends
// batches of log records to its own write-ahead log (internal/wal, in a
// directory apart from the spans' log) and an in-memory head, cuts the
// head into immutable columnar blocks under <tenant>/logs/ in the bucket
// (docs/format/logs.md), applies retention, and answers searches (newest
// first, paged) and trace-ID lookups over head and blocks together.
package logstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/logs"
	"github.com/clew-dev/clew/internal/wal"
)

// ErrOverloaded is returned by Append while sealed heads wait to be
// written and the current head is full; the sender should retry.
var ErrOverloaded = errors.New("log store overloaded: sealed heads are waiting to be written, retry later")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("log store closed")

// Config holds the log store's settings. The app derives them from the
// trace store's (retention, head age, write-ahead log policy), so that
// logs need no configuration of their own.
type Config struct {
	// MaxHeadRecords and MaxHeadBytes cut the head into a block.
	MaxHeadRecords int
	MaxHeadBytes   int64
	// MaxHeadAge cuts the head once its oldest record arrived this long
	// ago.
	MaxHeadAge time.Duration
	// Retention deletes blocks whose newest record arrived longer ago;
	// 0 keeps them forever.
	Retention time.Duration
	// MaxPendingFlushes sealed heads may wait before appends are refused.
	MaxPendingFlushes int
	// CompactMinBlocks is how many consecutive small blocks are merged
	// into one; 0 takes the default, a negative value turns compaction
	// off.
	CompactMinBlocks int
	// MaxBlockRecords bounds a compacted block (and the records a
	// compaction holds in memory).
	MaxBlockRecords int
	// WAL settings, as the trace store's.
	WALSync              wal.SyncPolicy
	WALGroupCommitWindow time.Duration
	WALSegmentBytes      int64
}

// DefaultConfig returns the settings used when the app sets none.
func DefaultConfig() Config {
	return Config{
		MaxHeadRecords:       200_000,
		MaxHeadBytes:         16 << 20,
		MaxHeadAge:           time.Minute,
		Retention:            7 * 24 * time.Hour,
		MaxPendingFlushes:    1,
		CompactMinBlocks:     4,
		MaxBlockRecords:      200_000,
		WALSync:              wal.SyncGroup,
		WALGroupCommitWindow: 2 * time.Millisecond,
		WALSegmentBytes:      64 << 20,
	}
}

// Options carries what the code provides.
type Options struct {
	// Tenant prefixes every object key: <tenant>/logs/<block>/.
	Tenant string
	// WALDir is the directory of this tenant's log-records write-ahead log.
	WALDir     string
	Bucket     objstore.Bucket
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// head is the mutable set of recent records.
type head struct {
	seg int // first WAL segment that may hold its records

	mu       sync.RWMutex
	recs     []logs.Record // append-only; guarded by mu
	bytes    int64
	traces   map[[16]byte][]int32 // record indexes by trace ID
	maxSev   uint8
	services map[string]bool

	firstAppend atomic.Int64 // unix nanos, 0: empty
	lastAppend  atomic.Int64
	full        atomic.Bool
}

func newHead(seg int) *head {
	return &head{seg: seg, traces: map[[16]byte][]int32{}, services: map[string]bool{}}
}

func (h *head) append(recs []logs.Record) {
	for i := range recs {
		r := &recs[i]
		if r.HasTrace() {
			h.traces[r.TraceID] = append(h.traces[r.TraceID], int32(len(h.recs)))
		}
		h.maxSev = max(h.maxSev, r.Severity)
		h.services[r.Service] = true
		h.bytes += int64(r.MemSize())
		h.recs = append(h.recs, *r)
	}
}

// diskBlock is a block the store holds. Queries hold a reference while
// they read it; retention deletes its objects once the last reader let go.
type diskBlock struct {
	*blockReader
	refs    atomic.Int32 // 1 for the store's list, +1 per reading query
	deleted func()       // called once the last reference is released
}

func newDiskBlock(b *blockReader) *diskBlock {
	d := &diskBlock{blockReader: b}
	d.refs.Store(1)
	return d
}

func (d *diskBlock) acquire() { d.refs.Add(1) }

func (d *diskBlock) release() {
	if d.refs.Add(-1) == 0 && d.deleted != nil {
		d.deleted()
	}
}

// DB is one tenant's log store. Its methods are safe for concurrent use.
// Lock order: cutMu, then mu, then a head's mu.
type DB struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	m      *metrics
	wal    *wal.WAL
	bkt    objstore.Bucket
	now    func() time.Time
	prefix string // "<tenant>/logs/"

	// cutMu orders appends (read) against cuts (write), as in the trace
	// store: every record in a log segment below a head's first segment
	// is in an older head.
	cutMu sync.RWMutex

	// mu guards the fields below it.
	mu       sync.Mutex
	head     *head
	flushing []*head
	blocks   []*diskBlock // oldest first
	closed   bool

	compactMu sync.Mutex // serializes Compact

	flushReq chan struct{}
	flushed  *sync.Cond
	stop     chan struct{}
	done     sync.WaitGroup
}

// Open opens or creates the tenant's log store: it loads the blocks,
// deletes incomplete ones, replays the write-ahead log into the head and
// starts the background loop (cuts, block writes, retention).
func Open(ctx context.Context, cfg Config, opts Options) (*DB, error) {
	if opts.Tenant == "" || strings.ContainsAny(opts.Tenant, "/\\") {
		return nil, fmt.Errorf("invalid tenant name %q", opts.Tenant)
	}
	def := DefaultConfig()
	if cfg.MaxHeadRecords <= 0 {
		cfg.MaxHeadRecords = def.MaxHeadRecords
	}
	if cfg.MaxHeadBytes <= 0 {
		cfg.MaxHeadBytes = def.MaxHeadBytes
	}
	if cfg.MaxHeadAge <= 0 {
		cfg.MaxHeadAge = def.MaxHeadAge
	}
	if cfg.MaxPendingFlushes <= 0 {
		cfg.MaxPendingFlushes = def.MaxPendingFlushes
	}
	if cfg.CompactMinBlocks == 0 {
		cfg.CompactMinBlocks = def.CompactMinBlocks
	}
	if cfg.MaxBlockRecords <= 0 {
		cfg.MaxBlockRecords = def.MaxBlockRecords
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db := &DB{
		cfg: cfg, opts: opts,
		log:      opts.Logger.With("component", "logstore", "tenant", opts.Tenant),
		m:        newMetrics(opts.Registerer, opts.Tenant),
		bkt:      opts.Bucket,
		now:      opts.Now,
		prefix:   opts.Tenant + "/logs/",
		flushReq: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	db.flushed = sync.NewCond(&db.mu)
	if err := db.loadBlocks(ctx); err != nil {
		return nil, err
	}
	// The log's own metrics are not registered: clew_wal_* describe the
	// spans' log; clew_logs_* describe this store.
	w, err := wal.Open(wal.Options{
		Dir:               opts.WALDir,
		SegmentSize:       cfg.WALSegmentBytes,
		Sync:              cfg.WALSync,
		GroupCommitWindow: cfg.WALGroupCommitWindow,
		Logger:            opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("open log-records write-ahead log: %w", err)
	}
	db.wal = w
	if err := db.replay(); err != nil {
		_ = w.Close()
		return nil, err
	}
	db.done.Add(1)
	go db.loop()
	return db, nil
}

func newBlockID(now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("%013x%013x", now.UnixMilli(), binary.BigEndian.Uint64(r[:])>>12)
}

func (db *DB) blockDir(id string) string { return db.prefix + id }

func (db *DB) loadBlocks(ctx context.Context) error {
	var ids []string
	err := db.bkt.Iter(ctx, db.prefix, func(name string) error {
		if strings.HasSuffix(name, "/") {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(name, db.prefix), "/"))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list log blocks: %w", err)
	}
	slices.Sort(ids)
	var opened []*blockReader
	for _, id := range ids {
		b, err := openBlock(ctx, db.bkt, db.blockDir(id))
		if err != nil {
			if isNotFound(db.bkt, err) {
				db.log.Warn("deleting incomplete log block", "block", id)
				if err := db.deleteObjects(ctx, id); err != nil {
					db.log.Error("delete incomplete log block", "block", id, "err", err)
				}
				continue
			}
			return fmt.Errorf("open log block %s: %w (move %s aside to start without it)", id, err, db.blockDir(id))
		}
		opened = append(opened, b)
	}
	// A compaction that wrote its block but crashed before deleting its
	// sources: the sources go now.
	replaced := map[string]bool{}
	for _, b := range opened {
		for _, src := range b.meta.Sources {
			replaced[src] = true
		}
	}
	for _, b := range opened {
		if replaced[b.meta.ID] {
			db.log.Warn("deleting log block replaced by a finished compaction", "block", b.meta.ID)
			if err := db.deleteBlock(ctx, b.meta.ID); err != nil {
				db.log.Error("delete replaced log block", "block", b.meta.ID, "err", err)
			}
			continue
		}
		db.blocks = append(db.blocks, newDiskBlock(b))
	}
	db.updateBlockMetricsLocked()
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

// deleteBlock removes a block, meta.json first, so that a crash midway
// leaves an incomplete block the next open deletes.
func (db *DB) deleteBlock(ctx context.Context, id string) error {
	if err := db.bkt.Delete(ctx, path.Join(db.blockDir(id), metaName)); err != nil && !db.bkt.IsObjNotFoundErr(err) {
		return fmt.Errorf("delete meta of log block %s: %w", id, err)
	}
	return db.deleteObjects(ctx, id)
}

func (db *DB) deleteObjects(ctx context.Context, id string) error {
	var names []string
	if err := db.bkt.Iter(ctx, db.blockDir(id)+"/", func(name string) error {
		names = append(names, name)
		return nil
	}, objstore.WithRecursiveIter()); err != nil {
		return fmt.Errorf("list log block %s: %w", id, err)
	}
	for _, n := range names {
		if err := db.bkt.Delete(ctx, n); err != nil && !db.bkt.IsObjNotFoundErr(err) {
			return fmt.Errorf("delete %s: %w", n, err)
		}
	}
	return nil
}

func (db *DB) replay() error {
	from := 0
	for _, b := range db.blocks {
		from = max(from, b.meta.WALSegmentEnd)
	}
	_, last := db.wal.Segments()
	db.head = newHead(max(from, last))
	var batch logs.Batch
	start := time.Now()
	stats, err := db.wal.ReplayFrom(from, func(pos wal.Pos, rec []byte) error {
		batch.Reset()
		if err := logs.DecodeBatch(rec, &batch); err != nil {
			db.m.replayErrors.Inc()
			db.log.Error("skipping undecodable log write-ahead log record", "segment", pos.Segment, "offset", pos.Offset, "err", err)
			return nil
		}
		if pos.Segment < db.head.seg {
			db.head.seg = pos.Segment
		}
		db.head.append(batch.Records)
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay log-records write-ahead log: %w", err)
	}
	for _, c := range stats.Corruptions {
		db.log.Error("log write-ahead log corruption skipped", "segment", c.Segment, "offset", c.Offset, "err", c.Err)
	}
	if n := len(db.head.recs); n > 0 {
		now := db.now().UnixNano()
		db.head.firstAppend.Store(now)
		db.head.lastAppend.Store(now)
	}
	db.m.headRecords.Set(float64(len(db.head.recs)))
	db.log.Info("log write-ahead log replayed", "records", len(db.head.recs), "from_segment", from, "took", time.Since(start))
	return nil
}

// Append makes the records durable and searchable; it returns only once
// their write-ahead log record is durable under the sync policy. It does
// not retain batch (the records are copied into the head; their strings
// and resources must not change afterwards).
func (db *DB) Append(ctx context.Context, batch *logs.Batch) error {
	if len(batch.Records) == 0 {
		return nil
	}
	rec := logs.AppendBatch(nil, batch.Records)
	full, err := db.append(ctx, rec, batch.Records)
	if err != nil {
		return err
	}
	if full {
		if _, err := db.cut(true); err != nil {
			db.log.Error("cut log head", "err", err)
		}
		db.requestFlush()
	}
	return nil
}

func (db *DB) append(ctx context.Context, rec []byte, recs []logs.Record) (bool, error) {
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
		return false, fmt.Errorf("append to log-records write-ahead log: %w", err)
	}
	h.mu.Lock()
	h.append(recs)
	n, size := len(h.recs), h.bytes
	h.mu.Unlock()
	now := db.now().UnixNano()
	h.firstAppend.CompareAndSwap(0, now)
	h.lastAppend.Store(now)
	db.m.appended.Add(float64(len(recs)))
	db.m.headRecords.Set(float64(n))
	if n >= db.cfg.MaxHeadRecords || size >= db.cfg.MaxHeadBytes {
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

// cut seals the head and opens a new one; nil when the head was empty
// (or, with onlyIfFull, not full or no room to seal it).
func (db *DB) cut(onlyIfFull bool) (*head, error) {
	db.cutMu.Lock()
	defer db.cutMu.Unlock()
	db.mu.Lock()
	old := db.head
	pending := len(db.flushing)
	db.mu.Unlock()
	old.mu.RLock()
	n := len(old.recs)
	old.mu.RUnlock()
	if n == 0 || (onlyIfFull && (!old.full.Load() || pending >= db.cfg.MaxPendingFlushes)) {
		return nil, nil
	}
	seg, err := db.wal.Cut()
	if err != nil {
		return nil, fmt.Errorf("cut log-records write-ahead log: %w", err)
	}
	db.mu.Lock()
	db.head = newHead(seg)
	db.flushing = append(db.flushing, old)
	db.mu.Unlock()
	db.m.headRecords.Set(0)
	return old, nil
}

// loop cuts old heads, writes sealed heads as blocks and applies
// retention.
func (db *DB) loop() {
	defer db.done.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastRetention := time.Time{}
	for {
		select {
		case <-db.stop:
			return
		case <-db.flushReq:
		case <-tick.C:
			first := db.currentHead().firstAppend.Load()
			if first != 0 && db.now().Sub(time.Unix(0, first)) >= db.cfg.MaxHeadAge {
				if _, err := db.cut(false); err != nil {
					db.log.Error("cut log head", "err", err)
				}
			}
			if time.Since(lastRetention) >= time.Minute {
				lastRetention = time.Now()
				db.RunRetention(context.Background())
				db.Compact(context.Background())
			}
		}
		for {
			db.writePending(context.Background())
			h, err := db.cut(true)
			if err != nil {
				db.log.Error("cut log head", "err", err)
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

func (db *DB) writePending(ctx context.Context) {
	for {
		db.mu.Lock()
		if len(db.flushing) == 0 {
			db.mu.Unlock()
			return
		}
		h := db.flushing[0]
		next := db.head.seg
		if len(db.flushing) > 1 {
			next = db.flushing[1].seg
		}
		db.mu.Unlock()

		start := time.Now()
		id := newBlockID(db.now())
		h.mu.RLock()
		recs := slices.Clone(h.recs) // writeBlock sorts; queries still read h.recs
		h.mu.RUnlock()
		meta, err := writeBlock(ctx, db.bkt, db.blockDir(id), recs, Meta{
			ID: id, Tenant: db.opts.Tenant, CreatedAt: db.now().UnixNano(),
			LastArrival: h.lastAppend.Load(), WALSegmentEnd: next,
		})
		var b *blockReader
		if err == nil {
			b, err = openBlock(ctx, db.bkt, db.blockDir(id))
		}
		if err != nil {
			db.m.flushFailures.Inc()
			db.log.Error("write log head as block; will retry", "block", id, "records", len(recs), "err", err)
			_ = db.deleteBlock(ctx, id)
			return
		}
		db.mu.Lock()
		db.blocks = append(db.blocks, newDiskBlock(b))
		db.flushing = db.flushing[1:]
		db.updateBlockMetricsLocked()
		db.flushed.Broadcast()
		db.mu.Unlock()
		db.log.Info("log head written as block", "block", id, "records", meta.Records, "bytes", meta.Size(), "took", time.Since(start))
		if err := db.wal.Truncate(next); err != nil {
			db.log.Error("truncate log-records write-ahead log", "before_segment", next, "err", err)
		}
	}
}

// Flush seals the head and waits until every sealed head is a block.
func (db *DB) Flush(ctx context.Context) error {
	h, err := db.cut(false)
	if err != nil {
		return err
	}
	db.requestFlush()
	db.mu.Lock()
	pending := len(db.flushing)
	db.mu.Unlock()
	if h == nil && pending == 0 {
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

// RunRetention deletes the blocks whose newest record arrived before the
// retention period.
func (db *DB) RunRetention(ctx context.Context) {
	if db.cfg.Retention <= 0 {
		return
	}
	cutoff := db.now().Add(-db.cfg.Retention).UnixNano()
	db.mu.Lock()
	var old []*diskBlock
	keep := db.blocks[:0:0]
	for _, b := range db.blocks {
		if b.meta.LastArrival < cutoff {
			old = append(old, b)
		} else {
			keep = append(keep, b)
		}
	}
	db.blocks = keep
	db.updateBlockMetricsLocked()
	// A query that took its snapshot before still reads the block: its
	// objects are deleted once the last reader released it.
	for _, b := range old {
		b.deleted = func() {
			if err := db.deleteBlock(ctx, b.meta.ID); err != nil {
				db.log.Error("delete log block past retention", "block", b.meta.ID, "err", err)
				return
			}
			db.m.retentionDeleted.Inc()
			db.log.Info("log block deleted by retention", "block", b.meta.ID, "records", b.meta.Records)
		}
	}
	db.mu.Unlock()
	for _, b := range old {
		b.release()
	}
}

func (db *DB) updateBlockMetricsLocked() {
	var size, recs int64
	for _, b := range db.blocks {
		size += b.meta.Size()
		recs += b.meta.Records
	}
	db.m.blocks.Set(float64(len(db.blocks)))
	db.m.blockBytes.Set(float64(size))
	db.m.blockRecords.Set(float64(recs))
}

// LogStats reports what the store holds.
func (db *DB) LogStats(context.Context) logs.Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	var st logs.Stats
	for _, h := range append(slices.Clone(db.flushing), db.head) {
		h.mu.RLock()
		st.HeadRecords += len(h.recs)
		h.mu.RUnlock()
	}
	st.Blocks = len(db.blocks)
	for _, b := range db.blocks {
		st.BlockRecords += b.meta.Records
		st.BlockBytes += b.meta.Size()
	}
	return st
}

// Close stops the background loop and closes the write-ahead log, which
// keeps the head for the next open. It is idempotent.
func (db *DB) Close() error {
	db.cutMu.Lock()
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
	return db.wal.Close()
}
