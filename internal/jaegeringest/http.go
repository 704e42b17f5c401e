package jaegeringest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// postTraces serves POST /api/traces, Jaeger's collector HTTP endpoint:
// a jaeger.Batch in Thrift's binary protocol (optionally gzipped). It
// answers 202 once the spans are durable, 400 for a body that is not a
// batch (or whose every span has an invalid ID), 413 over the size limits,
// 415 for another content type or encoding, 429 (with Retry-After) on
// overload and 503 when the store failed.
func (r *Receiver) postTraces(w http.ResponseWriter, req *http.Request) {
	rq := r.core.Begin(ingest.JaegerThriftHTTP)
	defer rq.End()
	if h := req.Header.Get("Content-Type"); h != "" {
		ct, _, err := mime.ParseMediaType(h)
		if err != nil || ct != "application/x-thrift" && ct != "application/vnd.apache.thrift.binary" {
			r.core.WriteText(w, rq.Refuse(ingest.ReasonUnsupportedMedia,
				fmt.Sprintf("unsupported content type %q: send application/x-thrift (a binary-protocol jaeger.Batch)", h)), http.StatusAccepted)
			return
		}
	}
	body, o, ok := rq.ReadHTTP(w, req, "gzip")
	if !ok {
		r.core.WriteText(w, o, http.StatusAccepted)
		return
	}
	var b span.Batch
	st, err := decodeThrift(body, r.lim, &b)
	if err != nil {
		r.core.WriteText(w, rq.DecodeFailed(err, "decode Thrift jaeger.Batch"), http.StatusAccepted)
		return
	}
	r.core.WriteText(w, rq.Store(req.Context(), &b, st, nil), http.StatusAccepted)
}

// writeText answers with a plain-text message, as Jaeger's collector does.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

// boundedProtocol refuses a container that claims more elements than there
// are bytes left (every element takes at least one), so that a few bytes
// cannot make the generated code allocate a huge slice.
type boundedProtocol struct {
	thrift.TProtocol
	buf *thrift.TMemoryBuffer
}

var errContainerSize = errors.New("container longer than the bytes left")

func (p boundedProtocol) ReadListBegin(ctx context.Context) (thrift.TType, int, error) {
	t, n, err := p.TProtocol.ReadListBegin(ctx)
	if err == nil && n > p.buf.Len() {
		return t, 0, errContainerSize
	}
	return t, n, err
}

func (p boundedProtocol) ReadSetBegin(ctx context.Context) (thrift.TType, int, error) {
	t, n, err := p.TProtocol.ReadSetBegin(ctx)
	if err == nil && n > p.buf.Len() {
		return t, 0, errContainerSize
	}
	return t, n, err
}

func (p boundedProtocol) ReadMapBegin(ctx context.Context) (thrift.TType, thrift.TType, int, error) {
	k, v, n, err := p.TProtocol.ReadMapBegin(ctx)
	if err == nil && n > p.buf.Len() {
		return k, v, 0, errContainerSize
	}
	return k, v, n, err
}

// readThriftBatch reads a binary-protocol jaeger.Batch with jaeger-idl's
// generated code. A panic in that code is turned into an error.
func readThriftBatch(body []byte) (tb *jaeger.Batch, err error) {
	defer func() {
		if p := recover(); p != nil {
			tb, err = nil, fmt.Errorf("malformed batch (decoder panicked: %v)", p)
		}
	}()
	buf := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(body)}
	maxSize := int32(math.MaxInt32)
	if len(body) < math.MaxInt32 {
		maxSize = int32(max(len(body), 1))
	}
	conf := &thrift.TConfiguration{MaxMessageSize: maxSize}
	prot := boundedProtocol{TProtocol: thrift.NewTBinaryProtocolConf(buf, conf), buf: buf}
	tb = jaeger.NewBatch()
	if err := tb.Read(context.Background(), prot); err != nil {
		return nil, err
	}
	return tb, nil
}

