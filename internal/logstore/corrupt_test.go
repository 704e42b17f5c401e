package logstore

import (
	"bytes"
	"context"
	"io"
	"path"
	"testing"

	"github.com/thanos-io/objstore"
)

// TestCorruptBlock damages each object of a block byte by byte (a sample
// of positions) and reads the block whole: an error or good data, never a
// panic.
func TestCorruptBlock(t *testing.T) {
	ctx := context.Background()
	src := objstore.NewInMemBucket()
	recs := genRecords(0, 5000) // two row groups
	if _, err := writeBlock(ctx, src, "t/logs/b", recs, Meta{ID: "b", Tenant: "t"}); err != nil {
		t.Fatal(err)
	}
	objs := map[string][]byte{}
	for _, name := range []string{dataName, indexName, tracesName, metaName} {
		rc, err := src.Get(ctx, path.Join("t/logs/b", name))
		if err != nil {
			t.Fatal(err)
		}
		objs[name], _ = io.ReadAll(rc)
		rc.Close()
	}
	readAll := func(bkt objstore.Bucket) {
		b, err := openBlock(ctx, bkt, "t/logs/b")
		if err != nil {
			return
		}
		for g := range b.meta.RowGroups {
			_, _ = b.readRowGroup(ctx, g)
		}
		_, _ = b.traceRows(ctx, *traceOf(123))
	}
	for name, orig := range objs {
		step := max(1, len(orig)/100)
		for pos := 0; pos < len(orig); pos += step {
			for _, damage := range []func([]byte) []byte{
				func(b []byte) []byte { b[pos] ^= 0xff; return b },
				func(b []byte) []byte { return b[:pos] },
			} {
				bkt := objstore.NewInMemBucket()
				for n, o := range objs {
					o = bytes.Clone(o)
					if n == name {
						o = damage(o)
					}
					if err := bkt.Upload(ctx, path.Join("t/logs/b", n), bytes.NewReader(o)); err != nil {
						t.Fatal(err)
					}
				}
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%s damaged at %d: panic %v", name, pos, r)
						}
					}()
					readAll(bkt)
				}()
			}
		}
	}
}
