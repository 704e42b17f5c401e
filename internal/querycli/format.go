package querycli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// timeLayout is RFC 3339 with milliseconds at a fixed width, so that
// traces within one second still read apart.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// maxColumn caps the width a column is padded to; a longer cell overflows
// its column rather than widening every row.
const maxColumn = 40

// The answers below are decoded leniently, as protobuf JSON allows: 64-bit
// integers may be strings or numbers.

type searchAnswer struct {
	Traces []traceAnswer `json:"traces"`
}

type traceAnswer struct {
	TraceID           string          `json:"traceID"`
	RootServiceName   string          `json:"rootServiceName"`
	RootTraceName     string          `json:"rootTraceName"`
	StartTimeUnixNano number          `json:"startTimeUnixNano"`
	DurationMs        number          `json:"durationMs"`
	SpanSet           *spansetAnswer  `json:"spanSet"`
	SpanSets          []spansetAnswer `json:"spanSets"`
}

type spansetAnswer struct {
	Spans      []spanAnswer `json:"spans"`
	Matched    int          `json:"matched"`
	Attributes []keyValue   `json:"attributes"`
}

type spanAnswer struct {
	SpanID        string     `json:"spanID"`
	Name          string     `json:"name"`
	DurationNanos number     `json:"durationNanos"`
	Attributes    []keyValue `json:"attributes"`
}

type rangeAnswer struct {
	Series  []seriesAnswer `json:"series"`
	Status  string         `json:"status"`
	Message string         `json:"message"`
}

type seriesAnswer struct {
	Labels  []keyValue `json:"labels"`
	Samples []struct {
		TimestampMs number `json:"timestampMs"`
		Value       number `json:"value"`
	} `json:"samples"`
	PromLabels string `json:"promLabels"`
}

// keyValue is an OTLP KeyValue in protobuf JSON.
type keyValue struct {
	Key   string   `json:"key"`
	Value anyValue `json:"value"`
}

// anyValue is an OTLP AnyValue in protobuf JSON.
type anyValue struct {
	StringValue *string `json:"stringValue"`
	IntValue    *number `json:"intValue"`
	DoubleValue *number `json:"doubleValue"`
	BoolValue   *bool   `json:"boolValue"`
	BytesValue  *string `json:"bytesValue"`
	ArrayValue  *struct {
		Values []anyValue `json:"values"`
	} `json:"arrayValue"`
	KvlistValue *struct {
		Values []keyValue `json:"values"`
	} `json:"kvlistValue"`
}

// number is a JSON number or a string holding one ("123", "NaN").
type number string

// UnmarshalJSON accepts a number or a string.
func (n *number) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*n = number(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var x json.Number
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*n = number(x)
	return nil
}

// int reads n as an integer.
func (n number) int() (int64, bool) {
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// float reads n as a float, "NaN" and "Infinity" included.
func (n number) float() (float64, bool) {
	f, err := strconv.ParseFloat(string(n), 64)
	return f, err == nil
}

// runSearch sends a search and prints its answer.
func runSearch(ctx context.Context, o *options, stdout, stderr io.Writer, loc *time.Location) error {
	v := url.Values{"q": {o.query}, "limit": {strconv.Itoa(o.limit)}, "spss": {strconv.Itoa(o.spss)}}
	o.rangeParams(v)
	body, err := get(ctx, o, "/api/search", v)
	if err != nil {
		return err
	}
	var ans searchAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return notJSON(o, err)
	}
	if o.output == OutputJSON {
		err = writeJSON(stdout, o, body)
	} else {
		_, err = stdout.Write(searchTable(&ans, loc))
	}
	if err != nil {
		return err
	}
	switch n := len(ans.Traces); {
	case n == 0:
		fmt.Fprintf(stderr, "no traces matched between %s and %s\n", o.start.In(loc).Format(time.RFC3339), o.end.In(loc).Format(time.RFC3339))
	case n >= o.limit:
		fmt.Fprintf(stderr, "showing the newest %d matching %s: raise --limit for more\n", n, plural(n, "trace", "traces"))
	}
	return nil
}

