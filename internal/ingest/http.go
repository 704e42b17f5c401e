package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/klauspost/compress/zstd"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// HTTPHandler serves OTLP/HTTP: POST /v1/traces (and, after SetLogs, POST
// /v1/logs) with a protobuf or JSON body, optionally gzip- or
// zstd-compressed.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP)
	mux.HandleFunc("/v1/traces", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
	})
	if r.logs != nil {
		mux.HandleFunc("POST /v1/logs", r.logs.serveHTTP)
		mux.HandleFunc("/v1/logs", func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
		})
	}
	return mux
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	serveOTLPHTTP(r.core, OTLPHTTP, w, req, r.answer, r.export)
}

// serveOTLPHTTP is the OTLP/HTTP request path of every signal (traces,
// logs): the content type, the body within the core's bounds, then
// export, each outcome answered by answer in the request's encoding.
func serveOTLPHTTP(core *Core, p Protocol, w http.ResponseWriter, req *http.Request,
	answer func(http.ResponseWriter, bool, Outcome), export func(context.Context, *Request, []byte, bool) Outcome) {
	rq := core.Begin(p)
	defer rq.End()

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
		w.Header().Set("Accept-Post", "application/x-protobuf, application/json")
		answer(w, isJSON, rq.Refuse(ReasonUnsupportedMedia, fmt.Sprintf("unsupported content type %q: send application/x-protobuf or application/json", req.Header.Get("Content-Type"))))
		return
	}
	body, o, ok := rq.ReadHTTP(w, req, "gzip", "zstd")
	if !ok {
		answer(w, isJSON, o)
		return
	}
	answer(w, isJSON, export(req.Context(), rq, body, isJSON))
}

// answer writes o in the request's encoding: an ExportTraceServiceResponse
// (with partial success) when accepted, else a google.rpc.Status.
func (r *Receiver) answer(w http.ResponseWriter, isJSON bool, o Outcome) {
	if o.Kind != Accepted {
		r.core.SetRetryAfter(w, o)
		writeHTTPStatus(w, isJSON, o.HTTPStatus(http.StatusOK), o.Msg)
		return
	}
	var resp []byte
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		resp = otlp.AppendExportResponseJSON(nil, int64(o.Rejected), o.Msg)
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		resp = otlp.AppendExportResponseProto(nil, int64(o.Rejected), o.Msg)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
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
