package logapi

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/clew-dev/clew/internal/logs"
)

// The LogQL subset clew answers (docs/api.md, "Loki API"): a stream
// selector on resource attributes by label name, then line filters.
//
//	query    := selector filter*
//	selector := "{" [ matcher { "," matcher } ] "}"
//	matcher  := label ( "=" | "!=" | "=~" | "!~" ) string
//	filter   := ( "|=" | "!=" | "|~" | "!~" ) string
//	string   := a Go double-quoted string or a `raw` string
//
// Everything else (parsers such as | json, label filters, formatting,
// metric queries such as count_over_time) is refused with an error naming
// it.

// Bounds on a LogQL query.
const (
	maxQueryLen = 16 << 10
	maxMatchers = 32
	maxFilters  = 32
)

// LogQLError is a LogQL query clew cannot answer: a syntax error or a part
// of LogQL it does not support, at byte Pos.
type LogQLError struct {
	Pos         int
	Msg         string
	Unsupported bool
}

func (e *LogQLError) Error() string {
	if e.Unsupported {
		return fmt.Sprintf("unsupported LogQL at byte %d: %s (clew supports a stream selector and the line filters |= != |~ !~)", e.Pos, e.Msg)
	}
	return fmt.Sprintf("parse LogQL at byte %d: %s", e.Pos, e.Msg)
}

type logqlParser struct {
	s   string
	pos int
}

func (p *logqlParser) errf(unsupported bool, format string, args ...any) error {
	return &LogQLError{Pos: p.pos, Msg: fmt.Sprintf(format, args...), Unsupported: unsupported}
}

func (p *logqlParser) space() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *logqlParser) peek(tok string) bool { return strings.HasPrefix(p.s[p.pos:], tok) }

func (p *logqlParser) ident() string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && p.pos > start {
			p.pos++
			continue
		}
		break
	}
	return p.s[start:p.pos]
}

