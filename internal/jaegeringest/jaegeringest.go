// Package jaegeringest receives spans the way a Jaeger collector does: the
// api_v2 gRPC CollectorService (PostSpans, port 14250 by default) and
// Thrift over HTTP (POST /api/traces with a binary-protocol jaeger.Batch,
// port 14268 by default). Both go through the same ingest.Core as the OTLP
// and Zipkin receivers (size bounds, in-flight budget, per-span limits and
// UTF-8 rule, outcomes, metrics) and answer only once the spans are
// durable. Documented in
// docs/api.md ("Jaeger collector").
//
// The wire formats are decoded with jaeger-idl's generated code (gogo
// protobuf for gRPC, Apache Thrift for HTTP); the mapping of Jaeger's model
// onto span.Batch is clew's own (model.go) and follows the OpenTelemetry
// Collector's Jaeger receiver, so that spans read back as they would from
// Tempo or the Collector.
package jaegeringest

import (
	"net/http"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/otlp"
)

// Receiver serves the Jaeger collector protocols. One Receiver backs both
// the gRPC server and the HTTP handler; both go through the process's
// ingest.Core, which bounds the requests, shares the in-flight budget with
// every other receiver, stores the spans and counts the outcomes under
// the protocols jaeger_grpc and jaeger_thrift_http.
type Receiver struct {
	core *ingest.Core
	lim  otlp.Limits
}

// New returns a Receiver going through core.
func New(core *ingest.Core) *Receiver {
	return &Receiver{core: core, lim: core.Limits()}
}

// HTTPHandler returns the handler of Jaeger's collector HTTP port:
// POST /api/traces.
func (r *Receiver) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/traces", r.postTraces)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeText(w, http.StatusNotFound, "no such endpoint: "+req.Method+" "+req.URL.Path+" (POST /api/traces takes Thrift batches)")
	})
	return mux
}
