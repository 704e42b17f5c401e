package traceql

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tString
	tInt
	tFloat
	tDuration
	tAttribute // span.foo, .foo, parent.resource.foo
	tIntrinsic // span:name and other scoped intrinsics
	tLBrace
	tRBrace
	tLParen
	tRParen
	tComma
	tPipe
	tAnd      // &&
	tOr       // ||
	tNot      // !
	tEq       // =
	tNeq      // !=
	tLt       // <
	tLte      // <=
	tGt       // >
	tGte      // >=
	tRe       // =~
	tNre      // !~ (also the not-sibling operator)
	tAdd      // +
	tSub      // -
	tMul      // *
	tDiv      // /
	tMod      // %
	tPow      // ^
	tDesc     // >>
	tAnc      // <<
	tTilde    // ~
	tNotChild // !>
	tNotPar   // !<
	tNotDesc  // !>>
	tNotAnc   // !<<
	tUChild   // &>
	tUPar     // &<
	tUDesc    // &>>
	tUAnc     // &<<
	tUSib     // &~
)

var tokNames = [...]string{
	tEOF: "end of query", tIdent: "identifier", tString: "string", tInt: "integer", tFloat: "float",
	tDuration: "duration", tAttribute: "attribute", tIntrinsic: "intrinsic",
	tLBrace: "{", tRBrace: "}", tLParen: "(", tRParen: ")", tComma: ",", tPipe: "|",
	tAnd: "&&", tOr: "||", tNot: "!", tEq: "=", tNeq: "!=", tLt: "<", tLte: "<=", tGt: ">", tGte: ">=",
	tRe: "=~", tNre: "!~", tAdd: "+", tSub: "-", tMul: "*", tDiv: "/", tMod: "%", tPow: "^",
	tDesc: ">>", tAnc: "<<", tTilde: "~", tNotChild: "!>", tNotPar: "!<", tNotDesc: "!>>", tNotAnc: "!<<",
	tUChild: "&>", tUPar: "&<", tUDesc: "&>>", tUAnc: "&<<", tUSib: "&~",
}

// token is one lexical token. text is the source text, except for strings
// and attributes, where it is the decoded value or name.
type token struct {
	kind     tokKind
	pos, end int
	text     string
	scope    Scope     // tAttribute
	parent   bool      // tAttribute
	intr     Intrinsic // tIntrinsic
	dur      int64     // tDuration, nanoseconds
}

