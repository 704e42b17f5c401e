package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by operations on a closed WAL.
	ErrClosed = errors.New("wal is closed")
	// ErrNotReplayed is returned by Append and Cut on a WAL that held
	// segments at Open and has not been replayed yet.
	ErrNotReplayed = errors.New("wal has segments that must be replayed before the first append")
	// ErrRecordTooLarge is returned by Append for a payload longer than
	// MaxRecordSize.
	ErrRecordTooLarge = errors.New("record exceeds the maximum record size")
	// ErrPoisoned is wrapped by every error that Append, Cut and Close return
	// after a write or fsync error. A failed fsync may have dropped dirty
	// pages that can never be written again, so the only safe recovery is to
	// restart the process and replay the log from disk.
	ErrPoisoned = errors.New("wal is unusable after a write or sync error: restart the process to recover from the log on disk")
	// ErrUnsupportedVersion is returned by Replay for a segment written in a
	// format version this build cannot read. It is not treated as
	// corruption: the data is probably fine, the binary is too old.
	ErrUnsupportedVersion = errors.New("unsupported segment format version")
)

// The causes a CorruptionError carries in its Err field.
var (
	// ErrBadSegmentHeader means the segment does not start with a valid
	// header (magic, version, reserved bytes).
	ErrBadSegmentHeader = errors.New("bad segment header")
	// ErrIncompleteRecord means a record header or payload runs past the end
	// of the segment file.
	ErrIncompleteRecord = errors.New("incomplete record")
	// ErrBadLength means a record's length field exceeds MaxRecordSize.
	ErrBadLength = errors.New("record length out of range")
	// ErrBadChecksum means a record's CRC32-C does not match its contents.
	ErrBadChecksum = errors.New("record checksum mismatch")
	// ErrZeroFilled means the segment holds zero bytes where a record header
	// should be.
	ErrZeroFilled = errors.New("zero-filled region where a record was expected")
	// ErrMissingSegment means a segment index is absent from an otherwise
	// contiguous sequence of segment files.
	ErrMissingSegment = errors.New("segment missing from the sequence")
)

// CorruptionError describes damage found while replaying a segment. Segment
// and Offset locate the first bad byte range (Offset is the start of the bad
// record, or 0 for a bad or missing segment); Err is one of the ErrBadXxx,
// ErrIncompleteRecord, ErrZeroFilled or ErrMissingSegment causes.
type CorruptionError struct {
	Segment int
	Offset  int64
	Err     error
}

// Error implements error.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt wal segment %d at offset %d: %v", e.Segment, e.Offset, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, ErrBadChecksum) works.
func (e *CorruptionError) Unwrap() error { return e.Err }
