package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// genTraces builds n traces of spansPer spans each, with trace IDs derived
// from seed and the trace's index so that tests can name them.
func genTraces(seed uint64, first, n, spansPer int) ptrace.Traces {
	td := ptrace.NewTraces()
	rng := rand.New(rand.NewPCG(seed, uint64(first)))
	services := []string{"frontend", "checkout", "payment"}
	base := time.Now().Add(-time.Minute)
	for i := first; i < first+n; i++ {
		tid := traceID(seed, i)
		start := base.Add(time.Duration(i) * time.Millisecond)
		var parents []pcommon.SpanID
		for j := 0; j < spansPer; j++ {
			rs := td.ResourceSpans().AppendEmpty()
			svc := services[j%len(services)]
			rs.Resource().Attributes().PutStr("service.name", svc)
			rs.Resource().Attributes().PutStr("host.name", fmt.Sprintf("host-%d", j%2))
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("e2e")
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(pcommon.TraceID(tid))
			var sid [8]byte
			binary.BigEndian.PutUint64(sid[:], uint64(i)<<16|uint64(j)+1)
			sp.SetSpanID(pcommon.SpanID(sid))
			if j > 0 {
				sp.SetParentSpanID(parents[rng.IntN(len(parents))])
			}
			parents = append(parents, pcommon.SpanID(sid))
			sp.SetName(fmt.Sprintf("op-%d", j%4))
			sp.SetKind(ptrace.SpanKindServer)
			s := start.Add(time.Duration(j) * time.Microsecond)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.Add(time.Duration(1+rng.IntN(1000)) * time.Microsecond)))
			sp.Attributes().PutStr("http.request.method", []string{"GET", "POST"}[j%2])
			sp.Attributes().PutInt("http.response.status_code", int64([]int{200, 200, 500}[j%3]))
			sp.Attributes().PutStr("trace.index", fmt.Sprint(i))
			if j%3 == 2 {
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("boom")
			}
		}
	}
	return td
}

func traceID(seed uint64, i int) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], seed|1<<63)
	binary.BigEndian.PutUint64(id[8:], uint64(i)+1)
	return id
}

func traceHex(seed uint64, i int) string {
	id := traceID(seed, i)
	return fmt.Sprintf("%x", id[:])
}
