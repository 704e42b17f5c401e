// Package wal is clew's write-ahead log. The ingest path appends each OTLP
// request as one opaque record and acknowledges the sender only once the
// record is durable; at start the store replays the log to rebuild the head,
// and once the head has been cut into a block it truncates the segments the
// block covers.
//
// The log is a directory of numbered segment files. Each segment starts with
// a small header (magic and format version) followed by records framed with
// a length and a CRC32-Castagnoli checksum. docs/format/wal.md describes the
// layout byte by byte, together with the recovery rules Replay applies.
//
// Concurrency: Append, Cut, Truncate, Segments and Size are safe for
// concurrent use. Replay must finish before the first Append on a WAL that
// had segments at Open.
package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SyncPolicy says when appended records are synced to stable storage.
type SyncPolicy string

const (
	// SyncGroup syncs concurrent appends together: one writer goroutine
	// issues an fdatasync that covers every record written before it
	// started, and each Append returns once such a sync has completed. This
	// is the default.
	SyncGroup SyncPolicy = "group"
	// SyncAlways syncs each append on its own before the next one is
	// written. It is the slowest policy and exists for comparison and for
	// very low-rate deployments.
	SyncAlways SyncPolicy = "always"
	// SyncNone never syncs on append; the kernel writes pages back when it
	// likes. A process crash loses nothing, a machine crash loses the
	// records of the last few seconds. Close still syncs.
	SyncNone SyncPolicy = "none"
)

// Defaults for Options fields left zero.
const (
	// DefaultSegmentSize is the segment size used when Options.SegmentSize
	// is zero.
	DefaultSegmentSize = 64 << 20
	// DefaultGroupCommitWindow is the group commit window DefaultOptions
	// sets. A zero Options.GroupCommitWindow means no window at all.
	DefaultGroupCommitWindow = 2 * time.Millisecond
	// MinSegmentSize is the smallest SegmentSize Open accepts.
	MinSegmentSize = 64
)

// Options configures a WAL. The zero value of every field except Dir is
// usable; DefaultOptions fills in the recommended values.
type Options struct {
	// Dir is the directory that holds the segment files. Open creates it.
	Dir string
	// SegmentSize is the size at which the log moves on to a new segment:
	// a record that would make the open segment larger than SegmentSize
	// goes into a new one. A record larger than SegmentSize gets a segment
	// of its own. Zero means DefaultSegmentSize.
	SegmentSize int64
	// Sync is the sync policy; empty means SyncGroup.
	Sync SyncPolicy
	// GroupCommitWindow bounds how long, under SyncGroup, the sync of a
	// written record may be delayed to gather more records into the same
	// fdatasync. The sync starts early once every Append in progress has
	// written its record. Zero means sync as soon as the previous sync
	// finishes. DefaultOptions sets DefaultGroupCommitWindow.
	GroupCommitWindow time.Duration
	// Logger receives lifecycle (Info), repair (Warn) and corruption or
	// I/O failure (Error) events. Nil discards them.
	Logger *slog.Logger
	// Registerer registers the clew_wal_* metrics. Nil means no metrics.
	// Close unregisters them, so a WAL can be reopened with the same
	// Registerer.
	Registerer prometheus.Registerer
}

// DefaultOptions returns the recommended options for a WAL in dir.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:               dir,
		SegmentSize:       DefaultSegmentSize,
		Sync:              SyncGroup,
		GroupCommitWindow: DefaultGroupCommitWindow,
	}
}