// searchTable renders traces as a table, each followed by its matched
// spans, one indented line each.
func searchTable(ans *searchAnswer, loc *time.Location) []byte {
	if len(ans.Traces) == 0 {
		return nil
	}
	traceRows := [][]string{{"TRACE ID", "START", "DURATION", "ROOT SERVICE", "ROOT NAME", "MATCHED"}}
	var spanRows [][]string
	// extra[i] are the lines of trace i (row i+1): spanset headings,
	// indices into spanRows, and notes on spans left out.
	type line struct {
		text string
		span int // index into spanRows when text is empty
	}
	extra := make([][]line, len(ans.Traces))
	for i, tr := range ans.Traces {
		sets := tr.SpanSets
		if len(sets) == 0 && tr.SpanSet != nil {
			sets = []spansetAnswer{*tr.SpanSet}
		}
		matched := 0
		for _, ss := range sets {
			matched += ss.Matched
			if len(ss.Attributes) > 0 {
				extra[i] = append(extra[i], line{text: fmt.Sprintf("  %s: %d matched", formatAttrs(ss.Attributes), ss.Matched)})
			}
			for _, sp := range ss.Spans {
				extra[i] = append(extra[i], line{span: len(spanRows)})
				spanRows = append(spanRows, []string{"  " + sp.SpanID, orDash(sp.Name), formatNanos(sp.DurationNanos), formatAttrs(sp.Attributes)})
			}
			if more := ss.Matched - len(ss.Spans); more > 0 {
				extra[i] = append(extra[i], line{text: fmt.Sprintf("  (%d more matched %s: raise --spss to list them)", more, plural(more, "span", "spans"))})
			}
		}
		start := string(tr.StartTimeUnixNano)
		if ns, ok := tr.StartTimeUnixNano.int(); ok {
			start = time.Unix(0, ns).In(loc).Format(timeLayout)
		}
		dur := string(tr.DurationMs)
		if ms, ok := tr.DurationMs.int(); ok {
			dur = formatDuration(time.Duration(ms) * time.Millisecond)
			if ms == 0 {
				dur = "<1ms"
			}
		}
		traceRows = append(traceRows, []string{tr.TraceID, start, dur, orDash(tr.RootServiceName), orDash(tr.RootTraceName), strconv.Itoa(matched)})
	}
	traces := align(traceRows)
	spans := align(spanRows)
	var b bytes.Buffer
	b.WriteString(traces[0])
	for i := range ans.Traces {
		b.WriteString(traces[i+1])
		for _, l := range extra[i] {
			if l.text != "" {
				b.WriteString(l.text + "\n")
			} else {
				b.WriteString(spans[l.span])
			}
		}
	}
	return b.Bytes()
}

// runMetrics sends a metrics range query and prints its answer.
func runMetrics(ctx context.Context, o *options, stdout, stderr io.Writer, loc *time.Location) error {
	v := url.Values{"q": {o.query}}
	o.rangeParams(v)
	if o.step > 0 {
		v.Set("step", o.step.String())
	}
	body, err := get(ctx, o, "/api/metrics/query_range", v)
	if err != nil {
		return err
	}
	var ans rangeAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return notJSON(o, err)
	}
	if o.output == OutputJSON {
		err = writeJSON(stdout, o, body)
	} else {
		_, err = stdout.Write(seriesTable(&ans, loc))
	}
	if err != nil {
		return err
	}
	if len(ans.Series) == 0 {
		fmt.Fprintf(stderr, "no series between %s and %s\n", o.start.In(loc).Format(time.RFC3339), o.end.In(loc).Format(time.RFC3339))
	}
	if ans.Status == "PARTIAL" {
		msg := ans.Message
		if msg == "" {
			msg = "the server cut the query short"
		}
		fmt.Fprintf(stderr, "warning: partial result: %s\n", strings.TrimPrefix(msg, "partial result: "))
	}
	return nil
}

