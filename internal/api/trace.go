package api

import (
	"slices"
	"strconv"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
)

// appendTraceJSON renders spans as an OTLP JSON TracesData object.
func appendTraceJSON(dst []byte, spans []span.Span) []byte {
	return otlp.AppendJSON(dst, spans)
}

// summarizeTrace computes a search result's summary from the whole trace.
// The root is the earliest span without a parent; failing that (the root
// has not arrived), the earliest span whose parent is not in the trace.
func summarizeTrace(id span.TraceID, spans []span.Span) TraceSummary {
	s := TraceSummary{TraceID: id.String(), SpanCount: len(spans)}
	if len(spans) == 0 {
		s.Services = []ServiceStat{}
		return s
	}
	ids := make(map[span.SpanID]struct{}, len(spans))
	for i := range spans {
		ids[spans[i].SpanID] = struct{}{}
	}
	start, end := spans[0].StartUnixNano, spans[0].EndUnixNano
	root, orphan := -1, -1
	var svcs []ServiceStat
	for i := range spans {
		sp := &spans[i]
		start = min(start, sp.StartUnixNano)
		end = max(end, sp.EndUnixNano)
		isErr := sp.StatusCode == span.StatusError
		if isErr {
			s.ErrorCount++
		}
		name := sp.Resource.ServiceName()
		j := slices.IndexFunc(svcs, func(x ServiceStat) bool { return x.Name == name })
		if j < 0 {
			svcs = append(svcs, ServiceStat{Name: name})
			j = len(svcs) - 1
		}
		svcs[j].SpanCount++
		if isErr {
			svcs[j].ErrorCount++
		}
		if sp.ParentSpanID.IsZero() {
			if root < 0 || sp.StartUnixNano < spans[root].StartUnixNano {
				root = i
			}
		} else if _, ok := ids[sp.ParentSpanID]; !ok {
			if orphan < 0 || sp.StartUnixNano < spans[orphan].StartUnixNano {
				orphan = i
			}
		}
	}
	if root < 0 {
		root = orphan
	}
	if root >= 0 {
		s.RootServiceName = spans[root].Resource.ServiceName()
		s.RootName = spans[root].Name
	}
	slices.SortFunc(svcs, func(a, b ServiceStat) int {
		if a.SpanCount != b.SpanCount {
			return b.SpanCount - a.SpanCount
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	s.Services = svcs
	s.StartTimeUnixNano = strconv.FormatUint(start, 10)
	s.DurationNanos = strconv.FormatUint(end-min(start, end), 10)
	return s
}
