package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/storage"
)

// Protocol names a receiver's wire protocol; it is the protocol label of
// the clew_receiver_* metrics.
type Protocol string

// The protocols clew receives.
const (
	OTLPGRPC         Protocol = "otlp_grpc"
	OTLPHTTP         Protocol = "otlp_http"
	ZipkinJSON       Protocol = "zipkin_json"
	ZipkinProto      Protocol = "zipkin_proto"
	JaegerGRPC       Protocol = "jaeger_grpc"
	JaegerThriftHTTP Protocol = "jaeger_thrift_http"
	OTLPLogsGRPC     Protocol = "otlp_logs_grpc"
	OTLPLogsHTTP     Protocol = "otlp_logs_http"
)

// Protocols lists every span Protocol, in a fixed order.
var Protocols = []Protocol{OTLPGRPC, OTLPHTTP, ZipkinJSON, ZipkinProto, JaegerGRPC, JaegerThriftHTTP}

// LogProtocols lists the protocols of log records, in a fixed order. Their
// requests count in the same clew_receiver_* families; the items they
// store count in clew_receiver_log_records_total.
var LogProtocols = []Protocol{OTLPLogsGRPC, OTLPLogsHTTP}

// partialSuccess reports whether the protocol can tell the sender that
// some spans of an accepted request were rejected (OTLP's partial_success).
func (p Protocol) partialSuccess() bool {
	return p == OTLPGRPC || p == OTLPHTTP || p == OTLPLogsGRPC || p == OTLPLogsHTTP
}

// logs reports whether the protocol carries log records.
func (p Protocol) logs() bool { return p == OTLPLogsGRPC || p == OTLPLogsHTTP }

// Reasons a whole request is refused: the reason label of
// clew_receiver_requests_refused_total.
const (
	ReasonUnsupportedMedia    = "unsupported_media_type" // 415: a content type the protocol does not take
	ReasonUnsupportedEncoding = "unsupported_encoding"   // 415: a content encoding other than gzip/zstd/none
	ReasonTooLarge            = "too_large"              // 413 / RESOURCE_EXHAUSTED (grpc's own size limit)
	ReasonReadError           = "read_error"             // the body could not be read
	ReasonMalformed           = "malformed"              // the body or its compression is not what it claims
	ReasonTooManySpans        = "too_many_spans"         // more than Limits.MaxSpansPerRequest
	ReasonInvalidSpans        = "invalid_spans"          // every span rejected, on a protocol without partial success
	ReasonOverloaded          = "overloaded"             // the in-flight budget is full: 429 / RESOURCE_EXHAUSTED
	ReasonStoreOverloaded     = "store_overloaded"       // the store asked to retry: 429 / RESOURCE_EXHAUSTED
	ReasonStoreError          = "store_error"            // the store failed: 503 / UNAVAILABLE
	ReasonTenantRateLimited   = "tenant_rate_limited"    // the tenant is over its ingestion rate: 429 / RESOURCE_EXHAUSTED
	ReasonCancelled           = "cancelled"              // the sender went away before the spans were durable: 503
)

var requestReasons = []string{ReasonUnsupportedMedia, ReasonUnsupportedEncoding, ReasonTooLarge, ReasonReadError,
	ReasonMalformed, ReasonTooManySpans, ReasonInvalidSpans, ReasonOverloaded, ReasonStoreOverloaded, ReasonStoreError, ReasonCancelled}

// Reasons a span is changed to fit the limits: the reason label of
// clew_receiver_truncated_total. Each counts strings or items.
const (
	TruncNameTooLong   = "name_too_long"     // a name or key cut to MaxNameBytes
	TruncValueTooLong  = "value_too_long"    // a value cut to MaxAttrValueBytes (or an array value cut short)
	TruncInvalidUTF8   = "invalid_utf8"      // invalid UTF-8 replaced with U+FFFD
	TruncAttrDropped   = "attribute_dropped" // an attribute over MaxAttrsPerSpan
	TruncEventDropped  = "event_dropped"     // an event over MaxEventsPerSpan
	TruncLinkDropped   = "link_dropped"      // a link over MaxLinksPerSpan, or with an invalid ID
	TruncSeverity      = "unknown_severity"  // a log record's severity number outside 0..24, stored as 0
	truncReasonsLength = 7
)