// validate applies the defaults for zero fields and rejects bad values.
func (o Options) validate() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("validate wal options: dir is empty")
	}
	switch {
	case o.SegmentSize == 0:
		o.SegmentSize = DefaultSegmentSize
	case o.SegmentSize < MinSegmentSize:
		return o, fmt.Errorf("validate wal options: segment size %d is below the minimum %d", o.SegmentSize, MinSegmentSize)
	}
	switch o.Sync {
	case "":
		o.Sync = SyncGroup
	case SyncGroup, SyncAlways, SyncNone:
	default:
		return o, fmt.Errorf("validate wal options: unknown sync policy %q (want %q, %q or %q)", o.Sync, SyncGroup, SyncAlways, SyncNone)
	}
	if o.GroupCommitWindow < 0 {
		return o, fmt.Errorf("validate wal options: negative group commit window %v", o.GroupCommitWindow)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Pos is the position of a record: the segment index and the byte offset of
// the record's header within the segment file.
type Pos struct {
	Segment int
	Offset  int64
}

// Log keys.
const (
	logKeyDir      = "dir"
	logKeySegment  = "segment"
	logKeyOffset   = "offset"
	logKeyErr      = "err"
	logKeyFirst    = "first"
	logKeyLast     = "last"
	logKeyRecords  = "records"
	logKeyBytes    = "bytes"
	logKeyDiscard  = "bytes_discarded"
	logKeyDuration = "duration"
	logKeyCount    = "count"
)

// WAL is a write-ahead log. See the package documentation.
type WAL struct {
	opts   Options
	logger *slog.Logger
	m      *metrics
	// fsync syncs a segment file's data; tests replace it to inject errors.
	fsync func(*os.File) error

	// active counts goroutines inside Append under SyncGroup. The syncer
	// skips the rest of the window once every one of them waits for a sync.
	active atomic.Int64
	// unsyncedWaiters counts Appends whose records were written after the
	// last sync started. It is written under mu and read anywhere.
	unsyncedWaiters atomic.Int64
	kick            chan struct{} // capacity 1; wakes the syncer
	stop            chan struct{} // closed by Close to stop the syncer
	syncerDone      chan struct{} // closed when the syncer has returned

	// truncMu serializes Truncate and Replay. Lock order: truncMu, then mu.
	truncMu sync.Mutex

	mu sync.Mutex
	// The fields below are guarded by mu.
	f           *os.File      // the open segment; nil while a replay is due
	seg         int           // index of f
	segOff      int64         // bytes in f, header included
	closedSegs  []segmentInfo // segments before f, in index order
	closedBytes int64         // sum of closedSegs sizes
	needsReplay bool          // segments existed at Open and Replay has not finished
	closed      bool
	err         error // first write or sync error; the WAL is poisoned once set
	hdr         [recordHeaderSize]byte
	written     uint64        // bytes of records written since Open
	captured    uint64        // written as of the start of the latest sync
	synced      uint64        // written as of the latest completed sync
	pendingAt   time.Time     // when the first record after captured was written
	retired     []*os.File    // rotated segments the syncer must sync and close
	dirDirty    bool          // a segment was created since the syncer last synced the dir
	syncDone    chan struct{} // closed and replaced when a sync completes or the WAL is poisoned

	closeOnce sync.Once
	closeErr  error
}

// Open opens the write-ahead log in opts.Dir, creating the directory if
// needed. It lists the segments but reads none of them: if there are any,
// Replay (or ReplayFrom) must run before the first Append. An empty log is
// ready for appends at once.
func Open(opts Options) (*WAL, error) {
	opts, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create wal dir: %w", err)
	}
	segs, err := listSegments(opts.Dir)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	w := &WAL{
		opts:       opts,
		logger:     opts.Logger.With("component", "wal"),
		m:          m,
		fsync:      fdatasync,
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		syncerDone: make(chan struct{}),
		closedSegs: segs,
		syncDone:   make(chan struct{}),
	}
	for _, s := range segs {
		w.closedBytes += s.size
	}
	m.segments.Set(float64(len(segs)))
	m.sizeBytes.Set(float64(w.closedBytes))
	if len(segs) == 0 {
		w.mu.Lock()
		err := w.openSegmentLocked(0)
		w.mu.Unlock()
		if err != nil {
			m.unregister()
			return nil, err
		}
	} else {
		w.needsReplay = true
	}
	if opts.Sync == SyncGroup {
		go w.syncLoop()
	} else {
		close(w.syncerDone)
	}
	first, last := w.Segments()
	w.logger.Info("opened wal", logKeyDir, opts.Dir, logKeyFirst, first, logKeyLast, last)
	return w, nil
}

