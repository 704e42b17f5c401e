package e2e

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// tinySpans builds n minimal spans of one trace, numbered from first.
func tinySpans(tid [16]byte, first, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bulk")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.EnsureCapacity(n)
	start := pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute))
	for i := first; i < first+n; i++ {
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], uint64(i)+1)
		sp.SetSpanID(sid)
		sp.SetName("t")
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(start + 1000)
	}
	return td
}

// TestLargeAndOddInput covers a 100k-span trace sent in pieces, a request
// with more spans than allowed, and values a sender should not send but
// clew must store sanely: huge strings, NaN, timestamps decades off, end
// before start.
func TestLargeAndOddInput(t *testing.T) {
	p := startClew(t, t.TempDir())

	// A trace of 100,000 spans in 5 requests is stored and returned whole.
	big := [16]byte{0xb1, 0x9}
	for part := 0; part < 5; part++ {
		if err := exportGRPC(t, p.grpcAddr, ptraceotlp.NewExportRequestFromTraces(tinySpans(big, part*20000, 20000))); err != nil {
			t.Fatalf("part %d: %v", part, err)
		}
	}
	var tr otlpTrace
	if code := p.getJSON(fmt.Sprintf("/api/v1/traces/%x", big), &tr); code != 200 || len(tr.spanIDs()) != 100000 {
		t.Fatalf("100k-span trace: status %d, %d spans", code, len(tr.spanIDs()))
	}
	var sr searchResp
	p.getJSON("/api/v1/search?service=bulk", &sr)
	if sr.Total != 1 || sr.Traces[0].SpanCount != 100000 {
		t.Fatalf("search for the big trace: %+v", sr)
	}

	// More spans in one request than the limit: refused whole, nothing stored.
	many := [16]byte{0xb2}
	err := exportGRPC(t, p.grpcAddr, ptraceotlp.NewExportRequestFromTraces(tinySpans(many, 0, 100001)))
	if err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("over-limit request: %v, want InvalidArgument", err)
	}
	if code, _ := p.get(fmt.Sprintf("/api/v1/traces/%x", many)); code != 404 {
		t.Fatalf("over-limit request stored something: status %d", code)
	}

	// Odd values are stored, bounded, and read back.
	odd := [16]byte{0xb3}
	td := tinySpans(odd, 0, 3)
	s := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	s.At(0).Attributes().PutStr("huge", strings.Repeat("x", 1<<20))
	s.At(0).Attributes().PutDouble("nan", math.NaN())
	s.At(0).Attributes().PutDouble("inf", math.Inf(-1))
	s.At(1).SetStartTimestamp(pcommon.Timestamp(uint64(time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())))
	s.At(1).SetEndTimestamp(pcommon.Timestamp(uint64(time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())))
	s.At(2).SetEndTimestamp(s.At(2).StartTimestamp() - 5) // end before start
	if err := exportGRPC(t, p.grpcAddr, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatalf("odd values: %v", err)
	}
	code, body := p.get(fmt.Sprintf("/api/v1/traces/%x", odd))
	if code != 200 {
		t.Fatalf("odd trace: %d %s", code, body)
	}
	if len(body) > 200<<10 {
		t.Fatalf("a 1 MiB attribute came back as %d bytes: not truncated", len(body))
	}
	for _, want := range []string{`"NaN"`, `"-Infinity"`, `"startTimeUnixNano":"157766400000000000"`} {
		mustContain(t, string(body), want)
	}
	_, metrics := p.get("/metrics")
	mustContain(t, string(metrics), "clew_ingest_truncated_values_total 1")
	p.stop()
}
