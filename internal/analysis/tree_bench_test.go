package analysis

import (
	"math/rand/v2"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

// genTrace builds a trace of n spans of a given shape with a fixed seed:
// "wide" (one root, every other span its child, partly overlapping),
// "deep" (a chain) or "random" (each span under a random earlier one,
// within its interval, with a little clock skew now and then).
func genTrace(shape string, n int, seed uint64) []span.Span {
	r := rand.New(rand.NewPCG(seed, 7))
	svcs := []*span.Resource{res("gw"), res("cat"), res("db"), res("inv")}
	spans := make([]span.Span, n)
	for i := range spans {
		s := &spans[i]
		s.TraceID = tid(1)
		s.SpanID = span.SpanID{0: 1, 1: byte(i >> 32), 2: byte(i >> 24), 3: byte(i >> 16), 4: byte(i >> 8), 5: byte(i)}
		s.Resource = svcs[i%len(svcs)]
		s.Name = [...]string{"op-a", "op-b", "op-c", "op-d", "op-e"}[i%5]
	}
	spans[0].StartUnixNano, spans[0].EndUnixNano = t0, t0+uint64(n)*1000
	for i := 1; i < n; i++ {
		var p int
		switch shape {
		case "wide":
			p = 0
		case "deep":
			p = i - 1
		default:
			p = r.IntN(i)
		}
		ps, pe := spans[p].StartUnixNano, spans[p].EndUnixNano
		if shape == "deep" {
			spans[i].StartUnixNano, spans[i].EndUnixNano = ps+1, max(pe-1, ps+1)
		} else {
			d := pe - ps
			st := ps + r.Uint64N(d+1)
			en := st + r.Uint64N(pe-st+1)
			if r.IntN(100) == 0 {
				st -= min(st, 500) // skew
			}
			spans[i].StartUnixNano, spans[i].EndUnixNano = st, en
		}
		spans[i].ParentSpanID = spans[p].SpanID
	}
	return spans
}

func BenchmarkTreeCriticalPath(b *testing.B) {
	for _, bc := range []struct {
		shape string
		n     int
	}{{"random", 100}, {"random", 10_000}, {"wide", 10_000}, {"random", 1_000_000}} {
		b.Run(bc.shape+"/"+itoa(bc.n), func(b *testing.B) {
			spans := genTrace(bc.shape, bc.n, 1)
			b.ReportAllocs()
			total := 0
			for b.Loop() {
				tr := NewTree(spans)
				_ = tr.SelfTimes()
				total += len(spans)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}

func itoa(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return itoa(n/1000) + "k"
	}
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
