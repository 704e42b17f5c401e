// Package logs is clew's log data model: the Record it stores for every
// OTLP log record, the decoding of OTLP ExportLogsServiceRequests
// (protobuf and JSON, with the OpenTelemetry pdata module) under the same
// limits and string rule as spans (otlp.Limits, otlp.CleanString), the
// compact binary encoding of a batch that the write-ahead log keeps, the
// search query and its reference semantics (Match), and the read contract
// (Reader) between the log store and the query front ends.
package logs

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/clew-dev/clew/internal/otlp"
)

// Value types of an attribute or body (KV.Type, Record.BodyType).
const (
	TypeString = 's' // the value is the text
	TypeInt    = 'i' // decimal integer
	TypeDouble = 'f' // a float in Go's 'g' format
	TypeBool   = 'b' // true or false
	TypeJSON   = 'j' // a map or an array, as JSON
)

// KV is an attribute: a key and its value as text, with its OTLP type.
type KV struct {
	Key   string
	Value string
	Type  byte
}

// MaxSeverity is the highest OTLP severity number (FATAL4).
const MaxSeverity = 24

// Record is one log record as clew keeps it. Strings are owned (not
// aliased into a request buffer). Resource is shared by the records of one
// resource and must not be modified.
type Record struct {
	// Time is the record's time (time_unix_nano), or its observed time
	// when the sender set none, in Unix nanoseconds.
	Time int64
	// Observed is observed_time_unix_nano (0: not set).
	Observed     int64
	Severity     uint8 // 0 (unspecified) to 24; unknown numbers become 0
	SeverityText string
	Body         string
	BodyType     byte
	TraceID      [16]byte // all zero: none
	SpanID       [8]byte  // all zero: none
	Flags        uint32
	// Service is the resource's service.name ("" when it has none).
	Service  string
	Scope    string
	Attrs    []KV
	Resource []KV
}

// HasTrace reports whether the record carries a trace ID.
func (r *Record) HasTrace() bool { return r.TraceID != [16]byte{} }

// HasSpan reports whether the record carries a span ID.
func (r *Record) HasSpan() bool { return r.SpanID != [8]byte{} }

// Attr returns the value of the record attribute key, else the resource
// attribute key.
func (r *Record) Attr(key string) (string, bool) {
	for _, a := range r.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	for _, a := range r.Resource {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// MemSize estimates the heap bytes r holds (Resource not counted: shared).
func (r *Record) MemSize() int {
	n := 128 + len(r.SeverityText) + len(r.Body) + len(r.Scope)
	for _, a := range r.Attrs {
		n += 40 + len(a.Key) + len(a.Value)
	}
	return n
}

// Batch is the records of one request.
type Batch struct {
	Records []Record
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Records)
	b.Records = b.Records[:0]
}

// Result says what the limits changed while decoding a request.
type Result struct {
	Records int
	// Truncated counts bodies, values and keys cut to a limit;
	// TruncatedNames the part that were keys or names.
	Truncated, TruncatedNames int
	// InvalidUTF8 counts strings repaired with U+FFFD.
	InvalidUTF8 int
	// DroppedAttrs counts attributes over MaxAttrsPerSpan.
	DroppedAttrs int
	// UnknownSeverity counts severity numbers outside 0..24, stored as 0.
	UnknownSeverity int
}

// OTLP returns the counts in an otlp.Result, for the receivers' metrics.
func (r Result) OTLP() otlp.Result {
	return otlp.Result{Spans: r.Records, Truncated: r.Truncated, TruncatedNames: r.TruncatedNames,
		InvalidUTF8: r.InvalidUTF8, DroppedAttrs: r.DroppedAttrs,
		Modified: r.Truncated+r.InvalidUTF8+r.DroppedAttrs+r.UnknownSeverity > 0}
}

// ErrTooManyRecords is returned by Decode for a request of more records
// than Limits.MaxSpansPerRequest; it wraps otlp.ErrTooManySpans so that the
// receivers refuse it as too_many_spans.
var ErrTooManyRecords = fmt.Errorf("too many log records in one request: %w", otlp.ErrTooManySpans)

// Decoder decodes OTLP ExportLogsServiceRequests under limits. It is not
// safe for concurrent use; receivers pool them.
type Decoder struct {
	lim otlp.Limits
	res Result
}

// NewDecoder returns a decoder applying lim (zero fields take defaults).
func NewDecoder(lim otlp.Limits) *Decoder { return &Decoder{lim: lim.WithDefaults()} }

// DecodeProto decodes a protobuf ExportLogsServiceRequest, appending its
// records to b.
func (d *Decoder) DecodeProto(body []byte, b *Batch) (Result, error) {
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		return Result{}, fmt.Errorf("decode protobuf: %w", err)
	}
	return d.decode(req.Logs(), b)
}

