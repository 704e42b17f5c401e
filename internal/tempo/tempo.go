// Package tempo serves the HTTP API of Grafana Tempo that Grafana's Tempo
// datasource and Traces Drilldown call, over clew's store: trace by ID (v1
// and v2, JSON or protobuf), TraceQL and legacy tag search, tag names and
// values (v1 and v2), and TraceQL metrics (range and instant). It is
// mounted under a prefix, /tempo on the query port, so that Grafana's
// datasource URL is http://HOST:3200/tempo; docs/api.md ("Tempo API")
// documents it. TraceQL runs on internal/engine.
//
// The shapes follow Tempo's public API documentation and what Grafana
// reads; no Tempo code was used.
package tempo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/clew-dev/clew/internal/engine"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
	"github.com/clew-dev/clew/internal/traceql"
)

// API serves the Tempo-compatible HTTP API.
type API struct {
	db     storage.Reader
	log    *slog.Logger
	now    func() time.Time
	limits httpapi.Limits
	engCfg engine.Config
}

// New returns the Tempo API over db with the default limits. A nil logger
// discards logs.
func New(db storage.Reader, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &API{db: db, log: logger.With("component", "tempo"), now: time.Now}
	a.SetLimits(httpapi.DefaultLimits())
	return a
}

// SetLimits sets the limits of each request; zero fields take their
// defaults. Call it before serving.
func (a *API) SetLimits(l httpapi.Limits) {
	a.limits = l.OrDefault()
	a.engCfg = engine.DefaultConfig()
	a.engCfg.MaxCandidates = a.limits.MaxCandidateTraces
	a.engCfg.MaxSeries = a.limits.MaxSeriesPerMetricsQuery
	a.engCfg.MaxSpans = a.limits.MaxSpansPerScan
}

// engine returns an engine for one request: its trace loads count against
// query.max_spans_per_query (see spanBudget); the spans a metrics query
// streams from span columns, which it does not hold, count against
// query.max_spans_per_scan (engine.Config.MaxSpans).
func (a *API) engine() (*engine.Engine, *spanBudget) {
	b := &spanBudget{Reader: a.db}
	b.left.Store(int64(a.limits.MaxSpansPerQuery))
	return engine.New(b, a.engCfg), b
}

// spanBudget is the engine's source for one request. It loads traces
// until the spans loaded reach the budget; after that it loads no more
// (the engine sees them as gone, as traces deleted by retention) and
// remembers that it cut the query short. Loads already under way finish,
// so the overshoot is at most one trace per engine worker.
type spanBudget struct {
	storage.Reader
	left atomic.Int64
	cut  atomic.Bool
}

// BoundRange is storage.RangeBounder over the wrapped Reader.
func (b *spanBudget) BoundRange(ctx context.Context, start, end uint64) (uint64, uint64, error) {
	return storage.BoundRange(ctx, b.Reader, start, end)
}

func (b *spanBudget) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	if b.left.Load() <= 0 {
		b.cut.Store(true)
		return nil, false, nil
	}
	tr, found, err := b.Reader.FindTrace(ctx, id)
	if found {
		b.left.Add(-int64(len(tr.Spans)))
	}
	return tr, found, err
}

// partial explains why a result is partial, naming the limit that cut
// it, or returns "" for a complete one. spansCut reports a span-column
// scan stopped by the span limit.
func (a *API) partial(b *spanBudget, candidatesCut, seriesCut, spansCut bool) string {
	var why []string
	if b.cut.Load() {
		why = append(why, "the spans loaded reached query.max_spans_per_query ("+strconv.Itoa(a.limits.MaxSpansPerQuery)+")")
	}
	if spansCut {
		why = append(why, "the spans read reached query.max_spans_per_scan ("+strconv.Itoa(a.limits.MaxSpansPerScan)+")")
	}
	if candidatesCut {
		why = append(why, "the traces evaluated reached query.max_candidate_traces ("+strconv.Itoa(a.limits.MaxCandidateTraces)+")")
	}
	if seriesCut {
		why = append(why, "the series reached query.max_series_per_metrics_query ("+strconv.Itoa(a.limits.MaxSeriesPerMetricsQuery)+"), further series were left out")
	}
	if len(why) == 0 {
		return ""
	}
	return "partial result: " + strings.Join(why, "; ") + ": narrow the time range or add conditions"
}

// Register adds the API's routes to mux under prefix, which is empty or
// starts with a slash and has none at the end ("/tempo").
func (a *API) Register(mux *http.ServeMux, prefix string) {
	mux.HandleFunc("GET "+prefix+"/api/echo", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("echo"))
	})
	mux.HandleFunc("GET "+prefix+"/api/status/buildinfo", a.buildInfo)
	mux.HandleFunc("GET "+prefix+"/api/traces/{traceID}", a.traceV1)
	mux.HandleFunc("GET "+prefix+"/api/v2/traces/{traceID}", a.traceV2)
	mux.HandleFunc("GET "+prefix+"/api/search", a.search)
	mux.HandleFunc("GET "+prefix+"/api/search/tags", a.tagsV1)
	mux.HandleFunc("GET "+prefix+"/api/v2/search/tags", a.tagsV2)
	mux.HandleFunc("GET "+prefix+"/api/search/tag/{tag}/values", a.tagValuesV1)
	mux.HandleFunc("GET "+prefix+"/api/v2/search/tag/{tag}/values", a.tagValuesV2)
	mux.HandleFunc("GET "+prefix+"/api/metrics/query_range", a.queryRange)
	mux.HandleFunc("GET "+prefix+"/api/metrics/query", a.queryInstant)
	mux.HandleFunc(prefix+"/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// buildInfo answers as Tempo's build information endpoint does; Grafana
// reads the version to enable features.
func (a *API) buildInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": "2.8.0", "revision": "clew", "branch": "", "buildUser": "", "buildDate": "", "goVersion": ""})
}

// writeJSON writes v as the JSON body of a response with status code.
// HTML characters are not escaped: Tempo's "<root span not yet received>"
// reads as it is.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// writeError answers with a plain-text message, as Tempo does; Grafana
// shows the body to the user.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// writeQueryError maps a store or engine error to a status: a deadline is
// 504, a cancelled request 499 (the client is gone), anything else 500.
func (a *API) writeQueryError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg, internal := httpapi.QueryStatus(r.Context(), err, "")
	if internal {
		a.log.Error("query", "path", r.URL.Path, "err", err)
	}
	writeError(w, code, msg)
}

// parseQuery parses a TraceQL query, writing a 400 with the parser's
// message and position when it is bad.
func parseQuery(w http.ResponseWriter, q string) (*traceql.Query, bool) {
	pq, err := traceql.Parse(q)
	if err != nil {
		var pe *traceql.ParseError
		if errors.As(err, &pe) {
			writeError(w, http.StatusBadRequest, "invalid TraceQL query: "+pe.Error())
		} else {
			writeError(w, http.StatusBadRequest, "invalid TraceQL query: "+err.Error())
		}
		return nil, false
	}
	return pq, true
}
