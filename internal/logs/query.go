package logs

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/span"
)

// Query selects log records. Zero fields select everything; the
// conditions are ANDed.
type Query struct {
	// Start and End bound Record.Time: Start <= Time < End (0: unbounded).
	Start, End int64
	// Service is the resource's service.name.
	Service string
	// MinSeverity keeps records of at least this severity number.
	MinSeverity uint8
	// Attrs are key=value conditions on the record's attributes, else its
	// resource's (values compared as text).
	Attrs []KV
	// Contains are substrings the body must hold; NotContains must not.
	Contains, NotContains []string
	// Regexp and NotRegexp are patterns the body must (not) match.
	Regexp, NotRegexp []*regexp.Regexp
	// TraceID and SpanID select the records of one trace or span.
	TraceID *[16]byte
	SpanID  *[8]byte
	// Resource are conditions on resource attributes only (Loki stream
	// selectors): equality, inequality, regexp. A matcher names an
	// attribute by its label name (LabelName).
	Resource []Matcher
}

// LabelName is the Loki label name of an attribute key: every character
// outside [A-Za-z0-9_] becomes _ (service.name is service_name), and a
// leading digit gets a _ before it.
func LabelName(key string) string {
	ok := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			ok = false
			break
		}
	}
	if ok && key != "" {
		return key
	}
	b := make([]byte, 0, len(key)+1)
	if key == "" || key[0] >= '0' && key[0] <= '9' {
		b = append(b, '_')
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// isLabelOf reports whether label is LabelName(key), without allocating.
func isLabelOf(label, key string) bool {
	if label == key {
		return true
	}
	if key == "" || key[0] >= '0' && key[0] <= '9' {
		return label == LabelName(key)
	}
	if len(label) != len(key) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			c = '_'
		}
		if label[i] != c {
			return false
		}
	}
	return true
}

// MatchResource reports whether the resource attributes res satisfy the
// matchers (by label name; an absent label is "").
func MatchResource(ms []Matcher, res []KV) bool {
	for i := range ms {
		m := &ms[i]
		v := ""
		for _, a := range res {
			if isLabelOf(m.Key, a.Key) {
				v = a.Value
				break
			}
		}
		if !m.Matches(v) {
			return false
		}
	}
	return true
}

// MatchOp is the operator of a Matcher.
type MatchOp uint8

// Matcher operators.
const (
	MatchEq MatchOp = iota
	MatchNe
	MatchRe
	MatchNre
)

// Matcher is a condition on one resource attribute (an absent attribute
// is the empty string).
type Matcher struct {
	Key   string
	Op    MatchOp
	Value string
	Re    *regexp.Regexp // for MatchRe and MatchNre, anchored
}

// Matches reports whether v satisfies m.
func (m *Matcher) Matches(v string) bool {
	switch m.Op {
	case MatchEq:
		return v == m.Value
	case MatchNe:
		return v != m.Value
	case MatchRe:
		return m.Re.MatchString(v)
	default:
		return !m.Re.MatchString(v)
	}
}

// Match reports whether r satisfies q: the reference semantics every
// store's pushdown must agree with.
func (q *Query) Match(r *Record) bool {
	if (q.Start != 0 && r.Time < q.Start) || (q.End != 0 && r.Time >= q.End) {
		return false
	}
	if q.Service != "" && r.Service != q.Service {
		return false
	}
	if r.Severity < q.MinSeverity {
		return false
	}
	if q.TraceID != nil && r.TraceID != *q.TraceID {
		return false
	}
	if q.SpanID != nil && r.SpanID != *q.SpanID {
		return false
	}
	for _, a := range q.Attrs {
		if v, ok := r.Attr(a.Key); !ok || v != a.Value {
			return false
		}
	}
	if !MatchResource(q.Resource, r.Resource) {
		return false
	}
	for _, s := range q.Contains {
		if !strings.Contains(r.Body, s) {
			return false
		}
	}
	for _, s := range q.NotContains {
		if strings.Contains(r.Body, s) {
			return false
		}
	}
	for _, re := range q.Regexp {
		if !re.MatchString(r.Body) {
			return false
		}
	}
	for _, re := range q.NotRegexp {
		if re.MatchString(r.Body) {
			return false
		}
	}
	return true
}

// Key orders records newest first: by Time, then by a hash of the record's
// content, so that a record has the same key in the head and in a block
// and paging neither repeats nor skips records across a cut. Two records
// identical in every field share a key.
type Key struct {
	Time int64
	Hash uint64
}

// Less reports whether k sorts after o in newest-first order (k is older).
func (k Key) Less(o Key) bool {
	if k.Time != o.Time {
		return k.Time < o.Time
	}
	return k.Hash < o.Hash
}

// KeyOf returns r's order key.
func KeyOf(r *Record) Key {
	h := fnv.New64a()
	var buf [256]byte
	b := appendRecord(buf[:0], r, 0)
	b = appendKVs(b, r.Resource)
	_, _ = h.Write(b)
	return Key{Time: r.Time, Hash: h.Sum64()}
}

// Cursor is where a page ended: the next page holds records older than
// it. The zero Cursor starts at the newest.
type Cursor struct {
	Key
	Set bool
}

// Before reports whether k comes after the cursor (belongs to a later
// page).
func (c Cursor) Before(k Key) bool { return !c.Set || k.Less(c.Key) }

// String encodes the cursor for an API answer.
func (c Cursor) String() string {
	if !c.Set {
		return ""
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.Time))
	binary.BigEndian.PutUint64(b[8:], c.Hash)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ErrBadCursor is returned by ParseCursor for a cursor clew did not make.
