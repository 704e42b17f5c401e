package zipkin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Dependency is one caller→callee pair of the service graph with the calls
// (and failed calls) between them over a time range.
type Dependency struct {
	Parent, Child string
	CallCount     uint64
	ErrorCount    uint64
}

// DependencySource answers the service dependency graph over [start, end):
// the pairs in any order, none when there are no calls. It must be safe
// for concurrent use. internal/spanmetrics provides it (through app).
type DependencySource interface {
	Dependencies(ctx context.Context, start, end time.Time) ([]Dependency, error)
}

// SetDependencies makes /api/v2/dependencies answer from src; without it
// the list is empty. Call it before serving.
func (a *API) SetDependencies(src DependencySource) { a.deps = src }

// dependencyLink is Zipkin v2's DependencyLink.
type dependencyLink struct {
	Parent     string `json:"parent"`
	Child      string `json:"child"`
	CallCount  uint64 `json:"callCount"`
	ErrorCount uint64 `json:"errorCount,omitempty"`
}

// dependencies serves GET /api/v2/dependencies?endTs=<ms>&lookback=<ms>:
// the links derived from spans in [endTs-lookback, endTs); lookback
// defaults to endTs (everything before it), as in Zipkin.
func (a *API) dependencies(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if v.Get("endTs") == "" {
		writeText(w, http.StatusBadRequest, "endTs is required (epoch milliseconds)")
		return
	}
	endMs, err := parseInt(v, "endTs", 0)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	lookback, err := parseInt(v, "lookback", endMs)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	links := []dependencyLink{}
	if a.deps != nil {
		end := time.UnixMilli(endMs)
		start := time.UnixMilli(max(endMs-lookback, 0))
		deps, err := a.deps.Dependencies(r.Context(), start, end)
		if err != nil {
			a.writeQueryError(w, r, err)
			return
		}
		for _, d := range deps {
			links = append(links, dependencyLink(d))
		}
	}
	b, _ := json.Marshal(links)
	writeJSONBody(w, b)
}