// openSegmentLocked creates segment index, makes its directory entry durable
// (unless the policy is SyncNone) and makes it the open segment. The
// previous open segment, if any, must already be retired.
func (w *WAL) openSegmentLocked(index int) error {
	f, err := createSegment(w.opts.Dir, index)
	if err != nil {
		return err
	}
	if w.opts.Sync != SyncNone {
		if err := w.fsync(f); err != nil {
			f.Close()
			return w.poisonLocked(fmt.Errorf("sync segment %d: %w", index, err))
		}
		if err := syncDir(w.opts.Dir); err != nil {
			f.Close()
			return w.poisonLocked(err)
		}
	}
	w.f, w.seg, w.segOff = f, index, segmentHeaderSize
	w.m.segments.Inc()
	w.m.sizeBytes.Add(segmentHeaderSize)
	return nil
}

// Append writes rec as one record and returns its position once the record
// is durable under the sync policy: after an fdatasync that started after
// the record was written (SyncGroup, SyncAlways), or once the kernel has the
// bytes (SyncNone). It is safe for concurrent use; records of concurrent
// calls are written in some serial order. rec is not retained.
//
// If ctx ends while Append waits for a sync, Append returns the record's
// position and an error wrapping ctx.Err(); the record was written and may
// still become durable, so the caller must not assume it is absent (a
// retried export can then appear twice after a replay).
//
// A write or sync error fails the affected Appends and poisons the WAL:
// every later Append returns an error wrapping ErrPoisoned, and only a
// restart (Open and Replay) recovers.
func (w *WAL) Append(ctx context.Context, rec []byte) (Pos, error) {
	if err := checkRecordSize(len(rec)); err != nil {
		return Pos{}, err
	}
	if err := ctx.Err(); err != nil {
		return Pos{}, fmt.Errorf("append record: %w", err)
	}
	if w.opts.Sync != SyncGroup {
		w.mu.Lock()
		defer w.mu.Unlock()
		pos, err := w.writeLocked(rec)
		if err != nil || w.opts.Sync == SyncNone {
			return pos, err
		}
		start := time.Now()
		err = w.fsync(w.f)
		w.observeSync(start, 1)
		if err != nil {
			return pos, w.poisonLocked(fmt.Errorf("sync segment %d: %w", w.seg, err))
		}
		return pos, nil
	}

	w.active.Add(1)
	defer w.leave()
	w.mu.Lock()
	pos, err := w.writeLocked(rec)
	if err != nil {
		w.mu.Unlock()
		return pos, err
	}
	seq := w.written
	waiters := w.unsyncedWaiters.Add(1)
	// Wake the syncer if it may have to act now: this is the first record
	// of a new batch (it starts the window) or everyone has written.
	wake := w.written-uint64(recordHeaderSize+len(rec)) == w.captured || waiters >= w.active.Load()
	w.mu.Unlock()
	if wake {
		w.wake()
	}
	return pos, w.waitSynced(ctx, seq)
}

// checkRecordSize rejects payloads longer than MaxRecordSize.
func checkRecordSize(n int) error {
	if n > MaxRecordSize {
		return fmt.Errorf("append record of %d bytes: %w", n, ErrRecordTooLarge)
	}
	return nil
}

// leave ends an Append under SyncGroup. If the remaining Appends all wait
// for a sync, it wakes the syncer so that they need not wait out the window.
func (w *WAL) leave() {
	active := w.active.Add(-1)
	if waiters := w.unsyncedWaiters.Load(); waiters > 0 && waiters >= active {
		w.wake()
	}
}

