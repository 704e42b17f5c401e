package wal

import (
	"encoding/binary"

	"github.com/clew-dev/clew/internal/encoding"
)

// The on-disk layout is described byte by byte in docs/format/wal.md; keep
// the two in step.

const (
	// segmentMagic opens every segment file: "CLWL" read as a little-endian
	// uint32 is 0x4c574c43.
	segmentMagic = "CLWL"
	// formatVersion is the segment format this package writes and reads.
	formatVersion = 1
	// segmentHeaderSize is the size of the header at offset 0 of a segment:
	// magic (4), version (1), reserved zero bytes (3).
	segmentHeaderSize = 8
	// recordHeaderSize is the size of the header in front of each record:
	// payload length (uint32 LE) and CRC32-Castagnoli (uint32 LE) of the
	// length bytes followed by the payload.
	recordHeaderSize = 8
)

// MaxRecordSize is the largest payload Append accepts. It bounds what a
// reader ever allocates for a record whose length field is damaged.
const MaxRecordSize = 1 << 30

// appendSegmentHeader appends the segment header to dst.
func appendSegmentHeader(dst []byte) []byte {
	dst = append(dst, segmentMagic...)
	return append(dst, formatVersion, 0, 0, 0)
}

// recordChecksum returns the CRC32-C of the length field lenBytes followed by
// payload. Covering the length means an all-zero header (a zero-filled tail)
// never checks out: CRC32-C of four zero bytes is 0x48674bc7, not zero.
func recordChecksum(lenBytes, payload []byte) uint32 {
	return encoding.UpdateCRC32C(encoding.CRC32C(lenBytes), payload)
}

// putRecordHeader writes the record header for payload into hdr, which must
// be recordHeaderSize bytes long.
func putRecordHeader(hdr []byte, payload []byte) {
	_ = hdr[recordHeaderSize-1]
	binary.LittleEndian.PutUint32(hdr[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(hdr[4:8], recordChecksum(hdr[0:4], payload))
}
