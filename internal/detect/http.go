package detect

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// Handler serves the detector's answers under /api/v1 (docs/api.md,
// "Baselines, anomalies and deployments").
type Handler struct {
	d   *Detector
	now func() time.Time
}

// NewHandler returns the HTTP handler of d; d may be nil (the feature is
// off), and then every route answers 503.
func NewHandler(d *Detector) *Handler {
	h := &Handler{d: d, now: time.Now}
	if d != nil {
		h.now = d.now
	}
	return h
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/baselines", h.baselines)
	mux.HandleFunc("GET /api/v1/anomalies", h.anomalies)
	mux.HandleFunc("GET /api/v1/deploys", h.deploys)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (h *Handler) off(w http.ResponseWriter) bool {
	if h.d == nil {
		writeError(w, http.StatusServiceUnavailable, "anomaly detection is off: it needs spanmetrics.enabled and detect.enabled")
		return true
	}
	return false
}

// maxParamLen bounds every query parameter.
const maxParamLen = 1024

// parseRange reads start/end (RFC 3339 or unix seconds) or since (a Go
// duration, default 1h).
func parseRange(v url.Values, now time.Time) (time.Time, time.Time, error) {
	for k, vals := range v {
		for _, s := range vals {
			if len(s) > maxParamLen {
				return time.Time{}, time.Time{}, fmt.Errorf("parameter %s is longer than %d bytes", k, maxParamLen)
			}
		}
	}
	end := now
	if s := v.Get("end"); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("end: %w", err)
		}
		end = t
	}
	start := end.Add(-time.Hour)
	switch {
	case v.Get("start") != "" && v.Get("since") != "":
		return time.Time{}, time.Time{}, fmt.Errorf("give start or since, not both")
	case v.Get("start") != "":
		t, err := parseTime(v.Get("start"))
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("start: %w", err)
		}
		start = t
	case v.Get("since") != "":
		d, err := time.ParseDuration(v.Get("since"))
		if err != nil || d <= 0 {
			return time.Time{}, time.Time{}, fmt.Errorf("since %q: want a positive duration such as 15m or 24h", v.Get("since"))
		}
		start = end.Add(-d)
	}
	if end.Before(start) {
		return time.Time{}, time.Time{}, fmt.Errorf("end is before start")
	}
	return start.UTC(), end.UTC(), nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 && n < 1e11 {
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 or unix seconds", s)
}

// status is the state of the detector every answer carries.
type status struct {
	// EvaluatedAt is the last evaluation (null before the first); Error
	// its error, if it failed.
	EvaluatedAt *time.Time `json:"evaluatedAt"`
	Error       string     `json:"error,omitempty"`
	// HostStalls are the minutes of the last hour in which most
	// operations of most services were slower at once (the host, not an
	// operation): left out of the latency and throughput tests.
	HostStalls []time.Time `json:"hostStalls,omitempty"`
}

func (d *Detector) status() status {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s status
	if !d.lastEval.IsZero() {
		t := d.lastEval.UTC()
		s.EvaluatedAt = &t
	}
	if d.lastErr != nil {
		s.Error = d.lastErr.Error()
	}
	s.HostStalls = slices.Clone(d.hostOut)
	return s
}

// HostStalls returns the minutes of the last hour found host-wide slow
// (the hostStalls of every answer).
func (d *Detector) HostStalls() []time.Time { return d.status().HostStalls }

// BaselinesResponse is the answer of GET /api/v1/baselines.
type BaselinesResponse struct {
	status
	Baselines []Baseline `json:"baselines"`
}

func (h *Handler) baselines(w http.ResponseWriter, r *http.Request) {
	if h.off(w) {
		return
	}
	v := r.URL.Query()
	svc, op, kindS := v.Get("service"), v.Get("operation"), strings.ToLower(v.Get("kind"))
	if len(svc) > maxParamLen || len(op) > maxParamLen {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("service and operation are at most %d bytes", maxParamLen))
		return
	}
	var kind span.Kind
	if kindS != "" {
		k, ok := span.ParseKind(kindS)
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("kind %q: want server, client, consumer, producer or internal", kindS))
			return
		}
		kind = k
	}
	out := BaselinesResponse{status: h.d.status(), Baselines: []Baseline{}}
	for _, b := range h.d.Baselines() {
		if svc != "" && b.Service != svc || op != "" && b.Operation != op || kindS != "" && b.Kind != kind.String() {
			continue
		}
		out.Baselines = append(out.Baselines, b)
	}
	writeJSON(w, http.StatusOK, out)
}

// AnomaliesResponse is the answer of GET /api/v1/anomalies.
type AnomaliesResponse struct {
	status
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Anomalies []Anomaly `json:"anomalies"`
}

func (h *Handler) anomalies(w http.ResponseWriter, r *http.Request) {
	if h.off(w) {
		return
	}
	start, end, err := parseRange(r.URL.Query(), h.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, AnomaliesResponse{status: h.d.status(), Start: start, End: end, Anomalies: h.d.Anomalies(start, end)})
}

// DeploysResponse is the answer of GET /api/v1/deploys.
type DeploysResponse struct {
	status
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Deploys []Deploy  `json:"deploys"`
}

func (h *Handler) deploys(w http.ResponseWriter, r *http.Request) {
	if h.off(w) {
		return
	}
	start, end, err := parseRange(r.URL.Query(), h.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, DeploysResponse{status: h.d.status(), Start: start, End: end, Deploys: h.d.Deploys(start, end)})
}

// Baselines returns the baseline of every operation as of the last
// evaluation, sorted by service, operation and kind.
func (d *Detector) Baselines() []Baseline {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.baselineOut)
}

// publishBaselines renders the baselines of this evaluation.
func (d *Detector) publishBaselines(ops map[opKey]*opSeries, seasonal map[opKey][]seasonalWindow, now time.Time) {
	ex := d.excludedNow()
	out := make([]Baseline, 0, len(ops))
	for _, s := range sortedOps(ops) {
		bases, fallback, excluded := d.baselinesFor(s, seasonal, d.cache.firstMinute, ex, now)
		out = append(out, publicBaseline(s.key, bases[0], d.cfg, fallback, excluded))
	}
	d.mu.Lock()
	d.baselineOut = out
	d.mu.Unlock()
}
