package zipkin

import (
	"fmt"
	"mime"
	"net/http"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// postSpans serves POST /api/v2/spans: 202 once the spans are durable, 400
// for a body that is not a list of spans in the declared format (or whose
// every span has an invalid ID), 413 over the size limits, 415 for an
// unknown content type or encoding, 429 (with Retry-After) on overload and
// 503 when the store failed.
func (a *API) postSpans(w http.ResponseWriter, r *http.Request) {
	rq := a.core.Begin(ingest.ZipkinJSON)
	defer rq.End()

	if h := r.Header.Get("Content-Type"); h != "" {
		ct, _, err := mime.ParseMediaType(h)
		switch {
		case err != nil:
			ct = ""
		case ct == "application/json":
		case ct == "application/x-protobuf" || ct == "application/protobuf":
			rq.SetProtocol(ingest.ZipkinProto)
		default:
			ct = ""
		}
		if ct == "" {
			a.core.WriteText(w, rq.Refuse(ingest.ReasonUnsupportedMedia,
				fmt.Sprintf("unsupported content type %q: send application/json or application/x-protobuf", h)), http.StatusAccepted)
			return
		}
	}
	body, o, ok := rq.ReadHTTP(w, r, "gzip")
	if !ok {
		a.core.WriteText(w, o, http.StatusAccepted)
		return
	}
	var b span.Batch
	var res otlp.Result
	var err error
	enc := "json"
	if rq.Protocol() == ingest.ZipkinProto {
		enc = "proto"
		res, err = DecodeProto(body, a.core.Limits(), &b)
	} else {
		res, err = DecodeJSON(body, a.core.Limits(), &b)
	}
	if err != nil {
		a.core.WriteText(w, rq.DecodeFailed(err, "decode Zipkin "+enc+" spans"), http.StatusAccepted)
		return
	}
	a.core.WriteText(w, rq.Store(r.Context(), &b, res, nil), http.StatusAccepted)
}
