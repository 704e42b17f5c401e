package detect

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/spanmetrics"
)

// dayHistory serves the same operation at the same rate every minute of
// the days it has data for, with a median latency per day.
type dayHistory struct {
	now     time.Time
	medians map[int]time.Duration // days ago → median (absent: no data)
}

func (h dayHistory) Range(ctx context.Context, match func(spanmetrics.Key) bool, start, end time.Time, step time.Duration) ([]spanmetrics.Series, error) {
	k := spanmetrics.Key{Service: "s", Operation: "op", Kind: span.KindServer, Version: "1"}
	r := rand.New(rand.NewPCG(uint64(start.Unix()), 1))
	s := spanmetrics.Series{Key: k}
	for m := start.Truncate(time.Minute); m.Before(end); m = m.Add(time.Minute) {
		days := int(h.now.Sub(m).Hours()/24 + 0.5)
		med, ok := h.medians[days]
		if !ok {
			continue
		}
		hh := hist(r, 60, med, 0.4)
		s.Buckets = append(s.Buckets, spanmetrics.Bucket{Start: m, Calls: 60, Errors: 1, Hist: hh})
	}
	if len(s.Buckets) == 0 {
		return nil, nil
	}
	return []spanmetrics.Series{s}, nil
}

func (h dayHistory) Edges(ctx context.Context, start, end time.Time, step time.Duration) ([]spanmetrics.EdgeSeries, error) {
	return nil, nil
}

func TestSeasonalBaseline(t *testing.T) {
	now := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC) // a Wednesday
	ms := func(d int) time.Duration { return time.Duration(d) * time.Millisecond }
	cases := []struct {
		name    string
		medians map[int]time.Duration
		mode    string // "" for none
		windows int
		median  time.Duration // expected, ±15%
	}{
		{"fresh install", map[int]time.Duration{}, "", 0, 0},
		{"two days only", map[int]time.Duration{1: ms(10), 2: ms(10)}, "", 0, 0},
		{"a week", map[int]time.Duration{1: ms(10), 2: ms(10), 3: ms(10), 4: ms(10), 5: ms(10), 6: ms(10), 7: ms(10)}, ModeDaily, 5, ms(10)},
		{"a day with an incident is left out", map[int]time.Duration{1: ms(10), 2: ms(80), 5: ms(10), 6: ms(10)}, ModeDaily, 3, ms(10)},
		{"four weeks", map[int]time.Duration{7: ms(20), 14: ms(20), 21: ms(20), 28: ms(20), 1: ms(10), 2: ms(10), 3: ms(10)}, ModeWeekly, 4, ms(20)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := &seasonalCache{}
			wins := sc.get(context.Background(), dayHistory{now: now, medians: c.medians}, now, slog.New(slog.DiscardHandler))
			b := seasonalBaseline(wins[opKey{"s", "op", span.KindServer}], now, DefaultConfig())
			if c.mode == "" {
				if b != nil {
					t.Fatalf("got a %s baseline of %d windows, want none", b.mode, b.windows)
				}
				return
			}
			if b == nil {
				t.Fatalf("no baseline, want %s", c.mode)
			}
			if b.mode != c.mode || b.windows != c.windows {
				t.Errorf("mode %s of %d windows, want %s of %d", b.mode, b.windows, c.mode, c.windows)
			}
			if got := b.data.quantile(0.5); got < c.median*85/100 || got > c.median*115/100 {
				t.Errorf("median %s, want about %s", got, c.median)
			}
			if b.ratePerMin < 55 || b.ratePerMin > 65 {
				t.Errorf("rate %.1f per minute, want 60", b.ratePerMin)
			}
		})
	}
}
