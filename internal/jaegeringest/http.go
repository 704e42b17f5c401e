package jaegeringest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// postTraces serves POST /api/traces, Jaeger's collector HTTP endpoint:
// a jaeger.Batch in Thrift's binary protocol (optionally gzipped). It
// answers 202 once the spans are durable, 400 for a body that is not a
// batch, 413 over the size limits, 415 for another content type or
// encoding, 429 (with Retry-After) on overload and 503 when the store
// failed.
func (r *Receiver) postTraces(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	defer func() { r.m.duration.WithLabelValues(protoThrift).Observe(time.Since(start).Seconds()) }()

	if h := req.Header.Get("Content-Type"); h != "" {
		ct, _, err := mime.ParseMediaType(h)
		if err != nil || ct != "application/x-thrift" && ct != "application/vnd.apache.thrift.binary" {
			r.refuseHTTP(w, http.StatusUnsupportedMediaType, outcomeUnsupported, reasonUnsupportedMedia,
				fmt.Sprintf("unsupported content type %q: send application/x-thrift (a binary-protocol jaeger.Batch)", h))
			return
		}
	}
	if req.ContentLength > r.cfg.MaxRequestBytes {
		r.refuseHTTP(w, http.StatusRequestEntityTooLarge, outcomeTooLarge, reasonTooLarge,
			fmt.Sprintf("request body of %d bytes exceeds the limit of %d", req.ContentLength, r.cfg.MaxRequestBytes))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.cfg.MaxRequestBytes))
	r.m.bytes.WithLabelValues(protoThrift).Add(float64(len(raw)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			r.refuseHTTP(w, http.StatusRequestEntityTooLarge, outcomeTooLarge, reasonTooLarge,
				fmt.Sprintf("request body exceeds the limit of %d bytes", r.cfg.MaxRequestBytes))
			return
		}
		r.refuseHTTP(w, http.StatusBadRequest, outcomeBadRequest, reasonMalformed, "read request body: "+err.Error())
		return
	}
	body := raw
	switch ce := req.Header.Get("Content-Encoding"); ce {
	case "", "identity":
	case "gzip":
		body, err = ingest.Decompress("gzip", raw, nil, r.cfg.MaxDecompressedBytes)
		if errors.Is(err, ingest.ErrTooLarge) {
			r.refuseHTTP(w, http.StatusRequestEntityTooLarge, outcomeTooLarge, reasonTooLarge,
				fmt.Sprintf("decompressed request exceeds the limit of %d bytes", r.cfg.MaxDecompressedBytes))
			return
		}
		if err != nil {
			r.refuseHTTP(w, http.StatusBadRequest, outcomeBadRequest, reasonMalformed, "decompress gzip body: "+err.Error())
			return
		}
	default:
		r.refuseHTTP(w, http.StatusUnsupportedMediaType, outcomeUnsupported, reasonUnsupportedMedia,
			fmt.Sprintf("unsupported content encoding %q: send gzip or none", ce))
		return
	}
	n := int64(len(body))
	if !r.reserve(n) {
		r.refused(protoThrift, outcomeOverloaded, reasonOverloaded)
		r.writeRetry(w, http.StatusTooManyRequests, "too many bytes in flight, retry later")
		return
	}
	defer r.unreserve(n)

	var b span.Batch
	st, err := decodeThrift(body, r.cfg.Limits, &b)
	if err != nil {
		r.decodeFailed(protoThrift, err)
		writeText(w, http.StatusBadRequest, "decode Thrift jaeger.Batch: "+err.Error())
		return
	}
	switch o, msg := r.store(req.Context(), protoThrift, &b, st); o {
	case outcomeOK:
		w.WriteHeader(http.StatusAccepted)
	case outcomeOverloaded:
		r.writeRetry(w, http.StatusTooManyRequests, msg)
	default:
		r.writeRetry(w, http.StatusServiceUnavailable, msg)
	}
}

func (r *Receiver) refuseHTTP(w http.ResponseWriter, code int, o outcome, reason, msg string) {
	r.refused(protoThrift, o, reason)
	writeText(w, code, msg)
}

func (r *Receiver) writeRetry(w http.ResponseWriter, code int, msg string) {
	secs := int(r.cfg.RetryAfter.Round(time.Second) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeText(w, code, msg)
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
func decodeThrift(body []byte, lim otlp.Limits, b *span.Batch) (stats, error) {
	tb, err := readThriftBatch(body)
	if err != nil {
		return stats{}, err
	}
	return mapThrift(tb, lim, b)
}

// mapThrift maps a Thrift batch onto b. Times are microseconds in Thrift.
func mapThrift(tb *jaeger.Batch, lim otlp.Limits, b *span.Batch) (stats, error) {
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
	return bl.st, nil
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
