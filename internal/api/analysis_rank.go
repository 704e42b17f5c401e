package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/engine"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/traceql"
)

// RankResponse is the answer of GET /api/v1/attributes/rank.
type RankResponse struct {
	Start     string    `json:"start"`
	End       string    `json:"end"`
	Selection Selection `json:"selection"`
	Baseline  Selection `json:"baseline"`
	// Tested is the number of (attribute, value) pairs tested.
	Tested      int          `json:"tested"`
	Attributes  []RankedAttr `json:"attributes"`
	SkippedKeys []string     `json:"skippedKeys"`
	Partial     bool         `json:"partial"`
	Notes       []string     `json:"notes"`
}

// Selection describes one side of a comparison.
type Selection struct {
	// Query is the TraceQL query, or the native conditions, or a
	// description of the default baseline.
	Query  string `json:"query"`
	Spans  int    `json:"spans"`
	Traces int    `json:"traces"`
}

// RankedAttr is an attribute value more common in the selection than in
// the baseline (analysis.AttrDiff).
type RankedAttr struct {
	Key            string  `json:"key"`
	Value          string  `json:"value"`
	Missing        bool    `json:"missing,omitempty"`
	SelectionCount int     `json:"selectionCount"`
	BaselineCount  int     `json:"baselineCount"`
	SelectionShare float64 `json:"selectionShare"`
	BaselineShare  float64 `json:"baselineShare"`
	Diff           float64 `json:"diff"`
	Z              float64 `json:"z"`
	PValue         float64 `json:"pValue"`
}

// maxSpansPerTrace bounds the spans of one trace in a selection.
const maxSpansPerTrace = 10_000

// budgetSource is the engine's source for one request: its trace loads
// count against the request's span budget.
type budgetSource struct {
	storage.Reader
	l *loader
}

// BoundRange is storage.RangeBounder over the wrapped Reader.
func (b budgetSource) BoundRange(ctx context.Context, start, end uint64) (uint64, uint64, error) {
	return storage.BoundRange(ctx, b.Reader, start, end)
}

func (b budgetSource) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	if b.l.left.Load() <= 0 {
		b.l.cut.Store(true)
		return nil, false, nil
	}
	tr, found, err := b.Reader.FindTrace(ctx, id)
	if found {
		b.l.left.Add(-int64(len(tr.Spans)))
	}
	return tr, found, err
}

// selected is the spans of a selection.
type selected struct {
	spans  []*span.Span
	traces int
}

type spanKey struct {
	t span.TraceID
	s span.SpanID
}

func (s *Analysis) rank(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	tr, err := parseAnalysisRange(v, s.cfg.Now(), time.Hour)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := httpapi.ParseLimit(v, "limit", min(defaultSampleTraces, s.cfg.MaxTraces), s.cfg.MaxTraces)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	var selQ *traceql.Query
	var native *search.Query
	var selDesc string
	if q := v.Get("q"); q != "" {
		if selQ, err = traceql.Parse(q); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "q: invalid TraceQL query: "+err.Error())
			return
		}
		selDesc = q
	} else {
		if native, selDesc, err = nativeSelection(v, tr); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	var baseQ *traceql.Query
	if b := v.Get("baseline"); b != "" {
		if baseQ, err = traceql.Parse(b); err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "baseline: invalid TraceQL query: "+err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	l := s.newLoader()
	eng := engine.New(budgetSource{s.db, l}, engine.Config{MaxCandidates: max(5*limit, 1000), Workers: s.cfg.Workers})
	out := RankResponse{Start: rfc3339(tr.start), End: rfc3339(tr.end), Attributes: []RankedAttr{}, Notes: []string{}}

	sel, truncated, err := s.selectSpans(ctx, eng, selQ, native, tr, limit)
	if err != nil {
		s.writeRankError(w, r, err)
		return
	}
	if truncated {
		out.Partial = true
		out.Notes = append(out.Notes, "the selection's TraceQL evaluation stopped at its candidate limit")
	}
	var base selected
	var baseDesc string
	if baseQ != nil {
		baseDesc = v.Get("baseline")
		base, truncated, err = s.selectSpans(ctx, eng, baseQ, nil, tr, limit)
		if truncated {
			out.Partial = true
			out.Notes = append(out.Notes, "the baseline's TraceQL evaluation stopped at its candidate limit")
		}
	} else {
		base, baseDesc, err = s.defaultBaseline(ctx, l, sel, tr, limit)
	}
	if err != nil {
		s.writeRankError(w, r, err)
		return
	}
	rk := analysis.RankAttributes(sel.spans, base.spans, analysis.RankOptions{})
	out.Selection = Selection{Query: selDesc, Spans: len(sel.spans), Traces: sel.traces}
	out.Baseline = Selection{Query: baseDesc, Spans: len(base.spans), Traces: base.traces}
	out.Tested = rk.Tested
	out.SkippedKeys = nonNil(rk.SkippedKeys)
	for _, a := range rk.Attributes {
		out.Attributes = append(out.Attributes, RankedAttr{Key: a.Key, Value: a.Value, Missing: a.Missing,
			SelectionCount: a.Selection, BaselineCount: a.Baseline,
			SelectionShare: round3(a.SelectionShare), BaselineShare: round3(a.BaselineShare), Diff: round3(a.Diff),
			Z: round3(a.Z), PValue: a.PValue})
	}
	if l.cut.Load() {
		out.Partial = true
		out.Notes = append(out.Notes, fmt.Sprintf("loading stopped at %d spans", s.cfg.MaxSpans))
	}
	switch {
	case len(sel.spans) == 0:
		out.Notes = append(out.Notes, "the selection is empty")
	case len(base.spans) == 0:
		out.Notes = append(out.Notes, "the baseline is empty")
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (s *Analysis) writeRankError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, engine.ErrMetricsQuery) {
		httpapi.WriteError(w, http.StatusBadRequest, "a selection is a span query, not a metrics query: "+err.Error())
		return
	}
	s.fail(w, r, err)
}

// nativeSelection builds a native search from service, operation, kind,
// status, minDuration and maxDuration.
func nativeSelection(v url.Values, tr timeRange) (*search.Query, string, error) {
	q := &search.Query{Service: v.Get("service"), SpanName: v.Get("operation"), Start: tr.start, End: tr.end}
	var desc []string
	if q.Service != "" {
		desc = append(desc, "service="+q.Service)
	}
	if q.SpanName != "" {
		desc = append(desc, "operation="+q.SpanName)
	}
	if s := v.Get("kind"); s != "" {
		k, ok := span.ParseKind(strings.ToLower(s))
		if !ok {
			return nil, "", fmt.Errorf("kind %q: want server, client, producer, consumer, internal or unspecified", s)
		}
		q.Kinds = []span.Kind{k}
		desc = append(desc, "kind="+k.String())
	}
	if s := v.Get("status"); s != "" {
		st, ok := span.ParseStatus(strings.ToLower(s))
		if !ok {
			return nil, "", fmt.Errorf("status %q: want unset, ok or error", s)
		}
		q.Statuses = []span.StatusCode{st}
		desc = append(desc, "status="+st.String())
	}
	for _, p := range []struct {
		name string
		dst  *uint64
	}{{"minDuration", &q.MinDuration}, {"maxDuration", &q.MaxDuration}} {
		if s := v.Get(p.name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				return nil, "", fmt.Errorf("%s %q: want a duration such as 250ms", p.name, s)
			}
			*p.dst = uint64(d)
			desc = append(desc, p.name+"="+s)
		}
	}
	if len(desc) == 0 {
		return nil, "", errors.New("give a selection: q (TraceQL) or native conditions (service, operation, kind, status, minDuration, maxDuration)")
	}
	if err := q.Compile(); err != nil {
		return nil, "", err
	}
	return q, strings.Join(desc, " "), nil
}

