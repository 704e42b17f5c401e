package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// ExplainResponse is the answer of GET /api/v1/explain/{traceID}.
type ExplainResponse struct {
	TraceID       string  `json:"traceID"`
	RootService   string  `json:"rootService"`
	RootOperation string  `json:"rootOperation"`
	Start         string  `json:"start"`
	DurationMs    float64 `json:"durationMs"`
	Spans         int     `json:"spans"`
	Cohort        Cohort  `json:"cohort"`
	// ExcessMs is the duration beyond the cohort's median (0 without a
	// cohort).
	ExcessMs     float64         `json:"excessMs"`
	CriticalPath []PathOperation `json:"criticalPath"`
	Findings     []Finding       `json:"findings"`
	Partial      bool            `json:"partial"`
	Notes        []string        `json:"notes"`
}

// Cohort describes the traces an explanation compared with.
type Cohort struct {
	// Traces is the number of cohort traces compared with.
	Traces int `json:"traces"`
	// Start and End bound the time range they were taken from.
	Start string  `json:"start"`
	End   string  `json:"end"`
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
}

// PathOperation is one operation's self time on the critical path.
type PathOperation struct {
	Service     string   `json:"service"`
	Operation   string   `json:"operation"`
	SelfMs      float64  `json:"selfMs"`
	CohortP50Ms *float64 `json:"cohortP50Ms,omitempty"`
}

// Finding is one reason why the trace is slow (analysis.Finding).
type Finding struct {
	Type        string   `json:"type"`
	Service     string   `json:"service"`
	Operation   string   `json:"operation"`
	Detail      string   `json:"detail,omitempty"`
	SpanIDs     []string `json:"spanIDs"`
	ExcessMs    float64  `json:"excessMs"`
	SavingMs    float64  `json:"savingMs"`
	Count       int      `json:"count"`
	CohortCount *float64 `json:"cohortCount,omitempty"`
	ValueMs     *float64 `json:"valueMs,omitempty"`
	BaselineMs  *float64 `json:"baselineMs,omitempty"`
	InCohort    *float64 `json:"inCohort,omitempty"`
	Message     string   `json:"message"`
}

// cohortSlices is the number of slices of the time range the cohort is
// drawn from, so that it spreads over the range instead of being the last
// few seconds of traffic. Each slice is four times as long as the one
// after it: for 24 hours, the last minute, the 4 minutes before, then 17
// minutes, 67 minutes, 4.5 hours and 18 hours. Recent traffic and older
// traffic weigh the same, whether the range holds a day of traffic or
// only a few minutes.
const cohortSlices = 6

