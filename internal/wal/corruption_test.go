package wal

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The corruption table writes 15 records of 100 bytes, five per segment, in
// segments 0, 1 and 2, damages the files, and checks what Replay makes of
// them.
const (
	corrRecSize  = 100
	corrFramed   = recordHeaderSize + corrRecSize
	corrPerSeg   = 5
	corrSegments = 3
)

// corrOff returns the offset of record k of a segment.
func corrOff(k int) int64 { return segmentHeaderSize + int64(k)*corrFramed }

// ids returns the record numbers of records k in [from, to) of segment seg.
func ids(seg, from, to int) []int { return seq(seg*corrPerSeg+from, seg*corrPerSeg+to) }

func TestReplayCorruption(t *testing.T) {
	type check struct {
		survivors   []int
		corruptions []error // causes, in order
		tornTail    bool
	}
	all := slices.Concat(ids(0, 0, 5), ids(1, 0, 5), ids(2, 0, 5))
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		first  check
		// again is the outcome of replaying the repaired WAL after one
		// more append (record 1000, not listed).
		again check
	}{
		{
			name: "torn_last_record",
			damage: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				writeSeg(t, dir, 2, b[:len(b)-50])
			},
			first: check{survivors: all[:14], tornTail: true},
			again: check{survivors: all[:14]},
		},
		{
			name: "torn_record_header",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 2, readSeg(t, dir, 2)[:corrOff(4)+3])
			},
			first: check{survivors: all[:14], tornTail: true},
			again: check{survivors: all[:14]},
		},
		{
			name: "zero_tail",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 2, append(readSeg(t, dir, 2), make([]byte, 4096)...))
			},
			first: check{survivors: all, tornTail: true},
			again: check{survivors: all},
		},
		{
			name: "zero_tail_over_last_records",
			damage: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				clear(b[corrOff(3):])
				writeSeg(t, dir, 2, b)
			},
			first: check{survivors: all[:13], tornTail: true},
			again: check{survivors: all[:13]},
		},
		{
			name: "zeroed_payload_of_last_record",
			damage: func(t *testing.T, dir string) {
				b := readSeg(t, dir, 2)
				clear(b[corrOff(4)+recordHeaderSize+10:])
				writeSeg(t, dir, 2, b)
			},
			first: check{survivors: all[:14], tornTail: true},
			again: check{survivors: all[:14]},
		},
		{
			name:   "bad_checksum_mid_segment",
			damage: flipByte(1, corrOff(2)+recordHeaderSize+17),
			first: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 2), ids(2, 0, 5)),
				corruptions: []error{ErrBadChecksum},
			},
			again: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 2), ids(2, 0, 5)),
				corruptions: []error{ErrBadChecksum},
			},
		},
		{
			name:   "bad_checksum_field",
			damage: flipByte(0, corrOff(0)+5),
			first: check{
				survivors:   slices.Concat(ids(1, 0, 5), ids(2, 0, 5)),
				corruptions: []error{ErrBadChecksum},
			},
			again: check{
				survivors:   slices.Concat(ids(1, 0, 5), ids(2, 0, 5)),
				corruptions: []error{ErrBadChecksum},
			},
		},
		{
			// Non-zero bytes follow the bad record: not a torn write, so it
			// is reported, but the last segment is still cut there.
			name:   "bad_checksum_last_segment",
			damage: flipByte(2, corrOff(1)+recordHeaderSize),
			first: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 5), ids(2, 0, 1)),
				corruptions: []error{ErrBadChecksum},
				tornTail:    true,
			},
			again: check{survivors: slices.Concat(ids(0, 0, 5), ids(1, 0, 5), ids(2, 0, 1))},
		},
		{
			name:   "bad_checksum_last_record",
			damage: flipByte(2, corrOff(4)+recordHeaderSize+99),
			first:  check{survivors: all[:14], tornTail: true},
			again:  check{survivors: all[:14]},
		},
		{
			name:   "bad_length",
			damage: putLength(1, 3, 0xffffffff),
			first: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 3), ids(2, 0, 5)),
				corruptions: []error{ErrBadLength},
			},
			again: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 3), ids(2, 0, 5)),
				corruptions: []error{ErrBadLength},
			},
		},
		{
			name:   "length_past_end_of_segment",
			damage: putLength(1, 3, 5000),
			first: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 3), ids(2, 0, 5)),
				corruptions: []error{ErrIncompleteRecord},
			},
			again: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 3), ids(2, 0, 5)),
				corruptions: []error{ErrIncompleteRecord},
			},
		},
		{
			name:   "length_too_short",
			damage: putLength(1, 1, 40),
			first: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 1), ids(2, 0, 5)),
				corruptions: []error{ErrBadChecksum},
			},
			again: check{
				survivors:   slices.Concat(ids(0, 0, 5), ids(1, 0, 1), ids(2, 0, 5)),
				corruptions: []error{ErrBadChecksum},
			},
		},
		{
			name: "empty_last_segment",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 3, nil)
			},
			first: check{survivors: all, tornTail: true},
			again: check{survivors: all},
		},
		{
			name: "torn_segment_header",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 3, []byte("CLW"))
			},
			first: check{survivors: all, tornTail: true},
			again: check{survivors: all},
		},
		{
			name: "header_only_last_segment",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 3, appendSegmentHeader(nil))
			},
			first: check{survivors: all},
			again: check{survivors: all},
		},
		{
			name: "empty_segment_mid_sequence",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 1, nil)
			},
			first: check{survivors: slices.Concat(ids(0, 0, 5), ids(2, 0, 5)), corruptions: []error{ErrBadSegmentHeader}},
			again: check{survivors: slices.Concat(ids(0, 0, 5), ids(2, 0, 5)), corruptions: []error{ErrBadSegmentHeader}},
		},
		{
			name: "missing_segment",
			damage: func(t *testing.T, dir string) {
				if err := os.Remove(segPath(dir, 1)); err != nil {
					t.Fatal(err)
				}
			},
			first: check{survivors: slices.Concat(ids(0, 0, 5), ids(2, 0, 5)), corruptions: []error{ErrMissingSegment}},
			again: check{survivors: slices.Concat(ids(0, 0, 5), ids(2, 0, 5)), corruptions: []error{ErrMissingSegment}},
		},
		{
			name:   "bad_magic_last_segment",
			damage: flipByte(2, 0),
			first:  check{survivors: all[:10], corruptions: []error{ErrBadSegmentHeader}},
			again:  check{survivors: all[:10], corruptions: []error{ErrBadSegmentHeader}},
		},
		{
			name:   "bad_reserved_byte",
			damage: flipByte(0, 7),
			first:  check{survivors: all[5:], corruptions: []error{ErrBadSegmentHeader}},
			again:  check{survivors: all[5:], corruptions: []error{ErrBadSegmentHeader}},
		},
		{
			name: "garbage_after_last_record",
			damage: func(t *testing.T, dir string) {
				writeSeg(t, dir, 2, append(readSeg(t, dir, 2), 1, 2, 3))
			},
			first: check{survivors: all, tornTail: true},
			again: check{survivors: all},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, SegmentSize: corrOff(corrPerSeg), Sync: SyncNone}
			w := openT(t, opts)
			ps := appendN(t, w, 0, corrPerSeg*corrSegments, corrRecSize)
			if last := ps[len(ps)-1]; last.Segment != corrSegments-1 || last.Offset != corrOff(corrPerSeg-1) {
				t.Fatalf("last record at %+v, the table assumes segment 2 offset %d", last, corrOff(4))
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			opts.Registerer = prometheus.NewRegistry()
			w = openT(t, opts)
			got, st := replayAll(t, w)
			verify(t, "first replay", got, st, tc.first)
			if c := metricValue(t, w.m.corruptions); int(c) != len(tc.first.corruptions) {
				t.Errorf("clew_wal_corruptions_total = %v, want %d", c, len(tc.first.corruptions))
			}
			if tt := metricValue(t, w.m.tornTailsRepairs); (tt == 1) != tc.first.tornTail {
				t.Errorf("clew_wal_torn_tails_repaired_total = %v, want torn tail %v", tt, tc.first.tornTail)
			}

			// The repaired WAL takes appends and replays them.
			size := w.Size()
			appendN(t, w, 1000, 1, corrRecSize)
			if got := w.Size(); got != size+corrFramed {
				t.Errorf("Size() after one append = %d, want %d", got, size+corrFramed)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			opts.Registerer = nil
			w = openT(t, opts)
			got, st = replayAll(t, w)
			tc.again.survivors = append(slices.Clone(tc.again.survivors), 1000)
			verify(t, "second replay", got, st, tc.again)
		})
	}
}

