package jaeger

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/jaegertracing/jaeger-idl/model/v1"

	"github.com/clew-dev/clew/internal/span"
)

// toModelSpans converts one trace's spans to Jaeger's api_v2 model, the
// protobuf twin of the UI model: it goes through toUITrace, so tags,
// logs, references and processes are the legacy API's, and takes times
// from the spans themselves at nanosecond precision (the UI model has
// microseconds). Each span carries its process, as Jaeger's storage
// returns them.
func toModelSpans(id span.TraceID, spans []span.Span, raw bool) []model.Span {
	ui := toUITrace(id, spans, raw)
	procs := make(map[string]*model.Process, len(ui.Processes))
	for pid, p := range ui.Processes {
		procs[pid] = &model.Process{ServiceName: p.ServiceName, Tags: toModelKVs(p.Tags)}
	}
	out := make([]model.Span, len(spans))
	for i := range spans {
		s, u := &spans[i], &ui.Spans[i]
		m := model.Span{
			TraceID:       toModelTraceID(s.TraceID),
			SpanID:        toModelSpanID(s.SpanID),
			OperationName: u.OperationName,
			Flags:         model.Flags(u.Flags),
			StartTime:     time.Unix(0, int64(s.StartUnixNano)).UTC(),
			Duration:      time.Duration(s.Duration()),
			Tags:          toModelKVs(u.Tags),
			Process:       procs[u.ProcessID],
		}
		if len(u.References) > 0 {
			m.References = make([]model.SpanRef, len(u.References))
			for k, r := range u.References {
				m.References[k] = toModelRef(r)
			}
		}
		if len(u.Logs) > 0 {
			m.Logs = make([]model.Log, len(u.Logs))
			for k, l := range u.Logs {
				// Logs are the span's events, in order.
				m.Logs[k] = model.Log{Timestamp: time.Unix(0, int64(s.Events[k].TimeUnixNano)).UTC(), Fields: toModelKVs(l.Fields)}
			}
		}
		out[i] = m
	}
	return out
}

func toModelKVs(kvs []KeyValue) []model.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]model.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = toModelKV(kv)
	}
	return out
}

// toModelKV converts a UI tag (see toKeyValue) to the protobuf one.
func toModelKV(kv KeyValue) model.KeyValue {
	switch v := kv.Value.(type) {
	case bool:
		return model.Bool(kv.Key, v)
	case int64:
		return model.Int64(kv.Key, v)
	case float64:
		return model.Float64(kv.Key, v)
	case []byte:
		return model.Binary(kv.Key, v)
	case string:
		if kv.Type == "float64" { // NaN or an infinity, kept as text in JSON
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return model.Float64(kv.Key, f)
			}
		}
		return model.String(kv.Key, v)
	}
	return model.String(kv.Key, "")
}

func toModelRef(r Reference) model.SpanRef {
	ref := model.SpanRef{RefType: model.SpanRefType_CHILD_OF}
	if r.RefType == refFollowsFrom {
		ref.RefType = model.SpanRefType_FOLLOWS_FROM
	}
	if id, err := span.ParseTraceID(r.TraceID); err == nil {
		ref.TraceID = toModelTraceID(id)
	}
	if id, err := span.ParseSpanID(r.SpanID); err == nil {
		ref.SpanID = toModelSpanID(id)
	}
	return ref
}

func toModelTraceID(id span.TraceID) model.TraceID {
	return model.NewTraceID(binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(id[8:]))
}

func fromModelTraceID(id model.TraceID) span.TraceID {
	var out span.TraceID
	binary.BigEndian.PutUint64(out[:8], id.High)
	binary.BigEndian.PutUint64(out[8:], id.Low)
	return out
}

func toModelSpanID(id span.SpanID) model.SpanID {
	return model.NewSpanID(binary.BigEndian.Uint64(id[:]))
}