// decodeThrift decodes a binary-protocol jaeger.Batch and maps it onto b.
func decodeThrift(body []byte, lim otlp.Limits, b *span.Batch) (otlp.Result, error) {
	tb, err := readThriftBatch(body)
	if err != nil {
		return otlp.Result{}, err
	}
	return mapThrift(tb, lim, b)
}

// mapThrift maps a Thrift batch onto b. Times are microseconds in Thrift.
func mapThrift(tb *jaeger.Batch, lim otlp.Limits, b *span.Batch) (otlp.Result, error) {
	bl := newBuilder(lim, b)
	var res *span.Resource
	if tb.Process != nil {
		res = bl.resource(tb.Process.ServiceName, bl.thriftTags(tb.Process.Tags))
	} else {
		res = bl.resource("", nil)
	}
	var j jspan
	for i, ts := range tb.Spans {
		if ts == nil {
			continue
		}
		if err := bl.countSpan(); err != nil {
			return bl.st, err
		}
		if bl.rejectIDs(uint64(ts.TraceIdHigh), uint64(ts.TraceIdLow), uint64(ts.SpanId)) {
			continue
		}
		j.reset()
		j.traceHigh, j.traceLow = uint64(ts.TraceIdHigh), uint64(ts.TraceIdLow)
		j.spanID, j.parentID = uint64(ts.SpanId), uint64(ts.ParentSpanId)
		j.name = ts.OperationName
		if ts.StartTime < 0 || ts.Duration < 0 || uint64(ts.StartTime) > maxMicros || uint64(ts.Duration) > maxMicros-uint64(ts.StartTime) {
			return bl.st, fmt.Errorf("span %d: startTime or duration out of range", i)
		}
		j.startNanos = uint64(ts.StartTime) * 1000
		j.endNano = uint64(ts.StartTime+ts.Duration) * 1000
		for _, ref := range ts.References {
			if ref == nil {
				continue
			}
			j.refs = append(j.refs, jref{childOf: ref.RefType == jaeger.SpanRefType_CHILD_OF,
				traceHigh: uint64(ref.TraceIdHigh), traceLow: uint64(ref.TraceIdLow), spanID: uint64(ref.SpanId)})
		}
		j.tags = bl.thriftTags(ts.Tags)
		for _, l := range ts.Logs {
			if l == nil {
				continue
			}
			if l.Timestamp < 0 || uint64(l.Timestamp) > maxMicros {
				return bl.st, fmt.Errorf("span %d: log timestamp out of range", i)
			}
			j.logs = append(j.logs, jlog{timeNanos: uint64(l.Timestamp) * 1000, fields: bl.thriftTags(l.Fields)})
		}
		j.res = res
		if err := bl.add(&j, i); err != nil {
			return bl.st, err
		}
	}
	return bl.done(), nil
}

// thriftTags converts Thrift tags to attributes. A tag whose value field
// is missing takes the zero value of its type.
func (bl *builder) thriftTags(tags []*jaeger.Tag) []span.Attr {
	if len(tags) == 0 {
		return nil
	}
	out := make([]span.Attr, 0, len(tags))
	for _, t := range tags {
		if t == nil {
			continue
		}
		a := span.Attr{Key: t.Key}
		switch t.VType {
		case jaeger.TagType_STRING:
			a.Value = bl.str(t.GetVStr())
		case jaeger.TagType_BOOL:
			a.Value = span.BoolValue(t.GetVBool())
		case jaeger.TagType_LONG:
			a.Value = span.IntValue(t.GetVLong())
		case jaeger.TagType_DOUBLE:
			a.Value = span.DoubleValue(t.GetVDouble())
		case jaeger.TagType_BINARY:
			a.Value = bl.bytes(t.GetVBinary())
		default:
			a.Value = bl.unknownType(int64(t.VType))
		}
		out = append(out, a)
	}
	return out
}
