package logapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/logs"
	"github.com/clew-dev/clew/internal/span"
)

// Loki's defaults and bounds.
const (
	lokiDefaultLimit = 100
	lokiMaxLimit     = 5000
)

// RegisterLoki mounts the Loki HTTP API subset Grafana's Loki data source
// needs under /loki/api/v1/ (docs/api.md, "Loki API").
func (a *API) RegisterLoki(mux *http.ServeMux) {
	for path, h := range map[string]http.HandlerFunc{
		"/loki/api/v1/query_range":         a.lokiQueryRange,
		"/loki/api/v1/query":               a.lokiQuery,
		"/loki/api/v1/labels":              a.lokiLabels,
		"/loki/api/v1/label/{name}/values": a.lokiLabelValues,
		"/loki/api/v1/series":              a.lokiSeries,
	} {
		mux.HandleFunc("GET "+path, h)
		mux.HandleFunc("POST "+path, h) // Loki takes form-encoded POSTs too
	}
}

// lokiError answers as Loki does: the status and the message as text.
func lokiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}

func (a *API) lokiForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		lokiError(w, http.StatusBadRequest, "parse form: "+err.Error())
		return false
	}
	return true
}

// lokiRange reads start, end and since (Loki's defaults: the last hour).
func (a *API) lokiRange(w http.ResponseWriter, r *http.Request) (start, end int64, ok bool) {
	rg, err := httpapi.ParseRange(r.Form, a.now(), httpapi.RangeOptions{Default: time.Hour, AllowEmpty: true})
	if err != nil {
		lokiError(w, http.StatusBadRequest, err.Error())
		return 0, 0, false
	}
	return rg.Start.UnixNano(), rg.End.UnixNano(), true
}

