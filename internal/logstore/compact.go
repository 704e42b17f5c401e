package logstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/logs"
)

// Compact merges runs of consecutive small blocks (oldest first) into one
// block of at most MaxBlockRecords records, until no run of
// CompactMinBlocks blocks fits. The new block lists its sources and is
// durable before they are deleted; queries still reading a source keep it
// until they are done. Compact runs in the background loop (serialized
// with flushes) and may be called directly.
func (db *DB) Compact(ctx context.Context) {
	if db.cfg.CompactMinBlocks < 0 {
		return
	}
	db.compactMu.Lock() // one compaction at a time (loop and admin API)
	defer db.compactMu.Unlock()
	for ctx.Err() == nil {
		run := db.pickRun()
		if run == nil {
			return
		}
		if err := db.compactRun(ctx, run); err != nil {
			db.m.compactionFailures.Inc()
			db.log.Error("compact log blocks", "blocks", len(run), "err", err)
			for _, b := range run {
				b.release()
			}
			return
		}
	}
}

// pickRun returns the oldest run of at least CompactMinBlocks consecutive
// blocks whose records fit in one block, each acquired; nil when none.
func (db *DB) pickRun() []*diskBlock {
	db.mu.Lock()
	defer db.mu.Unlock()
	min := max(db.cfg.CompactMinBlocks, 2)
	// A block of a quarter of the bound or more is not merged again, which
	// bounds how often a record is rewritten.
	small := int64(db.cfg.MaxBlockRecords / 4)
	for i := 0; i < len(db.blocks); i++ {
		var total int64
		j := i
		for j < len(db.blocks) && db.blocks[j].meta.Records < small && total+db.blocks[j].meta.Records <= int64(db.cfg.MaxBlockRecords) {
			total += db.blocks[j].meta.Records
			j++
		}
		if j-i >= min {
			run := slices.Clone(db.blocks[i:j])
			for _, b := range run {
				b.acquire()
			}
			return run
		}
	}
	return nil
}

func (db *DB) compactRun(ctx context.Context, run []*diskBlock) error {
	start := time.Now()
	var recs []logs.Record
	meta := Meta{Tenant: db.opts.Tenant, CreatedAt: db.now().UnixNano()}
	for _, b := range run {
		for g := range b.meta.RowGroups {
			rs, err := b.readRowGroup(ctx, g)
			if err != nil {
				return err
			}
			recs = append(recs, rs...)
		}
		meta.Sources = append(meta.Sources, b.meta.ID)
		meta.WALSegmentEnd = max(meta.WALSegmentEnd, b.meta.WALSegmentEnd)
		meta.LastArrival = max(meta.LastArrival, b.meta.LastArrival)
	}
	meta.ID = newBlockID(db.now())
	m, err := writeBlock(ctx, db.bkt, db.blockDir(meta.ID), recs, meta)
	var nb *blockReader
	if err == nil {
		nb, err = openBlock(ctx, db.bkt, db.blockDir(meta.ID))
	}
	if err != nil {
		_ = db.deleteBlock(ctx, meta.ID)
		return err
	}
	// Swap the sources for the new block.
	db.mu.Lock()
	src := map[string]bool{}
	for _, id := range meta.Sources {
		src[id] = true
	}
	keep := db.blocks[:0:0]
	for _, b := range db.blocks {
		if !src[b.meta.ID] {
			keep = append(keep, b)
		}
	}
	if len(keep) != len(db.blocks)-len(run) {
		// Retention took a source meanwhile: its records must not come
		// back. Drop the new block; the next round starts over.
		db.mu.Unlock()
		_ = db.deleteBlock(ctx, meta.ID)
		for _, b := range run {
			b.release()
		}
		return nil
	}
	// Blocks stay in ID order (as at open); the new block's ID is the
	// newest.
	keep = append(keep, newDiskBlock(nb))
	slices.SortFunc(keep, func(a, b *diskBlock) int { return strings.Compare(a.meta.ID, b.meta.ID) })
	db.blocks = keep
	for _, b := range run {
		b.deleted = func() {
			if err := db.deleteBlock(ctx, b.meta.ID); err != nil {
				db.log.Error("delete compacted log block", "block", b.meta.ID, "err", err)
			}
		}
	}
	db.updateBlockMetricsLocked()
	db.mu.Unlock()
	for _, b := range run {
		b.release() // the store's reference
		b.release() // pickRun's
	}
	db.m.compactions.Inc()
	db.log.Info("log blocks compacted", "block", meta.ID, "sources", len(run), "records", m.Records, "bytes", m.Size(), "took", time.Since(start))
	return nil
}
