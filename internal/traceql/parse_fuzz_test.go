package traceql

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics, that errors are *ParseErrors
// inside the input, that accepted queries reach a print/parse fixed
// point, and that their pushdown is bounded and compiles.
func FuzzParse(f *testing.F) {
	for _, q := range validQueries {
		f.Add(q)
	}
	for _, tc := range invalidQueries {
		f.Add(tc.q)
	}
	for _, q := range printerInputs {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		pq, err := Parse(q)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T is not a *ParseError", q, err)
			}
			if pe.Pos < 0 || pe.End < pe.Pos || pe.End > len(q) || pe.Line < 1 || pe.Col < 1 || pe.Msg == "" {
				t.Fatalf("Parse(%q) = bad error %+v", q, pe)
			}
			return
		}
		printed := pq.String()
		again, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its print %q fails: %v", q, printed, err)
		}
		if d1, d2 := dump(pq), dump(again); d1 != d2 {
			t.Fatalf("print changed the tree:\n query %q\n print %q\n  tree %s\n after %s", q, printed, d1, d2)
		}
		if p2 := again.String(); p2 != printed {
			t.Fatalf("printing is not stable: %q then %q", printed, p2)
		}
		for _, fl := range pq.Filters() {
			fl.Conditions().SearchQuery()
			alts := fl.Pushdown()
			if len(alts) > MaxPushdownAlternatives {
				t.Fatalf("Pushdown of %q: %d searches", q, len(alts))
			}
			for i := range alts {
				if err := alts[i].Compile(); err != nil {
					t.Fatalf("Pushdown of %q does not compile: %v", q, err)
				}
			}
		}
	})
}
