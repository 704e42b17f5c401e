package jaeger

import (
	"net/http"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// v3Error is api_v3's error envelope (the grpc-gateway's).
type v3Error struct {
	Error v3ErrorDetails `json:"error"`
}

type v3ErrorDetails struct {
	HTTPCode int    `json:"httpCode"`
	Message  string `json:"message"`
}

// warningHeader carries the note of an answer cut by a limit.
const warningHeader = "Warning"

// errNoTraces is Jaeger's message for an empty search or a missing trace,
// both answered 404.
const errNoTraces = "No traces found"

func writeV3Error(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, v3Error{Error: v3ErrorDetails{HTTPCode: code, Message: msg}})
}

func (a *API) writeV3QueryError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := a.queryStatus(r, err)
	writeV3Error(w, code, msg)
}

func (a *API) v3Services(w http.ResponseWriter, r *http.Request) {
	names, err := a.db.Services(r.Context())
	if err != nil {
		a.writeV3QueryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"services": nonNil(names)})
}

func (a *API) v3Operations(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	ops, code, err := a.listOperations(r.Context(), v.Get("service"), first(v, "spanKind", "span_kind"))
	if err != nil {
		if code == http.StatusBadRequest {
			writeV3Error(w, code, err.Error())
		} else {
			a.writeV3QueryError(w, r, err)
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string][]Operation{"operations": ops})
}

// v3FindTraces answers a search with every matching trace (up to the search
// depth, newest first) in one OTLP TracesData under "result", as Jaeger's
// HTTP gateway does; no match is 404 "No traces found".
func (a *API) v3FindTraces(w http.ResponseWriter, r *http.Request) {
	p, err := parseV3Find(r.URL.Query(), a.limits.MaxTracesPerSearch)
	if err != nil {
		writeV3Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ids, _, err := a.search(r.Context(), p)
	if err != nil {
		a.writeV3QueryError(w, r, err)
		return
	}
	batches, err := a.loadTraces(r.Context(), ids)
	if err != nil {
		a.writeV3QueryError(w, r, err)
		return
	}
	if len(batches) < len(ids) {
		// Cut by the span limit. api_v3's answer has no place for a
		// warning, so it goes in a header (RFC 9110's Warning syntax).
		w.Header().Set(warningHeader, `199 clew "`+a.cutMessage(len(batches), len(ids))+`"`)
	}
	var spans []span.Span
	for _, b := range batches {
		if b != nil {
			spans = append(spans, b.Spans...)
		}
	}
	a.writeV3Traces(w, spans)
}

func (a *API) v3GetTrace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceID(r.PathValue("traceID"))
	if err != nil {
		writeV3Error(w, http.StatusBadRequest, err.Error())
		return
	}
	v := r.URL.Query()
	// startTime and endTime narrow Jaeger's lookup; clew needs no time
	// range, but still checks them.
	if _, err := parseRFC3339(first(v, "startTime", "start_time")); err != nil {
		writeV3Error(w, http.StatusBadRequest, "startTime: "+err.Error())
		return
	}
	if _, err := parseRFC3339(first(v, "endTime", "end_time")); err != nil {
		writeV3Error(w, http.StatusBadRequest, "endTime: "+err.Error())
		return
	}
	if _, err := parseBool(first(v, "rawTraces", "raw_traces")); err != nil {
		writeV3Error(w, http.StatusBadRequest, "rawTraces: "+err.Error())
		return
	}
	b, found, err := a.db.FindTrace(r.Context(), id)
	if err != nil {
		a.writeV3QueryError(w, r, err)
		return
	}
	if !found {
		a.writeV3Traces(w, nil)
		return
	}
	a.writeV3Traces(w, b.Spans)
}

// writeV3Traces writes {"result": TracesData} or, with no spans, 404.
func (a *API) writeV3Traces(w http.ResponseWriter, spans []span.Span) {
	if len(spans) == 0 {
		writeV3Error(w, http.StatusNotFound, errNoTraces)
		return
	}
	buf := make([]byte, 0, 256*len(spans)+64)
	buf = append(buf, `{"result":`...)
	buf = otlp.AppendJSON(buf, spans)
	buf = append(buf, "}\n"...)
	writeBody(w, http.StatusOK, buf)
}
