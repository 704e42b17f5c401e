package detect

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/spanmetrics"
)

// incident is one anomaly: the raised symptoms that belong together
// (along the service graph) and their culprits.
type incident struct {
	id       string
	start    time.Time // the earliest onset of its symptoms
	detected time.Time
	updated  time.Time
	end      time.Time // zero while open
	symptoms map[symptomKey]*symptomRecord
	order    []symptomKey // in the order they joined

	culprits     []Culprit
	traceRanked  bool    // culprits came from traces once
	rankStrength float64 // the change the last trace ranking explained (ms per trace, errors weighed)
	rankedAt     time.Time
	rankedWith   int // symptoms when last ranked
	sample       *sampleState
	partial      bool
	notes        []string
}

// symptomRecord is one symptom of an incident.
type symptomRecord struct {
	last          finding
	onset         time.Time // the earliest onset estimated
	peakSeverity  float64
	first, lastAt time.Time
	active        bool
}

func (inc *incident) open() bool { return inc.end.IsZero() }

func (inc *incident) services() map[string]bool {
	s := map[string]bool{}
	for k := range inc.symptoms {
		s[k.op.Service] = true
	}
	return s
}

func (inc *incident) severity() float64 {
	var m float64
	for _, r := range inc.symptoms {
		m = max(m, r.peakSeverity)
	}
	return m
}

// adjacency returns the services next to each service in the service
// graph of the last minutes (either direction).
func adjacency(edges []spanmetrics.EdgeSeries) map[string]map[string]bool {
	adj := map[string]map[string]bool{}
	link := func(a, b string) {
		if adj[a] == nil {
			adj[a] = map[string]bool{}
		}
		adj[a][b] = true
	}
	for _, e := range edges {
		if len(e.Buckets) == 0 {
			continue
		}
		link(e.Key.Client, e.Key.Server)
		link(e.Key.Server, e.Key.Client)
	}
	return adj
}

// updateIncidents files the raised symptoms into incidents, resolves the
// incidents none of whose symptoms is raised any more, ranks culprits and
// recomputes the periods left out of baselines.
func (d *Detector) updateIncidents(ctx context.Context, ops map[opKey]*opSeries, now time.Time) {
	adj := adjacency(d.lastEdges)
	d.mu.Lock()
	open := []*incident{}
	for _, inc := range d.incidents {
		if inc.open() {
			open = append(open, inc)
			for _, r := range inc.symptoms {
				r.active = false
			}
		}
	}
	keys := make([]symptomKey, 0, len(d.symptoms))
	for k, st := range d.symptoms {
		if st.raised {
			keys = append(keys, k)
		}
	}
	// Most severe first, so that an incident's first symptom is its
	// clearest one.
	slices.SortFunc(keys, func(a, b symptomKey) int {
		ma, mb := d.symptoms[a].last.magnitude, d.symptoms[b].last.magnitude
		switch {
		case ma > mb:
			return -1
		case ma < mb:
			return 1
		}
		if c := compareOp(a.op, b.op); c != 0 {
			return c
		}
		return strings.Compare(a.signal, b.signal)
	})
	for _, k := range keys {
		f := d.symptoms[k].last
		inc := findIncident(open, k, f.onset, max(2*time.Minute, d.cfg.Window), adj)
		if inc == nil {
			d.nextID++
			inc = &incident{id: fmt.Sprintf("a%d-%d", now.Unix(), d.nextID), start: f.onset, detected: now,
				symptoms: map[symptomKey]*symptomRecord{}}
			d.incidents = append(d.incidents, inc)
			open = append(open, inc)
		}
		r := inc.symptoms[k]
		if r == nil {
			r = &symptomRecord{first: now}
			inc.symptoms[k] = r
			inc.order = append(inc.order, k)
			if f.onset.Before(inc.start) {
				inc.start = f.onset
			}
		}
		r.last, r.lastAt, r.active = f, now, true
		if r.onset.IsZero() || f.onset.Before(r.onset) {
			r.onset = f.onset
		}
		r.peakSeverity = max(r.peakSeverity, severityOf(f.magnitude))
		inc.updated = now
	}
	var rank []*incident
	for _, inc := range open {
		active := false
		for _, r := range inc.symptoms {
			active = active || r.active
		}
		if !active {
			inc.end = now
			inc.updated = now
			continue
		}
		if len(inc.symptoms) != inc.rankedWith || inc.culprits == nil ||
			now.Sub(inc.rankedAt) >= 30*time.Second && now.Sub(inc.detected) < 5*time.Minute {
			rank = append(rank, inc)
		}
	}
	d.retain(now)
	d.mu.Unlock()

	for _, inc := range rank {
		d.rank(ctx, inc, ops, now)
	}

	d.mu.Lock()
	d.excluded = map[string][]interval{}
	for _, inc := range d.incidents {
		end := inc.end
		if end.IsZero() {
			end = now
		}
		iv := interval{from: unixMinute(inc.start) - 1, to: unixMinute(end.Add(d.cfg.Window))}
		for s := range inc.services() {
			d.excluded[s] = append(d.excluded[s], iv)
		}
	}
	d.mu.Unlock()
}

