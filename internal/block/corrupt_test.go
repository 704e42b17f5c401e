package block

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/thanos-io/objstore"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// TestCorruption damages block objects and checks for clear errors.
func TestCorruption(t *testing.T) {
	objs := smallBlock(t, 5)
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i%len(c)] ^= 0x55
		return c
	}
	cases := []struct {
		name              string
		data, index, meta []byte
		want              string
	}{
		{"index_bad_magic", objs[DataName], flip(objs[IndexName], 0), objs[MetaName], "bad magic"},
		{"index_bad_crc", objs[DataName], flip(objs[IndexName], 20), objs[MetaName], "corrupt block object blk/index"},
		{"index_truncated", objs[DataName], objs[IndexName][:10], objs[MetaName], "corrupt block object blk/index"},
		{"index_version", objs[DataName], append([]byte("CLWI\x09"), objs[IndexName][5:]...), objs[MetaName], "unknown block format version"},
		{"meta_version", objs[DataName], objs[IndexName], []byte(`{"version": 9}`), "unknown block format version"},
		{"meta_garbage", objs[DataName], objs[IndexName], []byte(`{`), "decode meta.json"},
		{"data_flipped", flip(objs[DataName], 200), objs[IndexName], objs[MetaName], "corrupt block object blk/data"},
		{"data_truncated", objs[DataName][:100], objs[IndexName], objs[MetaName], "blk/data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			bkt := objstore.NewInMemBucket()
			for name, b := range map[string][]byte{DataName: tc.data, IndexName: tc.index, MetaName: tc.meta} {
				if err := bkt.Upload(ctx, path.Join("blk", name), strings.NewReader(string(b))); err != nil {
					t.Fatal(err)
				}
			}
			err := openAndRead(ctx, bkt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func openAndRead(ctx context.Context, bkt objstore.Bucket) error {
	r, err := Open(ctx, bkt, "blk", ReaderOptions{})
	if err != nil {
		return err
	}
	q := &search.Query{}
	_ = q.Compile()
	var ids []span.TraceID
	if err := r.Search(ctx, q, func(h storage.Hit) bool { ids = append(ids, h.TraceID); return true }); err != nil {
		return err
	}
	for _, id := range ids {
		var b span.Batch
		if _, err := r.FindTrace(ctx, id, &b); err != nil {
			return err
		}
	}
	return errors.New("no error")
}

var _ = io.EOF
