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
	"time"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/engine"
	"github.com/clew-dev/clew/internal/traceql"
)

// API serves the Tempo-compatible HTTP API.
type API struct {
	db  api.Querier
	eng *engine.Engine
	log *slog.Logger
	now func() time.Time
}

// New returns the Tempo API over db with the engine's default limits. A
// nil logger discards logs.
func New(db api.Querier, logger *slog.Logger) *API {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &API{db: db, eng: engine.New(db, engine.DefaultConfig()), log: logger.With("component", "tempo"), now: time.Now}
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
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "query timed out: narrow the time range or add conditions")
	case errors.Is(err, context.Canceled) || r.Context().Err() != nil:
		writeError(w, 499, "request cancelled")
	default:
		a.log.Error("query", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
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
