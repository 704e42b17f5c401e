package zipkin

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// ShareBudget makes the receiver count its requests against b, the
// process-wide in-flight budget (see ingest.Budget), instead of its own.
func (a *API) ShareBudget(b *ingest.Budget) { a.budget = b }

func (a *API) reserve(n int64) bool {
	cur, ok := a.budget.Reserve(n)
	a.m.inflight.Set(float64(cur))
	return ok
}

func (a *API) unreserve(n int64) { a.m.inflight.Set(float64(a.budget.Release(n))) }

// postSpans serves POST /api/v2/spans: 202 once the spans are durable, 400
// for a body that is not a list of spans in the declared format, 413 over
// the size limits, 415 for an unknown content type or encoding, 429 (with
// Retry-After) on overload and 503 when the store failed.
func (a *API) postSpans(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { a.m.duration.Observe(time.Since(start).Seconds()) }()

	enc := "json"
	if h := r.Header.Get("Content-Type"); h != "" {
		ct, _, err := mime.ParseMediaType(h)
		switch {
		case err != nil:
		case ct == "application/json":
		case ct == "application/x-protobuf" || ct == "application/protobuf":
			enc = "proto"
		default:
			ct = ""
		}
		if ct == "" {
			a.refuse(w, "json", http.StatusUnsupportedMediaType, "unsupported_media_type", reasonUnsupportedMedia,
				fmt.Sprintf("unsupported content type %q: send application/json or application/x-protobuf", h))
			return
		}
	}
	if r.ContentLength > a.cfg.MaxRequestBytes {
		a.refuse(w, enc, http.StatusRequestEntityTooLarge, "too_large", reasonTooLarge,
			fmt.Sprintf("request body of %d bytes exceeds the limit of %d", r.ContentLength, a.cfg.MaxRequestBytes))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxRequestBytes))
	a.m.bytes.Add(float64(len(raw)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.refuse(w, enc, http.StatusRequestEntityTooLarge, "too_large", reasonTooLarge,
				fmt.Sprintf("request body exceeds the limit of %d bytes", a.cfg.MaxRequestBytes))
			return
		}
		a.refuse(w, enc, http.StatusBadRequest, "read_error", reasonMalformed, "read request body: "+err.Error())
		return
	}
	body := raw
	switch ce := r.Header.Get("Content-Encoding"); ce {
	case "", "identity":
	case "gzip":
		body, err = ingest.Decompress("gzip", raw, nil, a.cfg.MaxDecompressedBytes)
		if errors.Is(err, ingest.ErrTooLarge) {
			a.refuse(w, enc, http.StatusRequestEntityTooLarge, "too_large", reasonTooLarge,
				fmt.Sprintf("decompressed request exceeds the limit of %d bytes", a.cfg.MaxDecompressedBytes))
			return
		}
		if err != nil {
			a.refuse(w, enc, http.StatusBadRequest, "bad_encoding", reasonMalformed, "decompress gzip body: "+err.Error())
			return
		}
	default:
		a.refuse(w, enc, http.StatusUnsupportedMediaType, "bad_encoding", reasonUnsupportedMedia,
			fmt.Sprintf("unsupported content encoding %q: send gzip or none", ce))
		return
	}
	n := int64(len(body))
	if !a.reserve(n) {
		a.m.requests.WithLabelValues(enc, "overloaded").Inc()
		a.m.discarded.WithLabelValues(reasonOverloaded).Inc()
		a.writeRetry(w, http.StatusTooManyRequests, "too many bytes in flight, retry later")
		return
	}
	defer a.unreserve(n)

	var b span.Batch
	var st stats
	if enc == "proto" {
		st, err = DecodeProto(body, a.cfg.Limits, &b)
	} else {
		st, err = DecodeJSON(body, a.cfg.Limits, &b)
	}
	if err != nil {
		reason := reasonMalformed
		if errors.Is(err, errTooManySpans) {
			reason = reasonTooManySpans
		}
		a.refuse(w, enc, http.StatusBadRequest, "bad_request", reason, "decode Zipkin "+enc+" spans: "+err.Error())
		return
	}
	a.account(st)
	if len(b.Spans) > 0 {
		rec := otlp.MarshalProto(nil, &b)
		if err := a.app.Append(r.Context(), a.tenant, rec, &b); err != nil {
			nspans := float64(len(b.Spans))
			switch {
			case errors.Is(err, ingest.ErrRetryable):
				a.m.requests.WithLabelValues(enc, "overloaded").Inc()
				a.m.discarded.WithLabelValues(reasonOverloaded).Add(nspans)
				a.writeRetry(w, http.StatusTooManyRequests, err.Error())
			case r.Context().Err() != nil:
				a.m.requests.WithLabelValues(enc, "unavailable").Inc()
				a.m.discarded.WithLabelValues(reasonStorage).Add(nspans)
				a.writeRetry(w, http.StatusServiceUnavailable, "request cancelled before its spans were durable: "+r.Context().Err().Error())
			default:
				a.m.requests.WithLabelValues(enc, "unavailable").Inc()
				a.m.discarded.WithLabelValues(reasonStorage).Add(nspans)
				a.log.Error("append spans", "err", err)
				a.writeRetry(w, http.StatusServiceUnavailable, "store spans: "+err.Error())
			}
			return
		}
		a.m.spans.Add(float64(len(b.Spans)))
	}
	a.m.requests.WithLabelValues(enc, "ok").Inc()
	w.WriteHeader(http.StatusAccepted)
}

func (a *API) refuse(w http.ResponseWriter, enc string, code int, outcome, reason, msg string) {
	a.m.requests.WithLabelValues(enc, outcome).Inc()
	a.m.discarded.WithLabelValues(reason).Inc()
	writeText(w, code, msg)
}

func (a *API) writeRetry(w http.ResponseWriter, code int, msg string) {
	secs := int(a.cfg.RetryAfter.Round(time.Second) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeText(w, code, msg)
}

func (a *API) account(st stats) {
	if st.truncated > 0 {
		a.m.truncated.Add(float64(st.truncated))
	}
	if st.droppedAttrs > 0 {
		a.m.dropped.WithLabelValues("attribute").Add(float64(st.droppedAttrs))
	}
	if st.droppedEvents > 0 {
		a.m.dropped.WithLabelValues("event").Add(float64(st.droppedEvents))
	}
}
