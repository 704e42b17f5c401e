package detect

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"time"
)

// Baseline modes: which history the expected values come from.
const (
	// ModeWeekly: the same time of the same weekday over the previous
	// weeks (at least two of the last four).
	ModeWeekly = "weekly"
	// ModeDaily: the same time of day over the previous days (at least
	// three of the last seven, of the same kind, weekday or weekend, when
	// there are enough of those).
	ModeDaily = "daily"
	// ModeTrailing: the window before the evaluated one, without the
	// periods found anomalous (a fresh install, the demo).
	ModeTrailing = "trailing"
)

// seasonalHalfWidth is half the width of a seasonal window: the hour
// around the same time on an earlier day.
const seasonalHalfWidth = 30 * time.Minute

// baseline is the expected behaviour of one operation, from one history.
type baseline struct {
	mode    string
	start   time.Time // the data's time range (trailing); the span of the windows (seasonal)
	end     time.Time
	windows int     // seasonal windows used (0 for trailing)
	minutes float64 // minutes the data covers
	data    *agg
	// ratePerMin and rateVar are the mean and the variance of the calls
	// per minute.
	ratePerMin, rateVar float64
}

// usable reports whether b has enough data to test against.
func (b *baseline) usable(cfg Config) bool {
	return b != nil && b.minutes >= cfg.MinBaseline.Minutes() && b.data.Calls >= uint64(cfg.MinCalls)
}

// trailingBaseline is the baseline of s from the minutes [from, to], minus
// those skip rejects (anomalous periods) and those before the history
// began (firstMinute).
func trailingBaseline(s *opSeries, from, to, firstMinute int64, skip func(int64) bool) *baseline {
	if firstMinute > 0 {
		// The history's first minute is a partial one (it began during
		// it): its calls would understate the rate.
		from = max(from, firstMinute+1)
	}
	b := &baseline{mode: ModeTrailing, start: minuteTime(from), end: minuteTime(to + 1), data: &agg{Hist: newHist()}}
	if from > to+1 {
		b.start = b.end
	}
	var counts []float64
	for m := from; m <= to; m++ {
		if skip != nil && skip(m) {
			continue
		}
		a := s.minutes[m]
		b.data.addAgg(a)
		if a != nil {
			counts = append(counts, float64(a.Calls))
		} else {
			counts = append(counts, 0)
		}
	}
	b.minutes = float64(len(counts))
	b.ratePerMin, b.rateVar = meanVar(counts)
	b.data.Exemplars = nil
	return b
}

// seasonalWindow is the data of one operation in one seasonal window.
type seasonalWindow struct {
	daysAgo int
	weekend bool
	data    *agg
	minutes float64
}

// seasonalCache holds the seasonal windows around the current time of
// day, refreshed every ten minutes.
type seasonalCache struct {
	at  time.Time
	ops map[opKey][]seasonalWindow
}

// seasonalDays are the days looked back at: the last week day by day and
// the same weekday of the three weeks before.
var seasonalDays = []int{1, 2, 3, 4, 5, 6, 7, 14, 21, 28}

func isWeekend(t time.Time) bool {
	wd := t.Weekday()
	return wd == time.Saturday || wd == time.Sunday
}

// get returns the seasonal windows around now for every operation.
func (c *seasonalCache) get(ctx context.Context, h History, now time.Time, log *slog.Logger) map[opKey][]seasonalWindow {
	if c.ops != nil && now.Sub(c.at) < 10*time.Minute && now.After(c.at) {
		return c.ops
	}
	ops := map[opKey][]seasonalWindow{}
	for _, days := range seasonalDays {
		center := now.Add(-time.Duration(days) * 24 * time.Hour)
		series, err := h.Range(ctx, nil, center.Add(-seasonalHalfWidth), center.Add(seasonalHalfWidth), time.Minute)
		if err != nil {
			log.Warn("read seasonal history", "days_ago", days, "err", err)
			continue
		}
		per := map[opKey]*seasonalWindow{}
		for _, s := range series {
			k := opKey{Service: s.Key.Service, Operation: s.Key.Operation, Kind: s.Key.Kind}
			w := per[k]
			if w == nil {
				w = &seasonalWindow{daysAgo: days, weekend: isWeekend(center), data: &agg{Hist: newHist()}}
				per[k] = w
			}
			for _, b := range s.Buckets {
				w.data.add(b.Calls, b.Errors, b.DurationSum, b.Hist)
			}
		}
		for k, w := range per {
			w.minutes = (2 * seasonalHalfWidth).Minutes()
			ops[k] = append(ops[k], *w)
		}
	}
	c.at, c.ops = now, ops
	return ops
}

