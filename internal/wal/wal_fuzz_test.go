package wal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzReplay writes random bytes as a WAL (one segment, or two segments
// split at split) and replays it. Replay must not panic, must only fail for
// a newer format version, and must leave a log that takes an append and
// replays to the same records plus the new one, with nothing left to repair.
func FuzzReplay(f *testing.F) {
	// Seeds: a valid log, and damaged copies of it.
	dir := f.TempDir()
	w, err := Open(Options{Dir: dir, Sync: SyncNone})
	if err != nil {
		f.Fatal(err)
	}
	for i, size := range []int{0, 1, 10, 100, 700} {
		if _, err := w.Append(context.Background(), testRecord(i, size)); err != nil {
			f.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(segPath(dir, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, uint16(0))
	f.Add(valid, uint16(len(valid)/2))
	f.Add(valid[:len(valid)-3], uint16(0))
	f.Add(valid[:len(valid)-3], uint16(300))
	f.Add(append(slices.Clone(valid), make([]byte, 64)...), uint16(0))
	flipped := slices.Clone(valid)
	flipped[40] ^= 1
	f.Add(flipped, uint16(0))
	f.Add(flipped, uint16(len(valid)-20))
	f.Add(valid[:segmentHeaderSize], uint16(3))
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("CLWL\x01\x00\x00\x00\xff\xff\xff\xff"), uint16(0))

	dir = fuzzDir(f)
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		clearDir(t, dir)
		fuzzReplay(t, dir, data, split)
	})
}

// fuzzDir returns the directory a fuzz worker replays its inputs in. Each
// input creates and deletes a few files; on ext4 that churn makes inode
// allocation scan ever more recently deleted inodes, which slowed the
// fuzzer to a few inputs per second. A RAM-backed /dev/shm, where present,
// has no such cost.
func fuzzDir(f *testing.F) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "clew-wal-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// clearDir removes the files in dir.
func clearDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func fuzzReplay(t *testing.T, dir string, data []byte, split uint16) {
	if split == 0 || int(split) >= len(data) {
		writeFuzzSeg(t, dir, 0, data)
	} else {
		writeFuzzSeg(t, dir, 0, data[:split])
		writeFuzzSeg(t, dir, 1, data[split:])
	}
	w := openT(t, Options{Dir: dir, Sync: SyncNone})
	w.fsync = noSync
	first, st, err := replayFuzz(w)
	if errors.Is(err, ErrUnsupportedVersion) {
		return
	}
	if err != nil {
		t.Fatalf("Replay() = %v", err)
	}
	if st.Records != len(first) {
		t.Fatalf("stats count %d records, fn saw %d", st.Records, len(first))
	}
	more := []byte("appended after replay")
	if _, err := w.Append(context.Background(), more); err != nil {
		t.Fatalf("Append after Replay = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	w = openT(t, Options{Dir: dir, Sync: SyncNone})
	w.fsync = noSync
	second, st2, err := replayFuzz(w)
	if err != nil {
		t.Fatalf("second Replay() = %v", err)
	}
	if st2.TornTail {
		t.Fatalf("second Replay() repaired a torn tail again: %+v", st2)
	}
	if want := append(first, more); !slices.EqualFunc(second, want, bytes.Equal) {
		t.Fatalf("second Replay() = %d records, want the %d of the first plus the append", len(second), len(first))
	}
}

func writeFuzzSeg(t *testing.T, dir string, index int, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, segmentName(index)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func replayFuzz(w *WAL) ([][]byte, ReplayStats, error) {
	var recs [][]byte
	st, err := w.Replay(func(_ Pos, rec []byte) error {
		recs = append(recs, bytes.Clone(rec))
		return nil
	})
	return recs, st, err
}
