package traceql

import (
	"reflect"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

func conditionsOf(t *testing.T, q string) Conditions {
	t.Helper()
	fs := parseOK(t, q).Filters()
	if len(fs) != 1 {
		t.Fatalf("%q has %d filters", q, len(fs))
	}
	return fs[0].Conditions()
}

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		q     string
		conds string
		all   bool
	}{
		{`{ }`, ``, true},
		{`{ resource.service.name = "a" && span.http.status_code >= 500 }`, `resource.service.name = "a"; span.http.status_code >= 500`, true},
		{`{ 500 <= span.http.status_code && true }`, `span.http.status_code >= 500`, true},
		{`{ span.cache.hit }`, `span.cache.hit = true`, true},
		{`{ .a = 1 && (.b = 2 || .c = 3) }`, `.a = 1; .b; .c`, false},
		{`{ !(.a = 1) }`, `.a`, false},
		{`{ .a = .b && name = "x" }`, `.a; .b; name = "x"`, false},
		{`{ .a + 1 > 2 }`, `.a`, false},
		{`{ (.a = 1) = true }`, `.a`, false},
		{`{ false }`, ``, false},
		{`{ span.x != nil && duration > 1s && status = error && kind != client }`, `span.x != nil; duration > 1s; status = error; kind != client`, true},
	} {
		t.Run(tc.q, func(t *testing.T) {
			c := conditionsOf(t, tc.q)
			var parts []string
			for _, cond := range c.Conds {
				parts = append(parts, cond.String())
			}
			if got := strings.Join(parts, "; "); got != tc.conds || c.All != tc.all {
				t.Errorf("Conditions(%q) = %q all=%v, want %q all=%v", tc.q, got, c.All, tc.conds, tc.all)
			}
		})
	}
}

func TestSearchQuery(t *testing.T) {
	for _, tc := range []struct {
		q     string
		want  search.Query
		exact bool
		left  int
	}{
		{`{ resource.service.name = "a" && name = "GET /" }`, search.Query{Service: "a", SpanName: "GET /"}, true, 0},
		{`{ span:status = error && kind = server }`, search.Query{Statuses: []span.StatusCode{span.StatusError}, Kinds: []span.Kind{span.KindServer}}, true, 0},
		{`{ status != ok }`, search.Query{Statuses: []span.StatusCode{span.StatusUnset, span.StatusError}}, true, 0},
		{`{ duration > 100ms && duration <= 2s }`, search.Query{MinDuration: 100e6 + 1, MaxDuration: 2e9}, true, 0},
		{`{ span:duration = 5ms }`, search.Query{MinDuration: 5e6, MaxDuration: 5e6}, true, 0},
		{`{ duration < 1ns }`, search.Query{}, false, 1},
		{`{ duration > 2s && duration < 1s }`, search.Query{}, false, 2},
		{`{ status = ok && status = error }`, search.Query{}, false, 2},
		{`{ span.db.system != nil && resource.k != nil }`, search.Query{Conds: []search.Cond{
			{Scope: search.ScopeSpan, Key: "db.system", Op: search.OpExists},
			{Scope: search.ScopeResource, Key: "k", Op: search.OpExists}}}, true, 0},
		{`{ resource.service.name = "a" && span.http.status_code >= 500 }`, search.Query{Service: "a"}, false, 1},
		{`{ .a != nil }`, search.Query{}, false, 1},
		{`{ trace:duration > 1s }`, search.Query{}, false, 1},
		{`{ name = "a" || name = "b" }`, search.Query{}, false, 1},
	} {
		t.Run(tc.q, func(t *testing.T) {
			tr := conditionsOf(t, tc.q).SearchQuery()
			if !reflect.DeepEqual(tr.Query, tc.want) || tr.Exact != tc.exact || len(tr.Untranslated) != tc.left {
				t.Errorf("SearchQuery(%q) = %+v exact=%v untranslated=%v, want %+v exact=%v with %d untranslated",
					tc.q, tr.Query, tr.Exact, tr.Untranslated, tc.want, tc.exact, tc.left)
			}
			if err := tr.Query.Compile(); err != nil {
				t.Errorf("Compile: %v", err)
			}
		})
	}
}

// TestSearchAgrees evaluates exact translations with search.MatchSpan on
// sample spans, against a hand-written TraceQL reading of each filter.
func TestSearchAgrees(t *testing.T) {
	res := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("a")}}}
	spans := []span.Span{
		{Name: "GET /", Kind: span.KindServer, StatusCode: span.StatusError, StartUnixNano: 0, EndUnixNano: 5e6, Resource: res,
			Attrs: []span.Attr{{Key: "db.system", Value: span.StringValue("pg")}}},
		{Name: "POST", Kind: span.KindClient, StatusCode: span.StatusOK, StartUnixNano: 0, EndUnixNano: 2e9, Resource: &span.Resource{}},
		{Name: "GET /", Kind: span.KindServer, StatusCode: span.StatusUnset, StartUnixNano: 0, EndUnixNano: 100e6, Resource: res},
	}
	for _, tc := range []struct {
		q    string
		want []bool
	}{
		{`{ resource.service.name = "a" && name = "GET /" }`, []bool{true, false, true}},
		{`{ status != ok && kind = server }`, []bool{true, false, true}},
		{`{ duration > 100ms }`, []bool{false, true, false}},
		{`{ duration >= 100ms && duration < 2s }`, []bool{false, false, true}},
		{`{ span.db.system != nil }`, []bool{true, false, false}},
	} {
		tr := conditionsOf(t, tc.q).SearchQuery()
		if !tr.Exact {
			t.Fatalf("%q: not exact: %v", tc.q, tr.Untranslated)
		}
		if err := tr.Query.Compile(); err != nil {
			t.Fatal(err)
		}
		for i := range spans {
			if got := tr.Query.MatchSpan(&spans[i]); got != tc.want[i] {
				t.Errorf("%q on span %d = %v, want %v", tc.q, i, got, tc.want[i])
			}
		}
	}
}

func TestFilters(t *testing.T) {
	q := parseOK(t, `({ .a } | count() > 1) && { .b } | { .c } | compare({ .d })`)
	var got []string
	for _, f := range q.Filters() {
		got = append(got, f.String())
	}
	if want := "{ .a }|{ .b }|{ .c }"; strings.Join(got, "|") != want {
		t.Errorf("Filters = %q, want %q", got, want)
	}
}