// seasonalBaseline picks the weekly or daily baseline of an operation
// from its seasonal windows, or nil when there are too few. Windows that
// were themselves far off the others (an incident on that day) are left
// out: a window whose median latency is more than twice the windows'
// median, or whose error rate is more than twice theirs plus a point.
func seasonalBaseline(wins []seasonalWindow, now time.Time, cfg Config) *baseline {
	enough := func(w seasonalWindow) bool { return w.data.Calls >= uint64(cfg.MinCalls) }
	var weekly, daily, sameKind []seasonalWindow
	for _, w := range wins {
		if !enough(w) {
			continue
		}
		if w.daysAgo%7 == 0 {
			weekly = append(weekly, w)
		}
		if w.daysAgo <= 7 {
			daily = append(daily, w)
			if w.weekend == isWeekend(now) {
				sameKind = append(sameKind, w)
			}
		}
	}
	var mode string
	var use []seasonalWindow
	switch {
	case len(weekly) >= 2:
		mode, use = ModeWeekly, weekly
	case len(sameKind) >= 3:
		mode, use = ModeDaily, sameKind
	case len(daily) >= 3:
		mode, use = ModeDaily, daily
	default:
		return nil
	}
	use = dropOutlierWindows(use)
	if len(use) < 2 {
		return nil
	}
	b := &baseline{mode: mode, windows: len(use), data: &agg{Hist: newHist()}}
	oldest := 0
	var rates []float64
	for _, w := range use {
		b.data.addAgg(w.data)
		b.minutes += w.minutes
		rates = append(rates, float64(w.data.Calls)/w.minutes)
		oldest = max(oldest, w.daysAgo)
	}
	b.data.Exemplars = nil
	b.start = now.Add(-time.Duration(oldest)*24*time.Hour - seasonalHalfWidth)
	b.end = now.Add(-24*time.Hour + seasonalHalfWidth)
	b.ratePerMin, _ = meanVar(rates)
	// The spread of the per-minute counts: Poisson within a window, plus
	// the spread between the days.
	_, between := meanVar(rates)
	b.rateVar = b.ratePerMin + between
	return b
}

func dropOutlierWindows(ws []seasonalWindow) []seasonalWindow {
	if len(ws) < 3 {
		return ws
	}
	p50s := make([]float64, len(ws))
	errs := make([]float64, len(ws))
	for i, w := range ws {
		p50s[i] = float64(w.data.quantile(0.5))
		errs[i] = w.data.errorRate()
	}
	mp, me := median(p50s), median(errs)
	var out []seasonalWindow
	for i, w := range ws {
		if p50s[i] <= 2*mp && errs[i] <= 2*me+0.01 {
			out = append(out, w)
		}
	}
	return out
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Baseline is the expected behaviour of one operation, as served by
// GET /api/v1/baselines.
type Baseline struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	// Mode is "weekly", "daily" or "trailing" (see the Mode constants);
	// Fallback says why a seasonal baseline was not used.
	Mode     string `json:"mode"`
	Fallback string `json:"fallback,omitempty"`
	// Start and End bound the history the baseline comes from; Windows is
	// the number of seasonal windows (0 for trailing); Minutes the minutes
	// of data; Excluded the minutes left out as anomalous.
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Windows  int       `json:"windows"`
	Minutes  float64   `json:"minutes"`
	Excluded int       `json:"excludedMinutes"`
	Calls    uint64    `json:"calls"`
	Errors   uint64    `json:"errors"`
	// Sufficient is false when there is too little data to test against.
	Sufficient bool `json:"sufficient"`
	// The latency quantiles in milliseconds, the error rate (0..1) and the
	// throughput in calls per second, each with a 99% confidence band
	// (quantiles: distribution-free order statistics; error rate: Wilson;
	// throughput: the expected calls per second and the band one minute
	// of calls falls in).
	P50Ms     Band `json:"p50Ms"`
	P90Ms     Band `json:"p90Ms"`
	P99Ms     Band `json:"p99Ms"`
	ErrorRate Band `json:"errorRate"`
	Rate      Band `json:"ratePerSecond"`
}

// bandAlpha is the two-sided level of the bands served (99%).
const bandAlpha = 0.01

func msOf(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// publicBaseline renders b for the API.
func publicBaseline(k opKey, b *baseline, cfg Config, fallback string, excluded int) Baseline {
	out := Baseline{Service: k.Service, Operation: k.Operation, Kind: k.Kind.String(), Mode: b.mode, Fallback: fallback,
		Start: b.start, End: b.end, Windows: b.windows, Minutes: b.minutes, Excluded: excluded,
		Calls: b.data.Calls, Errors: b.data.Errors, Sufficient: b.usable(cfg)}
	q := func(p float64) Band {
		e, lo, hi := quantileBand(b.data.Hist, p, bandAlpha)
		return Band{Expected: msOf(e), Low: msOf(lo), High: msOf(hi)}
	}
	out.P50Ms, out.P90Ms, out.P99Ms = q(0.5), q(0.9), q(0.99)
	lo, hi := wilson(b.data.Errors, b.data.Calls, bandAlpha)
	out.ErrorRate = Band{Expected: round4(b.data.errorRate()), Low: round4(lo), High: round4(hi)}
	z := normQuantile(1 - bandAlpha/2)
	sd := math.Sqrt(max(b.rateVar, b.ratePerMin))
	out.Rate = Band{Expected: round4(b.ratePerMin / 60), Low: round4(max(0, b.ratePerMin-z*sd) / 60), High: round4((b.ratePerMin + z*sd) / 60)}
	return out
}