var truncReasons = [truncReasonsLength]string{TruncNameTooLong, TruncValueTooLong, TruncInvalidUTF8, TruncAttrDropped, TruncEventDropped, TruncLinkDropped, TruncSeverity}

// Kind classifies an Outcome by what the sender should do.
type Kind uint8

// Outcome kinds. Their String is the outcome label of
// clew_receiver_requests_total.
const (
	// Accepted: the spans kept are durable (some may have been rejected
	// or changed to fit the limits). 200/202, OK.
	Accepted Kind = iota
	// Rejected: a permanent error; sending the same again will fail again.
	// 400 (413, 415 where HTTP has a better code), INVALID_ARGUMENT.
	Rejected
	// Overloaded: retry later. 429 with Retry-After, RESOURCE_EXHAUSTED
	// with RetryInfo.
	Overloaded
	// Unavailable: the store failed; retry later. 503 with Retry-After,
	// UNAVAILABLE with RetryInfo.
	Unavailable
)

func (k Kind) String() string {
	return [...]string{"accepted", "rejected", "overloaded", "unavailable"}[k]
}

// Outcome is the protocol-independent answer to a request.
type Outcome struct {
	Kind Kind
	// Reason is one of the Reason* constants; empty when accepted.
	Reason string
	// Msg says what happened, for the sender.
	Msg string
	// Stored and Rejected count the spans made durable and the spans left
	// out individually (OTLP reports them as partial success).
	Stored, Rejected int
	// Result is what the limits changed, when the request was decoded.
	Result otlp.Result
	// RetryAfter, when set, is the wait to tell the sender instead of the
	// configured retry_after (a tenant's rate limit knows it).
	RetryAfter time.Duration
}

// Limiter holds each tenant's ingest limits (internal/overrides).
type Limiter interface {
	// AllowIngest reports whether a request of spans spans and bytes
	// bytes of tenant may be stored now and, when not, how long to wait.
	AllowIngest(tenant string, spans, bytes int) (retryAfter time.Duration, ok bool)
	// TenantLimits returns the tenant's per-span and per-trace limits.
	TenantLimits(tenant string) TenantLimits
	// AllowTraceSpans counts n more spans of the trace and returns how
	// many of them may be stored (the first ones); only called when
	// TenantLimits sets MaxSpansPerTrace.
	AllowTraceSpans(tenant string, trace span.TraceID, n int) (allowed int)
	// CappedValues counts n attribute values cut to the tenant's
	// MaxAttrValueBytes.
	CappedValues(tenant string, n int)
}

// TenantLimits are the limits a tenant's overrides put on its spans; zero
// is no limit beyond the core's own.
type TenantLimits struct {
	// MaxAttrValueBytes caps string and bytes attribute values, when
	// lower than the core's Limits.MaxAttrValueBytes.
	MaxAttrValueBytes int
	// MaxSpansPerTrace is the most spans of one trace that are stored;
	// the spans beyond it are rejected (max_spans_per_trace).
	MaxSpansPerTrace int
}

// SetLimiter makes every request pass l before it is stored; nil (the
// default) limits nothing. Call it before serving.
func (c *Core) SetLimiter(l Limiter) { c.lim = l }

// retryAfter is the wait told to the sender of o.
func (c *Core) retryAfter(o Outcome) time.Duration {
	if o.RetryAfter > 0 {
		return o.RetryAfter
	}
	return c.cfg.RetryAfter
}

