package jaeger

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// Limits on search requests.
const (
	// defaultLimit is Jaeger's default number of traces per search. The
	// largest limit is query.max_traces_per_search: a larger one is lowered
	// to it rather than refused, since Jaeger UI lets users type any number.
	defaultLimit = 100
	maxConds     = 64
	maxParamLen  = 4096
	maxTraceIDs  = 100
)

// findParams is a trace search from either API.
type findParams struct {
	query search.Query
	limit int
	// traceIDs, when set (legacy API only), replaces the search: those
	// traces are loaded.
	traceIDs []span.TraceID
	// raw asks for traces as stored, without the tag sorting Jaeger's
	// adjusters do.
	raw bool
}

// first returns the first non-empty value among the parameters names, so
// that api_v3's camelCase and snake_case spellings are both accepted.
func first(v url.Values, names ...string) string {
	for _, n := range names {
		if s := v.Get(n); s != "" {
			return s
		}
	}
	return ""
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

// parseLegacyFind parses the query string of the legacy GET /api/traces:
// service, operation, tags (a JSON object), tag (k:v, repeatable), start and
// end (Unix microseconds), minDuration and maxDuration (Go durations),
// limit, raw, and traceID (repeatable; replaces the search).
func parseLegacyFind(v url.Values, maxLimit int) (*findParams, error) {
	if err := checkLengths(v); err != nil {
		return nil, err
	}
	p := &findParams{}
	for _, s := range v["traceID"] {
		id, err := parseTraceID(s)
		if err != nil {
			return nil, err
		}
		p.traceIDs = append(p.traceIDs, id)
	}
	if len(p.traceIDs) > maxTraceIDs {
		return nil, fmt.Errorf("at most %d traceID parameters are allowed, got %d", maxTraceIDs, len(p.traceIDs))
	}
	q := &p.query
	q.Service = v.Get("service")
	q.SpanName = v.Get("operation")
	var err error
	if q.Start, err = parseMicros(v.Get("start")); err != nil {
		return nil, fmt.Errorf("unable to parse param 'start': %w", err)
	}
	if q.End, err = parseMicros(v.Get("end")); err != nil {
		return nil, fmt.Errorf("unable to parse param 'end': %w", err)
	}
	if q.MinDuration, err = parseDuration(v.Get("minDuration")); err != nil {
		return nil, fmt.Errorf("unable to parse param 'minDuration': %w", err)
	}
	if q.MaxDuration, err = parseDuration(v.Get("maxDuration")); err != nil {
		return nil, fmt.Errorf("unable to parse param 'maxDuration': %w", err)
	}
	tags := map[string]string{}
	for _, s := range v["tags"] {
		if err := parseTagsJSON(s, tags); err != nil {
			return nil, fmt.Errorf("unable to parse param 'tags': %w", err)
		}
	}
	for _, s := range v["tag"] {
		k, val, ok := strings.Cut(s, ":")
		if !ok || k == "" {
			return nil, fmt.Errorf("malformed 'tag' parameter %q: want key:value", s)
		}
		tags[k] = val
	}
	if p.limit, err = parseLimit(v.Get("limit"), maxLimit); err != nil {
		return nil, fmt.Errorf("unable to parse param 'limit': %w", err)
	}
	if p.raw, err = parseBool(v.Get("raw")); err != nil {
		return nil, fmt.Errorf("unable to parse param 'raw': %w", err)
	}
	return p, p.finish(tags)
}

// finish adds the tag conditions and compiles the query.
func (p *findParams) finish(tags map[string]string) error {
	if err := addTagConds(&p.query, tags); err != nil {
		return err
	}
	return p.query.Compile()
}

// parseV3Find parses the query string of GET /api/v3/traces. Each
// parameter is accepted in camelCase (query.serviceName) and in the
// snake_case of the grpc-gateway (query.service_name).
func parseV3Find(v url.Values, maxLimit int) (*findParams, error) {
	if err := checkLengths(v); err != nil {
		return nil, err
	}
	p := &findParams{}
	q := &p.query
	q.Service = first(v, "query.serviceName", "query.service_name")
	q.SpanName = first(v, "query.operationName", "query.operation_name")
	var err error
	if q.Start, err = parseRFC3339(first(v, "query.startTimeMin", "query.start_time_min")); err != nil {
		return nil, fmt.Errorf("query.startTimeMin: %w", err)
	}
	if q.End, err = parseRFC3339(first(v, "query.startTimeMax", "query.start_time_max")); err != nil {
		return nil, fmt.Errorf("query.startTimeMax: %w", err)
	}
	if q.MinDuration, err = parseDuration(first(v, "query.durationMin", "query.duration_min")); err != nil {
		return nil, fmt.Errorf("query.durationMin: %w", err)
	}
	if q.MaxDuration, err = parseDuration(first(v, "query.durationMax", "query.duration_max")); err != nil {
		return nil, fmt.Errorf("query.durationMax: %w", err)
	}
	tags := map[string]string{}
	if s := v.Get("query.attributes"); s != "" {
		if err := parseTagsJSON(s, tags); err != nil {
			return nil, fmt.Errorf("query.attributes: %w", err)
		}
	}
	if p.limit, err = parseLimit(first(v, "query.searchDepth", "query.search_depth", "query.num_traces"), maxLimit); err != nil {
		return nil, fmt.Errorf("query.searchDepth: %w", err)
	}
	if p.raw, err = parseBool(first(v, "query.rawTraces", "query.raw_traces")); err != nil {
		return nil, fmt.Errorf("query.rawTraces: %w", err)
	}
	return p, p.finish(tags)
}

// parseTraceID accepts what span.ParseTraceID does: 32 hex digits, or
// fewer (64-bit Jaeger and Zipkin IDs are 16), left-padded with zeros.
func parseTraceID(s string) (span.TraceID, error) {
	id, err := span.ParseTraceID(s)
	if err != nil {
		return id, fmt.Errorf("malformed trace ID %q: want 16 or 32 hex digits, not all zero", s)
	}
	return id, nil
}

// parseTagsJSON adds the entries of a JSON object to tags. Values may be
// strings, numbers or booleans; Jaeger compares tags as strings, so each is
// kept as its text ("123", "72.5", "true").
func parseTagsJSON(s string, tags map[string]string) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return fmt.Errorf("want a JSON object of tag values such as {\"error\":\"true\"}: %v", err)
	}
	if d.More() {
		return errors.New("trailing data after the JSON object")
	}
	for k, val := range m {
		if k == "" {
			return errors.New("empty tag key")
		}
		switch x := val.(type) {
		case string:
			tags[k] = x
		case json.Number:
			tags[k] = x.String()
		case bool:
			tags[k] = strconv.FormatBool(x)
		default:
			return fmt.Errorf("tag %q: value must be a string, number or boolean", k)
		}
	}
	return nil
}