// lexer splits a query into tokens on demand. Its state is one offset, so
// the parser can save and restore it to look ahead.
type lexer struct {
	src string
	off int
	err *ParseError
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

// isAttrRune reports whether r may appear in a bare attribute name segment.
func isAttrRune(r rune) bool {
	switch r {
	case '_', '-', '/', '@', '$', '#':
		return true
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

var scopeByName = map[string]Scope{
	"span": ScopeSpan, "resource": ScopeResource, "event": ScopeEvent,
	"link": ScopeLink, "instrumentation": ScopeInstrumentation,
}

func (l *lexer) fail(pos, end int, format string, args ...any) token {
	if l.err == nil {
		l.err = newError(l.src, pos, end, nil, format, args...)
	}
	l.off = len(l.src)
	return token{kind: tEOF, pos: len(l.src), end: len(l.src)}
}

// next returns the next token, or tEOF at the end or after an error.
func (l *lexer) next() token {
	if l.err != nil {
		return token{kind: tEOF, pos: len(l.src), end: len(l.src)}
	}
	src := l.src
	for l.off < len(src) {
		c := src[l.off]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			l.off++
			continue
		}
		break
	}
	start := l.off
	if start >= len(src) {
		return token{kind: tEOF, pos: start, end: start}
	}
	c := src[start]
	op := func(k tokKind, n int) token {
		l.off = start + n
		return token{kind: k, pos: start, end: start + n, text: src[start : start+n]}
	}
	at := func(i int) byte {
		if start+i < len(src) {
			return src[start+i]
		}
		return 0
	}
	switch c {
	case '{':
		return op(tLBrace, 1)
	case '}':
		return op(tRBrace, 1)
	case '(':
		return op(tLParen, 1)
	case ')':
		return op(tRParen, 1)
	case ',':
		return op(tComma, 1)
	case '+':
		return op(tAdd, 1)
	case '-':
		return op(tSub, 1)
	case '*':
		return op(tMul, 1)
	case '/':
		return op(tDiv, 1)
	case '%':
		return op(tMod, 1)
	case '^':
		return op(tPow, 1)
	case '~':
		return op(tTilde, 1)
	case '|':
		if at(1) == '|' {
			return op(tOr, 2)
		}
		return op(tPipe, 1)
	case '&':
		switch at(1) {
		case '&':
			return op(tAnd, 2)
		case '~':
			return op(tUSib, 2)
		case '>':
			if at(2) == '>' {
				return op(tUDesc, 3)
			}
			return op(tUChild, 2)
		case '<':
			if at(2) == '<' {
				return op(tUAnc, 3)
			}
			return op(tUPar, 2)
		}
		return l.fail(start, start+1, `unexpected "&", expected "&&" or a union operator (&>, &>>, &<, &<<, &~)`)
	case '!':
		switch at(1) {
		case '=':
			return op(tNeq, 2)
		case '~':
			return op(tNre, 2)
		case '>':
			if at(2) == '>' {
				return op(tNotDesc, 3)
			}
			return op(tNotChild, 2)
		case '<':
			if at(2) == '<' {
				return op(tNotAnc, 3)
			}
			return op(tNotPar, 2)
		}
		return op(tNot, 1)
	case '=':
		if at(1) == '~' {
			return op(tRe, 2)
		}
		if at(1) == '=' {
			return l.fail(start, start+2, `unexpected "==", TraceQL compares with "="`)
		}
		return op(tEq, 1)
	case '<':
		switch at(1) {
		case '=':
			return op(tLte, 2)
		case '<':
			return op(tAnc, 2)
		}
		return op(tLt, 1)
	case '>':
		switch at(1) {
		case '=':
			return op(tGte, 2)
		case '>':
			return op(tDesc, 2)
		}
		return op(tGt, 1)
	case '"':
		return l.lexString(start)
	case '`':
		end := strings.IndexByte(src[start+1:], '`')
		if end < 0 {
			return l.fail(start, len(src), "unterminated raw string")
		}
		l.off = start + 1 + end + 1
		return token{kind: tString, pos: start, end: l.off, text: src[start+1 : start+1+end]}
	case '.':
		if isDigit(at(1)) {
			return l.lexNumber(start)
		}
		l.off = start + 1
		return l.lexAttrName(start, ScopeNone, false)
	}
	if isDigit(c) {
		return l.lexNumber(start)
	}
	if isIdentStart(c) {
		i := start + 1
		for i < len(src) && isIdentChar(src[i]) {
			i++
		}
		word := src[start:i]
		if i < len(src) && src[i] == '.' {
			if word == "parent" {
				l.off = i + 1
				scope := ScopeNone
				// parent.span.x, parent.resource.x, ...; else parent.x.
				j := l.off
				for j < len(src) && isIdentChar(src[j]) {
					j++
				}
				if s, ok := scopeByName[src[l.off:j]]; ok && j < len(src) && src[j] == '.' {
					scope = s
					l.off = j + 1
				}
				return l.lexAttrName(start, scope, true)
			}
			if s, ok := scopeByName[word]; ok {
				l.off = i + 1
				return l.lexAttrName(start, s, false)
			}
			if word == "trace" {
				return l.fail(start, i+1, `the trace scope has no attributes, only intrinsics such as trace:duration`)
			}
		}
		if i < len(src) && src[i] == ':' {
			if _, ok := scopeByName[word]; ok || word == "trace" || word == "resource" {
				j := i + 1
				for j < len(src) && isIdentChar(src[j]) {
					j++
				}
				name := src[start:j]
				in, ok := intrinsicByName[name]
				if !ok || !strings.Contains(name, ":") {
					return l.fail(start, j, "unknown intrinsic %q", name)
				}
				l.off = j
				return token{kind: tIntrinsic, pos: start, end: j, text: name, intr: in}
			}
		}
		l.off = i
		return token{kind: tIdent, pos: start, end: i, text: word}
	}
	r, n := utf8.DecodeRuneInString(src[start:])
	if r == utf8.RuneError && n <= 1 {
		return l.fail(start, start+1, "invalid UTF-8 byte 0x%02x", src[start])
	}
	return l.fail(start, start+n, "unexpected character %q", r)
}

// lexString lexes a double-quoted string with Go escapes.
func (l *lexer) lexString(start int) token {
	src := l.src
	i := start + 1
	for i < len(src) {
		switch src[i] {
		case '\\':
			i += 2
			continue
		case '"':
			raw := src[start : i+1]
			s, err := strconv.Unquote(raw)
			if err != nil {
				return l.fail(start, i+1, "invalid escape sequence in string")
			}
			l.off = i + 1
			return token{kind: tString, pos: start, end: i + 1, text: s}
		case '\n':
			return l.fail(start, i, "unterminated string: newline before the closing quote")
		}
		i++
	}
	return l.fail(start, len(src), "unterminated string")
}

// lexAttrName lexes the name of an attribute after its scope prefix, at
// l.off: segments of attribute characters separated by dots, where a
// segment may be a double-quoted string (with \" and \\ escapes only).
func (l *lexer) lexAttrName(start int, scope Scope, parent bool) token {
	src := l.src
	var b strings.Builder
	i := l.off
	for {
		if i < len(src) && src[i] == '"' {
			j := i + 1
			for {
				if j >= len(src) {
					return l.fail(i, len(src), "unterminated quoted attribute name")
				}
				if src[j] == '\\' {
					if j+1 < len(src) && (src[j+1] == '"' || src[j+1] == '\\') {
						b.WriteByte(src[j+1])
						j += 2
						continue
					}
					return l.fail(j, min(j+2, len(src)), `invalid escape in quoted attribute name: only \" and \\ are allowed`)
				}
				if src[j] == '"' {
					break
				}
				b.WriteByte(src[j])
				j++
			}
			i = j + 1
		} else {
			segStart := i
			for i < len(src) {
				r, n := utf8.DecodeRuneInString(src[i:])
				if r == utf8.RuneError && n <= 1 || !isAttrRune(r) {
					break
				}
				i += n
			}
			if i == segStart {
				if b.Len() == 0 {
					return l.fail(start, max(i, start+1), "missing attribute name after %q", src[start:i])
				}
				return l.fail(start, i, "attribute name %q ends with \".\"", src[start:i])
			}
			b.WriteString(src[segStart:i])
		}
		if i < len(src) && src[i] == '.' {
			b.WriteByte('.')
			i++
			continue
		}
		break
	}
	l.off = i
	name := b.String()
	if name == "" {
		return l.fail(start, i, "empty attribute name")
	}
	return token{kind: tAttribute, pos: start, end: i, text: name, scope: scope, parent: parent}
}

// lexNumber lexes an int, a float (1.5, .5, 1e3) or a duration (1.5s, 2h,
// 500us, 500µs, 1h30m).
func (l *lexer) lexNumber(start int) token {
	src := l.src
	i := start
	digits := func() {
		for i < len(src) && isDigit(src[i]) {
			i++
		}
	}
	digits()
	isFloat := false
	if i < len(src) && src[i] == '.' && i+1 < len(src) && isDigit(src[i+1]) {
		isFloat = true
		i++
		digits()
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && isDigit(src[j]) {
			isFloat = true
			i = j
			digits()
			if i < len(src) && (isIdentChar(src[i]) || src[i] >= utf8.RuneSelf) {
				return l.fail(start, i+1, "invalid number %q", src[start:i+1])
			}
			l.off = i
			return l.floatToken(start, i)
		}
	}
	if i < len(src) && (isIdentStart(src[i]) || src[i] >= utf8.RuneSelf) {
		// A duration: number unit [number unit]...
		for {
			u := i
			for i < len(src) && (isIdentStart(src[i]) || src[i] >= utf8.RuneSelf) {
				_, n := utf8.DecodeRuneInString(src[i:])
				i += n
			}
			switch src[u:i] {
			case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
			default:
				return l.fail(start, i, "invalid duration %q: units are ns, us, ms, s, m and h", src[start:i])
			}
			if i < len(src) && isDigit(src[i]) {
				digits()
				if i < len(src) && src[i] == '.' && i+1 < len(src) && isDigit(src[i+1]) {
					i++
					digits()
				}
				if i >= len(src) || !(isIdentStart(src[i]) || src[i] >= utf8.RuneSelf) {
					return l.fail(start, i, "invalid duration %q: a number needs a unit", src[start:i])
				}
				continue
			}
			break
		}
		if i < len(src) && (isDigit(src[i]) || src[i] == '_') {
			return l.fail(start, i+1, "invalid duration %q", src[start:i+1])
		}
		d, err := time.ParseDuration(src[start:i])
		if err != nil {
			return l.fail(start, i, "invalid duration %q: out of range", src[start:i])
		}
		l.off = i
		return token{kind: tDuration, pos: start, end: i, text: src[start:i], dur: int64(d)}
	}
	l.off = i
	if isFloat {
		return l.floatToken(start, i)
	}
	return token{kind: tInt, pos: start, end: i, text: src[start:i]}
}

func (l *lexer) floatToken(start, end int) token {
	if _, err := strconv.ParseFloat(l.src[start:end], 64); err != nil {
		return l.fail(start, end, "number %s is out of range", l.src[start:end])
	}
	return token{kind: tFloat, pos: start, end: end, text: l.src[start:end]}
}