func (s *Analysis) explain(w http.ResponseWriter, r *http.Request) {
	id, err := span.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "trace ID must be 1 to 32 hex digits and not all zero")
		return
	}
	v := r.URL.Query()
	now := s.cfg.Now()
	tr, err := parseAnalysisRange(v, now, 24*time.Hour)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	size, err := httpapi.ParseLimit(v, "cohort", s.cfg.CohortSize, s.cfg.MaxTraces)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	minRepeats, err := httpapi.ParseLimit(v, "minRepeats", 5, 1000)
	if err != nil || minRepeats < 2 {
		httpapi.WriteError(w, http.StatusBadRequest, "minRepeats: want an integer from 2 to 1000")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	b, found, err := s.db.FindTrace(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found || len(b.Spans) == 0 {
		httpapi.WriteError(w, http.StatusNotFound, "trace "+id.String()+" not found")
		return
	}
	t := analysis.BuildTree(b)
	root := t.Root()
	rootStart := t.Spans[root].StartUnixNano
	if v.Get("start") == "" && v.Get("end") == "" && v.Get("since") == "" && rootStart < tr.start {
		// An old trace: its cohort is the day before it.
		tr.end = rootStart + uint64(time.Hour)
		tr.start = rootStart - min(rootStart, uint64(24*time.Hour))
	}
	l := s.newLoader()
	l.left.Add(-int64(len(b.Spans)))
	cohort, notes, err := s.cohort(ctx, l, t.Service(root), t.Spans[root].Name, tr, size, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e := analysis.Explain(t, cohort, analysis.ExplainOptions{MinRepeats: minRepeats})
	out := explainResponse(e, tr)
	if len(notes) > 0 {
		out.Partial = true
		out.Notes = append(out.Notes, notes...)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// cohort loads up to n traces of the same root service and operation from
// the range, spread over it: the newest of each of cohortSlices slices in
// turn, newest slice first. It skips the explained trace and traces with
// an error span.
func (s *Analysis) cohort(ctx context.Context, l *loader, svc, op string, tr timeRange, n int, self span.TraceID) ([]*analysis.Tree, []string, error) {
	var notes []string
	var lists [][]span.TraceID
	unit := (tr.end - tr.start) / 1365 // 1 + 4 + 16 + 64 + 256 + 1024
	want := n + n/2 + 1                // some will be errors, or the trace itself
	hi, length := tr.end, unit
	for k := range cohortSlices {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		lo := hi - min(length, hi-tr.start)
		if k == cohortSlices-1 {
			lo = tr.start
		}
		q := &search.Query{Service: svc, SpanName: op, Start: lo, End: hi}
		if err := q.Compile(); err != nil {
			return nil, nil, err
		}
		res, err := s.db.Search(ctx, q, want, nil)
		if err != nil {
			return nil, nil, err
		}
		var ids []span.TraceID
		for _, h := range res.Hits {
			if h.TraceID != self {
				ids = append(ids, h.TraceID)
			}
		}
		lists = append(lists, ids)
		hi, length = lo, 4*length
	}
	var ids []span.TraceID
	seen := map[span.TraceID]bool{}
	for k := 0; len(ids) < want; k++ {
		more := false
		for _, list := range lists {
			if k < len(list) {
				more = true
				if !seen[list[k]] && len(ids) < want {
					seen[list[k]] = true
					ids = append(ids, list[k])
				}
			}
		}
		if !more {
			break
		}
	}
	bs, err := l.load(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	var out []*analysis.Tree
	for _, t := range trees(bs) {
		if len(out) == n {
			break
		}
		r := t.Root()
		if r < 0 || t.Service(r) != svc || t.Spans[r].Name != op || hasError(t) {
			continue
		}
		out = append(out, t)
	}
	if l.cut.Load() {
		notes = append(notes, fmt.Sprintf("the cohort was cut at %d spans loaded", s.cfg.MaxSpans))
	}
	return out, notes, nil
}

func hasError(t *analysis.Tree) bool {
	for i := range t.Spans {
		if t.Spans[i].StatusCode == span.StatusError {
			return true
		}
	}
	return false
}

func ptr(f float64) *float64 { return &f }

func explainResponse(e *analysis.Explanation, tr timeRange) ExplainResponse {
	out := ExplainResponse{
		TraceID: e.TraceID.String(), RootService: e.RootService, RootOperation: e.RootOperation,
		Start: rfc3339(e.StartUnixNano), DurationMs: millis(e.Duration), Spans: e.Spans,
		Cohort:   Cohort{Traces: e.Cohort, Start: rfc3339(tr.start), End: rfc3339(tr.end), P50Ms: millis(e.CohortP50), P90Ms: millis(e.CohortP90)},
		ExcessMs: millis(e.Excess), Partial: e.Partial, Notes: nonNil(e.Notes),
		CriticalPath: []PathOperation{}, Findings: []Finding{},
	}
	for _, p := range e.CriticalPath {
		po := PathOperation{Service: p.Op.Service, Operation: p.Op.Operation, SelfMs: millis(p.Self)}
		if p.HasCohort {
			po.CohortP50Ms = ptr(millis(p.CohortP50))
		}
		out.CriticalPath = append(out.CriticalPath, po)
	}
	for _, f := range e.Findings {
		fo := Finding{Type: string(f.Type), Service: f.Service, Operation: f.Operation, Detail: f.Detail,
			SpanIDs: make([]string, len(f.SpanIDs)), ExcessMs: millis(f.Excess), SavingMs: millis(f.Saving),
			Count: f.Count, Message: f.Message}
		for i, id := range f.SpanIDs {
			fo.SpanIDs[i] = id.String()
		}
		if f.CohortCount >= 0 {
			fo.CohortCount = ptr(round3(f.CohortCount))
		}
		if f.InCohort >= 0 {
			fo.InCohort = ptr(round3(f.InCohort))
		}
		if f.Type == analysis.FindingCriticalPathSelf {
			fo.ValueMs, fo.BaselineMs = ptr(millis(f.Value)), ptr(millis(f.Baseline))
		}
		out.Findings = append(out.Findings, fo)
	}
	return out
}
