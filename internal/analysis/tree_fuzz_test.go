package analysis

import (
	"encoding/binary"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

// FuzzTree builds trees from arbitrary span IDs, parent links and times
// (six bytes a span: ID, parent ID, start and duration as 16-bit numbers),
// so cycles, self parents, duplicates, orphans, zero IDs and skew all come
// up, and checks that building never panics or hangs, that the tree's
// invariants hold, and that Explain, Quality and AggregatePath take any
// tree.
func FuzzTree(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 100, 2, 1, 0, 10, 0, 20})
	f.Add([]byte{1, 2, 0, 0, 0, 10, 2, 1, 0, 5, 0, 10})                   // cycle
	f.Add([]byte{1, 1, 0, 0, 0, 10})                                      // self parent
	f.Add([]byte{1, 0, 0, 0, 0, 10, 1, 0, 0, 0, 0, 10, 1, 0, 0, 5, 0, 1}) // duplicates
	f.Add([]byte{3, 9, 0, 0, 0, 10, 0, 3, 0, 1, 0, 1})                    // orphan, zero ID
	f.Add([]byte{1, 0, 0, 10, 0, 10, 2, 1, 0, 0, 0, 100})                 // skew
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 6
		if n > 2000 {
			n = 2000
		}
		spans := make([]span.Span, n)
		for i := range spans {
			b := data[i*6 : i*6+6]
			spans[i] = span.Span{
				SpanID:        sid(int(b[0])),
				ParentSpanID:  sid(int(b[1])),
				Name:          "op",
				StartUnixNano: uint64(binary.BigEndian.Uint16(b[2:])),
				Resource:      res("svc"),
			}
			spans[i].EndUnixNano = spans[i].StartUnixNano + uint64(binary.BigEndian.Uint16(b[4:]))
			if b[5]&1 == 1 && b[4] == 0xff {
				spans[i].EndUnixNano = 0 // end before start
			}
		}
		tr := NewTree(spans)
		checkInvariants(t, tr)
		_ = tr.SelfTimes()
		// The analyses over the tree must not panic either.
		cohort := []*Tree{tr, tr, tr, tr, tr}
		_ = Explain(tr, cohort, ExplainOptions{MinRepeats: 2})
		_ = Quality(cohort, QualityOptions{})
		_ = AggregatePath(OpKey{"svc", "op"}, cohort, 0.9)
	})
}
