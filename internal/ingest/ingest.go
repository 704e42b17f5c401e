// Package ingest is clew's receiver core and its OTLP receivers. Every
// receiver (OTLP/gRPC and OTLP/HTTP here, Zipkin in internal/zipkin,
// Jaeger in internal/jaegeringest) goes through one Core: it bounds what a
// request may make clew allocate (body size as sent and decompressed, one
// in-flight budget for the process), gives every decoder the same per-span
// limits and string rule (otlp.Limits, otlp.CleanString), hands the batch
// to an Appender that makes it durable, classifies the outcome and maps it
// onto the answer the sender acts on: success (possibly partial), a
// permanent error (400, INVALID_ARGUMENT) or a condition to retry (429 /
// RESOURCE_EXHAUSTED on overload, 503 / UNAVAILABLE when the store failed,
// both with a retry hint). It counts all of it in one metric family,
// clew_receiver_*, labelled by protocol and reason.
package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// Appender makes a batch durable and visible. rec is the batch encoded as
// an OTLP ExportTraceServiceRequest. Append returns nil only once the batch
// is durable; it returns an error wrapping ErrRetryable when the sender
// should retry later. It must not retain rec or batch.
type Appender interface {
	Append(ctx context.Context, tenant string, rec []byte, batch *span.Batch) error
}

// ErrRetryable marks Append errors after which a sender should retry.
var ErrRetryable = errors.New("retryable")

// Config holds the user-facing ingest limits.
type Config struct {
	// MaxRequestBytes bounds a request body as received (compressed).
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// MaxDecompressedBytes bounds a request body after decompression.
	MaxDecompressedBytes int64 `yaml:"max_decompressed_bytes"`
	// MaxInflightBytes bounds the decompressed bytes of all requests being
	// processed at once; beyond it requests are refused with 429 /
	// RESOURCE_EXHAUSTED so that senders back off.
	MaxInflightBytes int64 `yaml:"max_inflight_bytes"`
	// RetryAfter is what overload answers tell senders to wait.
	RetryAfter time.Duration `yaml:"retry_after"`
	// Limits bound spans per request and attribute sizes.
	Limits otlp.Limits `yaml:"limits"`
}

// DefaultConfig returns the default ingest limits.
func DefaultConfig() Config {
	return Config{
		MaxRequestBytes:      16 << 20,
		MaxDecompressedBytes: 64 << 20,
		MaxInflightBytes:     96 << 20,
		RetryAfter:           time.Second,
		Limits:               otlp.DefaultLimits(),
	}
}

// Receiver is the OTLP receiver: the gRPC and HTTP front ends over one
// Core, with pooled OTLP decoders.
type Receiver struct {
	core *Core

	decoders sync.Pool     // *otlp.Decoder
	batches  sync.Pool     // *span.Batch
	logs     *logsReceiver // nil: logs not served (SetLogs)
}

// NewReceiver returns the OTLP receiver going through core.
func NewReceiver(core *Core) *Receiver {
	r := &Receiver{core: core}
	lim := core.Limits()
	r.decoders.New = func() any { return otlp.NewDecoder(lim) }
	r.batches.New = func() any { return &span.Batch{} }
	return r
}

// Core returns the receiver core, for the other receivers of the process
// to share: one budget, one family of metrics.
func (r *Receiver) Core() *Core { return r.core }

// export decodes body (already decompressed and admitted) and stores it.
// isJSON selects the OTLP/JSON decoder.
func (r *Receiver) export(ctx context.Context, req *Request, body []byte, isJSON bool) Outcome {
	dec := r.decoders.Get().(*otlp.Decoder)
	batch := r.batches.Get().(*span.Batch)
	defer r.decoders.Put(dec)
	defer func() {
		batch.Reset()
		r.batches.Put(batch)
	}()
	var res otlp.Result
	var err error
	if isJSON {
		res, err = dec.DecodeJSON(body, batch)
	} else {
		res, err = dec.DecodeProto(body, batch)
	}
	if err != nil {
		return req.DecodeFailed(err, "decode OTLP request")
	}
	rec := body
	if isJSON {
		rec = nil
	}
	return req.Store(ctx, batch, res, rec)
}
