package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// ReplayStats summarizes a replay.
type ReplayStats struct {
	// Records and Bytes count the records passed to fn and their payload
	// bytes.
	Records int
	Bytes   int64
	// Segments counts the segment files read.
	Segments int
	// Corruptions lists the damage found, in segment order: bad records and
	// headers in any segment, and missing segments. A torn tail of the last
	// segment is not listed unless non-zero bytes follow the bad record.
	Corruptions []*CorruptionError
	// TornTail reports that the last segment was truncated at its last
	// good record.
	TornTail bool
}

// Replay calls fn for every record of every segment, in order; it is
// ReplayFrom(0, fn).
func (w *WAL) Replay(fn func(pos Pos, rec []byte) error) (ReplayStats, error) {
	return w.ReplayFrom(0, fn)
}

// ReplayFrom calls fn for every record in the segments with an index of at
// least first, in log order, then opens a new segment for appends. rec is
// only valid during fn. An error from fn stops the replay and is returned
// as is; the WAL then still needs a replay.
//
// ReplayFrom repairs and reports damage rather than failing on it:
//   - In the last segment, damage is a torn tail left by a crash (nothing
//     after the last completed sync was acknowledged): the segment is
//     truncated at its last good record and TornTail is set. A Warn is
//     logged, or an Error (and a CorruptionError is listed) if non-zero
//     bytes followed the bad record, which an interrupted write does not
//     explain.
//   - In any other segment, the rest of the segment after the damage is
//     skipped, a *CorruptionError is listed in the stats and logged at
//     Error, and the replay goes on with the next segment.
//   - A gap in the segment indexes (at or after first) is listed as a
//     CorruptionError with ErrMissingSegment.
//
// Errors are I/O errors, a segment of a newer format version
// (ErrUnsupportedVersion), and fn's. It must be called before the first
// Append on a WAL that had segments at Open; on a WAL that needs no replay
// (empty at Open, or already replayed) it does nothing. It must not run
// concurrently with Append or Cut; Truncate waits for it.
//
// If first is above the last segment, nothing is read and a torn tail of the
// last segment is left as it is; later replays from below it would report
// the tail as corruption.
func (w *WAL) ReplayFrom(first int, fn func(pos Pos, rec []byte) error) (ReplayStats, error) {
	var st ReplayStats
	w.truncMu.Lock()
	defer w.truncMu.Unlock()
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return st, fmt.Errorf("replay wal: %w", ErrClosed)
	}
	if !w.needsReplay {
		w.mu.Unlock()
		return st, nil
	}
	segs := slices.Clone(w.closedSegs)
	w.mu.Unlock()

	start := time.Now()
	r := newSegmentReader()
	prev := -1
	for i, s := range segs {
		if s.index < first {
			prev = s.index
			continue
		}
		if missing := max(prev+1, first); prev >= 0 && s.index > missing {
			w.corruption(&st, &CorruptionError{Segment: missing, Err: ErrMissingSegment},
				"wal segments missing from the sequence", logKeyCount, s.index-missing)
		}
		prev = s.index
		size, err := w.replaySegment(r, s, i == len(segs)-1, fn, &st)
		if err != nil {
			w.m.replayedRecords.Add(float64(st.Records))
			return st, err
		}
		if size != s.size {
			w.mu.Lock()
			w.closedSegs[i].size = size
			w.closedBytes += size - s.size
			w.mu.Unlock()
			w.m.sizeBytes.Add(float64(size - s.size))
		}
	}
	w.m.replayedRecords.Add(float64(st.Records))

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return st, fmt.Errorf("replay wal: %w", ErrClosed)
	}
	if err := w.openSegmentLocked(segs[len(segs)-1].index + 1); err != nil {
		return st, fmt.Errorf("replay wal: %w", err)
	}
	w.needsReplay = false
	w.logger.Info("replayed wal", logKeyRecords, st.Records, logKeyBytes, st.Bytes,
		logKeyFirst, first, "segments", st.Segments, "corruptions", len(st.Corruptions),
		"torn_tail", st.TornTail, logKeyDuration, time.Since(start))
	return st, nil
}

// corruption lists, counts and logs one corruption.
func (w *WAL) corruption(st *ReplayStats, cerr *CorruptionError, msg string, args ...any) {
	st.Corruptions = append(st.Corruptions, cerr)
	w.m.corruptions.Inc()
	w.logger.Error(msg, append([]any{logKeySegment, cerr.Segment, logKeyOffset, cerr.Offset, logKeyErr, cerr.Err}, args...)...)
}

// replaySegment replays one segment and repairs it if it is the last one.
// It returns the segment's size afterwards.
func (w *WAL) replaySegment(r *segmentReader, s segmentInfo, last bool, fn func(Pos, []byte) error, st *ReplayStats) (int64, error) {
	path := filepath.Join(w.opts.Dir, segmentName(s.index))
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open segment %d: %w", s.index, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat segment %d: %w", s.index, err)
	}
	size := info.Size()
	st.Segments++

	var fnErr error
	res, err := r.scan(f, size, func(off int64, rec []byte) error {
		if fnErr = fn(Pos{Segment: s.index, Offset: off}, rec); fnErr != nil {
			return fnErr
		}
		st.Records++
		st.Bytes += int64(len(rec))
		return nil
	})
	if err != nil {
		if fnErr != nil {
			return 0, fnErr
		}
		return 0, fmt.Errorf("replay segment %d: %w", s.index, err)
	}
	if res.err == nil {
		return size, nil
	}
	cerr := &CorruptionError{Segment: s.index, Offset: res.end, Err: res.err}
	discarded := size - res.end
	if !last {
		w.corruption(st, cerr, "wal segment corrupt; skipping the rest of it", logKeyDiscard, discarded)
		return size, nil
	}
	if errors.Is(res.err, ErrBadSegmentHeader) && !res.torn {
		// Not a file this package half-wrote: leave it for the operator.
		w.corruption(st, cerr, "last wal segment has a bad header; leaving it as it is")
		return size, nil
	}
	if res.torn {
		w.logger.Warn("repairing torn tail of the last wal segment", logKeySegment, s.index,
			logKeyOffset, res.end, logKeyErr, res.err, logKeyDiscard, discarded)
	} else {
		w.corruption(st, cerr, "last wal segment corrupt; truncating it at the last good record", logKeyDiscard, discarded)
	}
	if err := w.repairTail(path, res.end); err != nil {
		return 0, fmt.Errorf("repair segment %d: %w", s.index, err)
	}
	st.TornTail = true
	w.m.tornTailsRepairs.Inc()
	return max(res.end, segmentHeaderSize), nil
}

// repairTail truncates the segment at path to end bytes, rewriting the
// segment header if it was incomplete, and syncs it.
func (w *WAL) repairTail(path string, end int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(end); err != nil {
		return err
	}
	if end < segmentHeaderSize {
		if _, err := f.WriteAt(appendSegmentHeader(make([]byte, 0, segmentHeaderSize)), 0); err != nil {
			return err
		}
	}
	if err := w.fsync(f); err != nil {
		return err
	}
	return f.Close()
}