// addTagConds appends one equality condition per tag, in key order so that
// the query is deterministic. Each looks in every place a Jaeger tag can
// be (search.ScopeAny) and compares as a string.
func addTagConds(q *search.Query, tags map[string]string) error {
	if len(tags) > maxConds {
		return fmt.Errorf("at most %d tags are allowed, got %d", maxConds, len(tags))
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		q.Conds = append(q.Conds, search.Cond{Scope: search.ScopeAny, Key: k, Op: search.OpEq, Value: span.StringValue(tags[k])})
	}
	return nil
}

// parseMicros parses a Unix time in microseconds into nanoseconds. Empty
// means unbounded (0).
func parseMicros(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<63-1)/1000 {
		return 0, fmt.Errorf("%q is not a Unix time in microseconds", s)
	}
	return n * 1000, nil
}

// parseRFC3339 parses an RFC 3339 time with optional fractional seconds
// into Unix nanoseconds. Empty means unbounded (0).
func parseRFC3339(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 time such as 2025-11-24T16:00:00.123Z", s)
	}
	if t.UnixNano() <= 0 {
		return 0, fmt.Errorf("%q is not after 1970", s)
	}
	return uint64(t.UnixNano()), nil
}

// parseDuration parses a Go duration ("1ms", "1.5s"). Empty means
// unbounded (0).
func parseDuration(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration: write a number with a unit, such as 250ms or 1.5s", s)
	}
	return uint64(d), nil
}

// parseLimit parses a number of traces: empty or 0 is the default, and
// more than maxLimit is lowered to it.
func parseLimit(s string, maxLimit int) (int, error) {
	if s == "" {
		return clampLimit(0, maxLimit), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", s)
	}
	return clampLimit(n, maxLimit), nil
}

// clampLimit turns a requested number of traces into the one served: 0
// (or less) is the default, and more than maxLimit is lowered to it.
func clampLimit(n, maxLimit int) int {
	if n <= 0 {
		n = defaultLimit
	}
	return min(n, maxLimit)
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}

// parseSpanKind parses Jaeger's spanKind parameter: empty (every kind, with
// all set) or a kind name in either case.
func parseSpanKind(s string) (kind span.Kind, all bool, err error) {
	if s == "" {
		return 0, true, nil
	}
	k, ok := span.ParseKind(strings.ToLower(s))
	if !ok {
		return 0, false, fmt.Errorf("spanKind %q: want server, client, producer, consumer, internal or unspecified", s)
	}
	return k, false, nil
}

// parseMillis checks an optional non-negative integer parameter such as
// endTs or lookback (milliseconds).
func parseMillis(name, s string) error {
	if s == "" {
		return nil
	}
	if _, err := strconv.ParseUint(s, 10, 63); err != nil {
		return fmt.Errorf("unable to parse param '%s': %q is not a non-negative integer of milliseconds", name, s)
	}
	return nil
}
