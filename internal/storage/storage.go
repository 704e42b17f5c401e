// Package storage is the read contract between clew's storage and every
// query front end: the result types a query needs (hits, pages, cursors,
// span-column selections, stats) and the interfaces that serve them
// (Reader for queries, Admin for maintenance), with the contract each
// method keeps written on it. It is a leaf: it imports only span and
// search, so a front end that reads traces imports it and never the
// concrete store, and another implementation (a cluster querier merging
// bucket blocks with ingesters' heads over the network) can stand in the
// store's place. Its types are JSON-safe so that they can cross a network.
package storage

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/clew-dev/clew/internal/span"
)

// Hit summarises one trace that matched a search: its ID and the span
// time range the source that reported it holds. Start is the minimum span
// start and End the maximum span end, in Unix nanoseconds, over the spans
// of the trace that source holds (a Reader merges the reports of several
// sources: see Reader.Search).
//
// Its JSON form is {"traceID":"<32 hex digits>","start":"<ns>","end":"<ns>"}:
// the times are strings, so that no JSON reader rounds them to a float.
type Hit struct {
	TraceID    span.TraceID
	Start, End uint64
}

// Less reports whether a comes before b in result order: newest first (by
// Start descending), then by trace ID ascending. Every page a Reader
// returns is sorted by it, and cursors are positions in it.
func Less(a, b Hit) bool {
	if a.Start != b.Start {
		return a.Start > b.Start
	}
	return bytes.Compare(a.TraceID[:], b.TraceID[:]) < 0
}

// Cursor marks the last trace of a result page: the next page starts
// strictly after it in result order (see Less). It is a position, not a
// snapshot: traces stored after the first page was read appear on a later
// page only if they sort after the cursor.
//
// Its JSON form is {"start":"<ns>","traceID":"<32 hex digits>"}.
type Cursor struct {
	Start   uint64
	TraceID span.TraceID
}

// After reports whether h comes strictly after the cursor in result
// order, that is whether h belongs to a page after it.
func (c Cursor) After(h Hit) bool { return Less(Hit{Start: c.Start, TraceID: c.TraceID}, h) }

// SearchResult is one page of matching traces.
type SearchResult struct {
	// Hits are in result order (Less): newest first, by trace start time
	// descending, then trace ID ascending. There are at most the limit
	// asked for, each trace once.
	Hits []Hit `json:"hits"`
	// Total is the number of distinct matching traces: exact from Search
	// (over all pages, not only those after the cursor); from SearchPage,
	// a lower bound when TotalIsLowerBound is set.
	Total int `json:"total"`
	// TotalIsLowerBound is set when Total only says "at least".
	TotalIsLowerBound bool `json:"totalIsLowerBound,omitempty"`
	// Next is set when more hits follow this page: pass it as the cursor
	// of the next call. It is nil on the last page.
	Next *Cursor `json:"next,omitempty"`
}

// Columns selects what Reader.ScanSpans fills in of the spans it yields,
// beyond what it always fills in: the trace and span IDs, name, kind,
// status code, flags, start and end times, dropped counts, and the
// resource and instrumentation scope.
type Columns struct {
	// Parent fills in ParentSpanID.
	Parent bool `json:"parent,omitempty"`
	// Text fills in StatusMessage and TraceState.
	Text bool `json:"text,omitempty"`
	// Attrs fills in every span attribute, in the span's order; without
	// it, AttrKeys lists the span attribute keys to fill in (a key's
	// attributes in the span's order, the keys in no particular order).
	Attrs    bool     `json:"attrs,omitempty"`
	AttrKeys []string `json:"attrKeys,omitempty"`
	// Events and Links fill in the span's events and links.
	Events bool `json:"events,omitempty"`
	Links  bool `json:"links,omitempty"`
}

// Stats describes one tenant's storage for status pages and tests. Its
// JSON form (field names as written here) is served by GET /api/v1/status.
type Stats struct {
	// HeadSpans is the number of spans in the growing head.
	HeadSpans int
	// PendingFlushes is the number of sealed heads not yet written as
	// blocks.
	PendingFlushes int
	// Blocks describes the blocks queries read, oldest first; nil when
	// there are none.
	Blocks []BlockMeta
}

// BlockMeta describes one stored block. Its fields and JSON names are
// those of the block's meta.json (docs/format/block.md).
type BlockMeta struct {
	// Version is the block format version.
	Version int `json:"version"`
	// ID is the block id, sortable by creation time.
	ID string `json:"id"`
	// Tenant is the tenant the block belongs to.
	Tenant string `json:"tenant"`
	// Level is the compaction level (0 = flushed head).
	Level int `json:"level"`
	// MinTime and MaxTime bound the span start times, in Unix nanoseconds.
	MinTime uint64 `json:"minTime"`
	MaxTime uint64 `json:"maxTime"`
	// CreatedAt is the creation time, in Unix nanoseconds.
	CreatedAt int64 `json:"createdAt"`
	// WALSegmentEnd is the first write-ahead log segment the block does
	// not cover.
	WALSegmentEnd int `json:"walSegmentEnd"`
	// Spans and Traces count the block's spans and distinct traces.
	Spans  int64 `json:"spans"`
	Traces int64 `json:"traces"`
	// Size is the total size in bytes of the block's objects.
	Size int64 `json:"size"`
	// Services lists the service names, sorted.
	Services []string `json:"services"`
	// SpanNames lists the span names of each service, sorted.
	SpanNames map[string][]string `json:"spanNames"`
	// AttrKeys lists the attribute keys per scope name ("span",
	// "resource", "scope", "event", "link"), sorted.
	AttrKeys map[string][]string `json:"attrKeys"`
	// Sources lists the ids of the blocks compacted into this one.
	Sources []string `json:"sources,omitempty"`
}

type hitJSON struct {
	TraceID string `json:"traceID"`
	Start   uint64 `json:"start,string"`
	End     uint64 `json:"end,string"`
}

// MarshalJSON encodes h with the trace ID in hex and the times as strings.
func (h Hit) MarshalJSON() ([]byte, error) {
	return json.Marshal(hitJSON{TraceID: h.TraceID.String(), Start: h.Start, End: h.End})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (h *Hit) UnmarshalJSON(b []byte) error {
	var j hitJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("hit: %w", err)
	}
	id, err := span.ParseTraceID(j.TraceID)
	if err != nil {
		return fmt.Errorf("hit: trace ID %q: %w", j.TraceID, err)
	}
	*h = Hit{TraceID: id, Start: j.Start, End: j.End}
	return nil
}

type cursorJSON struct {
	Start   uint64 `json:"start,string"`
	TraceID string `json:"traceID"`
}

// MarshalJSON encodes c with the trace ID in hex and the start as a string.
func (c Cursor) MarshalJSON() ([]byte, error) {
	return json.Marshal(cursorJSON{Start: c.Start, TraceID: c.TraceID.String()})
}

// UnmarshalJSON decodes what MarshalJSON encodes. A cursor's trace ID may
// be all zeros (a cursor before every trace of its start time).
func (c *Cursor) UnmarshalJSON(b []byte) error {
	var j cursorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("cursor: %w", err)
	}
	var id span.TraceID
	if j.TraceID != "00000000000000000000000000000000" {
		var err error
		if id, err = span.ParseTraceID(j.TraceID); err != nil {
			return fmt.Errorf("cursor: trace ID %q: %w", j.TraceID, err)
		}
	}
	*c = Cursor{Start: j.Start, TraceID: id}
	return nil
}
