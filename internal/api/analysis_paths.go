package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
)

// CriticalPathResponse is the answer of GET /api/v1/criticalpath.
type CriticalPathResponse struct {
	Service   string `json:"service"`
	Operation string `json:"operation"`
	Start     string `json:"start"`
	End       string `json:"end"`
	// Traces is the number of traces analysed, Matched the number in the
	// range (analysed are the newest).
	Traces  int `json:"traces"`
	Matched int `json:"matched"`
	// Samples is the number of spans of the operation analysed.
	Samples    int             `json:"samples"`
	P50        Band            `json:"p50"`
	Tail       Band            `json:"tail"`
	Operations []OperationTime `json:"operations"`
	Partial    bool            `json:"partial"`
	Notes      []string        `json:"notes"`
}

// Band is a group of samples by duration: the median band (40th to 60th
// percentile) or the tail (at or above the quantile).
type Band struct {
	Quantile   float64 `json:"quantile"`
	Samples    int     `json:"samples"`
	DurationMs float64 `json:"durationMs"`
}

// OperationTime is one operation's mean self time on the critical paths of
// each band, and its share of the band's duration.
type OperationTime struct {
	Service   string  `json:"service"`
	Operation string  `json:"operation"`
	P50Ms     float64 `json:"p50Ms"`
	TailMs    float64 `json:"tailMs"`
	P50Share  float64 `json:"p50Share"`
	TailShare float64 `json:"tailShare"`
	// Presence is the fraction of samples where it is on the path.
	Presence float64 `json:"presence"`
}

// defaultSampleTraces is the default number of traces sampled by the
// aggregate endpoints.
const defaultSampleTraces = 200

func (s *Analysis) criticalPath(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	svc, op := v.Get("service"), v.Get("operation")
	if svc == "" || op == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "service and operation are required")
		return
	}
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
	q := 0.99
	if t := v.Get("tail"); t != "" {
		if q, err = strconv.ParseFloat(t, 64); err != nil || !(q > 0.5 && q < 1) {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("tail %q: want a quantile above 0.5 and below 1, such as 0.99", t))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	sq := &search.Query{Service: svc, SpanName: op, Start: tr.start, End: tr.end}
	if err := sq.Compile(); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, bs, cut, err := s.searchAndLoad(ctx, sq, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ts := trees(bs)
	a := analysis.AggregatePath(analysis.OpKey{Service: svc, Operation: op}, ts, q)
	out := CriticalPathResponse{Service: svc, Operation: op, Start: rfc3339(tr.start), End: rfc3339(tr.end),
		Traces: len(ts), Matched: res.Total, Samples: a.Samples,
		P50:        Band{Quantile: 0.5, Samples: a.P50Samples, DurationMs: millis(a.P50Duration)},
		Tail:       Band{Quantile: q, Samples: a.TailSamples, DurationMs: millis(a.TailDuration)},
		Operations: []OperationTime{}, Notes: []string{}}
	for _, o := range a.Operations {
		out.Operations = append(out.Operations, OperationTime{Service: o.Op.Service, Operation: o.Op.Operation,
			P50Ms: millis(o.P50), TailMs: millis(o.Tail), P50Share: round3(o.P50Share), TailShare: round3(o.TailShare), Presence: round3(o.Presence)})
	}
	if res.Total > len(res.Hits) {
		out.Partial = true
		out.Notes = append(out.Notes, fmt.Sprintf("%d of %d matching traces analysed (the newest): raise limit or narrow the range", len(res.Hits), res.Total))
	}
	if cut {
		out.Partial = true
		out.Notes = append(out.Notes, fmt.Sprintf("loading stopped at %d spans", s.cfg.MaxSpans))
	}
	if a.Samples > 0 && float64(a.Samples)*(1-q) < 1 {
		out.Notes = append(out.Notes, fmt.Sprintf("%d samples, fewer than %.0f: the tail band is the slowest sample", a.Samples, 1/(1-q)))
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