func (p *logqlParser) str() (string, error) {
	p.space()
	if p.pos >= len(p.s) {
		return "", p.errf(false, "a string is missing")
	}
	q := p.s[p.pos]
	if q != '"' && q != '`' {
		return "", p.errf(false, "want a quoted string, got %q", p.s[p.pos:min(p.pos+10, len(p.s))])
	}
	end := p.pos + 1
	for end < len(p.s) && p.s[end] != q {
		if q == '"' && p.s[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(p.s) {
		return "", p.errf(false, "unterminated string")
	}
	lit := p.s[p.pos : end+1]
	v, err := strconv.Unquote(lit)
	if err != nil {
		return "", p.errf(false, "bad string %s: %v", lit, err)
	}
	p.pos = end + 1
	return v, nil
}

func compileLimited(re string) (*regexp.Regexp, error) {
	if len(re) > maxRegexpLen {
		return nil, fmt.Errorf("a regular expression of %d bytes (at most %d)", len(re), maxRegexpLen)
	}
	return regexp.Compile(re)
}

// ParseLogQL parses a LogQL log query of the supported subset into a
// query.
func ParseLogQL(s string) (*logs.Query, error) {
	if len(s) > maxQueryLen {
		return nil, &LogQLError{Msg: fmt.Sprintf("the query is %d bytes, at most %d", len(s), maxQueryLen)}
	}
	p := &logqlParser{s: s}
	p.space()
	if !p.peek("{") {
		start := p.pos
		if id := p.ident(); id != "" {
			p.pos = start
			return nil, p.errf(true, "a metric query (%s) where a log query is expected", id)
		}
	}
	return p.logQuery(false)
}

// logQuery parses a selector and its line filters; in a range
// aggregation (inRange) it stops before the range's "[".
func (p *logqlParser) logQuery(inRange bool) (*logs.Query, error) {
	q := &logs.Query{}
	p.space()
	if !p.peek("{") {
		return nil, p.errf(false, "a query starts with a stream selector {label=\"value\"}")
	}
	p.pos++
	for {
		p.space()
		if p.peek("}") {
			p.pos++
			break
		}
		if len(q.Resource) > 0 {
			if !p.peek(",") {
				return nil, p.errf(false, "want , or } between matchers")
			}
			p.pos++
			p.space()
		}
		if len(q.Resource) >= maxMatchers {
			return nil, p.errf(false, "more than %d matchers", maxMatchers)
		}
		at := p.pos
		name := p.ident()
		if name == "" {
			return nil, p.errf(false, "want a label name")
		}
		p.space()
		var op logs.MatchOp
		switch {
		case p.peek("=~"):
			op, p.pos = logs.MatchRe, p.pos+2
		case p.peek("!~"):
			op, p.pos = logs.MatchNre, p.pos+2
		case p.peek("!="):
			op, p.pos = logs.MatchNe, p.pos+2
		case p.peek("="):
			op, p.pos = logs.MatchEq, p.pos+1
		default:
			return nil, p.errf(false, "want = != =~ or !~ after %s", name)
		}
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		m := logs.Matcher{Key: name, Op: op, Value: v}
		if op == logs.MatchRe || op == logs.MatchNre {
			re, err := compileLimited("^(?:" + v + ")$")
			if err != nil {
				p.pos = at
				return nil, p.errf(false, "matcher %s: %v", name, err)
			}
			m.Re = re
		}
		if name == "service_name" && op == logs.MatchEq {
			q.Service = v // pruned by the store's service lists
		}
		q.Resource = append(q.Resource, m)
	}
	filters := 0
	for {
		p.space()
		if p.pos >= len(p.s) || inRange && (p.peek("[") || p.peek(")")) {
			return q, nil
		}
		if filters >= maxFilters {
			return nil, p.errf(false, "more than %d line filters", maxFilters)
		}
		at := p.pos
		var op string
		for _, o := range []string{"|=", "!=", "|~", "!~"} {
			if p.peek(o) {
				op = o
				break
			}
		}
		if op == "" {
			if p.peek("|") {
				p.pos++
				p.space()
				stage := p.ident()
				if stage == "drop" && p.dropErrors() {
					continue // clew sets no __error__ labels: dropping them changes nothing
				}
				p.pos = at
				if stage == "" {
					return nil, p.errf(true, "the pipeline stage %q is not supported", p.s[at:min(at+20, len(p.s))])
				}
				return nil, p.errf(true, "the pipeline stage | %s is not supported", stage)
			}
			return nil, p.errf(false, "unexpected %q after the selector", p.s[p.pos:min(p.pos+20, len(p.s))])
		}
		p.pos += 2
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		switch op {
		case "|=":
			if id, ok := traceIDFilter(v); ok && q.TraceID == nil {
				// Grafana's trace to logs filters by the trace ID as a
				// line filter: clew selects the trace's records by their
				// trace ID (its index), not by the text.
				q.TraceID = &id
			} else if v != "" {
				q.Contains = append(q.Contains, v)
			}
		case "!=":
			q.NotContains = append(q.NotContains, v)
		case "|~", "!~":
			re, err := compileLimited(v)
			if err != nil {
				p.pos = at
				return nil, p.errf(false, "line filter %s: %v", op, err)
			}
			if op == "|~" {
				q.Regexp = append(q.Regexp, re)
			} else {
				q.NotRegexp = append(q.NotRegexp, re)
			}
		}
		filters++
	}
}

// traceIDFilter reports whether a line filter's text is a trace ID: 32
// hex digits.
func traceIDFilter(v string) ([16]byte, bool) {
	if len(v) != 32 {
		return [16]byte{}, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return [16]byte{}, false
		}
	}
	id, err := logs.ParseTraceID(v)
	return id, err == nil && id != [16]byte{}
}

// dropErrors reads the labels of a | drop stage and reports whether they
// are only __error__ and __error_details__ (which Grafana adds to its
// queries), leaving the position after them; else it reports false.
func (p *logqlParser) dropErrors() bool {
	n := 0
	for {
		p.space()
		l := p.ident()
		if l != "__error__" && l != "__error_details__" {
			return false
		}
		n++
		p.space()
		if !p.peek(",") {
			return n > 0
		}
		p.pos++
	}
}