func verify(t *testing.T, what string, got []replayed, st ReplayStats, want struct {
	survivors   []int
	corruptions []error
	tornTail    bool
}) {
	t.Helper()
	checkPayloads(t, got, corrRecSize)
	if ids := recordIDs(got); !slices.Equal(ids, want.survivors) {
		t.Errorf("%s: records %v, want %v", what, fmtIDs(ids), fmtIDs(want.survivors))
	}
	if st.Records != len(got) {
		t.Errorf("%s: stats count %d records, fn saw %d", what, st.Records, len(got))
	}
	if st.TornTail != want.tornTail {
		t.Errorf("%s: TornTail = %v, want %v", what, st.TornTail, want.tornTail)
	}
	if len(st.Corruptions) != len(want.corruptions) {
		t.Fatalf("%s: corruptions %v, want causes %v", what, st.Corruptions, want.corruptions)
	}
	for i, c := range st.Corruptions {
		var ce *CorruptionError
		if !errors.As(error(c), &ce) || !errors.Is(c, want.corruptions[i]) {
			t.Errorf("%s: corruption %d = %v, want cause %v", what, i, c, want.corruptions[i])
		}
	}
}

// flipByte returns a damage function that inverts byte off of segment seg.
func flipByte(seg int, off int64) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		b := readSeg(t, dir, seg)
		b[off] ^= 0xff
		writeSeg(t, dir, seg, b)
	}
}

// putLength returns a damage function that overwrites the length field of
// record k of segment seg.
func putLength(seg, k int, length uint32) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		b := readSeg(t, dir, seg)
		binary.LittleEndian.PutUint32(b[corrOff(k):], length)
		writeSeg(t, dir, seg, b)
	}
}

func TestReplayUnsupportedVersion(t *testing.T) {
	dir := t.TempDir()
	w := openT(t, Options{Dir: dir, SegmentSize: 256})
	appendN(t, w, 0, 6, 50)
	w.Close()
	b := readSeg(t, dir, 1)
	b[4] = formatVersion + 1
	writeSeg(t, dir, 1, b)
	w = openT(t, Options{Dir: dir})
	if _, err := w.Replay(func(Pos, []byte) error { return nil }); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("Replay() over a newer segment = %v, want ErrUnsupportedVersion", err)
	}
}
