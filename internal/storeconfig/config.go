// Package storeconfig holds the settings of clew's trace store (the
// store: section of the configuration file), their defaults and their
// validation. It is a leaf so that the configuration's schema does not
// pull in the store itself: internal/config and internal/store both
// import it.
package storeconfig

import (
	"errors"
	"fmt"
	"time"

	"github.com/clew-dev/clew/internal/wal"
)

// Config holds the user-facing settings of one tenant's store.
type Config struct {
	// MaxHeadSpans cuts the head into a block once it holds this many spans.
	MaxHeadSpans int `yaml:"max_head_spans"`
	// MaxHeadBytes cuts the head once its in-memory size reaches this.
	MaxHeadBytes int64 `yaml:"max_head_bytes"`
	// MaxHeadAge cuts the head once its oldest span arrived this long ago.
	MaxHeadAge time.Duration `yaml:"max_head_age"`
	// MaxPendingFlushes is how many sealed heads may wait to be written
	// before new writes are refused with ErrOverloaded (senders retry).
	MaxPendingFlushes int `yaml:"max_pending_flushes"`

	// Retention drops blocks whose newest data arrived longer ago than this.
	// 0 keeps data forever.
	Retention time.Duration `yaml:"retention"`
	// MaxDiskBytes drops the oldest blocks while blocks and write-ahead log
	// together exceed this size. 0 means no limit.
	MaxDiskBytes int64 `yaml:"max_disk_bytes"`

	// CompactionInterval is how often small blocks are considered for
	// merging; 0 disables compaction.
	CompactionInterval time.Duration `yaml:"compaction_interval"`
	// CompactionMinBlocks is how many blocks of one level are merged at once.
	CompactionMinBlocks int `yaml:"compaction_min_blocks"`
	// MaxBlockSpans bounds the size of a compacted block.
	MaxBlockSpans int64 `yaml:"max_block_spans"`

	// PageCacheBytes bounds the shared cache of decoded block pages.
	PageCacheBytes int64 `yaml:"page_cache_bytes"`

	// WALSync is the write-ahead log's durability policy: "group" (default:
	// group-committed fsync), "always" or "none".
	WALSync wal.SyncPolicy `yaml:"wal_sync"`
	// WALGroupCommitWindow bounds the latency group commit adds to a write.
	WALGroupCommitWindow time.Duration `yaml:"wal_group_commit_window"`
	// WALSegmentBytes is the size at which a log segment is rotated.
	WALSegmentBytes int64 `yaml:"wal_segment_bytes"`

	// QueryTimeout bounds every query.
	QueryTimeout time.Duration `yaml:"query_timeout"`
}

// DefaultConfig returns the settings clew runs with when none are given.
func DefaultConfig() Config {
	return Config{
		MaxHeadSpans:         250_000,
		MaxHeadBytes:         8 << 20,
		MaxHeadAge:           time.Minute,
		MaxPendingFlushes:    1,
		Retention:            7 * 24 * time.Hour,
		CompactionInterval:   15 * time.Second,
		CompactionMinBlocks:  4,
		MaxBlockSpans:        4_000_000,
		PageCacheBytes:       16 << 20,
		WALSync:              wal.SyncGroup,
		WALGroupCommitWindow: 2 * time.Millisecond,
		WALSegmentBytes:      64 << 20,
		QueryTimeout:         30 * time.Second,
	}
}

// Validate reports settings that cannot work, saying what to change.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxHeadSpans <= 0 {
		errs = append(errs, fmt.Errorf("max_head_spans must be positive, got %d", c.MaxHeadSpans))
	}
	if c.MaxHeadBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_head_bytes must be positive, got %d", c.MaxHeadBytes))
	}
	if c.MaxHeadAge <= 0 {
		errs = append(errs, fmt.Errorf("max_head_age must be positive, got %s", c.MaxHeadAge))
	}
	if c.MaxPendingFlushes <= 0 {
		errs = append(errs, fmt.Errorf("max_pending_flushes must be positive, got %d", c.MaxPendingFlushes))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("retention must not be negative, got %s", c.Retention))
	}
	if c.MaxDiskBytes < 0 {
		errs = append(errs, fmt.Errorf("max_disk_bytes must not be negative, got %d", c.MaxDiskBytes))
	}
	if c.CompactionInterval < 0 {
		errs = append(errs, fmt.Errorf("compaction_interval must not be negative, got %s", c.CompactionInterval))
	}
	if c.CompactionMinBlocks < 2 {
		errs = append(errs, fmt.Errorf("compaction_min_blocks must be at least 2, got %d", c.CompactionMinBlocks))
	}
	if c.MaxBlockSpans <= 0 {
		errs = append(errs, fmt.Errorf("max_block_spans must be positive, got %d", c.MaxBlockSpans))
	}
	if c.PageCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("page_cache_bytes must not be negative, got %d", c.PageCacheBytes))
	}
	switch c.WALSync {
	case wal.SyncGroup, wal.SyncAlways, wal.SyncNone:
	default:
		errs = append(errs, fmt.Errorf("wal_sync must be one of group, always, none; got %q", c.WALSync))
	}
	if c.WALGroupCommitWindow < 0 || c.WALGroupCommitWindow > time.Second {
		errs = append(errs, fmt.Errorf("wal_group_commit_window must be between 0 and 1s, got %s", c.WALGroupCommitWindow))
	}
	if c.WALSegmentBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("wal_segment_bytes must be at least 1 MiB, got %d", c.WALSegmentBytes))
	}
	if c.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query_timeout must be positive, got %s", c.QueryTimeout))
	}
	return errors.Join(errs...)
}
