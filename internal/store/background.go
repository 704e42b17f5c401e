package store

import (
	"context"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/block"
)

// backgroundLoop runs compaction and retention.
func (db *DB) backgroundLoop() {
	defer db.done.Done()
	interval := db.cfg.CompactionInterval
	if interval <= 0 {
		interval = time.Minute
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-db.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		db.applyRetention(ctx)
		if db.cfg.CompactionInterval > 0 {
			for db.compactOnce(ctx) {
			}
		}
		cancel()
	}
}

// snapshotBlocks returns the live blocks, each acquired; the caller
// releases them.
func (db *DB) snapshotBlocks() []*diskBlock {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := slices.Clone(db.blocks)
	for _, b := range out {
		b.acquire()
	}
	return out
}

func releaseAll(bs []*diskBlock) {
	for _, b := range bs {
		b.release()
	}
}

// planCompaction picks the oldest run of CompactionMinBlocks blocks of the
// lowest level that has that many, whose spans together stay within
// MaxBlockSpans. It returns nil when there is nothing to do.
func planCompaction(blocks []block.Meta, minBlocks int, maxSpans int64) []block.Meta {
	byLevel := map[int][]block.Meta{}
	levels := []int{}
	for _, m := range blocks {
		if _, ok := byLevel[m.Level]; !ok {
			levels = append(levels, m.Level)
		}
		byLevel[m.Level] = append(byLevel[m.Level], m)
	}
	slices.Sort(levels)
	for _, lvl := range levels {
		ms := byLevel[lvl]
		slices.SortFunc(ms, func(a, b block.Meta) int { return cmpString(a.ID, b.ID) })
		var run []block.Meta
		var spans int64
		for _, m := range ms {
			if m.Spans >= maxSpans {
				run, spans = nil, 0
				continue
			}
			// Slide the window: drop from the front until m fits.
			for len(run) > 0 && spans+m.Spans > maxSpans {
				spans -= run[0].Spans
				run = run[1:]
			}
			run = append(run, m)
			spans += m.Spans
			if len(run) >= minBlocks {
				return run
			}
		}
	}
	return nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compactOnce merges one planned set of blocks. It reports whether it did.
func (db *DB) compactOnce(ctx context.Context) bool {
	db.bgMu.Lock()
	defer db.bgMu.Unlock()
	snap := db.snapshotBlocks()
	defer releaseAll(snap)
	metas := make([]block.Meta, len(snap))
	for i, b := range snap {
		metas[i] = b.meta
	}
	plan := planCompaction(metas, db.cfg.CompactionMinBlocks, db.cfg.MaxBlockSpans)
	if plan == nil {
		return false
	}
	var inputs []*block.Reader
	var srcIDs []string
	level := 0
	var created int64
	walEnd := 0
	for _, p := range plan {
		for _, b := range snap {
			if b.meta.ID == p.ID {
				inputs = append(inputs, b.Reader)
			}
		}
		srcIDs = append(srcIDs, p.ID)
		level = max(level, p.Level+1)
		created = max(created, p.CreatedAt)
		walEnd = max(walEnd, p.WALSegmentEnd)
	}
	start := time.Now()
	id := newBlockID(db.now())
	meta, err := block.Compact(ctx, db.bkt, db.blockDir(id), block.Meta{
		ID: id, Tenant: db.opts.Tenant, Level: level, CreatedAt: created,
		WALSegmentEnd: walEnd, Sources: srcIDs,
	}, inputs)
	var r *block.Reader
	if err == nil {
		r, err = block.Open(ctx, db.bkt, db.blockDir(id), db.readerOptions())
	}
	if err != nil {
		db.m.compactionFails.Inc()
		db.log.Error("compact blocks", "inputs", srcIDs, "err", err)
		_ = db.deleteBlock(context.Background(), id)
		return false
	}
	db.m.compactions.Inc()
	db.m.compactionTime.Observe(time.Since(start).Seconds())
	removed := db.replaceBlocks(srcIDs, newDiskBlock(r))
	for _, b := range removed {
		db.retire(b, "compacted")
	}
	db.log.Info("blocks compacted", "block", id, "level", level, "inputs", len(srcIDs), "spans", meta.Spans, "bytes", meta.Size, "took", time.Since(start))
	return true
}

// replaceBlocks removes the blocks with the given IDs from the live set and
// adds nb (if not nil). It returns the removed blocks, still holding their
// live reference for the caller to release.
func (db *DB) replaceBlocks(ids []string, nb *diskBlock) []*diskBlock {
	db.mu.Lock()
	defer db.mu.Unlock()
	var removed []*diskBlock
	kept := db.blocks[:0:0]
	for _, b := range db.blocks {
		if slices.Contains(ids, b.meta.ID) {
			removed = append(removed, b)
		} else {
			kept = append(kept, b)
		}
	}
	if nb != nil {
		kept = append(kept, nb)
		slices.SortFunc(kept, func(a, b *diskBlock) int { return cmpString(a.meta.ID, b.meta.ID) })
	}
	db.blocks = kept
	db.updateBlockMetricsLocked()
	return removed
}

// applyRetention deletes blocks whose newest data arrived before the
// retention period, then the oldest blocks while the store exceeds its
// disk budget.
func (db *DB) applyRetention(ctx context.Context) {
	db.bgMu.Lock()
	defer db.bgMu.Unlock()
	db.mu.Lock()
	metas := make([]block.Meta, len(db.blocks))
	for i, b := range db.blocks {
		metas[i] = b.meta
	}
	db.mu.Unlock()
	var drop []string
	reason := map[string]string{}
	if ret := db.retention(); ret > 0 {
		cutoff := db.now().Add(-ret).UnixNano()
		for _, m := range metas {
			if m.CreatedAt < cutoff {
				drop = append(drop, m.ID)
				reason[m.ID] = "age"
			}
		}
	}
	if db.cfg.MaxDiskBytes > 0 {
		total := db.wal.Size()
		for _, m := range metas {
			if reason[m.ID] == "" {
				total += m.Size
			}
		}
		// Oldest first by creation, then ID.
		order := slices.Clone(metas)
		slices.SortFunc(order, func(a, b block.Meta) int {
			if a.CreatedAt != b.CreatedAt {
				if a.CreatedAt < b.CreatedAt {
					return -1
				}
				return 1
			}
			return cmpString(a.ID, b.ID)
		})
		for _, m := range order {
			if total <= db.cfg.MaxDiskBytes {
				break
			}
			if reason[m.ID] != "" {
				continue
			}
			drop = append(drop, m.ID)
			reason[m.ID] = "disk"
			total -= m.Size
		}
	}
	if len(drop) == 0 {
		return
	}
	removed := db.replaceBlocks(drop, nil)
	for _, b := range removed {
		db.m.retentionDeleted.WithLabelValues(reason[b.meta.ID]).Inc()
		db.log.Info("block deleted by retention", "block", b.meta.ID, "reason", reason[b.meta.ID], "spans", b.meta.Spans)
		db.retire(b, "retention")
	}
}

// retire drops the live reference of a block already removed from the live
// set; its objects are deleted once the last query reading it is done. A
// crash before then leaves a block that the next start deletes again (it
// is listed as a compaction source, or is still past retention).
func (db *DB) retire(b *diskBlock, why string) {
	id := b.meta.ID
	b.onFree = func() {
		if err := db.deleteBlock(context.Background(), id); err != nil {
			db.log.Error("delete block", "block", id, "why", why, "err", err)
		}
	}
	b.release()
}

// retention is the age past which blocks are dropped: the tenant's
// override when Options.Retention gives one, else Config.Retention.
func (db *DB) retention() time.Duration {
	if db.opts.Retention != nil {
		if r := db.opts.Retention(); r > 0 {
			return r
		}
	}
	return db.cfg.Retention
}

// RunRetention applies retention now (for tests and the admin API).
func (db *DB) RunRetention(ctx context.Context) { db.applyRetention(ctx) }

// Compact runs compaction until nothing is left to merge (for tests and
// the admin API).
func (db *DB) Compact(ctx context.Context) {
	for db.compactOnce(ctx) {
	}
}
