// Package encoding holds the byte-level helpers that clew's on-disk formats
// share: the CRC32-C checksum, append-style varint and fixed-width
// encoders, and Decbuf, a decoder with a sticky error.
//
// It imports the standard library only, so that every format package
// (internal/block, internal/wal, internal/spanmetrics) can use it. It knows
// nothing of any format: the layouts are described in docs/format/.
package encoding
