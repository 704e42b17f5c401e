package tempo

import (
	"encoding/json"
	"regexp"
	"testing"
)

// digits is what a 64-bit integer or a nanosecond time looks like as the
// JSON string Grafana expects.
var digits = regexp.MustCompile(`^[0-9]+$`)

// checkSearchWire checks a search answer against the traps Grafana's
// Tempo datasource sets (anchors §2.1): nanosecond times and 64-bit
// integers are strings, spanSets is never empty, and enum values
// (status, kind) and durations in attributes are strings.
func checkSearchWire(t *testing.T, what string, body []byte) {
	t.Helper()
	var resp struct {
		Traces []struct {
			TraceID           string           `json:"traceID"`
			StartTimeUnixNano any              `json:"startTimeUnixNano"`
			DurationMs        *float64         `json:"durationMs"`
			SpanSet           *json.RawMessage `json:"spanSet"`
			SpanSets          []struct {
				Spans []struct {
					SpanID            string            `json:"spanID"`
					StartTimeUnixNano any               `json:"startTimeUnixNano"`
					DurationNanos     any               `json:"durationNanos"`
					Attributes        []json.RawMessage `json:"attributes"`
				} `json:"spans"`
				Matched    *int              `json:"matched"`
				Attributes []json.RawMessage `json:"attributes"`
			} `json:"spanSets"`
		} `json:"traces"`
		Metrics map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	str := func(v any, field string) {
		if s, ok := v.(string); !ok || !digits.MatchString(s) {
			t.Errorf("%s: %s = %#v, want a string of digits", what, field, v)
		}
	}
	str(resp.Metrics["inspectedBytes"], "metrics.inspectedBytes")
	for _, tr := range resp.Traces {
		str(tr.StartTimeUnixNano, "startTimeUnixNano")
		if tr.DurationMs == nil {
			t.Errorf("%s: trace %s without durationMs", what, tr.TraceID)
		}
		if len(tr.SpanSets) == 0 || tr.SpanSet == nil {
			t.Errorf("%s: trace %s has no spanSets", what, tr.TraceID)
		}
		for _, ss := range tr.SpanSets {
			if len(ss.Spans) == 0 || ss.Matched == nil || *ss.Matched < len(ss.Spans) {
				t.Errorf("%s: trace %s has a spanset of %d spans, matched %v", what, tr.TraceID, len(ss.Spans), ss.Matched)
			}
			attrs := ss.Attributes
			for _, sp := range ss.Spans {
				str(sp.StartTimeUnixNano, "span startTimeUnixNano")
				str(sp.DurationNanos, "span durationNanos")
				attrs = append(attrs, sp.Attributes...)
			}
			for _, a := range attrs {
				checkAttrWire(t, what, a)
			}
		}
	}
}

// checkAttrWire checks one KeyValue: ints are strings, and status, kind
// and duration values are strings.
func checkAttrWire(t *testing.T, what string, raw json.RawMessage) {
	t.Helper()
	var kv struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	}
	if err := json.Unmarshal(raw, &kv); err != nil {
		t.Fatalf("%s: attribute %s: %v", what, raw, err)
	}
	if v, ok := kv.Value["intValue"]; ok {
		if s, ok := v.(string); !ok || !regexp.MustCompile(`^-?[0-9]+$`).MatchString(s) {
			t.Errorf("%s: %s intValue %#v, want a string", what, kv.Key, v)
		}
	}
	switch kv.Key {
	case "status", "kind", "duration", "span:status", "span:kind", "span:duration", "traceDuration", "trace:duration":
		if _, ok := kv.Value["stringValue"].(string); !ok {
			t.Errorf("%s: %s = %s, want a string value", what, kv.Key, raw)
		}
	}
}

// TestSearchWire runs searches of every kind and checks each answer's wire
// shape.
func TestSearchWire(t *testing.T) {
	srv := newTestServer(t)
	for _, query := range []string{
		"q=" + q(`{ }`),
		"q=" + q(`{ status = error } | select(status, kind, duration, statusMessage, span.http.status_code, span.amount, span.tags)`),
		"q=" + q(`{ kind = server } >> { name = "db.query" } | select(span.db.system, nestedSetParent, nestedSetLeft, nestedSetRight)`),
		"q=" + q(`{ } | by(resource.service.name) | count() > 1`),
		"q=" + q(`{ } | avg(duration) > 1ms`),
		"q=" + q(`{ kind = consumer }`),
		"q=" + q(`{ nestedSetParent < 0 } &>> { }`) + "&spss=1",
		"q=" + q(`{ } | select(traceDuration, rootName, rootServiceName) with(most_recent=true)`),
		"q=" + q(`{ span.db.system = "mysql" } ~ { span.db.system = "postgres" }`),
		"q=" + q(`{ } !>> { }`),
		"tags=" + q(`service.name=frontend`),
		"tags=" + q(`status.code=error`) + "&minDuration=1ms",
		"limit=1",
	} {
		resp, body := get(t, srv, "/tempo/api/search?"+query)
		if resp.StatusCode != 200 {
			t.Fatalf("search %s: %d %s", query, resp.StatusCode, body)
		}
		checkSearchWire(t, query, body)
	}
}
