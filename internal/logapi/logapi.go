// Package logapi serves clew's native log query API on the query port:
// GET /api/v1/logs (search by service, severity, time, attributes, body
// substring and regexp, trace and span ID; newest first, paged) and GET
// /api/v1/traces/{traceID}/logs (the logs of one trace). It reads through
// logs.Reader, by the tenant in the request's context.
package logapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/logs"
)

// Limits of a request.
const (
	DefaultLimit  = 100
	MaxLimit      = 1000
	MaxTraceLogs  = 10_000 // records GET /api/v1/traces/{id}/logs returns at most
	maxRegexpLen  = 1024   // bytes of one body regexp
	maxConditions = 32     // of each kind
)

// API is the log query API.
type API struct {
	r   logs.Reader
	log *slog.Logger
	now func() time.Time
}

// New returns the API over r; a nil logger discards logs.
func New(r logs.Reader, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{r: r, log: log, now: time.Now}
}

// Register mounts the endpoints on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/logs", a.search)
	mux.HandleFunc("GET /api/v1/traces/{traceID}/logs", a.traceLogs)
	mux.HandleFunc("GET /api/v1/logs/stats", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, a.r.LogStats(r.Context()))
	})
}

// badRequest is a parameter error, answered 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// ParseQuery reads the search parameters of GET /api/v1/logs (see
// docs/api.md).
func ParseQuery(v url.Values, now time.Time) (*logs.Query, error) {
	q := &logs.Query{Service: v.Get("service")}
	if v.Get("start") != "" || v.Get("end") != "" || v.Get("since") != "" {
		r, err := httpapi.ParseRange(v, now, httpapi.RangeOptions{Default: time.Hour, AllowEmpty: true})
		if err != nil {
			return nil, bad("%v", err)
		}
		q.Start, q.End = r.Start.UnixNano(), r.End.UnixNano()+1 // end inclusive
	}
	if s := v.Get("severity"); s != "" {
		n, ok := logs.ParseSeverity(s)
		if !ok {
			return nil, bad("severity %q: want a number 0-24 or a name (trace, debug, info, warn, error, fatal)", s)
		}
		q.MinSeverity = n
	}
	for _, kind := range []string{"attr", "contains", "notcontains", "regexp", "notregexp"} {
		if len(v[kind]) > maxConditions {
			return nil, bad("at most %d %s parameters", maxConditions, kind)
		}
	}
	for _, kv := range v["attr"] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, bad("attr %q: want key=value", kv)
		}
		q.Attrs = append(q.Attrs, logs.KV{Key: k, Value: val})
	}
	q.Contains = append(q.Contains, v["contains"]...)
	q.NotContains = append(q.NotContains, v["notcontains"]...)
	for _, kind := range []string{"regexp", "notregexp"} {
		for _, s := range v[kind] {
			if len(s) > maxRegexpLen {
				return nil, bad("%s of %d bytes: at most %d", kind, len(s), maxRegexpLen)
			}
			re, err := regexp.Compile(s)
			if err != nil {
				return nil, bad("%s %q: %v", kind, s, err)
			}
			if kind == "regexp" {
				q.Regexp = append(q.Regexp, re)
			} else {
				q.NotRegexp = append(q.NotRegexp, re)
			}
		}
	}
	if s := v.Get("trace_id"); s != "" {
		id, err := logs.ParseTraceID(s)
		if err != nil {
			return nil, bad("trace_id %q: %v", s, err)
		}
		q.TraceID = &id
	}
	if s := v.Get("span_id"); s != "" {
		id, err := logs.ParseSpanID(s)
		if err != nil {
			return nil, bad("span_id %q: %v", s, err)
		}
		q.SpanID = &id
	}
	return q, nil
}

func (a *API) search(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, err := ParseQuery(v, a.now())
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := httpapi.ParseLimit(v, "limit", DefaultLimit, MaxLimit)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	after, err := logs.ParseCursor(v.Get("cursor"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "cursor: "+err.Error())
		return
	}
	p, err := a.r.SearchLogs(r.Context(), q, limit, after)
	if err != nil {
		httpapi.WriteQueryError(w, r, err, "log search timed out: narrow the time range or the filters", a.log)
		return
	}
	writePage(w, p)
}

func (a *API) traceLogs(w http.ResponseWriter, r *http.Request) {
	id, err := logs.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "trace ID: "+err.Error())
		return
	}
	v := r.URL.Query()
	limit, err := httpapi.ParseLimit(v, "limit", MaxTraceLogs, MaxTraceLogs)
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := &logs.Query{TraceID: &id}
	if s := v.Get("span_id"); s != "" {
		sid, err := logs.ParseSpanID(s)
		if err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, "span_id: "+err.Error())
			return
		}
		q.SpanID = &sid
	}
	after, err := logs.ParseCursor(v.Get("cursor"))
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "cursor: "+err.Error())
		return
	}
	p, err := a.r.SearchLogs(r.Context(), q, limit, after)
	if err != nil {
		httpapi.WriteQueryError(w, r, err, "trace logs timed out", a.log)
		return
	}
	writePage(w, p)
}

// writePage answers {"logs":[...],"nextCursor":"..."}.
func writePage(w http.ResponseWriter, p logs.Page) {
	b := make([]byte, 0, 256*len(p.Records)+64)
	b = append(b, `{"logs":[`...)
	for i := range p.Records {
		if i > 0 {
			b = append(b, ',')
		}
		b = logs.AppendJSON(b, &p.Records[i])
	}
	b = append(b, `],"count":`...)
	b = strconv.AppendInt(b, int64(len(p.Records)), 10)
	if p.Next.Set {
		b = append(b, `,"nextCursor":"`...)
		b = append(b, p.Next.String()...)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
