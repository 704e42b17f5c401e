package traceql

import (
	"errors"
	"strings"
	"testing"
)

// invalidQueries are rejected queries. at is the text the error must
// start at (its first occurrence in q; "" means the end of the query) and
// msg a substring of the message.
var invalidQueries = []struct{ q, at, msg string }{
	// Lexical errors.
	{`{ .a = "x }`, `"x }`, "unterminated string"},
	{"{ .a = `x }", "`x }", "unterminated raw string"},
	{`{ .a = "\q" }`, `"\q"`, "invalid escape"},
	{`{ .a = 1 } & { .b }`, `& `, `unexpected "&"`},
	{`{ .a == 1 }`, `==`, `compares with "="`},
	{`{ .a = 5x }`, `5x`, "invalid duration"},
	{`{ duration > 1d }`, `1d`, "invalid duration"},
	{`{ duration > 1s5 }`, `1s5`, "a number needs a unit"},
	{`{ .a = 1e999 }`, `1e999`, "out of range"},
	{`{ .a = 99999999999999999999 }`, `9999`, "integer 99999999999999999999 is out of range"},
	{`{ .a = -9223372036854775809 }`, `-9`, "out of range"},
	{`{ duration > 9999999h }`, `9999999h`, "out of range"},
	{`{ .a = 1 } # comment`, `#`, "unexpected character"},
	{"{ .a = \xff }", "\xff", "invalid UTF-8"},
	{`{ span."unterminated = 1 }`, `"unterminated`, "unterminated quoted attribute name"},
	{`{ span."a\n" = 1 }`, `\n`, `only \" and \\`},
	{`{ span. = 1 }`, `span.`, "missing attribute name"},
	{`{ . = 1 }`, `.`, "missing attribute name"},
	{`{ span.a. = 1 }`, `span.a.`, `ends with "."`},
	{`{ trace.foo = 1 }`, `trace.`, "trace scope has no attributes"},
	{`{ span:nope = 1 }`, `span:nope`, `unknown intrinsic "span:nope"`},
	{`{ resource:name = "x" }`, `resource:name`, "unknown intrinsic"},
	// Syntax errors.
	{``, ``, `unexpected end of query, expected a spanset filter`},
	{`{`, ``, "unexpected end of query"},
	{`{ .a = 1`, ``, `expected "}" or an operator`},
	{`{ duration = }`, `}`, `unexpected "}" after operator "=", expected a value: string, number, duration, true, false, nil, status or kind`},
	{`{ .a = 1 &&  }`, `}`, `after operator "&&"`},
	{`{ .a = 1 } &&`, ``, `after operator "&&", expected a spanset filter`},
	{`{ .a = 1 } )`, `)`, `unexpected ")"`},
	{`{ .a 1 }`, `1 }`, `expected "}" or an operator`},
	{`{ foo = 1 }`, `foo`, `unknown identifier "foo"`},
	{`{ .a = 1 = 2 }`, `= 2`, "cannot be chained"},
	{`{ .a > 1 < 2 }`, `< 2`, "cannot be chained"},
	{`{ (.a = 1 }`, `}`, `expected ")"`},
	{`{ .a = 1 } | `, ``, "unexpected end of query"},
	{`{ .a = 1 } | frobnicate()`, `frobnicate`, "unknown pipeline stage"},
	{`{ .a } | count()`, `count()`, "is not a filter"},
	{`{ .a } | count(.a) > 1`, `.a)`, "count() takes no arguments"},
	{`{ .a } | avg() > 1`, `)`, "avg() needs a field"},
	{`{ .a } | count() > 1 && count() < 3`, `&&`, "wrap the pipeline in parentheses"},
	{`{ .a } | count() > span.a`, `span.a`, "is a field"},
	{`{ count() > 1 }`, `count`, "allowed only as a pipeline stage"},
	{`{ .a } | by()`, `)`, "by() needs at least one field"},
	{`{ .a } | select(1)`, `1)`, "select() takes attributes and intrinsics"},
	{`{ .a } | coalesce(.a)`, `.a)`, "coalesce() takes no arguments"},
	{`rate()`, `rate`, "a query starts with a spanset filter"},
	{`{ } | rate(duration)`, `duration`, "rate() takes no arguments"},
	{`{ } | quantile_over_time(duration)`, `)`, `"," and a quantile`},
	{`{ } | quantile_over_time(duration, 1.5)`, `1.5`, "outside [0, 1]"},
	{`{ } | quantile_over_time(duration, span.a)`, `span.a`, "a quantile must be a number"},
	{`{ } | min_over_time()`, `)`, "min_over_time() needs a field"},
	{`{ } | compare(status = error)`, `status`, "a spanset filter: compare("},
	{`{ } | compare({ status = error }, 10, 5)`, `)`, "takes both start and end or neither"},
	{`{ } | topk(0)`, `0`, "needs a positive integer"},
	{`{ } | topk(x)`, `x`, "a positive integer"},
	{`{ } | rate() > span.a`, `span.a`, "threshold must be a number"},
	{`{} with ()`, `)`, "with() needs at least one hint"},
	{`{} with (most_recent)`, `)`, `"=" after the hint name`},
	{`{} with (most_recent=.a)`, `.a`, "must be a literal"},
	{`{} with (a=1) extra`, `extra`, "end of query"},
	{`{ .a } | count() > 1 && { .b }`, `&&`, "wrap the pipeline in parentheses"},
	// Type errors.
	{`{ duration > 1 }`, `duration`, "cannot compare a duration with an int"},
	{`{ status = server }`, `status`, "cannot compare a status with a kind"},
	{`{ kind = error }`, `kind`, "cannot compare a kind with a status"},
	{`{ span.a = error }`, `span.a`, "an attribute never holds a status"},
	{`{ name = 1 }`, `name`, "cannot compare a string with an int"},
	{`{ status > ok }`, `status`, "have no order"},
	{`{ .a > true }`, `.a`, "have no order"},
	{`{ duration =~ "1.*" }`, `duration`, "=~ applies to strings"},
	{`{ .a =~ 1 }`, `1 }`, "must be a string holding a regular expression"},
	{`{ .a =~ .b }`, `.b`, "must be a string holding a regular expression"},
	{`{ .a =~ "(" }`, `"("`, "invalid regular expression"},
	{`{ .a > nil }`, `.a`, "nil compares only with = and !="},
	{`{ nil = 1 }`, `nil`, "nil compares with a field"},
	{`{ "a" + 1 > 2 }`, `"a"`, "needs numbers or durations, not a string"},
	{`{ 1s + 1 > duration }`, `1s`, "cannot mix a duration with a plain number"},
	{`{ duration ^ 2 > 1s }`, `duration`, "does not apply to durations"},
	{`{ -"a" = .b }`, `-`, "unary minus needs a number"},
	{`{ 1 + 2 }`, `1`, "expected a condition"},
	{`{ name }`, `name`, "name is not a condition"},
	{`{ duration && .a }`, `duration`, "duration is not a condition"},
	{`{ !"x" }`, `"x"`, "expected a condition"},
	{`{ } | avg(name) > 1`, `name`, "avg() needs a number or a duration, not a string"},
	{`{ } | avg(1) > 1`, `avg(1)`, "aggregates a field"},
	{`{ } | count() > 1s`, `count()`, "cannot compare a duration with an int"},
	{`{ } | avg(duration) > 20`, `avg`, "cannot compare a duration with an int"},
	{`{ } | 1 > 0`, `1 > 0`, "compares an aggregate"},
	{`{ } | by(1)`, `1)`, "by() takes fields"},
	{`{ } | histogram_over_time(name)`, `name`, "needs a number or a duration"},
	{`{ } | sum_over_time(2)`, `2)`, "aggregates a field"},
	{`{ } | rate() by (1)`, `1)`, "by() takes fields"},
	{`{ } | topk(10)`, `topk`, "follows a metrics function"},
	{`{ } | rate() | count() > 1`, `count`, "only topk() or bottomk() may follow"},
	{`{ } | rate() | count_over_time()`, `count_over_time`, "only topk() or bottomk()"},
	{`({ } | rate()) && { }`, `rate`, "must end the query"},
	{`{ } | compare({ duration > 1 })`, `duration`, "cannot compare a duration"},
	{`{ } | compare({ .a }, 0)`, `compare`, "positive number of values"},
	{`{ } | compare({ .a }, 10, 5, 1)`, `compare`, "0 <= start < end"},
	{`{} with (most_recent=1)`, `1)`, "most_recent takes true or false"},
	{`{} with (sample=2)`, `2)`, "takes a fraction"},
	{`{} with (span_sample=true)`, `true`, "takes a fraction"},
	{`{} with (exemplars="x")`, `"x"`, "exemplars takes"},
	{`{} with (sample=true, sample=false)`, `sample=false`, "given twice"},
}

func TestInvalid(t *testing.T) {
	if len(invalidQueries) < 60 {
		t.Fatalf("only %d invalid queries", len(invalidQueries))
	}
	for _, tc := range invalidQueries {
		t.Run(tc.q, func(t *testing.T) {
			_, err := Parse(tc.q)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, want a *ParseError", tc.q, err)
			}
			want := len(tc.q)
			if tc.at != "" {
				want = strings.Index(tc.q, tc.at)
				if want < 0 {
					t.Fatalf("bad test: %q not in %q", tc.at, tc.q)
				}
			}
			if pe.Pos != want {
				t.Errorf("Parse(%q) error at %d (%q), want %d: %v", tc.q, pe.Pos, tc.q[pe.Pos:], want, err)
			}
			if pe.End < pe.Pos || pe.End > len(tc.q) {
				t.Errorf("Parse(%q) error range [%d, %d) outside the input", tc.q, pe.Pos, pe.End)
			}
			if !strings.Contains(pe.Msg, tc.msg) {
				t.Errorf("Parse(%q) = %q, want it to contain %q", tc.q, pe.Msg, tc.msg)
			}
		})
	}
}
