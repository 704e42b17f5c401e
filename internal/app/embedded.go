package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/fsbucket"
	"github.com/clew-dev/clew/internal/logstore"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/storeconfig"
)

// Store is the trace store as a program that runs clew's components in
// process sees it (tools/topologyscore): the read contract, appends of
// already-decoded batches with their encoded request, and Close.
type Store interface {
	storage.Reader
	// Append makes the batch durable and searchable; raw is the batch's
	// OTLP protobuf encoding, written to the write-ahead log.
	Append(ctx context.Context, raw []byte, b *span.Batch) error
	Close() error
}

// OpenStore opens one tenant's trace store in dir as Run does (blocks in
// dir/blocks through the durable local bucket, the write-ahead log in
// dir/wal/<tenant>), without a server around it. log and reg may be nil.
func OpenStore(ctx context.Context, cfg storeconfig.Config, tenant, dir string, log *slog.Logger, reg prometheus.Registerer) (Store, error) {
	return openStore(ctx, cfg, tenant, dir, log, reg)
}

func openStore(ctx context.Context, cfg storeconfig.Config, tenant, dir string, log *slog.Logger, reg prometheus.Registerer) (*store.DB, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	bkt, err := openBucket(dir, log, reg)
	if err != nil {
		return nil, err
	}
	db, err := openTenantStore(ctx, cfg, bkt, tenant, dir, nil, log, reg)
	if err != nil {
		bkt.Close()
		return nil, err
	}
	return db, nil
}

// openBucket opens the durable local bucket of the blocks under dir. It
// keeps the filesystem bucket's layout: data directories written before it
// are read as they are.
func openBucket(dir string, log *slog.Logger, reg prometheus.Registerer) (objstore.Bucket, error) {
	bkt, err := fsbucket.Open(filepath.Join(dir, "blocks"), fsbucket.Options{Logger: log, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("open block bucket: %w", err)
	}
	return bkt, nil
}

// openTenantStore opens one tenant's store on bkt, with its write-ahead
// log in dir/wal/<tenant>. The store labels its metrics by tenant itself.
func openTenantStore(ctx context.Context, cfg storeconfig.Config, bkt objstore.Bucket, tenant, dir string, retention func() time.Duration, log *slog.Logger, reg prometheus.Registerer) (*store.DB, error) {
	db, err := store.Open(ctx, cfg, store.Options{
		Tenant:     tenant,
		WALDir:     filepath.Join(dir, "wal", tenant),
		Bucket:     bkt,
		Logger:     log,
		Registerer: reg,
		Retention:  retention,
	})
	if err != nil {
		return nil, fmt.Errorf("open store of tenant %s: %w", tenant, err)
	}
	return db, nil
}

// openLogStore opens one tenant's log store on bkt (blocks under
// <tenant>/logs/), with its write-ahead log in dir/wal-logs/<tenant>; it
// takes retention, head age and the write-ahead log's policy from the
// trace store's settings, so that logs need no configuration of their own.
func openLogStore(ctx context.Context, cfg storeconfig.Config, bkt objstore.Bucket, tenant, dir string, log *slog.Logger, reg prometheus.Registerer) (*logstore.DB, error) {
	lc := logstore.DefaultConfig()
	lc.Retention = cfg.Retention
	lc.MaxHeadAge = cfg.MaxHeadAge
	lc.MaxPendingFlushes = cfg.MaxPendingFlushes
	lc.WALSync = cfg.WALSync
	lc.WALGroupCommitWindow = cfg.WALGroupCommitWindow
	lc.WALSegmentBytes = cfg.WALSegmentBytes
	db, err := logstore.Open(ctx, lc, logstore.Options{
		Tenant:     tenant,
		WALDir:     filepath.Join(dir, "wal-logs", tenant),
		Bucket:     bkt,
		Logger:     log,
		Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("open log store of tenant %s: %w", tenant, err)
	}
	return db, nil
}
