// Package block is clew's columnar span storage: the in-memory Builder that
// holds the head, the immutable on-disk block format written by Write and
// Compact, and the Reader that answers trace-by-ID and search queries on a
// block. Builder and Reader answer the same query methods with the same
// semantics as search.Query.MatchSpan. The byte layout is documented in
// docs/format/block.md.
package block

import (
	"github.com/clew-dev/clew/internal/storage"

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
// the presence of meta.json marks a complete block. It is the storage
// contract's BlockMeta (the fields and JSON names of docs/format/block.md):
// the writer sets Version, the times, counts, Size and the name lists; the
// caller sets ID, Tenant, Level, CreatedAt and WALSegmentEnd (Compact sets
// the maximum of its inputs' CreatedAt and WALSegmentEnd, and Sources).
type Meta = storage.BlockMeta

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
