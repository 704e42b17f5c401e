package jaeger

import (
	"context"
	"net/http"
	"sync"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// legacyResponse is the envelope of every legacy API answer.
type legacyResponse struct {
	Data   any           `json:"data"`
	Total  int           `json:"total"`
	Limit  int           `json:"limit"`
	Offset int           `json:"offset"`
	Errors []legacyError `json:"errors"`
}

// legacyError is one entry of the envelope's errors.
type legacyError struct {
	Code    int    `json:"code,omitempty"`
	Msg     string `json:"msg"`
	TraceID string `json:"traceID,omitempty"`
}

// Operation is a span name and the span kind it was seen with; SpanKind is
// empty when the kind was not asked for (see operations).
type Operation struct {
	Name     string `json:"name"`
	SpanKind string `json:"spanKind"`
}

func writeLegacyError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, legacyResponse{Errors: []legacyError{{Code: code, Msg: msg}}})
}

func (a *API) writeLegacyQueryError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := a.queryStatus(r, err)
	writeLegacyError(w, code, msg)
}

func (a *API) services(w http.ResponseWriter, r *http.Request) {
	names, err := a.db.Services(r.Context())
	if err != nil {
		a.writeLegacyQueryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, legacyResponse{Data: nonNil(names), Total: len(names)})
}

func (a *API) serviceOperations(w http.ResponseWriter, r *http.Request) {
	names, err := a.db.SpanNames(r.Context(), r.PathValue("service"))
	if err != nil {
		a.writeLegacyQueryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, legacyResponse{Data: nonNil(names), Total: len(names)})
}

func (a *API) operations(w http.ResponseWriter, r *http.Request) {
	ops, code, err := a.listOperations(r.Context(), r.URL.Query().Get("service"), r.URL.Query().Get("spanKind"))
	if err != nil {
		if code == http.StatusBadRequest {
			writeLegacyError(w, code, err.Error())
		} else {
			a.writeLegacyQueryError(w, r, err)
		}
		return
	}
	writeJSON(w, http.StatusOK, legacyResponse{Data: ops, Total: len(ops)})
}

// listOperations lists a service's span names (all services' when service
// is empty). The store does not index span names by kind, so without a
// spanKind each operation's SpanKind is empty. With one, each name is
// checked by a search for a span of that service, name and kind, and the
// names that have one are returned with that kind. A non-nil error comes
// with 400 (bad parameter) or 0 (query failure).
func (a *API) listOperations(ctx context.Context, service, kind string) ([]Operation, int, error) {
	k, all, err := parseSpanKind(kind)
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	names, err := a.db.SpanNames(ctx, service)
	if err != nil {
		return nil, 0, err
	}
	if all {
		ops := make([]Operation, len(names))
		for i, n := range names {
			ops[i] = Operation{Name: n}
		}
		return ops, 0, nil
	}
	keep := make([]bool, len(names))
	errs := make([]error, len(names))
	next := make(chan int)
	var wg sync.WaitGroup
	for range loadConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] != nil {
					continue
				}
				q := &search.Query{Service: service, SpanName: names[i], Kinds: []span.Kind{k}}
				_ = q.Compile() // no conditions: nothing can fail
				res, err := a.db.Search(ctx, q, 1, nil)
				errs[i] = err
				keep[i] = err == nil && len(res.Hits) > 0
			}
		}()
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	ops := []Operation{}
	for i, n := range names {
		if errs[i] != nil {
			return nil, 0, errs[i]
		}
		if keep[i] {
			ops = append(ops, Operation{Name: n, SpanKind: k.String()})
		}
	}
	return ops, 0, nil
}

// findTraces serves the legacy search. Its total is the exact number of
// matching traces, of which at most limit are returned, newest first. With
// traceID parameters it returns those traces instead, and lists each one
// not found in errors, as Jaeger does.
func (a *API) findTraces(w http.ResponseWriter, r *http.Request) {
	p, err := parseLegacyFind(r.URL.Query(), a.limits.MaxTracesPerSearch)
	if err != nil {
		writeLegacyError(w, http.StatusBadRequest, err.Error())
		return
	}
	ids, total := p.traceIDs, len(p.traceIDs)
	if len(ids) == 0 {
		if ids, total, err = a.search(r.Context(), p); err != nil {
			a.writeLegacyQueryError(w, r, err)
			return
		}
	}
	batches, err := a.loadTraces(r.Context(), ids)
	if err != nil {
		a.writeLegacyQueryError(w, r, err)
		return
	}
	traces := make([]Trace, 0, len(batches))
	var errs []legacyError
	if len(batches) < len(ids) {
		// Cut by the span limit: said in errors, as Jaeger reports the
		// traces it could not load, with the data still served.
		errs = append(errs, legacyError{Msg: a.cutMessage(len(batches), len(ids))})
	}
	for i, b := range batches {
		if b == nil {
			if len(p.traceIDs) > 0 {
				errs = append(errs, legacyError{Code: http.StatusNotFound, Msg: "trace not found", TraceID: ids[i].String()})
			}
			continue // deleted by retention since the search
		}
		traces = append(traces, toUITrace(ids[i], b.Spans, p.raw))
	}
	if len(p.traceIDs) > 0 {
		total = len(traces)
		for _, id := range p.traceIDs[len(batches):] {
			errs = append(errs, legacyError{Code: http.StatusRequestEntityTooLarge, Msg: "trace not loaded: over query.max_spans_per_query", TraceID: id.String()})
		}
	}
	writeJSON(w, http.StatusOK, legacyResponse{Data: traces, Total: total, Errors: errs})
}

func (a *API) getTrace(w http.ResponseWriter, r *http.Request) {
	id, err := parseTraceID(r.PathValue("traceID"))
	if err != nil {
		writeLegacyError(w, http.StatusBadRequest, err.Error())
		return
	}
	v := r.URL.Query()
	// start and end are hints Jaeger backends use to narrow the lookup;
	// clew finds a trace without them, but still checks them.
	for _, name := range []string{"start", "end"} {
		if _, err := parseMicros(v.Get(name)); err != nil {
			writeLegacyError(w, http.StatusBadRequest, "unable to parse param '"+name+"': "+err.Error())
			return
		}
	}
	raw, err := parseBool(v.Get("raw"))
	if err != nil {
		writeLegacyError(w, http.StatusBadRequest, "unable to parse param 'raw': "+err.Error())
		return
	}
	b, found, err := a.db.FindTrace(r.Context(), id)
	if err != nil {
		a.writeLegacyQueryError(w, r, err)
		return
	}
	if !found || len(b.Spans) == 0 {
		writeLegacyError(w, http.StatusNotFound, "trace not found")
		return
	}
	writeJSON(w, http.StatusOK, legacyResponse{Data: []Trace{toUITrace(id, b.Spans, raw)}, Total: 1})
}

// dependencies (GET /api/dependencies) is in dependencies.go.
