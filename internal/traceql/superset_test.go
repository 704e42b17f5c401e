package traceql

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/search"
)

// describe renders a search.Query compactly for the tests.
func describe(q search.Query) string {
	var f []string
	if q.SpanName != "" {
		f = append(f, "name="+q.SpanName)
	}
	if q.Service != "" {
		f = append(f, "service="+q.Service)
	}
	if len(q.Statuses) > 0 {
		f = append(f, fmt.Sprint("status", q.Statuses))
	}
	if len(q.Kinds) > 0 {
		f = append(f, fmt.Sprint("kind", q.Kinds))
	}
	if q.MinDuration > 0 {
		f = append(f, fmt.Sprint("min=", q.MinDuration))
	}
	if q.MaxDuration > 0 {
		f = append(f, fmt.Sprint("max=", q.MaxDuration))
	}
	for _, c := range q.Conds {
		s := c.Scope.String() + "." + c.Key + c.Op.String()
		if c.Op != search.OpExists {
			s += c.Value.AsString()
		}
		if !c.Elems {
			s += "!elems"
		}
		f = append(f, s)
	}
	return "{" + strings.Join(f, " ") + "}"
}

func TestPushdown(t *testing.T) {
	for _, tc := range []struct{ q, want string }{
		{`{ }`, `{}`},
		{`{ true }`, `{}`},
		{`{ false }`, ``},
		{`{ span.x > 5 }`, `{span.x>5}`},
		{`{ 5 < span.x }`, `{span.x>5}`},
		{`{ span.x != "a" && resource.y =~ "b.*" }`, `{span.x!=a resource.y=~b.*}`},
		{`{ .x = 1.5 }`, `{any.x=1.5}`},
		{`{ span.d >= 2ms }`, `{span.d>=2000000}`},
		{`{ span.flag }`, `{span.flag=true}`},
		{`{ span.flag = false }`, `{span.flag=false}`},
		{`{ span.x != nil }`, `{span.xexists}`},
		{`{ span.x = nil }`, `{}`},
		{`{ event.e = "x" && link.l = 1 && instrumentation.i = true }`, `{event.e=x link.l=1 scope.i=true}`},
		{`{ parent.span.x = 1 }`, `{}`},
		{`{ resource.service.name = "a" && name = "b" }`, `{name=b resource.service.name=a}`},
		{`{ name = "a" && name = "b" }`, ``},
		{`{ name = "a" || name = "b" }`, `{name=a} {name=b}`},
		{`{ name = "a" || span.x = nil }`, `{}`},
		{`{ name != "a" }`, `{}`},
		{`{ status = error && kind = server }`, `{status[error] kind[server]}`},
		{`{ status = ok && status = error }`, ``},
		{`{ status != ok }`, `{status[unset error]}`},
		{`{ duration > 100ms && duration <= 2s }`, `{min=100000001 max=2000000000}`},
		{`{ duration < 1ns }`, `{}`},
		{`{ duration > 2s && duration < 1s }`, ``},
		{`{ .a = 1 && (.b = 2 || .c = 3) }`, `{any.a=1 any.b=2} {any.a=1 any.c=3}`},
		{`{ (.a = 1 || .b = 2) && (.c = 3 || .d = 4) }`, `{any.a=1 any.c=3} {any.a=1 any.d=4} {any.b=2 any.c=3} {any.b=2 any.d=4}`},
		{`{ !(.a = 1) && .b = 2 }`, `{any.b=2}`},
		{`{ .a + 1 > 2 && name = "n" }`, `{name=n}`},
		{`{ (status = error || status = ok) && false }`, ``},
		{`{ (name = "a" || name = "b") && name = "a" }`, `{name=a}`},
		{`{ span:childCount > 1 && trace:duration > 1s }`, `{}`},
	} {
		t.Run(tc.q, func(t *testing.T) {
			fs := parseOK(t, tc.q).Filters()
			var parts []string
			for _, q := range fs[0].Pushdown() {
				parts = append(parts, describe(q))
			}
			if got := strings.Join(parts, " "); got != tc.want {
				t.Errorf("Pushdown(%q) = %s, want %s", tc.q, got, tc.want)
			}
		})
	}
}

func TestPushdownBounded(t *testing.T) {
	// Ten alternatives exceed MaxPushdownAlternatives: no split.
	q := `{ ` + strings.Repeat(`.a = 1 || `, 9) + `.a = 2 }`
	if got := parseOK(t, q).Filters()[0].Pushdown(); len(got) != 1 || !Unconstrained(&got[0]) {
		t.Errorf("Pushdown(%q) = %v, want one unconstrained query", q, got)
	}
	// A product over the bound keeps one side.
	q = `{ (.a = 1 || .a = 2 || .a = 3) && (.b = 1 || .b = 2 || .b = 3) }`
	if got := parseOK(t, q).Filters()[0].Pushdown(); len(got) != 3 {
		t.Errorf("Pushdown(%q) gave %d queries, want 3", q, len(got))
	}
}
