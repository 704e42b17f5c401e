package jaeger

import (
	"testing"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc/mem"
)

// FuzzGRPCRequests decodes fuzzed bytes as each request of the gRPC query
// services: api_v3's hand-written decoders and api_v2's generated ones
// (through the codec, which turns a decoder panic into an error). None may
// panic; a decoded api_v3 search must respect the bounds its handler
// relies on.
func FuzzGRPCRequests(f *testing.F) {
	f.Add([]byte{})
	f.Add(pbString(nil, 1, "5b8efff798038103d269b633813fc60c"))
	f.Add(pbString(pbString(nil, 1, "checkout"), 2, "server"))
	f.Add(pbMsg(nil, 1, pbMsg(pbString(pbString(nil, 1, "svc"), 2, "op"), 3, pbString(pbString(nil, 1, "k"), 2, "v"))))
	f.Add(pbMsg(nil, 1, pbMsg(pbMsg(pbVarint(nil, 8, 20), 4, pbSecNanos(1764000000123456789)), 6, pbSecNanos(1500))))
	f.Add(pbMsg(nil, 1, pbMsg(nil, 5, pbVarint(nil, 2, 1<<40))))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ft v3FindTracesRequest
		if err := ft.unmarshalProto(b); err == nil && ft.query != nil {
			q := ft.query
			if q.durationMin < 0 || q.durationMax < 0 || len(q.attributes) > maxConds+1 {
				t.Fatalf("decoded %+v", q)
			}
		}
		var gt v3GetTraceRequest
		_ = gt.unmarshalProto(b)
		var ops v3GetOperationsRequest
		_ = ops.unmarshalProto(b)
		var deps v3GetDependenciesRequest
		_ = deps.unmarshalProto(b)
		var empty v3Empty
		_ = empty.unmarshalProto(b)
		data := mem.BufferSlice{mem.SliceBuffer(b)}
		for _, m := range []any{&api_v2.GetTraceRequest{}, &api_v2.FindTracesRequest{}, &api_v2.GetOperationsRequest{}, &api_v2.GetDependenciesRequest{}} {
			_ = codec{}.Unmarshal(data, m)
		}
	})
}