var ErrBadCursor = errors.New("invalid cursor")

// ParseCursor decodes Cursor.String; "" is the zero Cursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{Key: Key{Time: int64(binary.BigEndian.Uint64(b[:8])), Hash: binary.BigEndian.Uint64(b[8:])}, Set: true}, nil
}

// Page is one page of a search, newest first.
type Page struct {
	Records []Record
	// Next continues the search; unset when this is the last page.
	Next Cursor
}

// Reader is the read contract of log storage, implemented by the log
// store and by the app's per-tenant dispatch (the tenant is the one in
// ctx, storage.TenantFrom).
type Reader interface {
	// SearchLogs returns up to limit records matching q older than after,
	// newest first. The caller owns the records.
	SearchLogs(ctx context.Context, q *Query, limit int, after Cursor) (Page, error)
	// LogStats reports what the store holds.
	LogStats(ctx context.Context) Stats
	// LogResources returns the distinct resources (attribute sets) of the
	// records that may lie in [start, end) (0: unbounded), at the
	// granularity of the store's heads and blocks: for label lists. The
	// slices are shared and must not be modified.
	LogResources(ctx context.Context, start, end int64) ([][]KV, error)
}

// Stats says what a log store holds.
type Stats struct {
	HeadRecords  int   `json:"headRecords"`
	Blocks       int   `json:"blocks"`
	BlockRecords int64 `json:"blockRecords"`
	BlockBytes   int64 `json:"blockBytes"`
}

// ParseTraceID parses a trace ID in hex (up to 32 digits, left-padded).
func ParseTraceID(s string) ([16]byte, error) {
	id, err := span.ParseTraceID(s)
	return [16]byte(id), err
}

// ParseSpanID parses a span ID of 16 hex digits.
func ParseSpanID(s string) ([8]byte, error) {
	var id [8]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 8 {
		return id, errors.New("span ID must be 16 hex digits")
	}
	copy(id[:], b)
	return id, nil
}

// SeverityName is the short name of a severity number: TRACE, DEBUG,
// INFO, WARN, ERROR, FATAL (with a digit for the finer levels), or
// UNSPECIFIED.
func SeverityName(n uint8) string {
	if n == 0 || n > MaxSeverity {
		return "UNSPECIFIED"
	}
	names := [...]string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	s := names[(n-1)/4]
	if d := (n-1)%4 + 1; d > 1 {
		s += strconv.Itoa(int(d))
	}
	return s
}

// ParseSeverity parses a severity name (case-insensitive: trace, debug,
// info, warn or warning, error, fatal, with an optional digit 1-4) or a
// number 0-24.
func ParseSeverity(s string) (uint8, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > MaxSeverity {
			return 0, false
		}
		return uint8(n), true
	}
	u := strings.ToUpper(s)
	digit := 1
	if l := len(u); l > 0 && u[l-1] >= '1' && u[l-1] <= '4' {
		digit = int(u[l-1] - '0')
		u = u[:l-1]
	}
	for i, name := range []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"} {
		if u == name || (name == "WARN" && u == "WARNING") {
			return uint8(i*4 + digit), true
		}
	}
	return 0, false
}

// AppendJSON appends r as the native API's JSON object.
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"time":"`...)
	dst = strconv.AppendInt(dst, r.Time, 10)
	dst = append(dst, `","observedTime":"`...)
	dst = strconv.AppendInt(dst, r.Observed, 10)
	dst = append(dst, `","severityNumber":`...)
	dst = strconv.AppendUint(dst, uint64(r.Severity), 10)
	dst = append(dst, `,"severity":`...)
	sev := r.SeverityText
	if sev == "" {
		sev = SeverityName(r.Severity)
	}
	dst = span.AppendJSONString(dst, sev)
	dst = append(dst, `,"body":`...)
	dst = appendValueJSON(dst, r.Body, r.BodyType)
	dst = append(dst, `,"service":`...)
	dst = span.AppendJSONString(dst, r.Service)
	if r.Scope != "" {
		dst = append(dst, `,"scope":`...)
		dst = span.AppendJSONString(dst, r.Scope)
	}
	if r.HasTrace() {
		dst = append(dst, `,"traceId":"`...)
		dst = hex.AppendEncode(dst, r.TraceID[:])
		dst = append(dst, '"')
	}
	if r.HasSpan() {
		dst = append(dst, `,"spanId":"`...)
		dst = hex.AppendEncode(dst, r.SpanID[:])
		dst = append(dst, '"')
	}
	if r.Flags != 0 {
		dst = append(dst, `,"flags":`...)
		dst = strconv.AppendUint(dst, uint64(r.Flags), 10)
	}
	dst = append(dst, `,"attributes":`...)
	dst = appendKVsJSON(dst, r.Attrs)
	dst = append(dst, `,"resource":`...)
	dst = appendKVsJSON(dst, r.Resource)
	return append(dst, '}')
}

func appendKVsJSON(dst []byte, kvs []KV) []byte {
	dst = append(dst, '{')
	for i, a := range kvs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = span.AppendJSONString(dst, a.Key)
		dst = append(dst, ':')
		dst = appendValueJSON(dst, a.Value, a.Type)
	}
	return append(dst, '}')
}

func appendValueJSON(dst []byte, v string, t byte) []byte {
	switch t {
	case TypeInt, TypeBool, TypeJSON:
		return append(dst, v...)
	case TypeDouble:
		if _, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "IN") { // not Inf or NaN
			return append(dst, v...)
		}
	}
	return span.AppendJSONString(dst, v)
}
