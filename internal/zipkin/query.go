package zipkin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// Bounds on query requests.
const (
	defaultLimit = 10
	// maxLimit caps the traces of one search; a larger limit is lowered.
	maxLimit = 1000
	// defaultLookback is Zipkin's QUERY_LOOKBACK default: one day, in ms.
	defaultLookback = 86_400_000
	maxConds        = 64
	maxParamLen     = 4096
	maxTraceIDs     = 1000
	// loadConcurrency bounds the traces loaded (or searches run) at once
	// for one request, as the other query APIs do.
	loadConcurrency = 2
	// maxListValues caps autocomplete and remote-service candidate lists.
	maxListValues = 10000
)

// queryStatus maps a store error to a status: a deadline is 504, a
// cancelled request 499 (the client is gone), anything else 500.
func (a *API) writeQueryError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg, internal := httpapi.QueryStatus(r.Context(), err, "")
	if internal {
		a.log.Error("query", "path", r.URL.Path, "err", err)
	}
	writeText(w, code, msg)
}

func writeStrings(w http.ResponseWriter, list []string) {
	b := []byte{'['}
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = span.AppendJSONString(b, s)
	}
	writeJSONBody(w, append(b, ']'))
}

func checkLengths(v url.Values) error {
	for k, vals := range v {
		for _, s := range vals {
			if len(s) > maxParamLen {
				return fmt.Errorf("parameter %s is longer than %d bytes", k, maxParamLen)
			}
		}
	}
	return nil
}

// lowerSorted lower-cases names, as Zipkin lower-cases service and span
// names, and returns them sorted and distinct, without the empty name.
func lowerSorted(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" {
			out = append(out, strings.ToLower(n))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// services serves GET /api/v2/services: the local service names,
// lower-cased and sorted.
func (a *API) services(w http.ResponseWriter, r *http.Request) {
	names, err := a.db.Services(r.Context())
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	writeStrings(w, lowerSorted(names))
}

// requiredService reads the serviceName parameter Zipkin requires and
// returns the stored service names it names, compared lower-cased.
func (a *API) requiredService(w http.ResponseWriter, r *http.Request) ([]string, bool) {
	svc := r.URL.Query().Get("serviceName")
	if svc == "" {
		writeText(w, http.StatusBadRequest, "serviceName is required")
		return nil, false
	}
	if len(svc) > maxParamLen {
		writeText(w, http.StatusBadRequest, "serviceName is too long")
		return nil, false
	}
	names, err := a.matchServices(r.Context(), strings.ToLower(svc))
	if err != nil {
		a.writeQueryError(w, r, err)
		return nil, false
	}
	return names, true
}

// spanNames serves GET /api/v2/spans?serviceName=: the service's span
// names, lower-cased and sorted.
func (a *API) spanNames(w http.ResponseWriter, r *http.Request) {
	services, ok := a.requiredService(w, r)
	if !ok {
		return
	}
	if len(services) == 0 {
		writeStrings(w, nil)
		return
	}
	names, err := a.spanNamesOf(r.Context(), services)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	writeStrings(w, lowerSorted(names))
}

// remoteServices serves GET /api/v2/remoteServices?serviceName=: the
// remote service names (peer.service) seen on the service's spans,
// lower-cased and sorted. The store indexes attribute values but not by
// service, so each candidate value is checked with a one-hit search per
// stored service name the parameter names.
func (a *API) remoteServices(w http.ResponseWriter, r *http.Request) {
	services, ok := a.requiredService(w, r)
	if !ok {
		return
	}
	if len(services) == 0 {
		writeStrings(w, nil)
		return
	}
	ctx := r.Context()
	vals, err := a.db.AttrValues(ctx, search.ScopeSpan, keyPeerService, maxListValues)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	names := make([]string, 0, len(vals))
	for _, v := range vals {
		if v.Type == span.TypeString && v.Str != "" {
			names = append(names, v.Str)
		}
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
				for _, svc := range services {
					if errs[i] = ctx.Err(); errs[i] != nil || keep[i] {
						break
					}
					q := &search.Query{Service: svc, Conds: []search.Cond{{Scope: search.ScopeSpan, Key: keyPeerService, Op: search.OpEq, Value: span.StringValue(names[i])}}}
					if errs[i] = q.Compile(); errs[i] != nil {
						break
					}
					res, err := a.db.Search(ctx, q, 1, nil)
					if errs[i] = err; err != nil {
						break
					}
					keep[i] = len(res.Hits) > 0
				}
			}
		}()
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := []string{}
	for i, n := range names {
		if keep[i] {
			out = append(out, n)
		}
	}
	writeStrings(w, lowerSorted(out))
}