// DecodeJSON decodes an OTLP/JSON ExportLogsServiceRequest, appending its
// records to b.
func (d *Decoder) DecodeJSON(body []byte, b *Batch) (Result, error) {
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalJSON(body); err != nil {
		return Result{}, fmt.Errorf("decode JSON: %w", err)
	}
	return d.decode(req.Logs(), b)
}

func (d *Decoder) decode(ld plog.Logs, b *Batch) (Result, error) {
	if n := ld.LogRecordCount(); n > d.lim.MaxSpansPerRequest {
		return Result{}, fmt.Errorf("%w: %d, the limit is %d", ErrTooManyRecords, n, d.lim.MaxSpansPerRequest)
	}
	d.res = Result{}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := d.attrs(rl.Resource().Attributes())
		service := ""
		for _, a := range res {
			if a.Key == "service.name" {
				service = a.Value
			}
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scope := d.name(sl.Scope().Name())
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				rec := Record{
					Time:     int64(lr.Timestamp()),
					Observed: int64(lr.ObservedTimestamp()),
					TraceID:  lr.TraceID(),
					SpanID:   lr.SpanID(),
					Flags:    uint32(lr.Flags()),
					Service:  service,
					Scope:    scope,
					Resource: res,
				}
				if rec.Time == 0 {
					rec.Time = rec.Observed
				}
				sev := lr.SeverityNumber()
				if sev < 0 || sev > MaxSeverity {
					d.res.UnknownSeverity++
					sev = 0
				}
				rec.Severity = uint8(sev)
				rec.SeverityText = d.name(lr.SeverityText())
				rec.Body, rec.BodyType = d.value(lr.Body())
				rec.Attrs = d.attrs(lr.Attributes())
				b.Records = append(b.Records, rec)
				d.res.Records++
			}
		}
	}
	return d.res, nil
}

func (d *Decoder) clean(s string, max int, name bool) string {
	s, f := otlp.CleanString(s, max)
	if f&otlp.FixRepaired != 0 {
		d.res.InvalidUTF8++
	}
	if f&otlp.FixTruncated != 0 {
		d.res.Truncated++
		if name {
			d.res.TruncatedNames++
		}
	}
	return s
}

func (d *Decoder) name(s string) string { return d.clean(s, d.lim.MaxNameBytes, true) }

func (d *Decoder) value(v pcommon.Value) (string, byte) {
	t := byte(TypeString)
	var s string
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s = v.Str()
	case pcommon.ValueTypeInt:
		s, t = v.AsString(), TypeInt
	case pcommon.ValueTypeDouble:
		s, t = v.AsString(), TypeDouble
	case pcommon.ValueTypeBool:
		s, t = v.AsString(), TypeBool
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		s, t = v.AsString(), TypeJSON
	case pcommon.ValueTypeBytes:
		s = v.AsString() // base64
	}
	if t == TypeJSON && len(s) > d.lim.MaxAttrValueBytes {
		// Cut JSON would no longer parse: keep it as text.
		t = TypeString
	}
	return d.clean(s, d.lim.MaxAttrValueBytes, false), t
}

func (d *Decoder) attrs(m pcommon.Map) []KV {
	if m.Len() == 0 {
		return nil
	}
	out := make([]KV, 0, min(m.Len(), d.lim.MaxAttrsPerSpan))
	m.Range(func(k string, v pcommon.Value) bool {
		if len(out) >= d.lim.MaxAttrsPerSpan {
			d.res.DroppedAttrs++
			return true
		}
		val, t := d.value(v)
		out = append(out, KV{Key: d.name(k), Value: val, Type: t})
		return true
	})
	return out
}
