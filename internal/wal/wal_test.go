package wal

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHeaderSizes(t *testing.T) {
	if got := len(appendSegmentHeader(nil)); got != segmentHeaderSize {
		t.Errorf("segment header is %d bytes, want %d", got, segmentHeaderSize)
	}
	var hdr [recordHeaderSize]byte
	putRecordHeader(hdr[:], []byte("abc"))
	if got := len(hdr); got != 8 {
		t.Errorf("record header is %d bytes, want 8", got)
	}
}

// TestEncodingGolden pins the bytes that docs/format/wal.md shows.
func TestEncodingGolden(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir, Sync: SyncNone})
	if _, err := w.Append(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(readSeg(t, dir, 0))
	const want = "434c574c01000000" + "05000000" + "a1b1174e" + "68656c6c6f"
	if got != want {
		t.Errorf("segment 00000000 = %s, want %s", got, want)
	}
	if recordChecksum([]byte{0, 0, 0, 0}, nil) == 0 {
		t.Error("checksum of an all-zero header is zero; zero-filled tails would decode as records")
	}
}

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"defaults", Options{Dir: dir}, false},
		{"default_options", DefaultOptions(dir), false},
		{"no_dir", Options{}, true},
		{"tiny_segment", Options{Dir: dir, SegmentSize: 10}, true},
		{"negative_segment", Options{Dir: dir, SegmentSize: -1}, true},
		{"bad_policy", Options{Dir: dir, Sync: "sometimes"}, true},
		{"negative_window", Options{Dir: dir, GroupCommitWindow: -time.Second}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.opts.validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("validate(%+v) error = %v, want error %v", tc.opts, err, tc.wantErr)
			}
			if err == nil && (got.SegmentSize <= 0 || got.Sync == "" || got.Logger == nil) {
				t.Errorf("validate(%+v) = %+v, defaults not applied", tc.opts, got)
			}
		})
	}
}

func TestAppendReplayRoundTrip(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncAlways, SyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, Sync: policy, SegmentSize: 4096, GroupCommitWindow: time.Millisecond}
			w := openT(t, opts)
			sizes := []int{8, 9, 100, 4000, 5000, 12000, 8, 300}
			var want []replayed
			for i, size := range sizes {
				rec := testRecord(i, size)
				pos, err := w.Append(context.Background(), rec)
				if err != nil {
					t.Fatalf("Append(%d bytes) = %v", size, err)
				}
				want = append(want, replayed{pos, rec})
			}
			if _, err := w.Append(context.Background(), nil); err != nil {
				t.Fatalf("Append(empty) = %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			w2 := openT(t, opts)
			got, st := replayAll(t, w2)
			if len(got) != len(want)+1 {
				t.Fatalf("Replay() returned %d records, want %d", len(got), len(want)+1)
			}
			for i := range want {
				if got[i].pos != want[i].pos || !bytes.Equal(got[i].rec, want[i].rec) {
					t.Errorf("record %d: got pos %+v (%d bytes), want pos %+v (%d bytes)",
						i, got[i].pos, len(got[i].rec), want[i].pos, len(want[i].rec))
				}
			}
			if len(got[len(want)].rec) != 0 {
				t.Errorf("empty record replayed as %d bytes", len(got[len(want)].rec))
			}
			if st.TornTail || len(st.Corruptions) > 0 {
				t.Errorf("Replay() stats = %+v, want no damage", st)
			}
			// Records larger than the segment size each got a segment.
			if want[4].pos.Segment == want[5].pos.Segment || want[5].pos.Segment == want[6].pos.Segment {
				t.Errorf("records larger than SegmentSize share a segment: %+v %+v %+v", want[4].pos, want[5].pos, want[6].pos)
			}
		})
	}
}

func TestAppendBeforeReplay(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir})
	// An empty WAL takes appends at once.
	appendN(t, w, 0, 3, 50)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openT(t, Options{Dir: dir})
	if _, err := w.Append(context.Background(), []byte("x")); !errors.Is(err, ErrNotReplayed) {
		t.Fatalf("Append before Replay = %v, want ErrNotReplayed", err)
	}
	if _, err := w.Cut(); !errors.Is(err, ErrNotReplayed) {
		t.Fatalf("Cut before Replay = %v, want ErrNotReplayed", err)
	}
	got, _ := replayAll(t, w)
	if len(got) != 3 {
		t.Fatalf("Replay() returned %d records, want 3", len(got))
	}
	appendN(t, w, 3, 1, 50)
	// A second replay does nothing.
	again, _ := replayAll(t, w)
	if len(again) != 0 {
		t.Fatalf("second Replay() returned %d records, want 0", len(again))
	}
}

