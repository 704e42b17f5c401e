package tempo

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// intrinsics are the intrinsic fields offered in the intrinsic scope, as
// TraceQL spells them.
var intrinsics = []string{
	"duration", "event:name", "event:timeSinceStart", "instrumentation:name", "instrumentation:version",
	"kind", "link:spanID", "link:traceID", "name", "nestedSetLeft", "nestedSetParent", "nestedSetRight",
	"rootName", "rootServiceName", "span:childCount", "span:duration", "span:id", "span:kind", "span:name",
	"span:parentID", "span:status", "span:statusMessage", "status", "statusMessage", "trace:duration",
	"trace:id", "trace:rootName", "trace:rootService", "traceDuration",
}

type tagScope struct {
	name  string
	scope search.Scope
}

// tagScopes maps Tempo's attribute scopes to clew's, in answer order.
var tagScopes = []tagScope{
	{"resource", search.ScopeResource}, {"span", search.ScopeSpan}, {"event", search.ScopeEvent},
	{"link", search.ScopeLink}, {"instrumentation", search.ScopeScope},
}

type tagsMetrics struct {
	InspectedBytes string `json:"inspectedBytes"`
}

// tagsV1 serves GET /api/search/tags: the attribute names of spans and
// resources, sorted.
func (a *API) tagsV1(w http.ResponseWriter, r *http.Request) {
	var names []string
	for _, sc := range []search.Scope{search.ScopeSpan, search.ScopeResource} {
		keys, err := a.db.AttrKeys(r.Context(), sc)
		if err != nil {
			a.writeQueryError(w, r, err)
			return
		}
		names = append(names, keys...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	writeJSON(w, http.StatusOK, map[string]any{"tagNames": nonNil(names), "metrics": tagsMetrics{"0"}})
}

type scopeTags struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// tagsV2 serves GET /api/v2/search/tags?scope=: attribute names per scope
// (resource, span, event, link, instrumentation) and the intrinsic scope.
// Empty scopes other than intrinsic are left out. q, start, end and limit
// are accepted and not used.
func (a *API) tagsV2(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("scope")
	if want == "all" {
		want = ""
	}
	if want != "" && want != "intrinsic" && !slices.ContainsFunc(tagScopes, func(s tagScope) bool { return s.name == want }) {
		writeError(w, http.StatusBadRequest, "scope "+want+": want resource, span, event, link, instrumentation, intrinsic or all")
		return
	}
	out := []scopeTags{}
	for _, s := range tagScopes {
		if want != "" && want != s.name {
			continue
		}
		keys, err := a.db.AttrKeys(r.Context(), s.scope)
		if err != nil {
			a.writeQueryError(w, r, err)
			return
		}
		if len(keys) > 0 {
			out = append(out, scopeTags{Name: s.name, Tags: keys})
		}
	}
	if want == "" || want == "intrinsic" {
		out = append(out, scopeTags{Name: "intrinsic", Tags: intrinsics})
	}
	writeJSON(w, http.StatusOK, map[string]any{"scopes": out, "metrics": tagsMetrics{"0"}})
}

// tagValue is one value of the v2 answer; the value is always a string.
type tagValue struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// tagValuesV1 serves GET /api/search/tag/{tag}/values: the distinct values
// of an attribute of spans or resources, as strings.
func (a *API) tagValuesV1(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query(), "limit", 1000, 1, 10000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tag := unescapeTag(r.PathValue("tag"))
	vals, err := a.attrValues(r, []search.Scope{search.ScopeSpan, search.ScopeResource}, tag, limit)
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		out = append(out, v.Value)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tagValues": out, "metrics": tagsMetrics{"0"}})
}

// tagValuesV2 serves GET /api/v2/search/tag/{tag}/values, tag being
// "scope.name", ".name" (span and resource) or an intrinsic. Grafana
// URL-encodes the tag twice; it is decoded until no escape is left. The
// filter q is accepted and not applied: the answer lists every value (a
// superset).
func (a *API) tagValuesV2(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query(), "limit", 1000, 1, 10000)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tag := unescapeTag(r.PathValue("tag"))
	var vals []tagValue
	keyword := func(names ...string) {
		for _, n := range names {
			vals = append(vals, tagValue{Type: "keyword", Value: n})
		}
	}
	strs := func(names []string, err error) error {
		for _, n := range names {
			vals = append(vals, tagValue{Type: "string", Value: n})
		}
		return err
	}
	switch tag {
	case "status", "span:status":
		keyword("error", "ok", "unset")
	case "kind", "span:kind":
		keyword("client", "consumer", "internal", "producer", "server", "unspecified")
	case "name", "span:name", "rootName", "trace:rootName":
		err = strs(a.db.SpanNames(r.Context(), ""))
	case "rootServiceName", "trace:rootService":
		err = strs(a.db.Services(r.Context()))
	default:
		scope, key, ok := splitTag(tag)
		if !ok {
			if slices.Contains(intrinsics, tag) {
				break // an intrinsic whose values clew does not index
			}
			writeError(w, http.StatusBadRequest, "tag "+tag+": want a scoped attribute such as resource.service.name or span.http.method, or an intrinsic")
			return
		}
		vals, err = a.attrValues(r, scope, key, limit)
	}
	if err != nil {
		a.writeQueryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tagValues": nonNil(vals[:min(len(vals), limit)]), "metrics": tagsMetrics{"0"}})
}

// attrValues lists the distinct values of key in the scopes, sorted and
// without duplicates, with Tempo's type names.
func (a *API) attrValues(r *http.Request, scopes []search.Scope, key string, limit int) ([]tagValue, error) {
	var out []tagValue
	for _, sc := range scopes {
		vs, err := a.db.AttrValues(r.Context(), sc, key, limit)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			out = append(out, tagValue{Type: typeName(v.Type), Value: v.AsString()})
		}
	}
	slices.SortFunc(out, func(x, y tagValue) int {
		if c := strings.Compare(x.Value, y.Value); c != 0 {
			return c
		}
		return strings.Compare(x.Type, y.Type)
	})
	out = slices.Compact(out)
	return out[:min(len(out), limit)], nil
}

func typeName(t span.ValueType) string {
	switch t {
	case span.TypeInt:
		return "int"
	case span.TypeDouble:
		return "float"
	case span.TypeBool:
		return "bool"
	}
	return "string"
}

// splitTag splits "resource.service.name" into its scopes and key; an
// unscoped ".name" looks at spans and resources.
func splitTag(tag string) ([]search.Scope, string, bool) {
	if rest, ok := strings.CutPrefix(tag, "."); ok && rest != "" {
		return []search.Scope{search.ScopeSpan, search.ScopeResource}, rest, true
	}
	scope, key, ok := strings.Cut(tag, ".")
	if !ok || key == "" {
		return nil, "", false
	}
	for _, s := range tagScopes {
		if s.name == scope {
			return []search.Scope{s.scope}, key, true
		}
	}
	return nil, "", false
}

// unescapeTag undoes the extra URL encoding Grafana applies to tag names
// (the mux has already undone one level).
func unescapeTag(s string) string {
	for range 2 {
		if !strings.Contains(s, "%") {
			break
		}
		u, err := url.PathUnescape(s)
		if err != nil {
			break
		}
		s = u
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
