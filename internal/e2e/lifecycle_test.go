package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func exportGRPC(t *testing.T, addr string, req ptraceotlp.ExportRequest) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, req)
	return err
}

// checkTraces asserts that traces first..first+n-1 of seed are stored whole.
func checkTraces(t *testing.T, p *proc, seed uint64, first, n, spansPer int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		var tr otlpTrace
		if code := p.getJSON("/api/v1/traces/"+traceHex(seed, i), &tr); code != 200 {
			t.Fatalf("trace %d: status %d", i, code)
		}
		if got := len(tr.spanIDs()); got != spansPer {
			t.Fatalf("trace %d: %d spans, want %d", i, got, spansPer)
		}
	}
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	p := startClew(t, dir)

	// 20 traces over gRPC (protobuf), 10 over HTTP protobuf, 10 over HTTP JSON.
	if err := exportGRPC(t, p.grpcAddr, ptraceotlp.NewExportRequestFromTraces(genTraces(1, 0, 20, 6))); err != nil {
		t.Fatalf("gRPC export: %v", err)
	}
	pb, _ := ptraceotlp.NewExportRequestFromTraces(genTraces(1, 20, 10, 6)).MarshalProto()
	if code, body, _ := p.postOTLP("application/x-protobuf", "", pb); code != 200 {
		t.Fatalf("HTTP protobuf export: %d %s", code, body)
	}
	js, _ := ptraceotlp.NewExportRequestFromTraces(genTraces(1, 30, 10, 6)).MarshalJSON()
	if code, body, _ := p.postOTLP("application/json", "", js); code != 200 {
		t.Fatalf("HTTP JSON export: %d %s", code, body)
	}
	checkTraces(t, p, 1, 0, 40, 6) // visible as soon as acknowledged

	var sr searchResp
	if code := p.getJSON("/api/v1/search?service=payment&limit=5", &sr); code != 200 {
		t.Fatalf("search: %d", code)
	}
	if sr.Total != 40 || len(sr.Traces) != 5 || sr.NextCursor == "" {
		t.Fatalf("search service=payment: total %d, %d traces, cursor %q; want 40, 5, a cursor", sr.Total, len(sr.Traces), sr.NextCursor)
	}
	// Paging walks all 40 traces exactly once, newest first.
	seen := map[string]bool{}
	cursor := ""
	var lastStart string
	for page := 0; page < 20; page++ {
		var r searchResp
		p.getJSON("/api/v1/search?service=payment&limit=7&cursor="+cursor, &r)
		for _, tr := range r.Traces {
			if seen[tr.TraceID] {
				t.Fatalf("trace %s returned twice", tr.TraceID)
			}
			seen[tr.TraceID] = true
			if lastStart != "" && len(tr.StartTimeUnixNano) == len(lastStart) && tr.StartTimeUnixNano > lastStart {
				t.Fatalf("results not newest first: %s after %s", tr.StartTimeUnixNano, lastStart)
			}
			lastStart = tr.StartTimeUnixNano
		}
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	if len(seen) != 40 {
		t.Fatalf("paging saw %d traces, want 40", len(seen))
	}
	// A needle: one trace by an attribute value.
	p.getJSON("/api/v1/search?attr=trace.index%3D33", &sr)
	if sr.Total != 1 || sr.Traces[0].TraceID != traceHex(1, 33) || sr.Traces[0].SpanCount != 6 || sr.Traces[0].RootServiceName != "frontend" {
		t.Fatalf("needle search: %+v", sr)
	}

	// Restart: the head comes back from the write-ahead log.
	p.stop()
	p = startClew(t, dir)
	checkTraces(t, p, 1, 0, 40, 6)

	// Flush to a block, restart: served from the block.
	if code, body := p.post("/api/v1/admin/flush", "", nil); code != 200 {
		t.Fatalf("flush: %d %s", code, body)
	}
	var st struct {
		HeadSpans int
		Blocks    []struct{ Spans int64 }
	}
	p.getJSON("/api/v1/status", &st)
	if len(st.Blocks) == 0 || st.HeadSpans != 0 {
		t.Fatalf("after flush: %+v", st)
	}
	p.stop()
	p = startClew(t, dir)
	checkTraces(t, p, 1, 0, 40, 6)
	p.getJSON("/api/v1/search?service=payment&attr=http.response.status_code%3E%3D500&status=error", &sr)
	if sr.Total != 40 {
		t.Fatalf("search from blocks: total %d, want 40", sr.Total)
	}
	var svcs struct{ Services []string }
	p.getJSON("/api/v1/services", &svcs)
	if fmt.Sprint(svcs.Services) != "[checkout frontend payment]" {
		t.Fatalf("services %v", svcs.Services)
	}
	p.stop()
}
