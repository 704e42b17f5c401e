package storage

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// TenantSeparator joins the tenants of a read across tenants in one
// tenant value, as Tempo's X-Scope-OrgID "a|b" does.
const TenantSeparator = "|"

// SplitTenants returns the tenants a tenant value names: one, or several
// for "a|b" (duplicates and empty names left out, order kept).
func SplitTenants(t string) []string {
	if !strings.Contains(t, TenantSeparator) {
		return []string{t}
	}
	var out []string
	for _, p := range strings.Split(t, TenantSeparator) {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Federate returns a Reader that answers each call over several tenants
// of r, calling r once per tenant (with the tenant in the context) and
// merging the answers as one tenant holding all their traces would give
// them: hits in result order, a trace found in several tenants once (its
// spans merged, as FindTrace merges the places of one store), sorted
// unions of names and values. Search's Total is the sum of the tenants'
// totals, which counts a trace ID present in two tenants twice.
func Federate(r Reader, tenants []string) Reader {
	return federated{r: r, tenants: tenants}
}

type federated struct {
	r       Reader
	tenants []string
}

// search merges the tenants' pages; page says they come from SearchPage,
// whose Total is a lower bound when more pages follow.
func (f federated) search(ctx context.Context, limit int, page bool, call func(context.Context) (SearchResult, error)) (SearchResult, error) {
	if limit <= 0 {
		limit = 20
	}
	var out SearchResult
	byID := map[span.TraceID]int{}
	more := false
	for _, t := range f.tenants {
		res, err := call(WithTenant(ctx, t))
		if err != nil {
			return SearchResult{}, err
		}
		out.Total += res.Total
		out.TotalIsLowerBound = out.TotalIsLowerBound || res.TotalIsLowerBound
		more = more || res.Next != nil
		for _, h := range res.Hits {
			if i, ok := byID[h.TraceID]; ok {
				out.Hits[i].Start = min(out.Hits[i].Start, h.Start)
				out.Hits[i].End = max(out.Hits[i].End, h.End)
				continue
			}
			byID[h.TraceID] = len(out.Hits)
			out.Hits = append(out.Hits, h)
		}
	}
	slices.SortFunc(out.Hits, func(a, b Hit) int {
		if Less(a, b) {
			return -1
		}
		if Less(b, a) {
			return 1
		}
		return 0
	})
	if len(out.Hits) > limit {
		out.Hits, more = out.Hits[:limit], true
	}
	if more && len(out.Hits) > 0 {
		last := out.Hits[len(out.Hits)-1]
		out.Next = &Cursor{Start: last.Start, TraceID: last.TraceID}
		if page {
			out.TotalIsLowerBound = true
			out.Total = max(out.Total, len(out.Hits)+1)
		}
	}
	return out, nil
}

func (f federated) Search(ctx context.Context, q *search.Query, limit int, after *Cursor) (SearchResult, error) {
	return f.search(ctx, limit, false, func(ctx context.Context) (SearchResult, error) { return f.r.Search(ctx, q, limit, after) })
}

func (f federated) SearchPage(ctx context.Context, q *search.Query, limit int, after *Cursor) (SearchResult, error) {
	return f.search(ctx, limit, true, func(ctx context.Context) (SearchResult, error) { return f.r.SearchPage(ctx, q, limit, after) })
}

func (f federated) FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error) {
	var out *span.Batch
	for _, t := range f.tenants {
		b, ok, err := f.r.FindTrace(WithTenant(ctx, t), id)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			continue
		}
		if out == nil {
			out = b
			continue
		}
		out.Resources = append(out.Resources, b.Resources...)
		out.Scopes = append(out.Scopes, b.Scopes...)
		out.Spans = append(out.Spans, b.Spans...)
	}
	if out == nil {
		return nil, false, nil
	}
	SortTrace(out)
	return out, true, nil
}

func (f federated) ScanSpans(ctx context.Context, q *search.Query, cols Columns, fn func(*span.Span) bool) error {
	var stopped atomic.Bool
	for _, t := range f.tenants {
		err := f.r.ScanSpans(WithTenant(ctx, t), q, cols, func(s *span.Span) bool {
			if stopped.Load() {
				return false
			}
			if !fn(s) {
				stopped.Store(true)
				return false
			}
			return true
		})
		if err != nil || stopped.Load() {
			return err
		}
	}
	return nil
}

// union merges the sorted lists each tenant gives.
func (f federated) union(ctx context.Context, list func(context.Context) ([]string, error)) ([]string, error) {
	var out []string
	for _, t := range f.tenants {
		l, err := list(WithTenant(ctx, t))
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func (f federated) Services(ctx context.Context) ([]string, error) {
	return f.union(ctx, f.r.Services)
}

func (f federated) SpanNames(ctx context.Context, service string) ([]string, error) {
	return f.union(ctx, func(ctx context.Context) ([]string, error) { return f.r.SpanNames(ctx, service) })
}

func (f federated) AttrKeys(ctx context.Context, scope search.Scope) ([]string, error) {
	return f.union(ctx, func(ctx context.Context) ([]string, error) { return f.r.AttrKeys(ctx, scope) })
}

func (f federated) AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error) {
	var out []span.Value
	for _, t := range f.tenants {
		l, err := f.r.AttrValues(WithTenant(ctx, t), scope, key, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	slices.SortFunc(out, CompareValues)
	out = slices.CompactFunc(out, func(a, b span.Value) bool { return CompareValues(a, b) == 0 })
	if limit <= 0 {
		return nil, nil
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// CompareValues is the order of Reader.AttrValues: by string form, then
// type.
func CompareValues(a, b span.Value) int {
	if c := cmp.Compare(a.AsString(), b.AsString()); c != 0 {
		return c
	}
	return cmp.Compare(a.Type, b.Type)
}

// SortTrace sorts the spans of a trace by start time, then span ID, and
// removes exact duplicates (a span sent twice, or held in two places):
// the order and uniqueness Reader.FindTrace promises.
func SortTrace(b *span.Batch) {
	slices.SortStableFunc(b.Spans, func(x, y span.Span) int {
		if c := cmp.Compare(x.StartUnixNano, y.StartUnixNano); c != 0 {
			return c
		}
		return bytes.Compare(x.SpanID[:], y.SpanID[:])
	})
	out := b.Spans[:0]
	for i := range b.Spans {
		s := &b.Spans[i]
		if k := len(out) - 1; k >= 0 && out[k].SpanID == s.SpanID && out[k].StartUnixNano == s.StartUnixNano &&
			out[k].EndUnixNano == s.EndUnixNano && out[k].Name == s.Name {
			continue
		}
		out = append(out, *s)
	}
	clear(b.Spans[len(out):])
	b.Spans = out
}