// wake nudges the syncer without blocking.
func (w *WAL) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// writableLocked returns why the WAL cannot take writes, or nil.
func (w *WAL) writableLocked() error {
	switch {
	case w.closed:
		return ErrClosed
	case w.err != nil:
		return w.err
	case w.needsReplay:
		return ErrNotReplayed
	case w.f == nil:
		panic("BUG: wal has no open segment after replay")
	}
	return nil
}

// writeLocked writes rec to the open segment, moving to a new segment first
// if rec does not fit.
func (w *WAL) writeLocked(rec []byte) (Pos, error) {
	if err := w.writableLocked(); err != nil {
		return Pos{}, fmt.Errorf("append record: %w", err)
	}
	n := int64(recordHeaderSize + len(rec))
	if w.segOff > segmentHeaderSize && w.segOff+n > w.opts.SegmentSize {
		if err := w.rotateLocked(); err != nil {
			return Pos{}, fmt.Errorf("append record: %w", err)
		}
	}
	pos := Pos{Segment: w.seg, Offset: w.segOff}
	putRecordHeader(w.hdr[:], rec)
	// Two writes instead of copying rec behind the header: the payload is
	// copied once, by the kernel. A crash between them is a torn record,
	// which replay handles like any other.
	if _, err := w.f.Write(w.hdr[:]); err != nil {
		return pos, w.poisonLocked(fmt.Errorf("write record to segment %d: %w", w.seg, err))
	}
	if len(rec) > 0 {
		if _, err := w.f.Write(rec); err != nil {
			return pos, w.poisonLocked(fmt.Errorf("write record to segment %d: %w", w.seg, err))
		}
	}
	if w.written == w.captured && w.opts.Sync == SyncGroup {
		w.pendingAt = time.Now()
	}
	w.segOff += n
	w.written += uint64(n)
	w.m.recordsAppended.Inc()
	w.m.bytesAppended.Add(float64(n))
	w.m.sizeBytes.Add(float64(n))
	return pos, nil
}

// rotateLocked closes the open segment for writing and opens the next one.
// Under SyncGroup the old file goes to the syncer, which syncs and closes
// it; under SyncAlways every record in it is already synced.
func (w *WAL) rotateLocked() error {
	next := w.seg + 1
	f, err := createSegment(w.opts.Dir, next)
	if err != nil {
		// Nothing was lost: the open segment stays open and the next
		// Append tries again.
		return err
	}
	old := w.f
	switch w.opts.Sync {
	case SyncGroup:
		w.retired = append(w.retired, old)
		w.dirDirty = true
	case SyncAlways:
		if err := w.fsync(f); err != nil {
			f.Close()
			return w.poisonLocked(fmt.Errorf("sync segment %d: %w", next, err))
		}
		if err := syncDir(w.opts.Dir); err != nil {
			f.Close()
			return w.poisonLocked(err)
		}
		w.closeFile(old, w.seg)
	case SyncNone:
		w.closeFile(old, w.seg)
	}
	w.closedSegs = append(w.closedSegs, segmentInfo{index: w.seg, size: w.segOff})
	w.closedBytes += w.segOff
	w.f, w.seg, w.segOff = f, next, segmentHeaderSize
	w.m.segments.Inc()
	w.m.sizeBytes.Add(segmentHeaderSize)
	return nil
}

// closeFile closes a segment file whose data needs no further sync; an
// error is only logged because no record depends on it.
func (w *WAL) closeFile(f *os.File, index int) {
	if err := f.Close(); err != nil {
		w.logger.Warn("close wal segment", logKeySegment, index, logKeyErr, err)
	}
}

