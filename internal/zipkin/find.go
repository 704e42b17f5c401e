package zipkin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// maxCandidates bounds the traces one search of GET /api/v2/traces loads
// and tests, as the TraceQL engine bounds its candidates.
const maxCandidates = 5000

// findRequest is a parsed GET /api/v2/traces, with Zipkin's semantics
// (QueryRequest): the service, when given, constrains every other
// criterion, and each criterion (the span name, the remote service, the
// duration range, each annotationQuery term) may be met by a different
// span of the service in the trace. Names are lower-cased, as Zipkin
// lower-cases them, and compared with the lower-cased stored names.
type findRequest struct {
	service, spanName, remote string // lower-cased; "" does not constrain
	terms                     []term
	minD, maxD                uint64 // span duration bounds in ns; 0 is unbounded
	start, end                uint64 // span start bounds in Unix ns, inclusive
	limit                     int
}

// term is one annotationQuery term: "key=value" (a tag with that value)
// or bare "key" (a tag with that key, or an annotation with that value).
type term struct {
	key, value string
	bare       bool
}

// parseFind turns the parameters of GET /api/v2/traces into a request.
// Durations are microseconds, endTs and lookback milliseconds.
func parseFind(v url.Values, nowMillis int64) (*findRequest, error) {
	if err := checkLengths(v); err != nil {
		return nil, err
	}
	f := &findRequest{}
	if s := strings.ToLower(v.Get("serviceName")); s != "all" {
		f.service = s
	}
	if s := strings.ToLower(v.Get("spanName")); s != "all" {
		f.spanName = s
	}
	if s := strings.ToLower(v.Get("remoteServiceName")); s != "all" {
		f.remote = s
	}
	terms, err := parseAnnotationQuery(v.Get("annotationQuery"))
	if err != nil {
		return nil, err
	}
	f.terms = terms
	const maxMicros = math.MaxUint64 / 1000
	minD, err := parseInt(v, "minDuration", 0)
	if err != nil {
		return nil, err
	}
	maxD, err := parseInt(v, "maxDuration", 0)
	if err != nil {
		return nil, err
	}
	if uint64(minD) > maxMicros || uint64(maxD) > maxMicros {
		return nil, errors.New("minDuration or maxDuration out of range")
	}
	if maxD != 0 && minD > maxD {
		return nil, fmt.Errorf("minDuration %d exceeds maxDuration %d", minD, maxD)
	}
	f.minD, f.maxD = uint64(minD)*1000, uint64(maxD)*1000
	endTs, err := parseInt(v, "endTs", nowMillis)
	if err != nil {
		return nil, err
	}
	lookback, err := parseInt(v, "lookback", defaultLookback)
	if err != nil {
		return nil, err
	}
	const maxMillis = math.MaxInt64 / 1_000_000
	if endTs > maxMillis {
		return nil, fmt.Errorf("endTs %d is out of range", endTs)
	}
	f.end = uint64(endTs) * 1_000_000
	if lookback < endTs {
		f.start = uint64(endTs-lookback) * 1_000_000
	}
	limit, err := parseInt(v, "limit", defaultLimit)
	if err != nil || limit == 0 {
		return nil, fmt.Errorf("limit %q: want a positive integer", v.Get("limit"))
	}
	f.limit = int(min(limit, maxLimit))
	return f, nil
}

// parseAnnotationQuery parses Zipkin's annotationQuery as Zipkin's
// QueryRequest does: terms joined by " and ", keys and values trimmed;
// "key=value" is a tag term, of which the last one for a key wins; "key"
// and "key=" are bare terms, which do not replace a tag term for the same
// key. An empty key is an error.
func parseAnnotationQuery(s string) ([]term, error) {
	var terms []term
	idx := map[string]int{}
	for raw := range strings.SplitSeq(s, " and ") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		t := term{key: raw, bare: true}
		if k, val, ok := strings.Cut(raw, "="); ok {
			if k = strings.TrimSpace(k); k == "" {
				return nil, fmt.Errorf("annotationQuery term %q: empty key", raw)
			}
			val = strings.TrimSpace(val)
			t = term{key: k, value: val, bare: val == ""}
		}
		if i, ok := idx[t.key]; ok {
			if !t.bare {
				terms[i] = t
			}
			continue
		}
		idx[t.key] = len(terms)
		terms = append(terms, t)
		if len(terms) > maxConds {
			return nil, fmt.Errorf("annotationQuery has more than %d terms", maxConds)
		}
	}
	return terms, nil
}

// derivedTags are the tags encode.go writes from something other than an
// attribute of the same key (the status, the kind, the scope), which an
// attribute condition cannot find.
var derivedTags = map[string]bool{
	keyError: true, keyStatusCode: true, keySpanKind: true,
	"otel.scope.name": true, "otel.scope.version": true,
}

// matchServices returns the stored service names equal to name once
// lower-cased (name is lower-cased already).
func (a *API) matchServices(ctx context.Context, name string) ([]string, error) {
	all, err := a.db.Services(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(s string) bool { return s == "" || strings.ToLower(s) != name }), nil
}

