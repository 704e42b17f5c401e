package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/loadgen"
)

// latencies are the durations of repeated queries.
type latencies []time.Duration

// quantile returns the nearest-rank q-quantile, or 0 when empty.
func (l latencies) quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// otlpTrace is the part of an OTLP JSON trace the checks read.
type otlpTrace struct {
	ResourceSpans []struct {
		ScopeSpans []struct {
			Spans []json.RawMessage `json:"spans"`
		} `json:"scopeSpans"`
	} `json:"resourceSpans"`
}

func (t *otlpTrace) spanCount() int {
	n := 0
	for _, rs := range t.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}

// searchResponse is the shape of GET /api/v1/search.
type searchResponse struct {
	Traces []struct {
		TraceID   string     `json:"traceID"`
		SpanCount int        `json:"spanCount"`
		Trace     *otlpTrace `json:"trace"`
	} `json:"traces"`
	Total      int64  `json:"total"`
	NextCursor string `json:"nextCursor"`
}

var queryClient = &http.Client{Timeout: 60 * time.Second}

// get fetches url into v (when not nil) and returns the status and the time
// until the body was read.
func get(ctx context.Context, url string, v any) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, 0, err
	}
	setAuth(req)
	t0 := time.Now()
	resp, err := queryClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return resp.StatusCode, d, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return resp.StatusCode, d, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return resp.StatusCode, d, fmt.Errorf("decode %s: %w", url, err)
		}
	}
	return resp.StatusCode, d, nil
}

func searchURL(base, service, attr string, full bool) string {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if attr != "" {
		q.Set("attr", attr)
	}
	q.Set("limit", "20")
	if full {
		q.Set("traces", "full")
	}
	return base + "/api/v1/search?" + q.Encode()
}

// queries runs the read-side measurements and checks after the flush.
func (b *bench) queries(ctx context.Context, base string, sc *loadgen.Sidecar, res *result) {
	// Every accepted trace must be stored.
	var all searchResponse
	q := url.Values{"limit": {"1"}}
	if _, _, err := get(ctx, base+"/api/v1/search?"+q.Encode(), &all); err != nil {
		res.fail("count traces: %v", err)
	} else {
		res.stored = all.Total
		b.logf("%s: stored traces %d, sent %d", res.shape, all.Total, res.report.Traces)
		if all.Total != res.report.Traces {
			res.fail("STORED TRACES %d != SENT TRACES %d: spans were lost", all.Total, res.report.Traces)
		}
	}

	// Trace by ID.
	byIDFailures := 0
	for i, id := range sc.SampleTraceIDs {
		var tr otlpTrace
		_, d, err := get(ctx, base+"/api/v1/traces/"+id, &tr)
		if err != nil {
			byIDFailures++
			if byIDFailures <= 3 {
				res.fail("GET trace %s: %v", id, err)
			}
			continue
		}
		res.byID = append(res.byID, d)
		if want := sc.SampleTraceSpans[i]; tr.spanCount() != want {
			res.fail("trace %s has %d spans, want %d", id, tr.spanCount(), want)
		}
	}
	if len(sc.SampleTraceIDs) == 0 {
		res.fail("no sample trace IDs")
	}

	// Needle search: exactly one trace.
	switch {
	case sc.Needle == nil && res.noNeedle:
	case sc.Needle == nil:
		res.fail("the needle trace was not delivered")
	default:
		u := searchURL(base, sc.Needle.Service, sc.Needle.Attr, false)
		for i := range b.opts.queries {
			var sr searchResponse
			_, d, err := get(ctx, u, &sr)
			if err != nil {
				res.fail("needle search %s: %v", u, err)
				break
			}
			res.needle = append(res.needle, d)
			if i == 0 && (sr.Total != 1 || len(sr.Traces) != 1 || !strings.EqualFold(sr.Traces[0].TraceID, sc.Needle.TraceID)) {
				res.fail("needle search %s: total %d, %d traces, want exactly trace %s", u, sr.Total, len(sr.Traces), sc.Needle.TraceID)
			}
		}
	}

	// Broad search: 20 traces with their spans.
	u := searchURL(base, sc.Broad.Service, sc.Broad.Attr, true)
	for i := range b.opts.queries {
		var sr searchResponse
		_, d, err := get(ctx, u, &sr)
		if err != nil {
			res.fail("broad search %s: %v", u, err)
			break
		}
		res.broad = append(res.broad, d)
		if i > 0 {
			continue
		}
		if len(sr.Traces) != 20 {
			res.fail("broad search %s: %d traces, want 20", u, len(sr.Traces))
		}
		for _, t := range sr.Traces {
			if t.Trace == nil || t.Trace.spanCount() == 0 || (t.SpanCount > 0 && t.Trace.spanCount() != t.SpanCount) {
				res.fail("broad search: trace %s lacks its full spans (traces=full)", t.TraceID)
				break
			}
		}
	}
}
