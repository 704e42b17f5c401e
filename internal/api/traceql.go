package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// traceQLParams are the parameters GET /api/v1/search takes with q; the
// native conditions (service, attr, ...) belong in the query itself.
var traceQLParams = map[string]bool{"q": true, "start": true, "end": true, "since": true, "limit": true, "cursor": true, "traces": true}

// maxQueryLen bounds a TraceQL query's length, as the native parameters
// are bounded.
const maxQueryLen = 16 << 10

// TraceQLSearchResponse is the answer of GET /api/v1/search?q=: the native
// search answer. A TraceQL search stops at the page it returns, so its
// total counts the matching traces up to the end of the page, plus one
// when nextCursor says that more follow; TotalIsLowerBound is then set.
type TraceQLSearchResponse struct {
	SearchResponse
	TotalIsLowerBound bool `json:"totalIsLowerBound,omitempty"`
}

// QueryErrorBody is a 400 answer for a TraceQL query that does not parse
// or type-check: the message, and where the error is so that a UI can
// underline it.
type QueryErrorBody struct {
	Error    string         `json:"error"`
	Position *QueryErrorPos `json:"position,omitempty"`
}

// QueryErrorPos locates an error in the query: Start and End are byte
// offsets of the offending text [Start, End); Line and Column (1-based,
// the column in Unicode code points) locate Start for people.
type QueryErrorPos struct {
	Start  int `json:"start"`
	End    int `json:"end"`
	Line   int `json:"line"`
	Column int `json:"column"`
}