// spanNamesOf lists the stored span names of the services (all services
// when services is nil).
func (a *API) spanNamesOf(ctx context.Context, services []string) ([]string, error) {
	if services == nil {
		return a.db.SpanNames(ctx, "")
	}
	var out []string
	for _, svc := range services {
		names, err := a.db.SpanNames(ctx, svc)
		if err != nil {
			return nil, err
		}
		out = append(out, names...)
	}
	return out, nil
}

// find runs a search: it pushes one criterion down to the store (a span
// meeting it, of the service, in the window), pages through the traces
// that have such a span newest first, loads each and keeps those that
// meet every criterion (matchTrace), until limit traces are kept, the
// candidates run out or maxCandidates were tested.
func (a *API) find(ctx context.Context, f *findRequest) ([]*span.Batch, error) {
	q := &search.Query{Start: f.start, End: f.end}
	var services []string // nil: any
	if f.service != "" {
		var err error
		if services, err = a.matchServices(ctx, f.service); err != nil {
			return nil, err
		}
		if len(services) == 0 {
			return nil, nil
		}
		if len(services) == 1 {
			q.Service = services[0]
		}
	}
	pushed := false
	for _, t := range f.terms {
		if !t.bare && !derivedTags[t.key] {
			q.Conds = []search.Cond{{Scope: search.ScopeAny, Key: t.key, Op: search.OpEq, Value: span.StringValue(t.value)}}
			pushed = true
			break
		}
	}
	if !pushed && f.spanName != "" {
		names, err := a.spanNamesOf(ctx, services)
		if err != nil {
			return nil, err
		}
		names = slices.DeleteFunc(names, func(n string) bool { return strings.ToLower(n) != f.spanName })
		if len(names) == 0 {
			return nil, nil
		}
		slices.Sort(names)
		if len(slices.Compact(names)) == 1 {
			q.SpanName, pushed = names[0], true
		}
	}
	if !pushed && f.remote != "" {
		q.Conds = []search.Cond{{Scope: search.ScopeSpan, Key: keyPeerService, Op: search.OpRegex, Value: span.StringValue("(?i)" + regexp.QuoteMeta(f.remote))}}
		pushed = true
	}
	if !pushed {
		q.MinDuration, q.MaxDuration = f.minD, f.maxD
	}
	if err := q.Compile(); err != nil {
		return nil, err
	}
	var out []*span.Batch
	var cur *storage.Cursor
	tested, page := 0, f.limit
	for len(out) < f.limit && tested < maxCandidates {
		res, err := a.db.SearchPage(ctx, q, min(page, maxCandidates-tested), cur)
		if err != nil {
			return nil, err
		}
		page = max(f.limit, 100)
		ids := make([]span.TraceID, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.TraceID
		}
		tested += len(ids)
		batches, err := a.loadTraces(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, b := range batches {
			if b != nil && len(out) < f.limit && f.matchTrace(b.Spans) {
				out = append(out, b)
			}
		}
		if cur = res.Next; cur == nil {
			return out, nil
		}
	}
	if len(out) < f.limit {
		a.log.Warn("trace search stopped at the candidate bound; older matches may be missing", "candidates", tested)
	}
	return out, nil
}

// matchTrace reports whether the trace's spans meet every criterion of f,
// each on some span of the service that starts in the window.
func (f *findRequest) matchTrace(spans []span.Span) bool {
	needName, needRemote := f.spanName != "", f.remote != ""
	needDur := f.minD != 0 || f.maxD != 0
	left := len(f.terms)
	done := make([]bool, len(f.terms))
	seen := false
	for i := range spans {
		s := &spans[i]
		if s.StartUnixNano < f.start || f.end != 0 && s.StartUnixNano > f.end {
			continue
		}
		if f.service != "" && strings.ToLower(s.Resource.ServiceName()) != f.service {
			continue
		}
		seen = true
		attr := attrOf(s)
		if needName && strings.ToLower(s.Name) == f.spanName {
			needName = false
		}
		if needRemote {
			if v, ok := attr(keyPeerService); ok && v.Type == span.TypeString && strings.ToLower(v.Str) == f.remote {
				needRemote = false
			}
		}
		if needDur {
			d := s.Duration()
			needDur = d < f.minD || f.maxD != 0 && d > f.maxD
		}
		if left > 0 {
			tags := spanTags(s, attr)
			for k, t := range f.terms {
				if !done[k] && t.matchSpan(s, tags) {
					done[k] = true
					left--
				}
			}
		}
	}
	return seen && !needName && !needRemote && !needDur && left == 0
}

// matchSpan reports whether one span, with its Zipkin tags, meets t.
func (t term) matchSpan(s *span.Span, tags []tag) bool {
	for _, g := range tags {
		if g.key == t.key && (t.bare || g.value == t.value) {
			return true
		}
	}
	if t.bare {
		for i := range s.Events {
			if annotationValue(&s.Events[i]) == t.key {
				return true
			}
		}
	}
	return false
}

// traces serves GET /api/v2/traces: a list of traces, newest first, each a
// list of spans.
func (a *API) traces(w http.ResponseWriter, r *http.Request) {
	f, err := parseFind(r.URL.Query(), a.now().UnixMilli())
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	batches, err := a.find(r.Context(), f)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	writeBatches(w, batches)
}