// findIncident returns the open incident a symptom belongs to: the one
// that has it already, else one that started at most join before it with
// a symptom of the same service, else of a neighbouring service. A change
// that starts later is a new incident even where the graph links it to an
// open one (a second fault while the first one's symptoms fade).
func findIncident(open []*incident, k symptomKey, onset time.Time, join time.Duration, adj map[string]map[string]bool) *incident {
	for _, inc := range open {
		if inc.symptoms[k] != nil {
			return inc
		}
	}
	near := func(inc *incident) bool { return !onset.After(inc.start.Add(join)) }
	for _, inc := range open {
		if near(inc) && inc.services()[k.op.Service] {
			return inc
		}
	}
	for _, inc := range open {
		if !near(inc) {
			continue
		}
		for s := range inc.services() {
			if adj[k.op.Service][s] {
				return inc
			}
		}
	}
	return nil
}

// retain drops the incidents resolved longer than Retention ago and keeps
// at most 1000. d.mu is held.
func (d *Detector) retain(now time.Time) {
	d.incidents = slices.DeleteFunc(d.incidents, func(inc *incident) bool {
		return !inc.open() && now.Sub(inc.end) > d.cfg.Retention
	})
	if n := len(d.incidents); n > 1000 {
		d.incidents = slices.Clone(d.incidents[n-1000:])
	}
}

