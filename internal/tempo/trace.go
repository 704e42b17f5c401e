package tempo

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// wantsProto reports whether the client asked for protobuf, as Grafana
// does with "Accept: application/protobuf".
func wantsProto(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "application/protobuf") || strings.Contains(v, "application/x-protobuf") {
			return true
		}
	}
	return false
}

// loadTrace answers 400 or 404 itself and returns the trace's spans.
func (a *API) loadTrace(w http.ResponseWriter, r *http.Request) ([]span.Span, bool) {
	id, err := span.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "trace ID must be 1 to 32 hex digits and not all zero")
		return nil, false
	}
	b, found, err := a.db.FindTrace(r.Context(), id)
	if err != nil {
		a.writeQueryError(w, r, err)
		return nil, false
	}
	if !found || len(b.Spans) == 0 {
		writeError(w, http.StatusNotFound, "trace not found")
		return nil, false
	}
	return b.Spans, true
}

// traceV1 serves GET /api/traces/{id}: a protobuf Trace (field 1: repeated
// ResourceSpans) or Tempo's JSON, which names that field "batches". The
// start and end parameters are accepted and not needed.
func (a *API) traceV1(w http.ResponseWriter, r *http.Request) {
	spans, ok := a.loadTrace(w, r)
	if !ok {
		return
	}
	if wantsProto(r) {
		// The wire form of Trace{resource_spans = 1} is the OTLP
		// TracesData clew encodes: the same field number and message.
		writeBody(w, "application/protobuf", otlp.AppendSpansProto(nil, spans))
		return
	}
	js := otlp.AppendJSON(nil, spans)
	js = append([]byte(`{"batches":`), bytes.TrimPrefix(js, []byte(`{"resourceSpans":`))...)
	writeBody(w, "application/json", js)
}

// traceV2 serves GET /api/v2/traces/{id}: a protobuf TraceByIDResponse
// (field 1: the Trace; the status, COMPLETE, is the enum's zero and so
// not written) or JSON {"trace": {...}, "status": "COMPLETE"}.
func (a *API) traceV2(w http.ResponseWriter, r *http.Request) {
	spans, ok := a.loadTrace(w, r)
	if !ok {
		return
	}
	if wantsProto(r) {
		inner := otlp.AppendSpansProto(nil, spans)
		out := make([]byte, 0, len(inner)+11)
		out = append(out, 1<<3|2) // field 1, length-delimited
		out = appendUvarint(out, uint64(len(inner)))
		out = append(out, inner...)
		writeBody(w, "application/protobuf", out)
		return
	}
	js := append([]byte(`{"trace":`), otlp.AppendJSON(nil, spans)...)
	js = append(js, `,"status":"COMPLETE"}`...)
	writeBody(w, "application/json", js)
}

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func writeBody(w http.ResponseWriter, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
