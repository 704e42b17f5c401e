package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
)

// QualityResponse is the answer of GET /api/v1/quality.
type QualityResponse struct {
	Start string `json:"start"`
	End   string `json:"end"`
	// Traces and Spans count the sample analysed, Matched the traces in
	// the range (the sample is the newest).
	Traces   int              `json:"traces"`
	Spans    int              `json:"spans"`
	Matched  int              `json:"matched"`
	Services []ServiceQuality `json:"services"`
	Partial  bool             `json:"partial"`
	Notes    []string         `json:"notes"`
}

// ServiceQuality is one service's instrumentation quality
// (analysis.ServiceQuality).
type ServiceQuality struct {
	Service  string         `json:"service"`
	Score    float64        `json:"score"`
	Spans    int            `json:"spans"`
	Traces   int            `json:"traces"`
	Versions []string       `json:"versions"`
	Issues   []QualityIssue `json:"issues"`
}

// QualityIssue is one kind of problem of a service.
type QualityIssue struct {
	Type       string         `json:"type"`
	Count      int            `json:"count"`
	Of         int            `json:"of"`
	Rate       float64        `json:"rate"`
	Penalty    float64        `json:"penalty"`
	Message    string         `json:"message"`
	Examples   []string       `json:"examples"`
	Attributes map[string]int `json:"attributes,omitempty"`
}

// settle is how recent a trace may be and still be judged: younger traces
// may still be arriving, and their missing parents are not orphans yet.
const settle = 30 * time.Second

func (s *Analysis) quality(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	now := s.cfg.Now()
	tr, err := parseAnalysisRange(v, now, time.Hour)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := httpapi.ParseLimit(v, "limit", min(defaultSampleTraces, s.cfg.MaxTraces), s.cfg.MaxTraces)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := QualityResponse{Services: []ServiceQuality{}, Notes: []string{}}
	if !tr.explicitEnd && tr.end > tr.start+uint64(settle) {
		tr.end -= uint64(settle)
		out.Notes = append(out.Notes, "traces of the last 30s are left out: they may still be arriving")
	}
	out.Start, out.End = rfc3339(tr.start), rfc3339(tr.end)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	q := &search.Query{Start: tr.start, End: tr.end}
	if err := q.Compile(); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, bs, cut, err := s.searchAndLoad(ctx, q, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep := analysis.Quality(trees(bs), analysis.QualityOptions{})
	out.Traces, out.Spans, out.Matched = rep.Traces, rep.Spans, res.Total
	for _, sq := range rep.Services {
		o := ServiceQuality{Service: sq.Service, Score: sq.Score, Spans: sq.Spans, Traces: sq.Traces,
			Versions: nonNil(sq.Versions), Issues: []QualityIssue{}}
		for _, i := range sq.Issues {
			qi := QualityIssue{Type: i.Type, Count: i.Count, Of: i.Of, Rate: round3(i.Rate), Penalty: i.Penalty,
				Message: i.Message, Examples: make([]string, len(i.Examples)), Attributes: i.Attributes}
			for k, id := range i.Examples {
				qi.Examples[k] = id.String()
			}
			o.Issues = append(o.Issues, qi)
		}
		out.Services = append(out.Services, o)
	}
	if res.Total > len(res.Hits) {
		out.Notes = append(out.Notes, fmt.Sprintf("a sample of the %d newest of %d traces", len(res.Hits), res.Total))
	}
	if cut {
		out.Partial = true
		out.Notes = append(out.Notes, fmt.Sprintf("loading stopped at %d spans", s.cfg.MaxSpans))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
