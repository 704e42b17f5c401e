// Package insight serves clew's trace analysis over HTTP, under /api/v1 on
// the query port: why one trace is slow compared with its cohort
// (/explain/{traceID}), the critical path of an operation aggregated over
// many traces (/criticalpath), attribute ranking between two selections of
// spans (/attributes/rank) and instrumentation quality per service
// (/quality). It fetches traces from the store (storage.Reader; TraceQL
// selections through internal/engine), bounds the work of each request,
// and leaves the analysis itself to internal/analysis. It also holds the
// client of `clew explain`. See docs/api.md, "Trace analysis".
package insight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clew-dev/clew/internal/analysis"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Config bounds the work of each analysis request.
type Config struct {
	// CohortSize is the default number of cohort traces an explanation
	// compares with (the cohort parameter, at most MaxTraces).
	CohortSize int
	// MaxTraces bounds the traces one request loads: the cohort, the
	// samples of an aggregated critical path or of the quality report, and
	// each selection of an attribute ranking.
	MaxTraces int
	// MaxSpans bounds the spans one request loads, across every trace;
	// past it the answer is partial.
	MaxSpans int
	// Timeout bounds one request; past it the answer is a 504.
	Timeout time.Duration
	// Workers is the number of traces loaded at once.
	Workers int
}

// DefaultConfig returns the defaults: a cohort of 50 traces, at most 1000
// traces and 500,000 spans per request, 30 s, 2 workers.
func DefaultConfig() Config {
	return Config{CohortSize: 50, MaxTraces: 1000, MaxSpans: 500_000, Timeout: 30 * time.Second, Workers: 2}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.CohortSize <= 0 {
		c.CohortSize = d.CohortSize
	}
	if c.MaxTraces <= 0 {
		c.MaxTraces = d.MaxTraces
	}
	if c.MaxSpans <= 0 {
		c.MaxSpans = d.MaxSpans
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	c.CohortSize = min(c.CohortSize, c.MaxTraces)
	return c
}

// Server serves the analysis endpoints.
type Server struct {
	db  storage.Reader
	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New returns a server over db. Zero fields of cfg take their defaults; a
// nil logger discards logs.
func New(db storage.Reader, cfg Config, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{db: db, cfg: cfg.withDefaults(), log: logger.With("component", "insight"), now: time.Now}
}

// Register adds the endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/explain/{traceID}", s.explain)
	mux.HandleFunc("GET /api/v1/criticalpath", s.criticalPath)
	mux.HandleFunc("GET /api/v1/attributes/rank", s.rank)
	mux.HandleFunc("GET /api/v1/quality", s.quality)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// writeQueryError maps a store error to a status, as the native API does:
// a deadline is 504, a cancelled request 499, anything else 500.
func (s *Server) writeQueryError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("analysis timed out after %s: narrow the time range or lower limit", s.cfg.Timeout))
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		writeError(w, 499, "request cancelled")
	default:
		s.log.Error("analysis", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// timeRange is a request's [start, end] in Unix nanoseconds.
type timeRange struct {
	start, end uint64
	// explicitEnd is set when the request gave end.
	explicitEnd bool
}

// parseRange reads start/end (RFC 3339 or Unix seconds) or since (a Go
// duration before end or now, default def).
func parseRange(v url.Values, now time.Time, def time.Duration) (timeRange, error) {
	var tr timeRange
	end := now
	if s := v.Get("end"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return tr, fmt.Errorf("end: %w", err)
		}
		end, tr.explicitEnd = t, true
	}
	start := end.Add(-def)
	switch s, since := v.Get("start"), v.Get("since"); {
	case s != "" && since != "":
		return tr, errors.New("give start or since, not both")
	case s != "":
		t, err := parseTime(s)
		if err != nil {
			return tr, fmt.Errorf("start: %w", err)
		}
		start = t
	case since != "":
		d, err := time.ParseDuration(since)
		if err != nil || d <= 0 {
			return tr, fmt.Errorf("since %q: want a positive duration such as 15m or 24h", since)
		}
		start = end.Add(-d)
	}
	if !end.After(start) {
		return tr, errors.New("end must be after start")
	}
	if start.UnixNano() < 0 {
		start = time.Unix(0, 0)
	}
	tr.start, tr.end = uint64(start.UnixNano()), uint64(end.UnixNano())
	return tr, nil
}

func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > 1e11 || math.IsNaN(f) {
			return time.Time{}, fmt.Errorf("%q: want Unix seconds or RFC 3339", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: write RFC 3339 or Unix seconds", s)
	}
	return t, nil
}

// parseLimit reads an integer parameter from 1 to max (def when absent).
func parseLimit(v url.Values, name string, def, max int) (int, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%s %q: want an integer from 1 to %d", name, s, max)
	}
	return n, nil
}

func rfc3339(ns uint64) string {
	return time.Unix(0, int64(min(ns, math.MaxInt64))).UTC().Format(time.RFC3339Nano)
}

func millis(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// loader loads traces for one request within its span budget.
type loader struct {
	db      storage.Reader
	workers int
	left    atomic.Int64
	cut     atomic.Bool
}

func (s *Server) newLoader() *loader {
	l := &loader{db: s.db, workers: s.cfg.Workers}
	l.left.Store(int64(s.cfg.MaxSpans))
	return l
}

// load loads the traces ids, at most workers at a time, in order; a trace
// not found, or not loaded because the span budget ran out, is nil (and
// cut is set for the latter).
func (l *loader) load(ctx context.Context, ids []span.TraceID) ([]*span.Batch, error) {
	out := make([]*span.Batch, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, l.workers)
	var wg sync.WaitGroup
	for i, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		if l.left.Load() <= 0 {
			<-sem
			l.cut.Store(true)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			b, found, err := l.db.FindTrace(ctx, id)
			if err != nil {
				errs[i] = err
				return
			}
			if found && len(b.Spans) > 0 {
				l.left.Add(-int64(len(b.Spans)))
				out[i] = b
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// trees builds the span trees of the loaded traces, skipping nil ones.
func trees(bs []*span.Batch) []*analysis.Tree {
	out := make([]*analysis.Tree, 0, len(bs))
	for _, b := range bs {
		if b != nil {
			out = append(out, analysis.BuildTree(b))
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
