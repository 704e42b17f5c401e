package jaeger

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Dependency is one caller→callee pair of the service graph with the calls
// between them over a time range.
type Dependency struct {
	Parent, Child string
	CallCount     uint64
}

// DependencySource answers the service dependency graph over [start, end):
// the pairs in any order, none when there are no calls. It must be safe
// for concurrent use. internal/spanmetrics provides it (through app).
type DependencySource interface {
	Dependencies(ctx context.Context, start, end time.Time) ([]Dependency, error)
}

// SetDependencies makes /api/dependencies answer from src; without it the
// list is empty. Call it before serving.
func (a *API) SetDependencies(src DependencySource) { a.deps = src }

// dependencyLink is Jaeger's model.DependencyLink in its JSON form.
type dependencyLink struct {
	Parent    string `json:"parent"`
	Child     string `json:"child"`
	CallCount uint64 `json:"callCount"`
}

// defaultDependencyLookback is Jaeger's default lookback for
// /api/dependencies.
const defaultDependencyLookback = 24 * time.Hour

// dependencies serves GET /api/dependencies?endTs=<ms>&lookback=<ms>: the
// links over [endTs-lookback, endTs) (endTs defaults to now, lookback to
// a day), as Jaeger UI's System Architecture page reads them.
func (a *API) dependencies(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	for _, name := range []string{"endTs", "lookback"} {
		if err := parseMillis(name, v.Get(name)); err != nil {
			writeLegacyError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	links := []dependencyLink{}
	if a.deps != nil {
		end := time.Now()
		if s := v.Get("endTs"); s != "" {
			ms, _ := strconv.ParseInt(s, 10, 64)
			end = time.UnixMilli(ms)
		}
		lookback := defaultDependencyLookback
		if s := v.Get("lookback"); s != "" {
			ms, _ := strconv.ParseInt(s, 10, 64)
			lookback = time.Duration(min(ms, int64(1<<62)/int64(time.Millisecond))) * time.Millisecond
		}
		deps, err := a.deps.Dependencies(r.Context(), end.Add(-lookback), end)
		if err != nil {
			a.writeLegacyQueryError(w, r, err)
			return
		}
		for _, d := range deps {
			links = append(links, dependencyLink(d))
		}
	}
	writeJSON(w, http.StatusOK, legacyResponse{Data: links})
}
