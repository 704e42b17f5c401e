package otlp

// arena hands out slices from reusable chunks so that a warmed-up Decoder
// decodes without allocating per span. Slices handed out stay valid until
// reset; chunks are never reallocated in place, so earlier slices are not
// moved by later allocations.
type arena[T any] struct {
	chunks [][]T
	ci     int // current chunk
	off    int // next free element in chunks[ci]
}

const (
	arenaMinChunk = 256
	arenaMaxChunk = 64 << 10
)

// alloc returns n zeroed elements with capacity n.
func (a *arena[T]) alloc(n int) []T {
	if n <= 0 {
		return nil
	}
	for a.ci < len(a.chunks) {
		c := a.chunks[a.ci]
		if len(c)-a.off >= n {
			s := c[a.off : a.off+n : a.off+n]
			a.off += n
			clear(s)
			return s
		}
		a.ci++
		a.off = 0
	}
	size := arenaMinChunk
	if k := len(a.chunks); k > 0 {
		size = min(2*len(a.chunks[k-1]), arenaMaxChunk)
	}
	size = max(size, n)
	c := make([]T, size)
	a.chunks = append(a.chunks, c)
	a.ci = len(a.chunks) - 1
	a.off = n
	return c[:n:n]
}

// one returns a pointer to one zeroed element.
func (a *arena[T]) one() *T { return &a.alloc(1)[0] }

// reset makes all chunks available again, keeping at most retain elements
// worth of chunks so that one huge request does not pin memory forever.
func (a *arena[T]) reset(retain int) {
	total := 0
	for i, c := range a.chunks {
		total += len(c)
		if total > retain {
			clear(a.chunks[i:])
			a.chunks = a.chunks[:i]
			break
		}
	}
	a.ci, a.off = 0, 0
}

// release zeroes the elements handed out since the last reset, so that the
// arena no longer references decoded data, and then resets.
func (a *arena[T]) release(retain int) {
	for i := 0; i < a.ci && i < len(a.chunks); i++ {
		clear(a.chunks[i])
	}
	if a.ci < len(a.chunks) {
		clear(a.chunks[a.ci][:a.off])
	}
	a.reset(retain)
}