func (a *API) lokiQueryRange(w http.ResponseWriter, r *http.Request) {
	if !a.lokiForm(w, r) {
		return
	}
	qs := r.Form.Get("query")
	if isMetric(qs) {
		m, err := parseMetric(qs)
		if err != nil {
			lokiError(w, http.StatusBadRequest, err.Error())
			return
		}
		start, end, ok := a.lokiRange(w, r)
		if !ok {
			return
		}
		// Loki's default step: the range over 250, at least a second.
		step := max(time.Duration(end-start)/250, time.Second).Truncate(time.Second)
		if s := r.Form.Get("step"); s != "" {
			if step, err = parseStep(s); err != nil {
				lokiError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		a.evalMetric(w, r, m, start, end, step, false)
		return
	}
	q, err := ParseLogQL(qs)
	if err != nil {
		lokiError(w, http.StatusBadRequest, err.Error())
		return
	}
	start, end, ok := a.lokiRange(w, r)
	if !ok {
		return
	}
	// Loki's range is [start, end).
	q.Start, q.End = start, end
	limit, err := httpapi.ParseLimit(r.Form, "limit", lokiDefaultLimit, lokiMaxLimit)
	if err != nil {
		lokiError(w, http.StatusBadRequest, err.Error())
		return
	}
	forward := false
	switch d := r.Form.Get("direction"); d {
	case "", "backward", "BACKWARD":
	case "forward", "FORWARD":
		forward = true
	default:
		lokiError(w, http.StatusBadRequest, "direction "+strconv.Quote(d)+": want forward or backward")
		return
	}
	p, err := a.r.SearchLogs(r.Context(), q, limit, logs.Cursor{})
	if err != nil {
		httpapi.WriteQueryError(w, r, err, "query timed out: narrow the time range or the selector", a.log)
		return
	}
	if forward {
		// The newest limit records of the range, oldest first. (Loki's
		// forward gives the oldest limit records; clew's store reads
		// newest first.)
		slices.Reverse(p.Records)
	}
	writeStreams(w, p.Records)
}

// writeStreams answers a log query's records grouped by stream (their
// resource's labels), in the order given.
func writeStreams(w http.ResponseWriter, recs []logs.Record) {
	type stream struct {
		labels []byte
		values []byte
	}
	var order []string
	streams := map[string]*stream{}
	for i := range recs {
		r := &recs[i]
		lb := appendLabels(nil, r.Resource)
		st := streams[string(lb)]
		if st == nil {
			st = &stream{labels: lb}
			streams[string(lb)] = st
			order = append(order, string(lb))
		}
		if len(st.values) > 0 {
			st.values = append(st.values, ',')
		}
		st.values = append(st.values, `["`...)
		st.values = strconv.AppendInt(st.values, r.Time, 10)
		st.values = append(st.values, `",`...)
		st.values = span.AppendJSONString(st.values, r.Body)
		st.values = append(st.values, ']')
	}
	b := []byte(`{"status":"success","data":{"resultType":"streams","result":[`)
	for i, k := range order {
		if i > 0 {
			b = append(b, ',')
		}
		st := streams[k]
		b = append(b, `{"stream":`...)
		b = append(b, st.labels...)
		b = append(b, `,"values":[`...)
		b = append(b, st.values...)
		b = append(b, "]}"...)
	}
	b = append(b, `],"stats":{}}}`...)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// appendLabels appends the JSON object of a resource's labels, sorted by
// name.
func appendLabels(dst []byte, res []logs.KV) []byte {
	type kv struct{ k, v string }
	ls := make([]kv, 0, len(res))
	for _, a := range res {
		ls = append(ls, kv{logs.LabelName(a.Key), a.Value})
	}
	slices.SortStableFunc(ls, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	dst = append(dst, '{')
	for i, l := range ls {
		if i > 0 && ls[i-1].k == l.k {
			continue // two keys with one label name: the first wins
		}
		if len(dst) > 1 && dst[len(dst)-1] != '{' {
			dst = append(dst, ',')
		}
		dst = span.AppendJSONString(dst, l.k)
		dst = append(dst, ':')
		dst = span.AppendJSONString(dst, l.v)
	}
	return append(dst, '}')
}

func (a *API) lokiQuery(w http.ResponseWriter, r *http.Request) {
	if !a.lokiForm(w, r) {
		return
	}
	qs := r.Form.Get("query")
	if isMetric(qs) {
		m, err := parseMetric(qs)
		if err != nil {
			lokiError(w, http.StatusBadRequest, err.Error())
			return
		}
		t := a.now()
		if s := r.Form.Get("time"); s != "" {
			if t, err = httpapi.ParseTime(s); err != nil {
				lokiError(w, http.StatusBadRequest, "time: "+err.Error())
				return
			}
		}
		a.evalMetric(w, r, m, t.UnixNano(), t.UnixNano(), time.Second, true)
		return
	}
	if _, err := ParseLogQL(qs); err != nil {
		lokiError(w, http.StatusBadRequest, err.Error())
		return
	}
	// As Loki: a log query has no instant form.
	lokiError(w, http.StatusBadRequest, "log queries are not supported as an instant query type, please change your query to a range query type")
}

// isMetric reports whether a LogQL query is a metric query (it does not
// start with a stream selector).
func isMetric(q string) bool {
	q = strings.TrimSpace(q)
	return q != "" && q[0] != '{'
}

// resources returns the distinct label sets of the tenant's records in
// the request's range, as JSON objects and their resources.
func (a *API) resources(w http.ResponseWriter, r *http.Request) ([][]logs.KV, bool) {
	start, end, ok := a.lokiRange(w, r)
	if !ok {
		return nil, false
	}
	res, err := a.r.LogResources(r.Context(), start, end+1)
	if err != nil {
		httpapi.WriteQueryError(w, r, err, "label query timed out", a.log)
		return nil, false
	}
	return res, true
}

func writeStrings(w http.ResponseWriter, ss []string) {
	slices.Sort(ss)
	ss = slices.Compact(ss)
	b := []byte(`{"status":"success","data":[`)
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = span.AppendJSONString(b, s)
	}
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (a *API) lokiLabels(w http.ResponseWriter, r *http.Request) {
	if !a.lokiForm(w, r) {
		return
	}
	res, ok := a.resources(w, r)
	if !ok {
		return
	}
	var names []string
	for _, kvs := range res {
		for _, kv := range kvs {
			names = append(names, logs.LabelName(kv.Key))
		}
	}
	writeStrings(w, names)
}

func (a *API) lokiLabelValues(w http.ResponseWriter, r *http.Request) {
	if !a.lokiForm(w, r) {
		return
	}
	name := r.PathValue("name")
	var sel *logs.Query
	if s := r.Form.Get("query"); s != "" {
		q, err := ParseLogQL(s)
		if err != nil {
			lokiError(w, http.StatusBadRequest, err.Error())
			return
		}
		sel = q
	}
	res, ok := a.resources(w, r)
	if !ok {
		return
	}
	vals := []string{}
	for _, kvs := range res {
		if sel != nil && !logs.MatchResource(sel.Resource, kvs) {
			continue
		}
		for _, kv := range kvs {
			if logs.LabelName(kv.Key) == name {
				vals = append(vals, kv.Value)
				break
			}
		}
	}
	writeStrings(w, vals)
}

func (a *API) lokiSeries(w http.ResponseWriter, r *http.Request) {
	if !a.lokiForm(w, r) {
		return
	}
	var sels []*logs.Query
	for _, s := range r.Form["match[]"] {
		q, err := ParseLogQL(s)
		if err != nil {
			lokiError(w, http.StatusBadRequest, "match[]: "+err.Error())
			return
		}
		if len(q.Contains)+len(q.NotContains)+len(q.Regexp)+len(q.NotRegexp) > 0 || q.TraceID != nil {
			lokiError(w, http.StatusBadRequest, "match[]: want a stream selector without line filters")
			return
		}
		sels = append(sels, q)
	}
	if len(sels) == 0 {
		lokiError(w, http.StatusBadRequest, errors.New("match[] is required").Error())
		return
	}
	res, ok := a.resources(w, r)
	if !ok {
		return
	}
	seen := map[string]bool{}
	var out []string
	for _, kvs := range res {
		for _, q := range sels {
			if logs.MatchResource(q.Resource, kvs) {
				if lb := string(appendLabels(nil, kvs)); !seen[lb] {
					seen[lb] = true
					out = append(out, lb)
				}
				break
			}
		}
	}
	slices.Sort(out)
	b := []byte(`{"status":"success","data":[`)
	b = append(b, strings.Join(out, ",")...)
	b = append(b, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
