// Package block is clew's columnar span storage: the in-memory Builder that
// holds the head, the immutable on-disk block format written by Write and
// Compact, and the Reader that answers trace-by-ID and search queries on a
// block. Builder and Reader answer the same query methods with the same
// semantics as search.Query.MatchSpan. The byte layout is documented in
// docs/format/block.md.
package block

import (
	"encoding/json"
	"errors"
	"fmt"
)

// FormatVersion is the version of the block format written by this package.
// Readers refuse blocks of any other version.
const FormatVersion = 3

// Object names inside a block directory.
const (
	MetaName  = "meta.json"
	DataName  = "data"
	IndexName = "index"
)

// Meta describes a block. It is stored as meta.json in the block directory;
// the presence of meta.json marks a complete block.
type Meta struct {
	// Version is the block format version (FormatVersion).
	Version int `json:"version"`
	// ID is the block id, sortable by creation time; set by the caller.
	ID string `json:"id"`
	// Tenant is set by the caller.
	Tenant string `json:"tenant"`
	// Level is the compaction level (0 = flushed head); set by the caller.
	Level int `json:"level"`
	// MinTime and MaxTime bound the span start times, in Unix nanoseconds.
	MinTime uint64 `json:"minTime"`
	MaxTime uint64 `json:"maxTime"`
	// CreatedAt is set by the caller, in Unix nanoseconds; Compact sets the
	// maximum of its inputs.
	CreatedAt int64 `json:"createdAt"`
	// WALSegmentEnd is set by the caller; Compact sets the maximum of its
	// inputs.
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
	// AttrKeys lists the attribute keys per scope name ("span", "resource",
	// "scope", "event", "link"), sorted.
	AttrKeys map[string][]string `json:"attrKeys"`
	// Sources lists the ids of the blocks compacted into this one.
	Sources []string `json:"sources,omitempty"`
}

// ErrUnknownVersion is wrapped by errors for blocks written in a format
// version this package does not read.
var ErrUnknownVersion = errors.New("unknown block format version")

// CorruptionError reports malformed block data: the object (or section) and
// byte offset where decoding failed.
type CorruptionError struct {
	Object string
	Offset int64
	Err    error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt block object %s at offset %d: %v", e.Object, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

func marshalMeta(m *Meta) ([]byte, error) {
	return json.MarshalIndent(m, "", "  ")
}

func unmarshalMeta(b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("decode %s: %w", MetaName, err)
	}
	if m.Version != FormatVersion {
		return Meta{}, fmt.Errorf("read %s: version %d: %w (this reader knows version %d)", MetaName, m.Version, ErrUnknownVersion, FormatVersion)
	}
	return m, nil
}
