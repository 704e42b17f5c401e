package logapi

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/logs"
	"github.com/clew-dev/clew/internal/span"
)

// The LogQL metric queries clew answers:
//
//	metric := [ "sum" [ by ] "(" ] range ")" [ by ]
//	range  := ( "count_over_time" | "rate" ) "(" query "[" duration "]" ")"
//	by     := "by" "(" label { "," label } ")"
//
// count_over_time counts the records of each stream in the window ending at
// each step; rate divides by the window in seconds; sum adds the streams
// up, by the given labels.

// Bounds of a metric query.
const (
	maxMetricRecords = 2_000_000 // records a metric query may count
	maxPoints        = 11_000    // steps of a range query
)

type metricQuery struct {
	fn     string // count_over_time or rate
	q      *logs.Query
	window time.Duration
	sum    bool
	by     []string // with sum: the labels kept
}

func (p *logqlParser) by() ([]string, error) {
	p.space()
	if !p.peek("(") {
		return nil, p.errf(false, "want ( after by")
	}
	p.pos++
	var out []string
	for {
		p.space()
		if p.peek(")") {
			p.pos++
			return out, nil
		}
		if len(out) > 0 {
			if !p.peek(",") {
				return nil, p.errf(false, "want , or ) in by (...)")
			}
			p.pos++
			p.space()
		}
		l := p.ident()
		if l == "" {
			return nil, p.errf(false, "want a label name in by (...)")
		}
		out = append(out, l)
	}
}

// parseMetric parses a metric query of the supported subset.
func parseMetric(s string) (*metricQuery, error) {
	if len(s) > maxQueryLen {
		return nil, &LogQLError{Msg: fmt.Sprintf("the query is %d bytes, at most %d", len(s), maxQueryLen)}
	}
	p := &logqlParser{s: s}
	m := &metricQuery{}
	p.space()
	at := p.pos
	id := p.ident()
	if id == "sum" {
		m.sum = true
		p.space()
		if strings.HasPrefix(p.s[p.pos:], "by") {
			p.pos += 2
			by, err := p.by()
			if err != nil {
				return nil, err
			}
			m.by = by
			p.space()
		}
		if !p.peek("(") {
			return nil, p.errf(false, "want ( after sum")
		}
		p.pos++
		p.space()
		at = p.pos
		id = p.ident()
	}
	switch id {
	case "count_over_time", "rate":
		m.fn = id
	case "":
		p.pos = at
		return nil, p.errf(false, "want a metric query such as count_over_time({...}[5m])")
	default:
		p.pos = at
		return nil, p.errf(true, "the metric function %s is not supported (clew has count_over_time and rate, optionally inside sum [by (...)])", id)
	}
	p.space()
	if !p.peek("(") {
		return nil, p.errf(false, "want ( after %s", id)
	}
	p.pos++
	q, err := p.logQuery(true)
	if err != nil {
		return nil, err
	}
	m.q = q
	if !p.peek("[") {
		return nil, p.errf(false, "want a range [duration] after the log query of %s", id)
	}
	end := strings.IndexByte(p.s[p.pos:], ']')
	if end < 0 {
		return nil, p.errf(false, "unterminated range [")
	}
	d, err := parseLokiDuration(p.s[p.pos+1 : p.pos+end])
	if err != nil || d <= 0 {
		return nil, p.errf(false, "range [%s]: want a positive duration such as 5m", p.s[p.pos+1:p.pos+end])
	}
	m.window = d
	p.pos += end + 1
	p.space()
	if !p.peek(")") {
		return nil, p.errf(false, "want ) to close %s", id)
	}
	p.pos++
	if m.sum {
		p.space()
		if !p.peek(")") {
			return nil, p.errf(false, "want ) to close sum")
		}
		p.pos++
		p.space()
		if strings.HasPrefix(p.s[p.pos:], "by") {
			if m.by != nil {
				return nil, p.errf(false, "by given twice")
			}
			p.pos += 2
			if m.by, err = p.by(); err != nil {
				return nil, err
			}
		}
	}
	p.space()
	if p.pos < len(p.s) {
		return nil, p.errf(true, "%q after the metric query is not supported", p.s[p.pos:min(p.pos+20, len(p.s))])
	}
	return m, nil
}

// parseLokiDuration reads a Go duration, also with d (days) and w (weeks)
// as Prometheus and Loki write them.
func parseLokiDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v > 10000 {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return time.Duration(v) * u.d, nil
		}
	}
	return time.ParseDuration(s)
}

