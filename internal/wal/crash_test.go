package wal

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// TestCrashSimulation writes a log, then for many cut points builds the
// directory a crash at that byte would leave (segments before it whole, the
// segment holding it cut short, later ones never created) and replays it.
// Every record that was fully written before the cut must come back, in
// order, and nothing after it.
func TestCrashSimulation(t *testing.T) {
	src := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	w := openT(t, Options{Dir: src, SegmentSize: 4096, Sync: SyncNone})
	type written struct {
		pos Pos
		end int64 // offset just past the record in its segment
		rec []byte
	}
	var recs []written
	for i := range 60 {
		size := 8 + rng.IntN(900)
		if i%17 == 0 {
			size = 5000 // larger than a segment
		}
		rec := testRecord(i, size)
		pos, err := w.Append(context.Background(), rec)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, written{pos, pos.Offset + recordHeaderSize + int64(size), rec})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(src)
	if err != nil {
		t.Fatal(err)
	}
	files := make([][]byte, len(segs))
	for i, s := range segs {
		if s.index != i {
			t.Fatalf("segment %d has index %d", i, s.index)
		}
		files[i] = readSeg(t, src, i)
	}

	// Cut points: every record boundary and its neighbours, segment
	// boundaries, and random offsets.
	type cut struct {
		seg int
		off int64
	}
	var cuts []cut
	for _, r := range recs {
		for _, d := range []int64{-1, 0, 1, recordHeaderSize} {
			cuts = append(cuts, cut{r.pos.Segment, r.pos.Offset + d}, cut{r.pos.Segment, r.end - d})
		}
	}
	for i := range files {
		cuts = append(cuts, cut{i, 0}, cut{i, 3}, cut{i, segmentHeaderSize})
	}
	for range 150 {
		i := rng.IntN(len(files))
		cuts = append(cuts, cut{i, rng.Int64N(int64(len(files[i])) + 1)})
	}

	fills := []struct {
		name string
		fill func(b []byte)
	}{
		{"truncated", nil},
		{"zero_filled", func(b []byte) { clear(b) }},
		// Every byte after the cut differs from what was written, so a
		// record that spans the cut cannot check out by luck.
		{"garbage", func(b []byte) {
			for i := range b {
				b[i] ^= byte(1 + rng.IntN(255))
			}
		}},
	}
	for _, fl := range fills {
		t.Run(fl.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range cuts {
				if c.off < 0 || c.off > int64(len(files[c.seg])) {
					continue
				}
				// Segments before the cut are hard links to the originals:
				// replay never writes to them, and links spare the inode
				// allocations that make file creation slow on a busy ext4.
				clearDir(t, dir)
				for i := 0; i < c.seg; i++ {
					if err := os.Link(segPath(src, i), segPath(dir, i)); err != nil {
						t.Fatal(err)
					}
				}
				last := bytes.Clone(files[c.seg])
				if fl.fill == nil {
					last = last[:c.off]
				} else {
					fl.fill(last[c.off:])
				}
				writeSeg(t, dir, c.seg, last)

				var want [][]byte
				for _, r := range recs {
					if r.pos.Segment < c.seg || (r.pos.Segment == c.seg && r.end <= c.off) {
						want = append(want, r.rec)
					}
				}
				w := openT(t, Options{Dir: dir, Sync: SyncNone})
				w.fsync = noSync
				var got [][]byte
				st, err := w.Replay(func(_ Pos, rec []byte) error {
					got = append(got, bytes.Clone(rec))
					return nil
				})
				if err != nil {
					t.Fatalf("cut at segment %d offset %d: Replay() = %v", c.seg, c.off, err)
				}
				if !slices.EqualFunc(got, want, bytes.Equal) {
					t.Fatalf("cut at segment %d offset %d: replayed %d records, want the %d written before the cut",
						c.seg, c.off, len(got), len(want))
				}
				for _, ce := range st.Corruptions {
					if ce.Segment != c.seg {
						t.Fatalf("cut at segment %d offset %d: corruption reported in an intact segment: %v", c.seg, c.off, ce)
					}
				}
				// Every few cuts, check that the repaired log takes appends
				// and replays clean.
				// A garbage segment header is not a torn write: it stays.
				if n%10 == 0 && !(fl.fill != nil && c.off < segmentHeaderSize) {
					more := []byte(fmt.Sprintf("after cut %d", n))
					if _, err := w.Append(context.Background(), more); err != nil {
						t.Fatal(err)
					}
					w.Close()
					w = openT(t, Options{Dir: dir, Sync: SyncNone})
					w.fsync = noSync
					got = got[:0]
					st, err := w.Replay(func(_ Pos, rec []byte) error {
						got = append(got, bytes.Clone(rec))
						return nil
					})
					if err != nil || len(st.Corruptions) > 0 || st.TornTail {
						t.Fatalf("cut at segment %d offset %d: second Replay() = %+v, %v, want clean", c.seg, c.off, st, err)
					}
					if !slices.EqualFunc(got, append(want, more), bytes.Equal) {
						t.Fatalf("cut at segment %d offset %d: second replay has %d records, want %d", c.seg, c.off, len(got), len(want)+1)
					}
				}
				w.Close()
			}
		})
	}
}

// noSync replaces fdatasync in tests that only simulate crashes.
func noSync(*os.File) error { return nil }