// searchTraceQL serves GET /api/v1/search?q=<TraceQL>: the query runs on
// internal/engine over the time range (start, end or since bound the start
// of the spans that select a trace, as in the native search) and answers
// with the native search's shape, newest first, a page of limit traces at
// a time. Paging is by cursor: it holds how many traces the earlier pages
// returned and the last one's (start, ID) key, so a page never repeats a
// trace of an earlier one although newer traces may have arrived.
func (a *API) searchTraceQL(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	if err := checkTraceQLParams(v); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	src := strings.TrimSpace(v.Get("q"))
	if src == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "q is empty: write a TraceQL query such as { status = error }")
		return
	}
	pq, err := traceql.Parse(src)
	if err != nil {
		body := QueryErrorBody{Error: "invalid TraceQL query: " + err.Error()}
		var pe *traceql.ParseError
		if errors.As(err, &pe) {
			body.Position = &QueryErrorPos{Start: pe.Pos, End: pe.End, Line: pe.Line, Column: pe.Col}
		}
		httpapi.WriteJSON(w, http.StatusBadRequest, body)
		return
	}
	var lo, hi uint64
	if lo, err = parseTime(v.Get("start")); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "start: "+err.Error())
		return
	}
	if hi, err = parseTime(v.Get("end")); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, "end: "+err.Error())
		return
	}
	if s := v.Get("since"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("since %q: want a positive duration such as 15m or 24h", s))
			return
		}
		lo = uint64(max(a.now().Add(-d).UnixNano(), 0))
	}
	limit := defaultLimit
	if s := v.Get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit <= 0 || limit > a.limits.MaxTracesPerSearch {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want an integer from 1 to %d (query.max_traces_per_search)", s, a.limits.MaxTracesPerSearch))
			return
		}
	}
	var cur *traceQLCursor
	if s := v.Get("cursor"); s != "" {
		c, err := decodeTraceQLCursor(s)
		if err != nil {
			httpapi.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		cur = &c
	}
	full := false
	switch t := v.Get("traces"); t {
	case "", "summary":
	case "full":
		full = true
	default:
		httpapi.WriteError(w, http.StatusBadRequest, "traces "+strconv.Quote(t)+": want summary or full")
		return
	}

	// Ask for the traces of the earlier pages, this page and one more (to
	// know whether more follow), then keep those after the cursor's key.
	offset := 0
	if cur != nil {
		offset = cur.offset
	}
	want := offset + limit + 1
	budget := &spanBudget{Reader: a.db}
	budget.left.Store(int64(a.limits.MaxSpansPerQuery))
	eng := engine.New(budget, engine.Config{MaxCandidates: a.limits.MaxCandidateTraces})
	res, err := eng.Search(r.Context(), engine.SearchRequest{Query: pq, Start: lo, End: hi, Limit: want, SpansPerSpanset: 1})
	if errors.Is(err, engine.ErrMetricsQuery) {
		httpapi.WriteJSON(w, http.StatusBadRequest, QueryErrorBody{Error: err.Error()})
		return
	}
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	found := res.Traces
	if cur != nil {
		i := 0
		for i < len(found) && !cur.before(found[i]) {
			i++
		}
		found = found[i:]
	}
	// More follow when this page overflows, or when the engine filled
	// the whole request (traces newer than the cursor may have taken
	// places in it).
	more := len(found) > limit || len(res.Traces) >= want
	found = found[:min(len(found), limit)]
	out := TraceQLSearchResponse{SearchResponse: SearchResponse{Traces: make([]TraceSummary, len(found))}}
	for i, tr := range found {
		out.Traces[i] = engineSummary(tr)
	}
	if full && len(found) > 0 {
		ids := make([]span.TraceID, len(found))
		for i, tr := range found {
			ids[i] = tr.TraceID
		}
		batches, err := httpapi.LoadTracesLimited(r.Context(), a.db, ids, 2, a.limits.MaxSpansPerQuery)
		if err != nil {
			a.writeQueryError(w, r, err)
			return
		}
		if len(batches) < len(found) {
			out.Traces = out.Traces[:len(batches)]
			out.Warning = httpapi.SpanLimitMessage(len(batches), len(found), a.limits.MaxSpansPerQuery) + "; continue with nextCursor"
			more = true
		}
		for i, b := range batches {
			if b != nil {
				out.Traces[i].Trace = appendTraceJSON(nil, b.Spans)
			}
		}
	}
	out.Total = offset + len(out.Traces)
	if more && len(out.Traces) > 0 {
		last := found[len(out.Traces)-1]
		out.NextCursor = traceQLCursor{offset: out.Total, start: last.StartUnixNano, id: last.TraceID}.encode()
		out.Total++
		out.TotalIsLowerBound = true
	}
	var why []string
	if budget.cut.Load() {
		why = append(why, "the spans loaded reached query.max_spans_per_query ("+strconv.Itoa(a.limits.MaxSpansPerQuery)+")")
	}
	if res.Truncated {
		why = append(why, "the traces evaluated reached query.max_candidate_traces ("+strconv.Itoa(a.limits.MaxCandidateTraces)+")")
	}
	if len(why) > 0 && out.Warning == "" {
		out.Warning = "partial result: " + strings.Join(why, "; ") + ": narrow the time range or add conditions"
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// checkTraceQLParams refuses parameters that do not go with q and values
// over the length limits.
func checkTraceQLParams(v url.Values) error {
	for k, vals := range v {
		if !traceQLParams[k] {
			return fmt.Errorf("parameter %s cannot be combined with q: write the condition in the TraceQL query", k)
		}
		n := maxParamLen
		if k == "q" {
			n = maxQueryLen
		}
		for _, s := range vals {
			if len(s) > n {
				return fmt.Errorf("parameter %s is longer than %d bytes", k, n)
			}
		}
	}
	return nil
}

// engineSummary renders an engine result as a native search summary.
func engineSummary(tr engine.Trace) TraceSummary {
	s := TraceSummary{
		TraceID:           tr.TraceID.String(),
		RootServiceName:   tr.RootServiceName,
		RootName:          tr.RootName,
		StartTimeUnixNano: strconv.FormatUint(tr.StartUnixNano, 10),
		DurationNanos:     strconv.FormatUint(tr.DurationNanos, 10),
		Services:          make([]ServiceStat, len(tr.Services)),
	}
	for i, sv := range tr.Services {
		s.Services[i] = ServiceStat{Name: sv.Name, SpanCount: sv.SpanCount, ErrorCount: sv.ErrorCount}
		s.SpanCount += sv.SpanCount
		s.ErrorCount += sv.ErrorCount
	}
	return s
}

// traceQLCursor continues a TraceQL search: offset traces were returned
// by the earlier pages, the last of them with this start and ID.
type traceQLCursor struct {
	offset int
	start  uint64
	id     span.TraceID
}

// traceQLCursorTag starts every TraceQL cursor, so that a native cursor
// passed with q (or the reverse) is refused rather than misread.
const traceQLCursorTag = 'q'

func (c traceQLCursor) encode() string {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+8+16)
	b = append(b, traceQLCursorTag)
	b = binary.AppendUvarint(b, uint64(c.offset))
	b = binary.BigEndian.AppendUint64(b, c.start)
	b = append(b, c.id[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeTraceQLCursor(s string) (traceQLCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 1 || b[0] != traceQLCursorTag {
		return traceQLCursor{}, errBadCursor
	}
	off, n := binary.Uvarint(b[1:])
	if n <= 0 || off > 1<<30 || len(b) != 1+n+24 {
		return traceQLCursor{}, errBadCursor
	}
	c := traceQLCursor{offset: int(off)}
	b = b[1+n:]
	c.start = binary.BigEndian.Uint64(b[:8])
	copy(c.id[:], b[8:])
	return c, nil
}

// before reports whether the cursor's trace sorts before tr in the
// search's order (newest first, then by trace ID), that is, whether tr
// belongs to a later page.
func (c *traceQLCursor) before(tr engine.Trace) bool {
	if tr.StartUnixNano != c.start {
		return tr.StartUnixNano < c.start
	}
	return bytes.Compare(tr.TraceID[:], c.id[:]) > 0
}

// spanBudget is the engine's source for one request: it loads traces
// until the spans loaded reach the budget, after which it loads no more
// (the engine sees them as gone) and remembers that it cut the query.
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
