package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testRecord returns a deterministic payload of size bytes for record i.
func testRecord(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte(i*31 + j*7 + 1)
	}
	if size >= 8 {
		binary.LittleEndian.PutUint64(b, uint64(i))
	}
	return b
}

// openT opens a WAL and closes it when the test ends.
func openT(t testing.TB, opts Options) *WAL {
	t.Helper()
	w, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%+v) = %v", opts, err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// replayed is one record seen by Replay.
type replayed struct {
	pos Pos
	rec []byte
}

// replayAll replays w and returns the records with copies of their payloads.
func replayAll(t testing.TB, w *WAL) ([]replayed, ReplayStats) {
	t.Helper()
	var got []replayed
	st, err := w.Replay(func(pos Pos, rec []byte) error {
		got = append(got, replayed{pos, bytes.Clone(rec)})
		return nil
	})
	if err != nil {
		t.Fatalf("Replay() = %v", err)
	}
	return got, st
}

// appendN appends records first..first+n-1 of the given size.
func appendN(t testing.TB, w *WAL, first, n, size int) []Pos {
	t.Helper()
	var ps []Pos
	for i := first; i < first+n; i++ {
		p, err := w.Append(context.Background(), testRecord(i, size))
		if err != nil {
			t.Fatalf("Append(record %d) = %v", i, err)
		}
		ps = append(ps, p)
	}
	return ps
}

// segPath returns the path of segment index in dir.
func segPath(dir string, index int) string {
	return filepath.Join(dir, segmentName(index))
}

// readSeg reads segment index in dir.
func readSeg(t testing.TB, dir string, index int) []byte {
	t.Helper()
	b, err := os.ReadFile(segPath(dir, index))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSeg replaces segment index in dir with b.
func writeSeg(t testing.TB, dir string, index int, b []byte) {
	t.Helper()
	if err := os.WriteFile(segPath(dir, index), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordIDs returns the record numbers testRecord encoded in the payloads.
func recordIDs(rs []replayed) []int {
	ids := make([]int, len(rs))
	for i, r := range rs {
		ids[i] = int(binary.LittleEndian.Uint64(r.rec))
	}
	return ids
}

// seq returns the ints in [from, to).
func seq(from, to int) []int {
	s := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func checkPayloads(t testing.TB, rs []replayed, size int) {
	t.Helper()
	for _, r := range rs {
		id := int(binary.LittleEndian.Uint64(r.rec))
		if !bytes.Equal(r.rec, testRecord(id, size)) {
			t.Fatalf("record %d at %+v has the wrong payload", id, r.pos)
		}
	}
}

func fmtIDs(ids []int) string { return fmt.Sprint(ids) }