func TestReplayFnError(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir, SegmentSize: 256})
	appendN(t, w, 0, 10, 50)
	w.Close()

	w = openT(t, Options{Dir: dir, SegmentSize: 256})
	stop := errors.New("stop here")
	n := 0
	_, err := w.Replay(func(Pos, []byte) error {
		if n++; n == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Replay() = %v, want the callback's error as is", err)
	}
	if _, err := w.Append(context.Background(), nil); !errors.Is(err, ErrNotReplayed) {
		t.Fatalf("Append after failed Replay = %v, want ErrNotReplayed", err)
	}
	got, _ := replayAll(t, w)
	if len(got) != 10 {
		t.Fatalf("retried Replay() returned %d records, want 10", len(got))
	}
}

func TestReplayFrom(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir, SegmentSize: 8 + 2*58})
	ps := appendN(t, w, 0, 10, 50) // two records per segment: segments 0..4
	w.Close()
	if ps[9].Segment != 4 {
		t.Fatalf("last record in segment %d, want 4", ps[9].Segment)
	}
	w = openT(t, Options{Dir: dir})
	var ids []int
	st, err := w.ReplayFrom(3, func(pos Pos, rec []byte) error {
		ids = append(ids, int(rec[0]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int{6, 7, 8, 9}) || st.Segments != 2 {
		t.Fatalf("ReplayFrom(3) = records %v from %d segments, want [6 7 8 9] from 2", ids, st.Segments)
	}
	if first, last := w.Segments(); first != 0 || last != 5 {
		t.Fatalf("Segments() = %d, %d, want 0, 5", first, last)
	}
}

func TestCutTruncate(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	w := openT(t, Options{Dir: dir, Registerer: reg})
	if first, last := w.Segments(); first != 0 || last != 0 {
		t.Fatalf("Segments() on a new WAL = %d, %d, want 0, 0", first, last)
	}
	if n, err := w.Cut(); err != nil || n != 0 {
		t.Fatalf("Cut() on an empty segment = %d, %v, want 0, nil", n, err)
	}
	var before []Pos
	for round := 0; round < 3; round++ {
		before = append(before, appendN(t, w, round*5, 5, 100)...)
		n, err := w.Cut()
		if err != nil {
			t.Fatal(err)
		}
		if n != round+1 {
			t.Fatalf("Cut() = %d, want %d", n, round+1)
		}
		for _, p := range before {
			if p.Segment >= n {
				t.Fatalf("record at %+v appended before Cut() = %d", p, n)
			}
		}
	}
	if first, last := w.Segments(); first != 0 || last != 3 {
		t.Fatalf("Segments() = %d, %d, want 0, 3", first, last)
	}
	wantSize := int64(4*segmentHeaderSize + 15*(recordHeaderSize+100))
	if got := w.Size(); got != wantSize {
		t.Fatalf("Size() = %d, want %d", got, wantSize)
	}
	if got := metricValue(t, w.m.sizeBytes); got != float64(wantSize) {
		t.Fatalf("clew_wal_size_bytes = %v, want %d", got, wantSize)
	}

	if err := w.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if first, last := w.Segments(); first != 2 || last != 3 {
		t.Fatalf("Segments() after Truncate(2) = %d, %d, want 2, 3", first, last)
	}
	for i, want := range []bool{false, false, true, true} {
		_, err := os.Stat(segPath(dir, i))
		if got := err == nil; got != want {
			t.Errorf("segment %d exists = %v, want %v", i, got, want)
		}
	}
	// Truncate never deletes the open segment.
	if err := w.Truncate(100); err != nil {
		t.Fatal(err)
	}
	if first, last := w.Segments(); first != 3 || last != 3 {
		t.Fatalf("Segments() after Truncate(100) = %d, %d, want 3, 3", first, last)
	}
	if got := w.Size(); got != segmentHeaderSize {
		t.Fatalf("Size() = %d, want %d", got, segmentHeaderSize)
	}
	if got := metricValue(t, w.m.truncations); got != 2 {
		t.Errorf("clew_wal_truncations_total = %v, want 2", got)
	}
	if got := metricValue(t, w.m.segments); got != 1 {
		t.Errorf("clew_wal_segments = %v, want 1", got)
	}
	appendN(t, w, 100, 2, 10)
	w.Close()

	w = openT(t, Options{Dir: dir})
	got, _ := replayAll(t, w)
	if ids := recordIDs(got); !slices.Equal(ids, []int{100, 101}) {
		t.Fatalf("Replay() after truncation = %v, want [100 101]", ids)
	}
}

func TestConcurrentAppend(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncAlways, SyncNone} {
		t.Run(string(policy), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, Sync: policy, SegmentSize: 16 << 10, GroupCommitWindow: 200 * time.Microsecond}
			w := openT(t, opts)
			const writers, each = 8, 60
			positions := make([][]Pos, writers)
			var wg sync.WaitGroup
			for g := range writers {
				wg.Go(func() {
					for i := range each {
						id := g*each + i
						p, err := w.Append(context.Background(), testRecord(id, 100+id%700))
						if err != nil {
							t.Errorf("Append(%d) = %v", id, err)
							return
						}
						positions[g] = append(positions[g], p)
					}
				})
			}
			// Cut and read the state while appends run.
			wg.Go(func() {
				for range 10 {
					if _, err := w.Cut(); err != nil {
						t.Errorf("Cut() = %v", err)
					}
					w.Segments()
					w.Size()
					time.Sleep(time.Millisecond)
				}
			})
			wg.Wait()
			size := w.Size()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var onDisk int64
			segs, _ := listSegments(dir)
			for _, s := range segs {
				onDisk += s.size
			}
			if size != onDisk {
				t.Errorf("Size() = %d, files hold %d bytes", size, onDisk)
			}

			w = openT(t, opts)
			got, st := replayAll(t, w)
			if st.Records != writers*each || len(st.Corruptions) > 0 || st.TornTail {
				t.Fatalf("Replay() stats = %+v, want %d clean records", st, writers*each)
			}
			byID := map[int]Pos{}
			for _, r := range got {
				id := int(r.rec[0]) | int(r.rec[1])<<8
				if !bytes.Equal(r.rec, testRecord(id, 100+id%700)) {
					t.Fatalf("record %d at %+v has the wrong payload", id, r.pos)
				}
				byID[id] = r.pos
			}
			for g := range writers {
				for i, p := range positions[g] {
					if byID[g*each+i] != p {
						t.Errorf("record %d replayed at %+v, Append returned %+v", g*each+i, byID[g*each+i], p)
					}
				}
			}
		})
	}
}

