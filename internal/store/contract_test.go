package store

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/clew-dev/clew/internal/block"
	"github.com/clew-dev/clew/internal/otlp"
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