// selectSpans runs a TraceQL query (or a native one) and returns its
// matched spans.
func (s *Analysis) selectSpans(ctx context.Context, eng *engine.Engine, q *traceql.Query, native *search.Query, tr timeRange, limit int) (selected, bool, error) {
	var res *engine.SearchResult
	var err error
	if q != nil {
		res, err = eng.Search(ctx, engine.SearchRequest{Query: q, Start: tr.start, End: tr.end, Limit: limit, SpansPerSpanset: maxSpansPerTrace})
	} else {
		res, err = eng.SearchNative(ctx, native, limit, maxSpansPerTrace)
	}
	if err != nil {
		return selected{}, false, err
	}
	var out selected
	seen := map[*span.Span]bool{}
	for _, t := range res.Traces {
		out.traces++
		for _, ss := range t.Spansets {
			for _, sp := range ss.Spans {
				if sp.Span != nil && !seen[sp.Span] {
					seen[sp.Span] = true
					out.spans = append(out.spans, sp.Span)
				}
			}
		}
	}
	return out, res.Truncated, nil
}

// maxBaselineOps bounds the operations of the default baseline.
const maxBaselineOps = 5

// defaultBaseline selects the other spans of the selection's operations
// (its most common five) in the time range.
func (s *Analysis) defaultBaseline(ctx context.Context, l *loader, sel selected, tr timeRange, limit int) (selected, string, error) {
	counts := map[analysis.OpKey]int{}
	in := make(map[spanKey]bool, len(sel.spans))
	for _, sp := range sel.spans {
		counts[analysis.OpKey{Service: sp.Resource.ServiceName(), Operation: sp.Name}]++
		in[spanKey{sp.TraceID, sp.SpanID}] = true
	}
	ops := make([]analysis.OpKey, 0, len(counts))
	for k := range counts {
		ops = append(ops, k)
	}
	slices.SortFunc(ops, func(a, b analysis.OpKey) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(a.String(), b.String())
	})
	if len(ops) > maxBaselineOps {
		ops = ops[:maxBaselineOps]
	}
	var out selected
	var names []string
	per := max(limit/max(len(ops), 1), 1)
	for _, op := range ops {
		names = append(names, op.String())
		q := &search.Query{Service: op.Service, SpanName: op.Operation, Start: tr.start, End: tr.end}
		if err := q.Compile(); err != nil {
			return out, "", err
		}
		res, err := s.db.Search(ctx, q, per, nil)
		if err != nil {
			return out, "", err
		}
		ids := make([]span.TraceID, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.TraceID
		}
		bs, err := l.load(ctx, ids)
		if err != nil {
			return out, "", err
		}
		for _, b := range bs {
			if b == nil {
				continue
			}
			n := 0
			for i := range b.Spans {
				sp := &b.Spans[i]
				if sp.Name == op.Operation && sp.Resource.ServiceName() == op.Service && !in[spanKey{sp.TraceID, sp.SpanID}] && n < maxSpansPerTrace {
					out.spans = append(out.spans, sp)
					n++
				}
			}
			if n > 0 {
				out.traces++
			}
		}
	}
	desc := "the other spans of " + strings.Join(names, ", ")
	if len(ops) == 0 {
		desc = "the other spans of the selection's operations (none)"
	}
	return out, desc, nil
}