// HTTPStatus is the status code of o on an HTTP receiver; ok is the code
// of an accepted request (200 for OTLP, 202 for Zipkin and Jaeger).
func (o Outcome) HTTPStatus(ok int) int {
	switch o.Kind {
	case Accepted:
		return ok
	case Overloaded:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	}
	switch o.Reason {
	case ReasonTooLarge:
		return http.StatusRequestEntityTooLarge // permanent for OTLP senders: the same request will never fit
	case ReasonUnsupportedMedia, ReasonUnsupportedEncoding:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

// GRPCCode is the gRPC status code of o.
func (o Outcome) GRPCCode() codes.Code {
	switch o.Kind {
	case Accepted:
		return codes.OK
	case Overloaded:
		return codes.ResourceExhausted
	case Unavailable:
		return codes.Unavailable
	}
	if o.Reason == ReasonTooLarge {
		return codes.ResourceExhausted
	}
	return codes.InvalidArgument
}

// Retry reports whether the sender should retry o later.
func (o Outcome) Retry() bool { return o.Kind == Overloaded || o.Kind == Unavailable }

// Core is what every receiver (OTLP, Zipkin, Jaeger) goes through: the
// request size bounds, the process-wide in-flight budget, the per-span
// limits and string rule (applied by each decoder with otlp.CleanString
// and otlp.Limits, and counted from its otlp.Result), appending through
// the Appender, the classification of outcomes and their answers, and one
// family of metrics labelled by protocol. It is safe for concurrent use.
type Core struct {
	cfg    Config
	tenant string
	app    Appender
	log    *slog.Logger
	m      *metrics
	budget *Budget
	lim    Limiter   // nil: no per-tenant rate limit
	bufs   sync.Pool // *[]byte
}

// NewCore returns the core that appends to app under tenant, bounded by
// cfg (zero limits take their defaults). Its metrics are registered on reg
// when it is not nil; a nil logger discards logs.
func NewCore(cfg Config, tenant string, app Appender, logger *slog.Logger, reg prometheus.Registerer) *Core {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	return &Core{cfg: cfg, tenant: tenant, app: app, log: logger.With("component", "ingest"), m: newMetrics(reg), budget: NewBudget(cfg.MaxInflightBytes)}
}

// Config returns the core's limits, with defaults applied.
func (c *Core) Config() Config { return c.cfg }

// Limits returns the per-span limits every decoder applies.
func (c *Core) Limits() otlp.Limits { return c.cfg.Limits }

// Budget returns the in-flight budget every receiver shares.
func (c *Core) Budget() *Budget { return c.budget }

func (c *Core) getBuf() *[]byte {
	if b, ok := c.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (c *Core) putBuf(b *[]byte) {
	if cap(*b) > 8<<20 { // do not keep huge buffers alive
		return
	}
	*b = (*b)[:0]
	c.bufs.Put(b)
}

// Request is one request going through the core. Begin it, feed it the
// body (ReadHTTP or Admit), decode, then Store or Refuse, and End it.
// Every request ends with exactly one Outcome counted.
type Request struct {
	c        *Core
	proto    Protocol
	start    time.Time
	reserved int64
	bufs     []*[]byte
	done     bool
}

// Begin starts a request of protocol p.
func (c *Core) Begin(p Protocol) *Request {
	return &Request{c: c, proto: p, start: time.Now()}
}

// SetProtocol changes the request's protocol, for a receiver that learns
// it from the request (Zipkin's JSON or proto). Call it before counting.
func (r *Request) SetProtocol(p Protocol) { r.proto = p }

// Protocol returns the request's protocol.
func (r *Request) Protocol() Protocol { return r.proto }

// End records the request's duration and releases what it holds: its
// in-flight bytes and its buffers, so that the body ReadHTTP returned must
// not be used afterwards.
func (r *Request) End() {
	r.c.m.duration(r.proto, time.Since(r.start).Seconds())
	if r.reserved > 0 {
		r.c.m.inflight(r.c.budget.Release(r.reserved))
		r.reserved = 0
	}
	for _, b := range r.bufs {
		r.c.putBuf(b)
	}
	r.bufs = nil
}

// Refuse counts the request as refused for reason and returns its outcome.
func (r *Request) Refuse(reason, msg string) Outcome {
	kind := Rejected
	switch reason {
	case ReasonOverloaded, ReasonStoreOverloaded:
		kind = Overloaded
	case ReasonStoreError, ReasonCancelled:
		kind = Unavailable
	}
	o := Outcome{Kind: kind, Reason: reason, Msg: msg}
	r.count(o)
	return o
}

// DecodeFailed refuses the request for a decoding error: too_many_spans
// when err wraps otlp.ErrTooManySpans, else malformed.
func (r *Request) DecodeFailed(err error, what string) Outcome {
	reason := ReasonMalformed
	if errors.Is(err, otlp.ErrTooManySpans) {
		reason = ReasonTooManySpans
	}
	return r.Refuse(reason, what+": "+err.Error())
}

func (r *Request) count(o Outcome) {
	if r.done {
		panic("BUG: ingest request counted twice")
	}
	r.done = true
	r.c.m.request(r.proto, o)
}

// Admit counts n received bytes (as sent) and claims n bytes of the
// in-flight budget for the decompressed body. It returns false, with the
// request refused as overloaded, when the budget is full.
func (r *Request) Admit(received, n int) (Outcome, bool) {
	r.c.m.received(r.proto, received)
	return r.reserve(n)
}

func (r *Request) reserve(n int) (Outcome, bool) {
	cur, ok := r.c.budget.Reserve(int64(n))
	r.c.m.inflight(cur)
	if !ok {
		return r.Refuse(ReasonOverloaded, "too many bytes in flight, retry later"), false
	}
	r.reserved += int64(n)
	return Outcome{}, true
}

// ReadHTTP reads an HTTP request body within the size limits (as sent,
// then decompressed with one of encodings: "gzip", "zstd"), counts its
// bytes and claims its decompressed size of the in-flight budget. On
// failure the request is refused and counted, and ok is false. The body
// stays valid until End.
func (r *Request) ReadHTTP(w http.ResponseWriter, req *http.Request, encodings ...string) (body []byte, o Outcome, ok bool) {
	cfg := &r.c.cfg
	if req.ContentLength > cfg.MaxRequestBytes {
		return nil, r.Refuse(ReasonTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d", req.ContentLength, cfg.MaxRequestBytes)), false
	}
	enc := req.Header.Get("Content-Encoding")
	switch enc {
	case "", "identity":
		enc = ""
	default:
		known := false
		for _, e := range encodings {
			known = known || e == enc
		}
		if !known {
			return nil, r.Refuse(ReasonUnsupportedEncoding, fmt.Sprintf("unsupported content encoding %q: send %s", enc, encodingList(encodings))), false
		}
	}
	buf := r.c.getBuf()
	r.bufs = append(r.bufs, buf)
	raw, err := readAll(*buf, http.MaxBytesReader(w, req.Body, cfg.MaxRequestBytes))
	*buf = raw[:0]
	r.c.m.received(r.proto, len(raw))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, r.Refuse(ReasonTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", cfg.MaxRequestBytes)), false
		}
		return nil, r.Refuse(ReasonReadError, "read request body: "+err.Error()), false
	}
	body = raw
	if enc != "" {
		dec := r.c.getBuf()
		r.bufs = append(r.bufs, dec)
		body, err = Decompress(enc, raw, (*dec)[:0], cfg.MaxDecompressedBytes)
		*dec = body[:0]
		if errors.Is(err, ErrTooLarge) {
			return nil, r.Refuse(ReasonTooLarge, fmt.Sprintf("decompressed request exceeds the limit of %d bytes", cfg.MaxDecompressedBytes)), false
		}
		if err != nil {
			return nil, r.Refuse(ReasonMalformed, fmt.Sprintf("decompress %s body: %v", enc, err)), false
		}
	}
	if o, ok := r.reserve(len(body)); !ok {
		return nil, o, false
	}
	return body, Outcome{}, true
}

func encodingList(encs []string) string {
	s := ""
	for _, e := range encs {
		s += e + ", "
	}
	return s + "or none"
}

// Store makes the decoded batch durable and counts the outcome: the spans
// kept, the spans res rejected, what the limits changed. rec is the batch
// as an OTLP ExportTraceServiceRequest, or nil (or res.Modified) to have
// it encoded from b. On a protocol without partial success a request whose
// every span was rejected is refused (invalid_spans), so that the sender
// learns that nothing was stored.
func (r *Request) Store(ctx context.Context, b *span.Batch, res otlp.Result, rec []byte) Outcome {
	tenant, ok := storage.TenantFrom(ctx) // set by the tenant resolution in front of the receiver
	if !ok {
		tenant = r.c.tenant
	}
	var tl TenantLimits
	if r.c.lim != nil && len(b.Spans) > 0 {
		tl = r.c.lim.TenantLimits(tenant)
		// No value of a request smaller than the cap can be over it.
		if tl.MaxAttrValueBytes > 0 && tl.MaxAttrValueBytes < r.c.cfg.Limits.MaxAttrValueBytes && (rec == nil || len(rec) > tl.MaxAttrValueBytes) {
			before := res.Truncated
			res.CapValues(b, tl.MaxAttrValueBytes)
			if n := res.Truncated - before; n > 0 {
				r.c.lim.CappedValues(tenant, n)
				res.Finish()
			}
		}
	}
	if len(b.Spans) == 0 {
		r.c.m.limited(r.proto, res)
		o := Outcome{Rejected: res.Rejected, Result: res, Msg: res.Message}
		if res.Rejected > 0 && !r.proto.partialSuccess() {
			o.Kind, o.Reason, o.Msg = Rejected, ReasonInvalidSpans, "no valid span in the request: "+res.Message
		}
		r.count(o)
		return o
	}
	if rec == nil || res.Modified {
		rec = r.encode(b)
	}
	if r.c.lim != nil {
		if wait, ok := r.c.lim.AllowIngest(tenant, len(b.Spans), len(rec)); !ok {
			r.c.m.limited(r.proto, res)
			o := Outcome{Kind: Overloaded, Reason: ReasonTenantRateLimited, RetryAfter: wait, Rejected: res.Rejected, Result: res}
			o.Msg = fmt.Sprintf("tenant %s is over its ingestion rate (overrides): retry in %s", tenant, wait.Round(time.Millisecond))
			r.c.m.spansLost(r.proto, o.Reason, len(b.Spans))
			r.count(o)
			return o
		}
		// After the rate: a refused request must not count its spans
		// into their traces.
		if tl.MaxSpansPerTrace > 0 && r.limitTraces(tenant, b, &res) {
			res.Finish()
			if len(b.Spans) > 0 {
				rec = r.encode(b)
			}
		}
	}
	r.c.m.limited(r.proto, res)
	o := Outcome{Rejected: res.Rejected, Result: res, Msg: res.Message}
	if len(b.Spans) == 0 { // every span over its trace's limit
		if !r.proto.partialSuccess() {
			o.Kind, o.Reason, o.Msg = Rejected, ReasonInvalidSpans, "no span stored: "+res.Message
		}
		r.count(o)
		return o
	}
	err := r.c.app.Append(ctx, tenant, rec, b)
	switch {
	case err == nil:
		o.Stored = len(b.Spans)
	case errors.Is(err, ErrRetryable):
		o.Kind, o.Reason, o.Msg = Overloaded, ReasonStoreOverloaded, err.Error()
	case ctx.Err() != nil:
		o.Kind, o.Reason, o.Msg = Unavailable, ReasonCancelled, "request cancelled before its spans were durable: "+ctx.Err().Error()
	default:
		o.Kind, o.Reason, o.Msg = Unavailable, ReasonStoreError, "store spans: "+err.Error()
		r.c.log.Error("append spans", "protocol", string(r.proto), "err", err)
	}
	if o.Kind != Accepted {
		r.c.m.spansLost(r.proto, o.Reason, len(b.Spans))
	}
	r.count(o)
	return o
}

// encode returns b as an OTLP ExportTraceServiceRequest, in a buffer the
// request holds until End.
func (r *Request) encode(b *span.Batch) []byte {
	buf := r.c.getBuf()
	r.bufs = append(r.bufs, buf)
	*buf = otlp.MarshalProto((*buf)[:0], b)
	return *buf
}

// limitTraces drops the spans of b beyond their trace's share of the
// tenant's max_spans_per_trace (the first spans of each trace in the
// request are kept), counts them in res, and reports whether any was
// dropped.
func (r *Request) limitTraces(tenant string, b *span.Batch, res *otlp.Result) bool {
	// Most requests hold up to a few dozen traces, each trace's spans
	// together: count them in a slice (searched once per trace) before
	// reaching for a map (BenchmarkIngestTenancy: a map per request of
	// 50 traces cost 25 ns per span).
	type share struct {
		id   span.TraceID
		left int
	}
	var small [64]share
	shares := small[:0]
	var byID map[span.TraceID]int
	find := func(id span.TraceID) int {
		if byID != nil {
			if i, ok := byID[id]; ok {
				return i
			}
			return -1
		}
		for i := range shares {
			if shares[i].id == id {
				return i
			}
		}
		return -1
	}
	last := -1 // the spans of a trace usually come together
	for i := range b.Spans {
		id := b.Spans[i].TraceID
		if last >= 0 && shares[last].id == id {
			shares[last].left++
			continue
		}
		if j := find(id); j >= 0 {
			shares[j].left++
			last = j
			continue
		}
		last = len(shares)
		shares = append(shares, share{id: id, left: 1})
		if byID == nil && len(shares) > len(small) {
			byID = make(map[span.TraceID]int, 2*len(shares))
			for j, s := range shares {
				byID[s.id] = j
			}
		} else if byID != nil {
			byID[id] = len(shares) - 1
		}
	}
	dropped := 0
	for i := range shares {
		n := shares[i].left
		shares[i].left = r.c.lim.AllowTraceSpans(tenant, shares[i].id, n)
		dropped += n - shares[i].left
	}
	if dropped == 0 {
		return false
	}
	kept := b.Spans[:0]
	last = -1
	for i := range b.Spans {
		j := last
		if j < 0 || shares[j].id != b.Spans[i].TraceID {
			j = find(b.Spans[i].TraceID)
			last = j
		}
		if shares[j].left == 0 {
			continue
		}
		shares[j].left--
		kept = append(kept, b.Spans[i])
	}
	clear(b.Spans[len(kept):])
	b.Spans = kept
	res.Rejected += dropped
	res.RejectReasons[otlp.ReasonMaxSpansPerTrace] += dropped
	return true
}

// GRPCError is the gRPC error answering o (nil when accepted). Retryable
// outcomes carry RetryInfo: OTLP senders treat RESOURCE_EXHAUSTED as
// retryable only when it is present.
func (c *Core) GRPCError(o Outcome) error {
	code := o.GRPCCode()
	if code == codes.OK {
		return nil
	}
	st := status.New(code, o.Msg)
	if o.Retry() {
		if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(c.retryAfter(o))}); err == nil {
			st = d
		}
	}
	return st.Err()
}

// SetRetryAfter sets the Retry-After header when o asks the sender to
// retry.
func (c *Core) SetRetryAfter(w http.ResponseWriter, o Outcome) {
	if !o.Retry() {
		return
	}
	secs := int((c.retryAfter(o) + time.Second - 1) / time.Second) // rounded up
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
}

// WriteText answers o as plain text, as Zipkin's and Jaeger's collectors
// do; an accepted request gets okCode and no body.
func (c *Core) WriteText(w http.ResponseWriter, o Outcome, okCode int) {
	code := o.HTTPStatus(okCode)
	if o.Kind == Accepted {
		w.WriteHeader(code)
		return
	}
	c.SetRetryAfter(w, o)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, o.Msg+"\n")
}