func TestGroupCommitBatches(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := openT(t, Options{Dir: t.TempDir(), Sync: SyncGroup, GroupCommitWindow: 2 * time.Millisecond, Registerer: reg})
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := w.Append(context.Background(), testRecord(g*each+i, 10<<10)); err != nil {
					t.Errorf("Append = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	syncs := metricValue(t, w.m.fsyncs)
	appends := metricValue(t, w.m.recordsAppended)
	t.Logf("%v appends, %v fsyncs", appends, syncs)
	if appends != writers*each || syncs > appends/2 {
		t.Fatalf("%v appends took %v fsyncs, want at most half as many fsyncs", appends, syncs)
	}
}

func TestGroupCommitWindowBoundsLatency(t *testing.T) {
	// One appender alone must not wait out a long window: it is the only
	// Append in progress, so the sync starts at once.
	w := openT(t, Options{Dir: t.TempDir(), Sync: SyncGroup, GroupCommitWindow: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, err := w.Append(context.Background(), []byte("alone"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a lone Append waited for the group commit window")
	}
}

func TestAppendContextCanceled(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir, Sync: SyncGroup, GroupCommitWindow: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Append(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append(canceled ctx) = %v, want context.Canceled", err)
	}
	// Pretend another Append is in progress so that the syncer waits out
	// the (hour-long) window; the waiting Append must honour its deadline.
	w.active.Add(1)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Append(ctx, []byte("maybe durable")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append(expiring ctx) = %v, want context.DeadlineExceeded", err)
	}
	w.active.Add(-1)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openT(t, Options{Dir: dir})
	got, _ := replayAll(t, w)
	if len(got) != 1 || string(got[0].rec) != "maybe durable" {
		t.Fatalf("Replay() = %d records, want the timed-out record", len(got))
	}
}

func TestPoisonOnWriteError(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := openT(t, Options{Dir: t.TempDir(), Sync: SyncNone, Registerer: reg})
	appendN(t, w, 0, 1, 10)
	w.mu.Lock()
	w.f.Close() // the next write fails
	w.mu.Unlock()
	if _, err := w.Append(context.Background(), []byte("x")); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("Append after a write error = %v, want ErrPoisoned", err)
	}
	if _, err := w.Append(context.Background(), []byte("y")); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("second Append = %v, want ErrPoisoned", err)
	}
	if _, err := w.Cut(); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("Cut() = %v, want ErrPoisoned", err)
	}
	if got := metricValue(t, w.m.poisoned); got != 1 {
		t.Errorf("clew_wal_poisoned = %v, want 1", got)
	}
	if err := w.Close(); !errors.Is(err, ErrPoisoned) {
		t.Fatalf("Close() = %v, want ErrPoisoned", err)
	}
}

func TestPoisonOnSyncError(t *testing.T) {
	for _, policy := range []SyncPolicy{SyncGroup, SyncAlways} {
		t.Run(string(policy), func(t *testing.T) {
			w := openT(t, Options{Dir: t.TempDir(), Sync: policy})
			appendN(t, w, 0, 2, 10)
			injected := errors.New("injected EIO")
			w.mu.Lock()
			w.fsync = func(*os.File) error { return injected }
			w.mu.Unlock()
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					_, err := w.Append(context.Background(), []byte("x"))
					if !errors.Is(err, ErrPoisoned) || !errors.Is(err, injected) {
						t.Errorf("Append with failing fsync = %v, want ErrPoisoned wrapping the cause", err)
					}
				})
			}
			wg.Wait()
			if _, err := w.Append(context.Background(), []byte("x")); !errors.Is(err, ErrPoisoned) {
				t.Fatalf("Append after fsync error = %v, want ErrPoisoned", err)
			}
		})
	}
}

