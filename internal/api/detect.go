package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/httpapi"
	"github.com/clew-dev/clew/internal/span"
)

// Detection serves the detector's answers under /api/v1 (docs/api.md,
// "Baselines, anomalies and deployments").
type Detection struct {
	d   *detect.Detector
	now func() time.Time
}

// NewDetection returns the endpoints over d; d may be nil (the feature is
// off), and then every route answers 503.
func NewDetection(d *detect.Detector) *Detection {
	h := &Detection{d: d, now: time.Now}
	if d != nil {
		h.now = d.Now
	}
	return h
}

// Register adds GET /api/v1/baselines, /api/v1/anomalies and
// /api/v1/deploys to mux.
func (h *Detection) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/baselines", h.baselines)
	mux.HandleFunc("GET /api/v1/anomalies", h.anomalies)
	mux.HandleFunc("GET /api/v1/deploys", h.deploys)
}

// maxDetectParamLen bounds every query parameter of the detection
// endpoints.
const maxDetectParamLen = 1024

// defaultDetectWindow is the window of anomalies and deploys without start
// or since.
const defaultDetectWindow = time.Hour

func (h *Detection) off(w http.ResponseWriter) bool {
	if h.d == nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, "anomaly detection is off: it needs spanmetrics.enabled and detect.enabled")
		return true
	}
	return false
}

// window reads the time parameters (httpapi.ParseRange; an empty window
// is accepted and answers nothing).
func (h *Detection) window(w http.ResponseWriter, r *http.Request) (httpapi.Range, bool) {
	v := r.URL.Query()
	if err := httpapi.CheckParamLen(v, maxDetectParamLen); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return httpapi.Range{}, false
	}
	rng, err := httpapi.ParseRange(v, h.now(), httpapi.RangeOptions{Default: defaultDetectWindow, AllowEmpty: true})
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return httpapi.Range{}, false
	}
	rng.Start, rng.End = rng.Start.UTC(), rng.End.UTC()
	return rng, true
}

// BaselinesResponse is the answer of GET /api/v1/baselines.
type BaselinesResponse struct {
	detect.Status
	Baselines []detect.Baseline `json:"baselines"`
}

func (h *Detection) baselines(w http.ResponseWriter, r *http.Request) {
	if h.off(w) {
		return
	}
	v := r.URL.Query()
	if err := httpapi.CheckParamLen(v, maxDetectParamLen); err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	svc, op, kindS := v.Get("service"), v.Get("operation"), strings.ToLower(v.Get("kind"))
	var kind span.Kind
	if kindS != "" {
		k, ok := span.ParseKind(kindS)
		if !ok {
			httpapi.WriteError(w, http.StatusBadRequest, fmt.Sprintf("kind %q: want server, client, consumer, producer or internal", kindS))
			return
		}
		kind = k
	}
	out := BaselinesResponse{Status: h.d.Status(), Baselines: []detect.Baseline{}}
	for _, b := range h.d.Baselines() {
		if svc != "" && b.Service != svc || op != "" && b.Operation != op || kindS != "" && b.Kind != kind.String() {
			continue
		}
		out.Baselines = append(out.Baselines, b)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// AnomaliesResponse is the answer of GET /api/v1/anomalies.
type AnomaliesResponse struct {
	detect.Status
	Start     time.Time        `json:"start"`
	End       time.Time        `json:"end"`
	Anomalies []detect.Anomaly `json:"anomalies"`
}

func (h *Detection) anomalies(w http.ResponseWriter, r *http.Request) {
	if h.off(w) {
		return
	}
	rng, ok := h.window(w, r)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, AnomaliesResponse{Status: h.d.Status(), Start: rng.Start, End: rng.End, Anomalies: h.d.Anomalies(rng.Start, rng.End)})
}

// DeploysResponse is the answer of GET /api/v1/deploys.
type DeploysResponse struct {
	detect.Status
	Start   time.Time       `json:"start"`
	End     time.Time       `json:"end"`
	Deploys []detect.Deploy `json:"deploys"`
}

func (h *Detection) deploys(w http.ResponseWriter, r *http.Request) {
	if h.off(w) {
		return
	}
	rng, ok := h.window(w, r)
	if !ok {
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, DeploysResponse{Status: h.d.Status(), Start: rng.Start, End: rng.End, Deploys: h.d.Deploys(rng.Start, rng.End)})
}