// parseStep reads Loki's step: a duration or a number of seconds.
func parseStep(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || f > 1e9 {
			return 0, fmt.Errorf("step %q: want a positive duration", s)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := parseLokiDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("step %q: want a positive duration such as 30s or a number of seconds", s)
	}
	return d, nil
}

// seriesKey is the labels of a record's series as a JSON object.
func (m *metricQuery) seriesKey(r *logs.Record) string {
	if !m.sum {
		return string(appendLabels(nil, r.Resource))
	}
	var kvs []logs.KV
	for _, l := range m.by {
		found := false
		for _, a := range r.Resource {
			if logs.LabelName(a.Key) == l {
				kvs = append(kvs, logs.KV{Key: l, Value: a.Value})
				found = true
				break
			}
		}
		if !found && (l == "level" || l == "detected_level") && r.Severity > 0 {
			// Grafana's log volume groups by the level: the severity's
			// name, as Loki's detected_level (info, warn, error, ...).
			kvs = append(kvs, logs.KV{Key: l, Value: levelName(r.Severity)})
		}
	}
	return string(appendLabels(nil, kvs))
}

// eval counts the records into the steps start, start+step, ..., end
// (a record at t counts at every step s with s-window < t <= s).
func (a *API) evalMetric(w http.ResponseWriter, r *http.Request, m *metricQuery, start, end int64, step time.Duration, instant bool) {
	steps := (end-start)/int64(step) + 1
	if steps > maxPoints {
		lokiError(w, http.StatusBadRequest, fmt.Sprintf("the range holds %d steps, at most %d: raise step", steps, maxPoints))
		return
	}
	q := *m.q
	q.Start, q.End = start-int64(m.window)+1, end+1
	series := map[string][]float64{}
	var order []string
	var cursor logs.Cursor
	n := 0
	for {
		p, err := a.r.SearchLogs(r.Context(), &q, 10_000, cursor)
		if err != nil {
			httpapi.WriteQueryError(w, r, err, "metric query timed out: narrow the time range or the selector", a.log)
			return
		}
		for i := range p.Records {
			rec := &p.Records[i]
			k := m.seriesKey(rec)
			vals := series[k]
			if vals == nil {
				vals = make([]float64, steps)
				series[k] = vals
				order = append(order, k)
			}
			// Steps s with rec.Time <= s < rec.Time + window.
			first := max(0, (rec.Time-start+int64(step)-1)/int64(step))
			for s := first; s < steps && start+s*int64(step) < rec.Time+int64(m.window); s++ {
				vals[s]++
			}
		}
		n += len(p.Records)
		if n > maxMetricRecords {
			lokiError(w, http.StatusBadRequest, fmt.Sprintf("the query counts more than %d records: narrow the time range or the selector", maxMetricRecords))
			return
		}
		if !p.Next.Set {
			break
		}
		cursor = p.Next
	}
	slices.Sort(order)
	div := 1.0
	if m.fn == "rate" {
		div = m.window.Seconds()
	}
	b := []byte(`{"status":"success","data":{"resultType":"`)
	if instant {
		b = append(b, `vector","result":[`...)
	} else {
		b = append(b, `matrix","result":[`...)
	}
	for i, k := range order {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = append(b, k...)
		if instant {
			b = append(b, `,"value":`...)
			b = appendPoint(b, start, series[k][0]/div)
			b = append(b, '}')
			continue
		}
		b = append(b, `,"values":[`...)
		first := true
		for s, v := range series[k] {
			if v == 0 {
				continue // as Loki: no point where no record counted
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendPoint(b, start+int64(s)*int64(step), v/div)
		}
		b = append(b, "]}"...)
	}
	b = append(b, `],"stats":{}}}`...)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// appendPoint appends [<unix seconds>, "<value>"].
func appendPoint(b []byte, t int64, v float64) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, t/1e9, 10)
	if frac := t % 1e9; frac != 0 {
		f := strconv.FormatInt(1e9+frac, 10)[1:] // nine digits
		b = append(b, '.')
		b = append(b, strings.TrimRight(f, "0")...)
	}
	b = append(b, ',')
	if math.IsInf(v, 0) || math.IsNaN(v) {
		v = 0
	}
	b = span.AppendJSONString(b, strconv.FormatFloat(v, 'f', -1, 64))
	return append(b, ']')
}

// levelName is Loki's level name of a severity number.
func levelName(sev uint8) string {
	n := strings.ToLower(logs.SeverityName(sev))
	return strings.TrimRight(n, "234")
}