// parseInt reads an optional non-negative integer parameter.
func parseInt(v url.Values, name string, def int64) (int64, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q: want a non-negative integer", name, s)
	}
	return n, nil
}

// writeTraces loads ids and answers them as a list of traces, leaving out
// the ones not found.
func (a *API) writeTraces(w http.ResponseWriter, r *http.Request, ids []span.TraceID) {
	batches, err := a.loadTraces(r.Context(), ids)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	writeBatches(w, batches)
}

// writeBatches answers a list of traces, leaving out nil batches.
func writeBatches(w http.ResponseWriter, batches []*span.Batch) {
	b := []byte{'['}
	first := true
	for _, tb := range batches {
		if tb == nil {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = AppendTraceJSON(b, tb.Spans)
	}
	writeJSONBody(w, append(b, ']'))
}

// parseZipkinTraceID accepts what zipkin2-api.yaml documents: 16 or 32
// lowercase hex digits.
func parseZipkinTraceID(s string) (span.TraceID, error) {
	if len(s) != 16 && len(s) != 32 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f')
	}) >= 0 {
		return span.TraceID{}, fmt.Errorf("trace ID %q: want 16 or 32 lowercase hex digits", s)
	}
	id, err := span.ParseTraceID(s)
	if err != nil {
		return id, fmt.Errorf("trace ID %q is all zero", s)
	}
	return id, nil
}

// trace serves GET /api/v2/trace/{traceId}: 200 with the spans, 404 when
// missing, 400 when the ID is malformed. A 16-digit ID names the trace
// whose 128-bit ID has zero high bits.
func (a *API) trace(w http.ResponseWriter, r *http.Request) {
	id, err := parseZipkinTraceID(r.PathValue("traceId"))
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	b, found, err := a.db.FindTrace(r.Context(), id)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	if !found || len(b.Spans) == 0 {
		writeText(w, http.StatusNotFound, "trace "+zipkinTraceID(id)+" not found")
		return
	}
	writeJSONBody(w, AppendTraceJSON(nil, b.Spans))
}

// traceMany serves GET /api/v2/traceMany?traceIds=a,b: the traces found
// among at least two distinct IDs, in the order asked.
func (a *API) traceMany(w http.ResponseWriter, r *http.Request) {
	s := r.URL.Query().Get("traceIds")
	if s == "" {
		writeText(w, http.StatusBadRequest, "traceIds is required: a comma-separated list of at least two trace IDs")
		return
	}
	var ids []span.TraceID
	for p := range strings.SplitSeq(s, ",") {
		id, err := parseZipkinTraceID(strings.TrimSpace(p))
		if err != nil {
			writeText(w, http.StatusBadRequest, "traceIds: "+err.Error())
			return
		}
		if slices.Contains(ids, id) {
			writeText(w, http.StatusBadRequest, "traceIds: "+zipkinTraceID(id)+" is listed twice")
			return
		}
		ids = append(ids, id)
		if len(ids) > maxTraceIDs {
			writeText(w, http.StatusBadRequest, fmt.Sprintf("traceIds: at most %d trace IDs are allowed", maxTraceIDs))
			return
		}
	}
	if len(ids) < 2 {
		writeText(w, http.StatusBadRequest, "traceIds: list at least two trace IDs (use /api/v2/trace/{traceId} for one)")
		return
	}
	a.writeTraces(w, r, ids)
}

// dependencies (GET /api/v2/dependencies) is in dependencies.go.

// autocompleteKeys serves GET /api/v2/autocompleteKeys: every span tag
// key, sorted (Zipkin lists configured keys; clew has them all indexed).
func (a *API) autocompleteKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.db.AttrKeys(r.Context(), search.ScopeSpan)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return consumed[k] })
	writeStrings(w, keys[:min(len(keys), maxListValues)])
}

// autocompleteValues serves GET /api/v2/autocompleteValues?key=: the
// values of that tag, sorted.
func (a *API) autocompleteValues(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" {
		writeText(w, http.StatusBadRequest, "key is required")
		return
	}
	vals, err := a.db.AttrValues(r.Context(), search.ScopeSpan, key, maxListValues)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.AsString()
	}
	slices.Sort(out)
	writeStrings(w, slices.Compact(out))
}

// loadTraces loads the traces ids names, keeping their order; a trace that
// is not found has a nil batch.
func (a *API) loadTraces(ctx context.Context, ids []span.TraceID) ([]*span.Batch, error) {
	return httpapi.LoadTraces(ctx, a.db, ids, loadConcurrency)
}
