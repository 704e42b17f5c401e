// Package storetest opens a real store for the tests of the packages
// that read through the storage contract (engine, api, the front ends,
// detect): the store's own test support, so that no production package
// but internal/app imports the store.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store"
)

// OpenStore opens a store on a temporary directory (write-ahead log without
// fsync, filesystem bucket), appends each batch and closes the store when
// the test ends.
func OpenStore(t testing.TB, batches ...*span.Batch) *store.DB {
	t.Helper()
	dir := t.TempDir()
	bkt, err := filesystem.NewBucket(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.DefaultConfig()
	cfg.WALSync = "none"
	db, err := store.Open(context.Background(), cfg, store.Options{Tenant: "t", WALDir: filepath.Join(dir, "wal"), Bucket: bkt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, b := range batches {
		if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
			t.Fatal(err)
		}
	}
	return db
}