// poisonLocked records err as the reason the WAL refuses writes, releases
// every waiter, and returns the error Appends report from now on.
func (w *WAL) poisonLocked(err error) error {
	if w.err == nil {
		w.err = fmt.Errorf("%w: %w", ErrPoisoned, err)
		w.m.poisoned.Set(1)
		w.logger.Error("wal write or sync failed; refusing appends until restart", logKeyErr, err)
		close(w.syncDone)
		w.syncDone = make(chan struct{})
	}
	return w.err
}

// waitSynced waits until the bytes up to seq are synced, the WAL is
// poisoned, or ctx ends.
func (w *WAL) waitSynced(ctx context.Context, seq uint64) error {
	w.mu.Lock()
	for {
		if w.synced >= seq {
			w.mu.Unlock()
			return nil
		}
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return fmt.Errorf("sync record: %w", err)
		}
		done := w.syncDone
		w.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			w.mu.Lock()
			if seq > w.captured {
				w.unsyncedWaiters.Add(-1)
			}
			w.mu.Unlock()
			return fmt.Errorf("wait for sync (the record may still become durable): %w", ctx.Err())
		}
		w.mu.Lock()
	}
}

// syncBatch is what one group commit syncs.
type syncBatch struct {
	seq     uint64     // written when the batch was captured
	retired []*os.File // rotated segments, synced then closed
	cur     *os.File   // the open segment
	dir     bool       // sync the directory too
}

// syncLoop is the group-commit syncer: the one goroutine that syncs under
// SyncGroup. A batch starts when the window since the first unsynced record
// has passed, when every Append in progress is waiting, or when the WAL is
// closing; it covers every record written before it started.
func (w *WAL) syncLoop() {
	defer close(w.syncerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var batch syncBatch
	for {
		w.mu.Lock()
		pending := w.written > w.captured && w.err == nil
		var wait time.Duration
		fire := false
		if pending {
			wait = time.Until(w.pendingAt.Add(w.opts.GroupCommitWindow))
			fire = w.closed || wait <= 0 || w.unsyncedWaiters.Load() >= w.active.Load()
		}
		if fire {
			batch = syncBatch{seq: w.written, retired: append(batch.retired[:0], w.retired...), cur: w.f, dir: w.dirDirty}
			clear(w.retired)
			w.retired = w.retired[:0]
			w.dirDirty = false
			w.captured = w.written
			w.unsyncedWaiters.Store(0)
			w.mu.Unlock()
			w.commit(&batch)
			continue
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			return
		}
		if pending {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-w.kick:
				timer.Stop()
			case <-w.stop:
				timer.Stop()
			}
			continue
		}
		select {
		case <-w.kick:
		case <-w.stop:
		}
	}
}

// commit syncs one batch and publishes the result to the waiters.
func (w *WAL) commit(b *syncBatch) {
	start := time.Now()
	var errs []error
	for _, f := range b.retired {
		if err := w.fsync(f); err != nil {
			errs = append(errs, fmt.Errorf("sync segment: %w", err))
		}
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close segment: %w", err))
		}
	}
	clear(b.retired)
	if err := w.fsync(b.cur); err != nil {
		errs = append(errs, fmt.Errorf("sync segment: %w", err))
	}
	if b.dir {
		if err := syncDir(w.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	w.observeSync(start, len(b.retired)+1)
	w.mu.Lock()
	if len(errs) > 0 {
		w.poisonLocked(errors.Join(errs...))
	} else {
		w.synced = b.seq
		close(w.syncDone)
		w.syncDone = make(chan struct{})
	}
	w.mu.Unlock()
}

// observeSync records one sync round of n files that started at start.
func (w *WAL) observeSync(start time.Time, n int) {
	w.m.fsyncs.Add(float64(n))
	w.m.fsyncDuration.Observe(time.Since(start).Seconds())
}

// Cut closes the open segment for writing and starts a new one, returning
// the new segment's index. Every record whose Append returned before Cut was
// called is in a segment below that index, so once those records are in a
// block the caller may Truncate(index). If the open segment holds no record
// yet, Cut keeps it and returns its index.
func (w *WAL) Cut() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.writableLocked(); err != nil {
		return 0, fmt.Errorf("cut segment: %w", err)
	}
	if w.segOff == segmentHeaderSize {
		return w.seg, nil
	}
	if err := w.rotateLocked(); err != nil {
		return 0, fmt.Errorf("cut segment: %w", err)
	}
	return w.seg, nil
}