// seriesTable renders each series as its labels, then one indented row per
// sample; a blank line separates series.
func seriesTable(ans *rangeAnswer, loc *time.Location) []byte {
	var b bytes.Buffer
	for i, s := range ans.Series {
		if i > 0 {
			b.WriteByte('\n')
		}
		labels := s.PromLabels
		if labels == "" {
			labels = promLabels(s.Labels)
		}
		b.WriteString(labels + "\n")
		rows := [][]string{{"  TIME", "VALUE"}}
		for _, x := range s.Samples {
			ts := string(x.TimestampMs)
			if ms, ok := x.TimestampMs.int(); ok {
				ts = time.UnixMilli(ms).In(loc).Format(timeLayout)
			}
			val := string(x.Value)
			if f, ok := x.Value.float(); ok {
				val = formatFloat(f)
			}
			rows = append(rows, []string{"  " + ts, val})
		}
		for _, r := range align(rows) {
			b.WriteString(r)
		}
	}
	return b.Bytes()
}

// promLabels renders labels as Prometheus does, {k="v", ...}, for a server
// that sends no promLabels.
func promLabels(kvs []keyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		v := formatValue(kv.Value)
		if kv.Value.StringValue != nil {
			v = strconv.Quote(*kv.Value.StringValue)
		}
		parts[i] = kv.Key + "=" + v
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// align pads the cells of rows to the widest cell of their column (at most
// maxColumn), two spaces apart, and returns each row as a line with its
// newline. The last cell of a row is not padded.
func align(rows [][]string) []string {
	var width []int
	for _, r := range rows {
		for j, c := range r {
			if j == len(width) {
				width = append(width, 0)
			}
			width[j] = max(width[j], min(utf8.RuneCountInString(c), maxColumn))
		}
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		var b strings.Builder
		for j, c := range r {
			if j == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", max(width[j]-utf8.RuneCountInString(c), 0)+2))
		}
		out[i] = strings.TrimRight(b.String(), " ") + "\n"
	}
	return out
}

// formatAttrs renders attributes as key=value, space-separated.
func formatAttrs(kvs []keyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = kv.Key + "=" + formatValue(kv.Value)
	}
	return strings.Join(parts, " ")
}

// formatValue renders an attribute value; a string is quoted when it would
// not read back as one word.
func formatValue(v anyValue) string {
	switch {
	case v.StringValue != nil:
		return quoteIfNeeded(*v.StringValue)
	case v.IntValue != nil:
		return string(*v.IntValue)
	case v.DoubleValue != nil:
		if f, ok := v.DoubleValue.float(); ok {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return string(*v.DoubleValue)
	case v.BoolValue != nil:
		return strconv.FormatBool(*v.BoolValue)
	case v.BytesValue != nil:
		return *v.BytesValue
	case v.ArrayValue != nil:
		parts := make([]string, len(v.ArrayValue.Values))
		for i, e := range v.ArrayValue.Values {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case v.KvlistValue != nil:
		kvs := append([]keyValue(nil), v.KvlistValue.Values...)
		sort.SliceStable(kvs, func(i, j int) bool { return kvs[i].Key < kvs[j].Key })
		return "{" + formatAttrs(kvs) + "}"
	}
	return "nil"
}

// quoteIfNeeded quotes s, Go style, when it is empty or holds spaces,
// quotes, equals signs, backslashes or unprintable characters.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' || r == '=' || r == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}

// formatNanos renders a duration in nanoseconds.
func formatNanos(n number) string {
	ns, ok := n.int()
	if !ok {
		return orDash(string(n))
	}
	return formatDuration(time.Duration(ns))
}

// formatDuration rounds d to four significant digits: 39.12ms, 1.235s.
func formatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	unit := time.Duration(1)
	for x := d; x >= 10_000; x /= 10 {
		unit *= 10
	}
	return d.Round(unit).String()
}

// formatFloat renders a sample value exactly when that is short, else to
// six significant digits.
func formatFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	if s := strconv.FormatFloat(f, 'f', -1, 64); len(s) <= 12 {
		return s
	}
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// orDash stands a dash in for an empty cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// plural picks the word for n things.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
