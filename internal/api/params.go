package api

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Limits on search requests.
const (
	defaultLimit = 20
	maxConds     = 64
	maxParamLen  = 4096
)

// parseSearch turns the query string of GET /api/v1/search into a compiled
// query, a page size (at most maxLimit) and an optional cursor.
func parseSearch(v url.Values, now time.Time, maxLimit int) (*search.Query, int, *storage.Cursor, error) {
	q := &search.Query{}
	if err := httpapi.CheckParamLen(v, maxParamLen); err != nil {
		return nil, 0, nil, err
	}
	q.Service = v.Get("service")
	q.SpanName = v.Get("name")
	if q.SpanName == "" {
		q.SpanName = v.Get("operation")
	}
	for _, s := range splitList(v["status"]) {
		st, ok := span.ParseStatus(strings.ToLower(s))
		if !ok {
			return nil, 0, nil, fmt.Errorf("status %q: want unset, ok or error", s)
		}
		q.Statuses = append(q.Statuses, st)
	}
	for _, s := range splitList(v["kind"]) {
		k, ok := span.ParseKind(strings.ToLower(s))
		if !ok {
			return nil, 0, nil, fmt.Errorf("kind %q: want unspecified, internal, server, client, producer or consumer", s)
		}
		q.Kinds = append(q.Kinds, k)
	}
	var err error
	if q.MinDuration, err = parseDuration(v.Get("minDuration")); err != nil {
		return nil, 0, nil, fmt.Errorf("minDuration: %w", err)
	}
	if q.MaxDuration, err = parseDuration(v.Get("maxDuration")); err != nil {
		return nil, 0, nil, fmt.Errorf("maxDuration: %w", err)
	}
	if q.Start, err = parseTime(v.Get("start")); err != nil {
		return nil, 0, nil, fmt.Errorf("start: %w", err)
	}
	if q.End, err = parseTime(v.Get("end")); err != nil {
		return nil, 0, nil, fmt.Errorf("end: %w", err)
	}
	if s := v.Get("since"); s != "" {
		if v.Get("start") != "" {
			return nil, 0, nil, errors.New("give start or since, not both")
		}
		d, err := httpapi.ParseSince(s)
		if err != nil {
			return nil, 0, nil, err
		}
		end := now
		if q.End != 0 {
			end = time.Unix(0, int64(q.End))
		}
		q.Start = uint64(max(end.Add(-d).UnixNano(), 0))
	}
	if q.End != 0 && q.End < q.Start {
		return nil, 0, nil, errors.New("end must not be before start")
	}
	attrs := v["attr"]
	if len(attrs) > maxConds {
		return nil, 0, nil, fmt.Errorf("at most %d attr conditions are allowed, got %d", maxConds, len(attrs))
	}
	for _, a := range attrs {
		c, err := parseCond(a)
		if err != nil {
			return nil, 0, nil, err
		}
		q.Conds = append(q.Conds, c)
	}
	if err := q.Compile(); err != nil {
		return nil, 0, nil, err
	}
	limit := defaultLimit
	if s := v.Get("limit"); s != "" {
		limit, err = strconv.Atoi(s)
		if err != nil || limit <= 0 || limit > maxLimit {
			return nil, 0, nil, fmt.Errorf("limit %q: want an integer from 1 to %d (query.max_traces_per_search)", s, maxLimit)
		}
	}
	var cur *storage.Cursor
	if s := v.Get("cursor"); s != "" {
		c, err := decodeCursor(s)
		if err != nil {
			return nil, 0, nil, err
		}
		cur = &c
	}
	return q, limit, cur, nil
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// operators in the order they must be tried: two-character ones first.
var condOps = []struct {
	sym string
	op  search.Op
}{
	{"!=", search.OpNe}, {"=~", search.OpRegex}, {"!~", search.OpNotRegex},
	{">=", search.OpGe}, {"<=", search.OpLe},
	{"=", search.OpEq}, {">", search.OpGt}, {"<", search.OpLt},
}

// parseCond parses one attr parameter: [scope:]key OP value, where scope is
// one of span, resource, scope, event, link, any; OP one of = != =~ !~ > >=
// < <=. A value in double quotes is a string; otherwise a value that reads
// as an integer, a float or true/false has that type, and anything else is
// a string. "key" alone (no operator) tests that the attribute exists.
func parseCond(s string) (search.Cond, error) {
	var c search.Cond
	rest := s
	if i := strings.IndexByte(rest, ':'); i > 0 {
		if sc, ok := search.ParseScope(rest[:i]); ok && !strings.ContainsAny(rest[:i], "=!<>") {
			c.Scope = sc
			rest = rest[i+1:]
		}
	}
	i := strings.IndexAny(rest, "=!<>")
	if i < 0 {
		c.Key = strings.TrimSpace(rest)
		c.Op = search.OpExists
		if c.Key == "" {
			return c, fmt.Errorf("attr %q: empty attribute key", s)
		}
		return c, nil
	}
	c.Key = strings.TrimSpace(rest[:i])
	if c.Key == "" {
		return c, fmt.Errorf("attr %q: empty attribute key; write key=value", s)
	}
	opPart := rest[i:]
	found := false
	for _, o := range condOps {
		if strings.HasPrefix(opPart, o.sym) {
			c.Op = o.op
			opPart = opPart[len(o.sym):]
			found = true
			break
		}
	}
	if !found {
		return c, fmt.Errorf("attr %q: unknown operator; use = != =~ !~ > >= < <=", s)
	}
	c.Value = parseValue(opPart, c.Op == search.OpRegex || c.Op == search.OpNotRegex)
	return c, nil
}

func parseValue(s string, forceString bool) span.Value {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return span.StringValue(u)
		}
		return span.StringValue(s[1 : len(s)-1])
	}
	if forceString {
		return span.StringValue(s)
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return span.IntValue(i)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && strings.ContainsAny(s, ".eE") {
		return span.DoubleValue(f)
	}
	switch s {
	case "true":
		return span.BoolValue(true)
	case "false":
		return span.BoolValue(false)
	}
	return span.StringValue(s)
}

// parseDuration accepts a Go duration ("250ms", "1.5s") or an integer
// number of nanoseconds. Empty means unbounded (0).
func parseDuration(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration: write 250ms, 1.5s or an integer of nanoseconds", s)
	}
	return uint64(d), nil
}

// parseTime reads a time parameter (httpapi.ParseTime) as Unix
// nanoseconds; empty means unbounded (0).
func parseTime(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := httpapi.ParseTime(s)
	if err != nil {
		return 0, err
	}
	return uint64(t.UnixNano()), nil
}

func encodeCursor(c storage.Cursor) string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], c.Start)
	copy(b[8:], c.TraceID[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errBadCursor = errors.New("cursor is malformed: pass nextCursor from a previous answer unchanged")

func decodeCursor(s string) (storage.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return storage.Cursor{}, errBadCursor
	}
	var c storage.Cursor
	c.Start = binary.BigEndian.Uint64(b[:8])
	copy(c.TraceID[:], b[8:])
	return c, nil
}