// Anomaly is one incident as served by GET /api/v1/anomalies.
type Anomaly struct {
	ID string `json:"id"`
	// Status is "open" or "resolved".
	Status string `json:"status"`
	// Start is the estimated start of the change (to the minute), End when
	// it was last seen (null while open), DetectedAt when it was raised.
	Start      time.Time  `json:"start"`
	End        *time.Time `json:"end"`
	DetectedAt time.Time  `json:"detectedAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	// Severity is 0..100: the largest relative change among its symptoms
	// (a doubling is 63, tenfold 96).
	Severity float64 `json:"severity"`
	// Summary says in one line what changed and the top culprit.
	Summary string `json:"summary"`
	// Signals lists the kinds of change seen: latency, errors, throughput,
	// propagation.
	Signals []string `json:"signals"`
	// Operations are the affected operations (symptoms), most severe
	// first.
	Operations []Symptom `json:"operations"`
	// Culprits are ranked, most likely first.
	Culprits []Culprit `json:"culprits"`
	// Exemplars are example traces of the affected operations.
	Exemplars []Exemplar `json:"exemplars"`
	// Partial is set when the culprit ranking saw less than it asked for
	// (traces cut, missing or too large); Notes say what.
	Partial bool     `json:"partial"`
	Notes   []string `json:"notes"`
}

// Symptom is one affected operation and signal.
type Symptom struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	Signal    string `json:"signal"`
	// Measure names what Observed and Expected are: p50Ms, p90Ms, p99Ms,
	// errorRate (0..1), ratePerSecond or rootShare (0..1).
	Measure  string  `json:"measure"`
	Observed float64 `json:"observed"`
	Expected float64 `json:"expected"`
	// PValue is the test's p-value (corrected for the windows tested);
	// Severity as the anomaly's.
	PValue   float64 `json:"pValue"`
	Severity float64 `json:"severity"`
	// Calls in the window tested, and how long it was.
	Calls  uint64 `json:"calls"`
	Window string `json:"window"`
	// Baseline is the baseline mode it was tested against.
	Baseline string `json:"baseline"`
	// Versions lists the service versions the change is confined to, when
	// others are unaffected.
	Versions []string  `json:"versions,omitempty"`
	Start    time.Time `json:"start"`
	Active   bool      `json:"active"`
}

// Culprit is one candidate cause of an anomaly.
type Culprit struct {
	Rank      int    `json:"rank"`
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Kind      string `json:"kind"`
	// Version is set when the change is confined to one service.version;
	// Attribute when one attribute value (in clew's search syntax, as
	// /api/v1/search's attr parameter takes it) sets the affected spans
	// apart.
	Version   string `json:"version,omitempty"`
	Attribute string `json:"attribute,omitempty"`
	// Score is 0..1: the culprit's share of the change, weighted by signal.
	Score float64 `json:"score"`
	// SelfTimeDeltaMs is the change of its self time on the critical path
	// per trace; ErrorOriginDelta the change of the errors originating in
	// it per trace.
	SelfTimeDeltaMs  float64  `json:"selfTimeDeltaMs"`
	ErrorOriginDelta float64  `json:"errorOriginDelta"`
	Evidence         []string `json:"evidence"`
}

// Exemplar is an example trace of an anomaly.
type Exemplar struct {
	TraceID    string  `json:"traceID"`
	SpanID     string  `json:"spanID"`
	Service    string  `json:"service"`
	Operation  string  `json:"operation"`
	DurationMs float64 `json:"durationMs"`
	Error      bool    `json:"error"`
}

// public renders inc. d.mu is held.
func (inc *incident) public() Anomaly {
	a := Anomaly{ID: inc.id, Status: "open", Start: inc.start, DetectedAt: inc.detected, UpdatedAt: inc.updated,
		Severity: inc.severity(), Culprits: slices.Clone(inc.culprits), Partial: inc.partial, Notes: slices.Clone(inc.notes),
		Operations: []Symptom{}, Exemplars: []Exemplar{}, Signals: []string{}}
	if !inc.open() {
		end := inc.end
		a.End, a.Status = &end, "resolved"
	}
	if a.Culprits == nil {
		a.Culprits = []Culprit{}
	}
	if a.Notes == nil {
		a.Notes = []string{}
	}
	keys := slices.Clone(inc.order)
	slices.SortStableFunc(keys, func(x, y symptomKey) int {
		sx, sy := inc.symptoms[x].peakSeverity, inc.symptoms[y].peakSeverity
		switch {
		case sx > sy:
			return -1
		case sx < sy:
			return 1
		}
		return 0
	})
	seenSignal := map[string]bool{}
	seenEx := map[string]bool{}
	for _, k := range keys {
		r := inc.symptoms[k]
		f := r.last
		a.Operations = append(a.Operations, Symptom{Service: k.op.Service, Operation: k.op.Operation, Kind: k.op.Kind.String(),
			Signal: k.signal, Measure: f.measure, Observed: f.observed, Expected: f.expected, PValue: sigP(f.p),
			Severity: r.peakSeverity, Calls: f.calls, Window: f.window.Round(time.Second).String(), Baseline: f.mode,
			Versions: f.versions, Start: r.onset, Active: r.active && inc.open()})
		if !seenSignal[k.signal] {
			seenSignal[k.signal] = true
			a.Signals = append(a.Signals, k.signal)
		}
		for _, x := range f.exemplars {
			id := x.TraceID.String()
			if seenEx[id] || len(a.Exemplars) >= 10 {
				continue
			}
			seenEx[id] = true
			a.Exemplars = append(a.Exemplars, Exemplar{TraceID: id, SpanID: x.SpanID.String(), Service: k.op.Service,
				Operation: k.op.Operation, DurationMs: msOf(x.Duration), Error: x.Error})
		}
	}
	slices.Sort(a.Signals)
	a.Summary = summarize(a)
	return a
}

// sigP rounds a p-value to three significant digits.
func sigP(p float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(p, 'g', 3, 64), 64)
	return v
}

func summarize(a Anomaly) string {
	var b strings.Builder
	if len(a.Operations) > 0 {
		o := a.Operations[0]
		fmt.Fprintf(&b, "%s of %s %s", o.Signal, o.Service, o.Operation)
		if n := len(a.Operations) - 1; n > 0 {
			fmt.Fprintf(&b, " and %d more", n)
		}
	}
	if len(a.Culprits) > 0 {
		c := a.Culprits[0]
		fmt.Fprintf(&b, "; most likely culprit: %s %s", c.Service, c.Operation)
		if c.Version != "" {
			fmt.Fprintf(&b, " version %s", c.Version)
		}
		if c.Attribute != "" {
			fmt.Fprintf(&b, " where %s", c.Attribute)
		}
	}
	return b.String()
}

// Anomalies returns the anomalies open or ended in [start, end], newest
// first.
func (d *Detector) Anomalies(start, end time.Time) []Anomaly {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []Anomaly{}
	for i := len(d.incidents) - 1; i >= 0; i-- {
		inc := d.incidents[i]
		if inc.start.After(end) || !inc.open() && inc.end.Before(start) {
			continue
		}
		out = append(out, inc.public())
	}
	slices.SortStableFunc(out, func(a, b Anomaly) int { return b.Start.Compare(a.Start) })
	return out
}