// Truncate deletes the segments with an index below before, oldest first.
// It never deletes the open segment, nor, before Replay, the last segment on
// disk. It must not be called for segments whose records are not yet in a
// block.
func (w *WAL) Truncate(before int) error {
	w.truncMu.Lock()
	defer w.truncMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("truncate wal: %w", ErrClosed)
	}
	limit := len(w.closedSegs)
	if w.f == nil && limit > 0 {
		limit--
	}
	n := 0
	var bytes int64
	for n < limit && w.closedSegs[n].index < before {
		bytes += w.closedSegs[n].size
		n++
	}
	victims := slices.Clone(w.closedSegs[:n])
	w.closedSegs = slices.Delete(w.closedSegs, 0, n)
	w.closedBytes -= bytes
	w.mu.Unlock()
	if n == 0 {
		return nil
	}
	w.m.segments.Sub(float64(n))
	w.m.sizeBytes.Sub(float64(bytes))
	w.m.truncations.Inc()
	var errs []error
	for _, s := range victims {
		err := os.Remove(filepath.Join(w.opts.Dir, segmentName(s.index)))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove segment %d: %w", s.index, err))
		}
	}
	if w.opts.Sync != SyncNone {
		if err := syncDir(w.opts.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	w.logger.Info("truncated wal", logKeyFirst, victims[0].index, logKeyLast, victims[n-1].index, logKeyBytes, bytes)
	if len(errs) > 0 {
		return fmt.Errorf("truncate wal: %w", errors.Join(errs...))
	}
	return nil
}

// Segments returns the indexes of the first and last segment on disk, the
// last being the open one once the WAL takes appends; both are -1 if there
// are none.
func (w *WAL) Segments() (first, last int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	first, last = -1, -1
	if len(w.closedSegs) > 0 {
		first, last = w.closedSegs[0].index, w.closedSegs[len(w.closedSegs)-1].index
	}
	if w.f != nil {
		if first < 0 {
			first = w.seg
		}
		last = w.seg
	}
	return first, last
}

// Size returns the bytes on disk in segment files.
func (w *WAL) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.closedBytes
	}
	return w.closedBytes + w.segOff
}

// Close waits for pending syncs, syncs the open segment (under every
// policy, SyncNone included), and closes the files. Appends that are still
// waiting complete first. It is idempotent; later calls return the first
// call's result.
func (w *WAL) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
		<-w.syncerDone

		w.mu.Lock()
		defer w.mu.Unlock()
		var errs []error
		if w.err != nil {
			errs = append(errs, w.err)
		}
		for _, f := range w.retired {
			if w.err == nil {
				if err := w.fsync(f); err != nil {
					errs = append(errs, fmt.Errorf("sync segment: %w", err))
				}
			}
			if err := f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close segment: %w", err))
			}
		}
		w.retired = nil
		if w.f != nil {
			if w.err == nil {
				if err := w.fsync(w.f); err != nil {
					errs = append(errs, fmt.Errorf("sync segment %d: %w", w.seg, err))
				}
			}
			if err := w.f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close segment %d: %w", w.seg, err))
			}
			w.closedSegs = append(w.closedSegs, segmentInfo{index: w.seg, size: w.segOff})
			w.closedBytes += w.segOff
			w.f = nil
		}
		w.m.unregister()
		if len(errs) > 0 {
			w.closeErr = fmt.Errorf("close wal: %w", errors.Join(errs...))
		}
		w.logger.Info("closed wal", logKeyDir, w.opts.Dir)
	})
	return w.closeErr
}
