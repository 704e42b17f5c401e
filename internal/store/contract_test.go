package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/storage/storagetest"
)

// TestReaderContract runs the storage.Reader contract suite on the store,
// with the data spread over three blocks and the head: every trace and the
// duplicate span cross a block boundary.
func TestReaderContract(t *testing.T) {
	storagetest.Run(t, "t1", func(t *testing.T, tenant string, batches []*span.Batch) storage.Reader {
		db := openTestDB(t, t.TempDir(), testConfig(), &fakeClock{})
		t.Cleanup(func() { db.Close() })
		if db.tenant() != tenant {
			t.Fatalf("test store holds tenant %q, want %q", db.tenant(), tenant)
		}
		for i, b := range batches {
			if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
				t.Fatal(err)
			}
			if i < len(batches)-1 {
				if err := db.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if st := db.Stats(context.Background()); len(st.Blocks) != len(batches)-1 || st.HeadSpans == 0 {
			t.Fatalf("stats %+v: want %d blocks and a head", st, len(batches)-1)
		}
		return db.DB
	})
}

// TestBlockMetaJSON pins storage.BlockMeta's JSON form to block.Meta's
// (meta.json), which GET /api/v1/status served before the contract had
// its own type, and checks that Stats hands out copies.
func TestBlockMetaJSON(t *testing.T) {
	m := block.Meta{
		Version: 2, ID: "01J", Tenant: "t1", Level: 1, MinTime: 1 << 62, MaxTime: 1<<62 + 5,
		CreatedAt: 7, WALSegmentEnd: 3, Spans: 10, Traces: 4, Size: 999,
		Services:  []string{"a", "b"},
		SpanNames: map[string][]string{"a": {"x"}},
		AttrKeys:  map[string][]string{"span": {"k"}},
		Sources:   []string{"01H"},
	}
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	bm := blockMeta(m)
	got, err := json.Marshal(bm)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("storage.BlockMeta JSON\n%s\nwant block.Meta's\n%s", got, want)
	}
	bm.Services[0] = "changed"
	bm.SpanNames["a"][0] = "changed"
	if m.Services[0] != "a" || m.SpanNames["a"][0] != "x" {
		t.Error("blockMeta shares slices with the block's meta")
	}
}

// TestFederatedReaderContract runs the contract suite on a read across
// two tenants (storage.Federate): each trace is held by one of two stores,
// and the federated reader must answer as one store holding them all.
func TestFederatedReaderContract(t *testing.T) {
	storagetest.Run(t, "t1", func(t *testing.T, tenant string, batches []*span.Batch) storage.Reader {
		dbs := map[string]*DB{}
		for _, name := range []string{"a", "b"} {
			db := openTestDB(t, t.TempDir(), testConfig(), &fakeClock{})
			t.Cleanup(func() { db.Close() })
			dbs[name] = db.DB
		}
		for i, b := range batches {
			// Split the batch by trace: a trace lives in one tenant.
			parts := map[string]*span.Batch{}
			for _, sp := range b.Spans {
				name := "a"
				if sp.TraceID[15]%2 == 1 {
					name = "b"
				}
				if parts[name] == nil {
					parts[name] = &span.Batch{Resources: b.Resources, Scopes: b.Scopes}
				}
				parts[name].Spans = append(parts[name].Spans, sp)
			}
			for name, p := range parts {
				if err := dbs[name].Append(context.Background(), otlp.MarshalProto(nil, p), p); err != nil {
					t.Fatal(err)
				}
			}
			if i < len(batches)-1 {
				for _, db := range dbs {
					if err := db.Flush(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		return tenantGate{tenant: tenant, Reader: storage.Federate(byTenant(dbs), []string{"a", "b"})}
	})
}

// byTenant is a Reader over stores of several tenants, by the tenant in
// the context (each test store holds tenant "t1").
type byTenant map[string]*DB

func (m byTenant) of(ctx context.Context) (*DB, context.Context, error) {
	t, _ := storage.TenantFrom(ctx)
	db, ok := m[t]
	if !ok {
		return nil, nil, fmt.Errorf("tenant %q: %w", t, storage.ErrUnknownTenant)
	}
	return db, storage.WithTenant(ctx, db.tenant()), nil
}

func (m byTenant) Search(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return storage.SearchResult{}, err
	}
	return db.Search(ctx, q, limit, after)
}

func (m byTenant) SearchPage(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return storage.SearchResult{}, err
	}
	return db.SearchPage(ctx, q, limit, after)
}

func (m byTenant) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return nil, false, err
	}
	return db.FindTrace(ctx, id)
}

func (m byTenant) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return err
	}
	return db.ScanSpans(ctx, q, cols, fn)
}

func (m byTenant) Services(ctx context.Context) ([]string, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return nil, err
	}
	return db.Services(ctx)
}

func (m byTenant) SpanNames(ctx context.Context, service string) ([]string, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return nil, err
	}
	return db.SpanNames(ctx, service)
}

func (m byTenant) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return nil, err
	}
	return db.AttrKeys(ctx, scope)
}

func (m byTenant) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	db, ctx, err := m.of(ctx)
	if err != nil {
		return nil, err
	}
	return db.AttrValues(ctx, scope, key, limit)
}

// tenantGate answers only calls for its tenant (or none), as the
// contract's tenant check asks of a Reader, before the federated read.
type tenantGate struct {
	tenant string
	storage.Reader
}

func (g tenantGate) check(ctx context.Context) error {
	if t, ok := storage.TenantFrom(ctx); ok && t != g.tenant {
		return fmt.Errorf("tenant %q: %w", t, storage.ErrUnknownTenant)
	}
	return nil
}

func (g tenantGate) Search(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	if err := g.check(ctx); err != nil {
		return storage.SearchResult{}, err
	}
	return g.Reader.Search(ctx, q, limit, after)
}

func (g tenantGate) SearchPage(ctx context.Context, q *search.Query, limit int, after *storage.Cursor) (storage.SearchResult, error) {
	if err := g.check(ctx); err != nil {
		return storage.SearchResult{}, err
	}
	return g.Reader.SearchPage(ctx, q, limit, after)
}

func (g tenantGate) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	if err := g.check(ctx); err != nil {
		return nil, false, err
	}
	return g.Reader.FindTrace(ctx, id)
}

func (g tenantGate) ScanSpans(ctx context.Context, q *search.Query, cols storage.Columns, fn func(*span.Span) bool) error {
	if err := g.check(ctx); err != nil {
		return err
	}
	return g.Reader.ScanSpans(ctx, q, cols, fn)
}

func (g tenantGate) Services(ctx context.Context) ([]string, error) {
	if err := g.check(ctx); err != nil {
		return nil, err
	}
	return g.Reader.Services(ctx)
}

func (g tenantGate) SpanNames(ctx context.Context, service string) ([]string, error) {
	if err := g.check(ctx); err != nil {
		return nil, err
	}
	return g.Reader.SpanNames(ctx, service)
}

func (g tenantGate) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	if err := g.check(ctx); err != nil {
		return nil, err
	}
	return g.Reader.AttrKeys(ctx, scope)
}

func (g tenantGate) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	if err := g.check(ctx); err != nil {
		return nil, err
	}
	return g.Reader.AttrValues(ctx, scope, key, limit)
}
