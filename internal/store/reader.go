package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/storage"
)

// DB keeps the read and admin contracts of internal/storage.
var (
	_ storage.Reader = (*DB)(nil)
	_ storage.Admin  = (*DB)(nil)
)

// enter checks, at the start of a read, that ctx is not done and that it
// asks for this DB's tenant (or for none: the default tenant is the DB's).
func (db *DB) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t, ok := storage.TenantFrom(ctx); ok && t != db.tenant() {
		return fmt.Errorf("tenant %q: %w (this store holds %q)", t, storage.ErrUnknownTenant, db.tenant())
	}
	return nil
}

// tenant returns the tenant the DB holds.
func (db *DB) tenant() string { return strings.TrimSuffix(db.prefix, "/") }

// Stats returns a snapshot of the store's state.
func (db *DB) Stats(context.Context) storage.Stats {
	db.mu.Lock()
	defer db.mu.Unlock()
	s := storage.Stats{PendingFlushes: len(db.flushing)}
	db.head.mu.RLock()
	s.HeadSpans = db.head.b.Len()
	db.head.mu.RUnlock()
	for _, b := range db.blocks {
		s.Blocks = append(s.Blocks, blockMeta(b.meta))
	}
	return s
}

// blockMeta copies a block's meta.json (block.Meta is storage.BlockMeta)
// for a caller that owns the copy: slices and maps are cloned.
func blockMeta(m block.Meta) storage.BlockMeta {
	out := m
	out.Services = slices.Clone(m.Services)
	out.Sources = slices.Clone(m.Sources)
	out.SpanNames = cloneLists(m.SpanNames)
	out.AttrKeys = cloneLists(m.AttrKeys)
	return out
}

func cloneLists(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}
