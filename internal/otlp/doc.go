// Package otlp decodes and encodes OTLP trace export requests, in protobuf
// and in OTLP/JSON, to and from span.Batch. The codecs are hand-written: no
// reflection, no generated code, no intermediate object tree.
//
// # Aliasing contract
//
// Decoder.DecodeProto and Decoder.DecodeJSON append spans whose strings may
// alias the input buffer (via unsafe.String) and whose Attrs, Events, Links,
// Resource and Scope come from arenas inside the Decoder. A decoded batch is
// therefore valid only while the input buffer is unchanged and until the
// Decoder decodes again; whoever keeps spans beyond that clones them. A
// Decoder is not safe for concurrent use: pool them, and call Reset before
// putting one back so that it stops referencing the last request.
//
// # Validation
//
// Request errors (*DecodeError, the caller answers 400 or INVALID_ARGUMENT):
// malformed protobuf or JSON, attribute values nested deeper than 32 levels,
// more than Limits.MaxSpansPerRequest spans (wrapping ErrTooManySpans), and in
// JSON an ID that is not hex or not 16/8 bytes long (base64 IDs included).
//
// Span rejections (partial success, counted by Reason in Result): an all-zero
// trace or span ID in either codec, and in protobuf a trace, span or parent
// span ID of the wrong length. A protobuf link with a wrong-length ID is
// dropped and counted as a dropped link.
//
// Limits (counted in Result, which then has Modified set): every string
// goes through CleanString, the rule every clew receiver shares: invalid
// UTF-8 is replaced with U+FFFD (counted in Result.InvalidUTF8), then a
// string over its limit is truncated on a UTF-8 boundary (Result.Truncated);
// attributes, events, links and array or key-value list elements over a
// limit are dropped. Bytes values are not UTF-8 and are only cut.
// Timestamps are kept as sent.
//
// # Protobuf mapping
//
// Unknown fields, fields with an unexpected wire type and deprecated groups
// are skipped. For a non-repeated field or a oneof that appears more than
// once the last occurrence wins, including embedded messages (which are
// replaced, not merged). string_value_strindex and key_strindex (used by
// profiles' dictionaries) are ignored. Enum values outside the known range
// become 0.
//
// # JSON mapping
//
// OTLP/JSON is the proto3 JSON mapping with OTLP's exceptions. Keys are
// lowerCamelCase on output; the original proto names are accepted on input.
// Trace and span IDs are hex (either case on input, lowercase on output).
// 64-bit integers are decimal strings on output and strings or numbers on
// input, parsed exactly without float64 ("1.0" and "15e2" are accepted when
// whole). 32-bit integers are numbers. Enums are integers on output; names
// such as "SPAN_KIND_SERVER" are accepted on input. Doubles are numbers, with
// "NaN", "Infinity" and "-Infinity" as strings; quoted numbers are accepted.
// Bytes are base64 (standard or URL alphabet, padded or not, on input).
// Fields with zero values are omitted on output, and null means absent on
// input. Unknown keys are ignored at any level.
//
// # Encoding
//
// MarshalProto, AppendSpansProto and AppendJSON group consecutive spans that
// share a Resource pointer into one ResourceSpans, and consecutive spans of
// those that share a Scope pointer into one ScopeSpans, keeping span order.
package otlp
