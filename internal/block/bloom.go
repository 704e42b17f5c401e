package block

import (
	"github.com/cespare/xxhash/v2"

	"github.com/clew-dev/clew/internal/span"
)

// bloom is a split-free bloom filter over trace IDs with k probes derived by
// double hashing one 64-bit xxhash.
type bloom struct {
	k     uint32
	words []uint64
}

const bloomBitsPerKey = 10

func traceHash(id span.TraceID) uint64 { return xxhash.Sum64(id[:]) }

// newBloom returns an empty filter sized for n keys.
func newBloom(n int) bloom {
	nbits := uint64(n) * bloomBitsPerKey
	if nbits < 64 {
		nbits = 64
	}
	return bloom{k: 7, words: make([]uint64, (nbits+63)/64)}
}

func (b *bloom) add(h uint64) {
	n := uint64(len(b.words)) * 64
	h1, h2 := h, h>>32|h<<32
	for i := uint32(0); i < b.k; i++ {
		bit := (h1 + uint64(i)*h2) % n
		b.words[bit/64] |= 1 << (bit % 64)
	}
}

func (b *bloom) mayContain(h uint64) bool {
	if len(b.words) == 0 {
		return true
	}
	n := uint64(len(b.words)) * 64
	h1, h2 := h, h>>32|h<<32
	for i := uint32(0); i < b.k; i++ {
		bit := (h1 + uint64(i)*h2) % n
		if b.words[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}
