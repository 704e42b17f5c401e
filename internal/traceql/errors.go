package traceql

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on the input, so that no query can exhaust memory or the stack.
const (
	// MaxQueryLen is the longest query accepted, in bytes.
	MaxQueryLen = 128 << 10
	// MaxDepth bounds the nesting of parentheses, braces and unary
	// operators.
	MaxDepth = 64
)

// ParseError is a syntax or type error. Pos and End are the byte offsets
// of the offending text, [Pos, End), for a UI to underline; Line and Col
// locate Pos for people (both 1-based, Col in Unicode code points).
// Expected, when not empty, lists what would have been accepted at Pos.
type ParseError struct {
	Pos, End  int
	Line, Col int
	Msg       string
	Expected  []string
}

// Error returns "line:col: message".
func (e *ParseError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// newError builds a ParseError for src[pos:end], computing line and column.
func newError(src string, pos, end int, expected []string, format string, args ...any) *ParseError {
	if pos < 0 {
		pos = 0
	}
	if pos > len(src) {
		pos = len(src)
	}
	if end < pos {
		end = pos
	}
	if end > len(src) {
		end = len(src)
	}
	line, col := 1, 1
	for i := 0; i < pos; {
		r, n := utf8.DecodeRuneInString(src[i:])
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i += n
	}
	msg := fmt.Sprintf(format, args...)
	if len(expected) > 0 {
		msg += ", expected " + joinOr(expected)
	}
	return &ParseError{Pos: pos, End: end, Line: line, Col: col, Msg: msg, Expected: expected}
}

// joinOr lists items as "a, b or c".
func joinOr(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
