package ingest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// HTTPHandler serves OTLP/HTTP: POST /v1/traces with a protobuf or JSON
// body, optionally gzip- or zstd-compressed.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
	})
	return mux
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	const protocol = "http"
	defer func() { r.m.duration.WithLabelValues(protocol).Observe(time.Since(start).Seconds()) }()

	ct, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil {
		ct = ""
	}
	var isJSON bool
	switch ct {
	case "application/x-protobuf", "application/protobuf":
	case "application/json":
		isJSON = true
	default:
		r.m.requests.WithLabelValues(protocol, "unsupported_media_type").Inc()
		r.m.discarded.WithLabelValues(ReasonMalformed).Inc()
		w.Header().Set("Accept-Post", "application/x-protobuf, application/json")
		writeHTTPStatus(w, false, http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported content type %q: send application/x-protobuf or application/json", req.Header.Get("Content-Type")))
		return
	}
	if req.ContentLength > r.cfg.MaxRequestBytes {
		r.refuseTooLarge(w, isJSON, fmt.Sprintf("request body of %d bytes exceeds the limit of %d", req.ContentLength, r.cfg.MaxRequestBytes))
		return
	}
	// Reserve the worst case we are willing to decompress to only once we
	// know the body; first read it compressed.
	buf := r.getBuf()
	defer r.putBuf(buf)
	body := http.MaxBytesReader(w, req.Body, r.cfg.MaxRequestBytes)
	raw, err := readAll(*buf, body)
	*buf = raw[:0]
	r.m.bytes.WithLabelValues(protocol).Add(float64(len(raw)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			r.refuseTooLarge(w, isJSON, fmt.Sprintf("request body exceeds the limit of %d bytes", r.cfg.MaxRequestBytes))
			return
		}
		r.m.requests.WithLabelValues(protocol, "read_error").Inc()
		r.m.discarded.WithLabelValues(ReasonMalformed).Inc()
		writeHTTPStatus(w, isJSON, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	payload := raw
	var decBuf *[]byte
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip", "zstd":
		decBuf = r.getBuf()
		defer r.putBuf(decBuf)
		payload, err = Decompress(enc, raw, (*decBuf)[:0], r.cfg.MaxDecompressedBytes)
		*decBuf = payload[:0]
		if errors.Is(err, ErrTooLarge) {
			r.refuseTooLarge(w, isJSON, fmt.Sprintf("decompressed request exceeds the limit of %d bytes", r.cfg.MaxDecompressedBytes))
			return
		}
		if err != nil {
			r.m.requests.WithLabelValues(protocol, "bad_encoding").Inc()
			r.m.discarded.WithLabelValues(ReasonMalformed).Inc()
			writeHTTPStatus(w, isJSON, http.StatusBadRequest, fmt.Sprintf("decompress %s body: %v", enc, err))
			return
		}
	default:
		r.m.requests.WithLabelValues(protocol, "bad_encoding").Inc()
		r.m.discarded.WithLabelValues(ReasonMalformed).Inc()
		writeHTTPStatus(w, isJSON, http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported content encoding %q: send gzip, zstd or none", enc))
		return
	}
	n := int64(len(payload))
	if !r.reserve(n) {
		r.m.requests.WithLabelValues(protocol, outcomeOverloaded.String()).Inc()
		r.m.discarded.WithLabelValues(ReasonOverloaded).Inc()
		r.writeRetry(w, isJSON, http.StatusTooManyRequests, "too many bytes in flight, retry later")
		return
	}
	defer r.unreserve(n)

	out := r.export(req.Context(), protocol, payload, isJSON)
	r.m.requests.WithLabelValues(protocol, out.kind.String()).Inc()
	switch out.kind {
	case outcomeOK:
		var resp []byte
		if isJSON {
			w.Header().Set("Content-Type", "application/json")
			resp = otlp.AppendExportResponseJSON(nil, out.rejected, out.msg)
		} else {
			w.Header().Set("Content-Type", "application/x-protobuf")
			resp = otlp.AppendExportResponseProto(nil, out.rejected, out.msg)
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp)
	case outcomeBadRequest:
		writeHTTPStatus(w, isJSON, http.StatusBadRequest, out.msg)
	case outcomeOverloaded:
		r.writeRetry(w, isJSON, http.StatusTooManyRequests, out.msg)
	default:
		r.writeRetry(w, isJSON, http.StatusServiceUnavailable, out.msg)
	}
}

func (r *Receiver) refuseTooLarge(w http.ResponseWriter, isJSON bool, msg string) {
	r.m.requests.WithLabelValues("http", "too_large").Inc()
	r.m.discarded.WithLabelValues(ReasonTooLarge).Inc()
	// 413 is permanent for OTLP senders: the same request will never fit.
	writeHTTPStatus(w, isJSON, http.StatusRequestEntityTooLarge, msg)
}

func (r *Receiver) writeRetry(w http.ResponseWriter, isJSON bool, code int, msg string) {
	secs := int(r.cfg.RetryAfter.Round(time.Second) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeHTTPStatus(w, isJSON, code, msg)
}

// writeHTTPStatus answers with a google.rpc.Status body in the request's
// encoding, as OTLP/HTTP asks.
func writeHTTPStatus(w http.ResponseWriter, isJSON bool, code int, msg string) {
	grpcCode := 3 // INVALID_ARGUMENT
	switch code {
	case http.StatusTooManyRequests:
		grpcCode = 8 // RESOURCE_EXHAUSTED
	case http.StatusServiceUnavailable:
		grpcCode = 14 // UNAVAILABLE
	}
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		b := append([]byte(`{"code":`), strconv.Itoa(grpcCode)...)
		b = append(b, `,"message":`...)
		b = span.AppendJSONString(b, msg)
		b = append(b, "}\n"...)
		_, _ = w.Write(b)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	_, _ = w.Write(appendStatusProto(nil, grpcCode, msg))
}

// appendStatusProto encodes google.rpc.Status{code, message}.
func appendStatusProto(dst []byte, code int, msg string) []byte {
	dst = append(dst, 0x08)
	dst = appendUvarint(dst, uint64(code))
	dst = append(dst, 0x12)
	dst = appendUvarint(dst, uint64(len(msg)))
	return append(dst, msg...)
}

func appendUvarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// readAll reads rd to the end, appending to dst.
func readAll(dst []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := rd.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// ErrTooLarge is returned by Decompress when the output would pass its limit.
var ErrTooLarge = errors.New("decompressed body too large")

// Decompress inflates src ("gzip" or "zstd") into dst, refusing to grow past
// limit bytes. Every receiver uses it, so a body's size is bounded the same
// way on every port.
func Decompress(enc string, src, dst []byte, limit int64) ([]byte, error) {
	var rd io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return dst, err
		}
		defer zr.Close()
		rd = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1))
		if err != nil {
			return dst, err
		}
		defer zr.Close()
		rd = zr
	default:
		return dst, fmt.Errorf("unsupported content encoding %q", enc)
	}
	out, err := readAll(dst, io.LimitReader(rd, limit+1))
	if err != nil {
		return out, err
	}
	if int64(len(out)) > limit {
		return out, ErrTooLarge
	}
	return out, nil
}
