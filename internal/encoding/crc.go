package encoding

import "hash/crc32"

// castagnoli is the CRC32-C table; hash/crc32 uses the SSE4.2 / ARMv8 CRC
// instructions for it.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC32C returns the CRC32-C (Castagnoli) checksum of b.
func CRC32C(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// UpdateCRC32C returns crc extended by the CRC32-C of b, so that a checksum
// over several pieces needs no copy: UpdateCRC32C(CRC32C(a), b) equals
// CRC32C of a followed by b.
func UpdateCRC32C(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }
