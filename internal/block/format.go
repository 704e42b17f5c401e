package block

import (
	"errors"
	"fmt"
	"sync"

	"github.com/clew-dev/clew/internal/encoding"
	"github.com/klauspost/compress/zstd"
)

// Columns of a row group, in the order their pages are stored.
const (
	colRuns = iota
	colSpanID
	colParent
	colTimes
	colName
	colMisc
	colOrigin
	colText
	colAttrs
	colEvents
	colLinks
	colStrs
	numCols
)

var colNames = [numCols]string{"runs", "span_id", "parent", "times", "name", "misc", "origin", "text", "attrs", "events", "links", "strings"}

type colMask uint16

const allCols = colMask(1<<numCols - 1)

// File magics. Each object starts with its 4-byte magic, the format version
// byte and three zero bytes.
var (
	dataMagic  = [4]byte{'C', 'L', 'W', 'D'}
	indexMagic = [4]byte{'C', 'L', 'W', 'I'}
)

const headerSize = 8

// Tunables of the writer (readers take them from the index).
const (
	maxGroupRows   = 2048 // rows per row group
	tracesPerPage  = 256  // entries per trace index page
	maxPageRaw     = 64 << 20
	parentLookback = 256 // rows searched back for a parent reference
)

// groupRows is the row group size the writer uses: maxGroupRows, lowered
// by tests to get many groups from little data.
var groupRows = maxGroupRows

// Page codecs: the first stored byte of every page.
const (
	codecRaw  = 0
	codecZstd = 1
)

// pageRef locates one page in the data object.
type pageRef struct {
	off  int64
	size uint32 // stored bytes, codec byte included
	raw  uint32 // decoded bytes
	crc  uint32 // CRC32C of the stored bytes
}

// groupInfo describes one row group.
type groupInfo struct {
	firstRow   int64
	rows       int
	firstTrace int64 // ordinal of the trace of the group's first row
	minStart   uint64
	maxStart   uint64
	minDur     uint64
	maxDur     uint64
	nstrs      uint32
	cols       [numCols]pageRef
}

// tracePageInfo describes one page of the trace index.
type tracePageInfo struct {
	firstID  [16]byte
	firstOrd int64
	firstRow int64
	n        int
	ref      pageRef
}

// zstdWindow is the encoder window size.
const zstdWindow = 256 << 10

type codecs struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// sharedCodecs are the zstd encoder and decoder shared by all writers and
// readers. EncodeAll and DecodeAll are safe for concurrent use; sharing them
// keeps per-block memory low. They hold no configuration, only buffers.
var sharedCodecs = sync.OnceValue(func() codecs {
	// Pages are compressed one by one with EncodeAll; a window beyond the
	// largest common page (the attrs column of a group, ~150 KiB raw) buys
	// nothing and costs history memory per concurrent encoder.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2),
		zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(zstdWindow))
	if err != nil {
		panic(fmt.Sprintf("BUG: zstd encoder: %v", err))
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(maxPageRaw), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(fmt.Sprintf("BUG: zstd decoder: %v", err))
	}
	return codecs{enc: enc, dec: dec}
})

// appendRawPage appends raw as a stored page without compression (for
// pages made of compressed sections).
func appendRawPage(dst, raw []byte) []byte {
	dst = append(dst, codecRaw)
	return append(dst, raw...)
}

// appendPage appends raw, compressed when that helps, as a stored page.
func appendPage(dst, raw []byte) []byte {
	start := len(dst)
	dst = append(dst, codecZstd)
	dst = sharedCodecs().enc.EncodeAll(raw, dst)
	if len(dst)-start-1 >= len(raw) {
		dst = append(dst[:start], codecRaw)
		dst = append(dst, raw...)
	}
	return dst
}

var errCRC = errors.New("checksum mismatch")

// decodePage checks and decodes one stored page.
func decodePage(stored []byte, ref pageRef, dst []byte) ([]byte, error) {
	if uint32(len(stored)) != ref.size || len(stored) < 1 {
		return nil, encoding.ErrShort
	}
	if encoding.CRC32C(stored) != ref.crc {
		return nil, errCRC
	}
	return decodePayload(stored, ref.raw, dst)
}

// decodePayload decodes a stored page (codec byte and payload) whose
// decoded length must be raw.
func decodePayload(stored []byte, raw uint32, dst []byte) ([]byte, error) {
	if len(stored) < 1 {
		return nil, encoding.ErrShort
	}
	ref := pageRef{raw: raw}
	switch stored[0] {
	case codecRaw:
		if uint32(len(stored)-1) != ref.raw {
			return nil, errors.New("page length mismatch")
		}
		return append(dst[:0], stored[1:]...), nil
	case codecZstd:
		if cap(dst) < int(ref.raw) {
			dst = make([]byte, 0, ref.raw)
		}
		out, err := sharedCodecs().dec.DecodeAll(stored[1:], dst[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		if uint32(len(out)) != ref.raw {
			return nil, errors.New("page length mismatch")
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown page codec %d", stored[0])
}
