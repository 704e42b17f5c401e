package storage

import (
	"context"
	"errors"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// ErrQueryRefused is wrapped by the error of a Reader call that a limit
// of the tenant refuses (max_search_duration): the caller answers 400 /
// INVALID_ARGUMENT with the error's text, which names the limit.
var ErrQueryRefused = errors.New("query refused by a limit of the tenant")

// RangeBounder is implemented by a Reader whose tenants may have a
// longest search range (max_search_duration). A front end that splits a
// request's range into several Reader calls (the TraceQL engine) asks it
// once for the whole range: BoundRange returns the range to search, start
// and end in Unix nanoseconds (0: open), with open ends bounded, or an
// error wrapping ErrQueryRefused when the range is longer than the limit.
type RangeBounder interface {
	BoundRange(ctx context.Context, start, end uint64) (uint64, uint64, error)
}

// BoundRange is r's BoundRange when r is a RangeBounder, else the range
// as it is. A Reader that wraps another implements RangeBounder with it
// over the wrapped one.
func BoundRange(ctx context.Context, r Reader, start, end uint64) (uint64, uint64, error) {
	if b, ok := r.(RangeBounder); ok {
		return b.BoundRange(ctx, start, end)
	}
	return start, end, nil
}

// Reader answers the queries of one tenant's traces: the contract every
// query front end (the native API, TraceQL, Tempo, Jaeger, Zipkin, the
// analyses, the detector) reads through, and that a storage
// implementation keeps. The store (one process: blocks, sealed heads and
// the growing head) implements it today; a cluster querier merging the
// blocks of a bucket with the heads of ingesters over the network is
// meant to implement it the same way.
//
// Tenant. The tenant a call reads is carried in ctx (WithTenant,
// TenantFrom); a call without one reads the default tenant. An
// implementation that does not hold the tenant asked for returns an error
// wrapping ErrUnknownTenant.
//
// Concurrency. A Reader is safe for concurrent use by any number of
// goroutines. Each call reads a consistent snapshot of what was
// acknowledged before it started (later appends may or may not be seen);
// compaction and retention running meanwhile neither lose nor double a
// result of a call already started, though a span sent twice and not yet
// compacted may be read twice where stated.
//
// Cancellation. Every method honours ctx: when ctx is done before the call
// starts, or while it runs, the call returns an error wrapping ctx.Err()
// (errors.Is(err, context.Canceled) or context.DeadlineExceeded) and no
// result, except that work which had already completed may return its
// complete result. An implementation may bound each call by a timeout of
// its own (the store's query_timeout); the error then wraps
// context.DeadlineExceeded.
//
// Partial results. A call either succeeds with a complete answer or fails
// with an error and a zero result: no method returns a partial page, a
// partial trace or a partial list together with a nil error. The only
// approximate figure is SearchPage's Total, which says so
// (TotalIsLowerBound). ScanSpans is a stream: spans yielded before it
// fails were real, but the stream is then incomplete, which the error
// reports.
//
// Ownership. Everything returned (pages, their Hits, cursors, batches,
// lists, values) is the caller's: it may keep and modify it, and the
// Reader keeps no reference to it. Only the *span.Span that ScanSpans
// passes to its callback is borrowed (see there). The Reader does not
// modify the query, the cursor or the Columns passed in.
type Reader interface {
	// Search finds the traces with at least one span matching q (q must be
	// compiled) and returns the page of up to limit traces that follows
	// the cursor after (nil: the first page), in result order (Less:
	// newest first by trace start, then by trace ID), with Total the exact
	// number of distinct matching traces over every page (after does not
	// change it). A limit of zero or less asks for 20.
	//
	// A trace matched by spans in several places (blocks, heads) is one
	// hit, its Start the minimum and End the maximum over all of them.
	// Paging with each page's Next as the next cursor lists every matching
	// trace exactly once, with no duplicate and no gap, as long as no
	// matching span is added meanwhile; Next is nil on the last page.
	// Memory is bounded by the page and the number of sources read, not by
	// the number of matches.
	Search(ctx context.Context, q *search.Query, limit int, after *Cursor) (SearchResult, error)

	// SearchPage returns the page Search returns (the same traces in the
	// same order with the same Start and the same Next) without counting
	// every match, which lets it stop reading once no unread data can hold
	// a trace of the page. Its Total is not the number of matches: it is
	// at least len(Hits), plus one with TotalIsLowerBound set when Next is
	// set, and never more than Search's Total. End covers the data read,
	// which may be less than Search reads (End ≤ Search's End). Use it
	// when paging without a total (the TraceQL engine does).
	SearchPage(ctx context.Context, q *search.Query, limit int, after *Cursor) (SearchResult, error)

	// FindTrace returns every span of the trace, from every place that
	// holds some, sorted by start time (then span ID), with exact
	// duplicates (a span sent twice) removed. It reports false, with a nil
	// batch and a nil error, when nothing holds the trace. The batch is
	// the caller's, resources and scopes included.
	FindTrace(ctx context.Context, id span.TraceID) (*span.Batch, bool, error)

	// ScanSpans streams every stored span that matches q (q must be
	// compiled) to fn, filling in only the fields cols asks for (see
	// Columns), without loading traces. Spans come in no defined order
	// across traces, and fn may be called concurrently from several
	// goroutines: it must be safe for that. A span stored twice (sent
	// twice and not yet compacted) may be yielded twice.
	//
	// The span passed to fn, and everything it references (attributes,
	// events, links, its resource and scope), is valid only during that
	// call and must not be modified: fn copies what it keeps. fn returns
	// false to stop the scan; ScanSpans then returns nil soon after (fn
	// may still be called by scans already under way until they notice).
	// On cancellation or failure ScanSpans returns the error, and the
	// spans fn saw are an incomplete stream.
	ScanSpans(ctx context.Context, q *search.Query, cols Columns, fn func(*span.Span) bool) error

	// Services lists the distinct service names of the stored spans,
	// sorted. It is empty, not an error, when nothing is stored.
	Services(ctx context.Context) ([]string, error)

	// SpanNames lists the distinct span names of one service, or of all
	// when service is "", sorted.
	SpanNames(ctx context.Context, service string) ([]string, error)

	// AttrKeys lists the distinct attribute keys of a scope (ScopeAny:
	// of every scope), sorted.
	AttrKeys(ctx context.Context, scope search.Scope) ([]string, error)

	// AttrValues lists up to limit distinct values of an attribute
	// (distinct by type and string form), sorted by their string form and
	// then type. When more than limit exist, the values of the newest data
	// are preferred; a limit of zero or less returns none.
	AttrValues(ctx context.Context, scope search.Scope, key string, limit int) ([]span.Value, error)
}

// Admin runs one tenant's storage maintenance on demand, for the admin
// endpoints and tests; the background loops run the same work on their
// own. It is separate from Reader so that only what administers storage
// can do so: a query front end takes a Reader. Its methods are safe for
// concurrent use with each other and with every Reader method.
type Admin interface {
	// Flush seals what has been appended so far and returns once it, and
	// everything sealed before it, is written as blocks (or ctx is done,
	// with an error wrapping ctx.Err()).
	Flush(ctx context.Context) error
	// Compact merges blocks until nothing is left to merge. Failures are
	// logged and counted by the implementation, not returned; it returns
	// early when ctx is done.
	Compact(ctx context.Context)
	// RunRetention deletes what is past the retention (by age and by disk
	// size) now. Failures are logged and counted, not returned.
	RunRetention(ctx context.Context)
	// Stats returns a snapshot of the storage of the tenant ctx carries;
	// the caller owns it.
	Stats(ctx context.Context) Stats
}
