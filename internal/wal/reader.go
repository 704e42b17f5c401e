package wal

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// scanResult is the outcome of decoding one segment.
type scanResult struct {
	// end is the offset just past the last good record, or 0 if the
	// segment header itself is bad.
	end int64
	// err is nil if the segment decoded to its end, else the cause of the
	// damage at offset end: ErrBadSegmentHeader, ErrIncompleteRecord,
	// ErrBadLength, ErrBadChecksum or ErrZeroFilled.
	err error
	// torn reports that the damage looks like an interrupted write: an
	// incomplete record, or a bad header or record followed only by zero
	// bytes. See "Recovery" in docs/format/wal.md.
	torn bool
}

// segmentReader decodes segments. Its buffers are reused from one segment
// to the next; it is not safe for concurrent use.
type segmentReader struct {
	br   *bufio.Reader
	buf  []byte // payload of the current record, grown to the largest seen
	zero []byte // scratch for zero checks
}

// readBufferSize is the read-ahead of the segment reader. Records are read
// straight into the payload buffer when they are larger.
const readBufferSize = 256 << 10

func newSegmentReader() *segmentReader {
	return &segmentReader{br: bufio.NewReaderSize(nil, readBufferSize)}
}

// scan decodes the segment in ra, which is size bytes long, and calls fn for
// each good record with its offset. rec is only valid during fn. scan stops
// at the first damage, which it describes in the result; the error is fn's
// error or an I/O error, never corruption.
func (r *segmentReader) scan(ra io.ReaderAt, size int64, fn func(off int64, rec []byte) error) (scanResult, error) {
	r.br.Reset(io.NewSectionReader(ra, 0, size))
	var hdr [recordHeaderSize]byte

	// Segment header.
	if size < segmentHeaderSize {
		n := int(size)
		if _, err := io.ReadFull(r.br, hdr[:n]); err != nil {
			return scanResult{}, fmt.Errorf("read segment header: %w", err)
		}
		valid := appendSegmentHeader(make([]byte, 0, segmentHeaderSize))
		torn := bytes.Equal(hdr[:n], valid[:n]) || allZero(hdr[:n])
		return scanResult{err: ErrBadSegmentHeader, torn: torn}, nil
	}
	if _, err := io.ReadFull(r.br, hdr[:segmentHeaderSize]); err != nil {
		return scanResult{}, fmt.Errorf("read segment header: %w", err)
	}
	if string(hdr[:4]) != segmentMagic || hdr[5] != 0 || hdr[6] != 0 || hdr[7] != 0 || hdr[4] == 0 {
		// A header write cut short and zero-filled: a prefix of a valid
		// header, then nothing but zeros.
		valid := appendSegmentHeader(make([]byte, 0, segmentHeaderSize))
		n := 0
		for n < segmentHeaderSize && hdr[n] == valid[n] {
			n++
		}
		if allZero(hdr[n:segmentHeaderSize]) {
			torn, err := r.zeroFrom(ra, segmentHeaderSize, size)
			return scanResult{err: ErrBadSegmentHeader, torn: torn}, err
		}
		return scanResult{err: ErrBadSegmentHeader}, nil
	}
	if hdr[4] > formatVersion {
		return scanResult{}, fmt.Errorf("read segment header: %w %d (this build reads version %d)", ErrUnsupportedVersion, hdr[4], formatVersion)
	}

	off := int64(segmentHeaderSize)
	for off < size {
		res := scanResult{end: off}
		if size-off < recordHeaderSize {
			n := int(size - off)
			if _, err := io.ReadFull(r.br, hdr[:n]); err != nil {
				return scanResult{}, fmt.Errorf("read record header: %w", err)
			}
			res.err, res.torn = ErrIncompleteRecord, true
			if allZero(hdr[:n]) {
				res.err = ErrZeroFilled
			}
			return res, nil
		}
		if _, err := io.ReadFull(r.br, hdr[:]); err != nil {
			return scanResult{}, fmt.Errorf("read record header: %w", err)
		}
		if allZero(hdr[:]) {
			torn, err := r.zeroFrom(ra, off+recordHeaderSize, size)
			res.err, res.torn = ErrZeroFilled, torn
			return res, err
		}
		length := int64(binary.LittleEndian.Uint32(hdr[0:4]))
		if length > MaxRecordSize {
			torn, err := r.zeroFrom(ra, off+recordHeaderSize, size)
			res.err, res.torn = ErrBadLength, torn
			return res, err
		}
		end := off + recordHeaderSize + length
		if end > size {
			res.err, res.torn = ErrIncompleteRecord, true
			return res, nil
		}
		if int64(cap(r.buf)) < length {
			r.buf = make([]byte, length)
		}
		payload := r.buf[:length]
		if _, err := io.ReadFull(r.br, payload); err != nil {
			return scanResult{}, fmt.Errorf("read record: %w", err)
		}
		if recordChecksum(hdr[0:4], payload) != binary.LittleEndian.Uint32(hdr[4:8]) {
			torn, err := r.zeroFrom(ra, end, size)
			res.err, res.torn = ErrBadChecksum, torn
			return res, err
		}
		if err := fn(off, payload); err != nil {
			return res, err
		}
		off = end
	}
	return scanResult{end: off}, nil
}

// zeroFrom reports whether the bytes of ra in [from, size) are all zero.
func (r *segmentReader) zeroFrom(ra io.ReaderAt, from, size int64) (bool, error) {
	if r.zero == nil {
		r.zero = make([]byte, 64<<10)
	}
	for from < size {
		n := min(int64(len(r.zero)), size-from)
		if _, err := ra.ReadAt(r.zero[:n], from); err != nil {
			return false, fmt.Errorf("read segment tail: %w", err)
		}
		if !allZero(r.zero[:n]) {
			return false, nil
		}
		from += n
	}
	return true, nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