func TestCloseIdempotent(t *testing.T) {
	w := openT(t, Options{Dir: t.TempDir()})
	appendN(t, w, 0, 1, 10)
	for range 2 {
		if err := w.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
	if _, err := w.Append(context.Background(), []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if err := w.Truncate(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Truncate after Close = %v, want ErrClosed", err)
	}
}

func TestRecordTooLarge(t *testing.T) {
	// Append checks the size first; a 1 GiB test slice is not worth it.
	if err := checkRecordSize(MaxRecordSize + 1); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("checkRecordSize(MaxRecordSize+1) = %v, want ErrRecordTooLarge", err)
	}
	if err := checkRecordSize(MaxRecordSize); err != nil {
		t.Fatalf("checkRecordSize(MaxRecordSize) = %v, want nil", err)
	}
}

func TestMetricsReopenSameRegistry(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	w := openT(t, Options{Dir: dir, Registerer: reg})
	if _, err := Open(Options{Dir: t.TempDir(), Registerer: reg}); err == nil {
		t.Fatal("second Open with the same registerer succeeded, want a registration error")
	}
	appendN(t, w, 0, 3, 10)
	if got := metricValue(t, w.m.recordsAppended); got != 3 {
		t.Errorf("clew_wal_records_appended_total = %v, want 3", got)
	}
	w.Close()
	w = openT(t, Options{Dir: dir, Registerer: reg})
	replayAll(t, w)
	if got := metricValue(t, w.m.replayedRecords); got != 3 {
		t.Errorf("clew_wal_replayed_records_total = %v, want 3", got)
	}
	if n := gatherCount(t, reg); n != 11 {
		t.Errorf("registry holds %d metric families, want 11", n)
	}
}

func TestIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir})
	appendN(t, w, 0, 2, 10)
	w.Close()
	for _, name := range []string{"00000001.tmp", "lock", "0001", "README"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w = openT(t, Options{Dir: dir})
	got, st := replayAll(t, w)
	if len(got) != 2 || len(st.Corruptions) > 0 {
		t.Fatalf("Replay() = %d records, %v, want 2 clean", len(got), st.Corruptions)
	}
}

func TestGroupCommitWindowWaits(t *testing.T) {
	const window = 30 * time.Millisecond
	w := openT(t, Options{Dir: t.TempDir(), Sync: SyncGroup, GroupCommitWindow: window})
	// A phantom Append in progress keeps the syncer from starting early, so
	// the sync waits out the window, and no longer.
	w.active.Add(1)
	defer w.active.Add(-1)
	start := time.Now()
	if _, err := w.Append(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < window || took > window+5*time.Second {
		t.Fatalf("Append took %v with a %v window", took, window)
	}
}
