package api

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/detect/detecttest"
)

// TestDetectionGolden pins every response shape of the detection
// endpoints: a bad canary's anomaly and deployment, the baselines of one
// service, the empty answers, the errors, the feature off.
func TestDetectionGolden(t *testing.T) {
	e := detecttest.New(t, 7, detect.Config{})
	e.Shop.Rate = 120
	mux := http.NewServeMux()
	NewDetection(e.Det).Register(mux)

	e.Run(0, 20, 14)
	for _, c := range []struct{ name, target string }{
		{"anomalies_none", "/api/v1/anomalies?since=1h"},
		{"deploys_none", "/api/v1/deploys"},
	} {
		code, body := serveJSON(t, mux, c.target)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", c.target, code, body)
		}
		checkGoldenFile(t, "detect_"+c.name+".golden.json", body)
	}
	e.Shop.Canary, e.Shop.CanaryExtra, e.Shop.CanaryErr = "2.0.0", 250*time.Millisecond, 0.1
	e.Run(20, 23, 20)
	end := e.Clock.Now().UTC()
	for _, c := range []struct{ name, target string }{
		{"anomalies", "/api/v1/anomalies?since=1h"},
		{"anomalies_range", "/api/v1/anomalies?start=" + detecttest.T0.Format(time.RFC3339) + "&end=" + end.Format(time.RFC3339)},
		// The same window in Unix milliseconds: one set of time formats
		// across the native API.
		{"anomalies_range", "/api/v1/anomalies?start=" + ms(detecttest.T0) + "&end=" + ms(end.Truncate(time.Second))},
		{"deploys", "/api/v1/deploys?since=30m"},
		{"baselines", "/api/v1/baselines?service=checkout&kind=server"},
	} {
		code, body := serveJSON(t, mux, c.target)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", c.target, code, body)
		}
		checkGoldenFile(t, "detect_"+c.name+".golden.json", body)
	}
	for _, c := range []struct {
		name, target string
		code         int
	}{
		{"error_since", "/api/v1/anomalies?since=yesterday", http.StatusBadRequest},
		{"error_range", "/api/v1/deploys?start=2026-03-02T12:00:00Z&end=2026-03-02T11:00:00Z", http.StatusBadRequest},
		{"error_kind", "/api/v1/baselines?kind=sideways", http.StatusBadRequest},
		{"error_both", "/api/v1/anomalies?since=1h&start=1700000000", http.StatusBadRequest},
	} {
		code, body := serveJSON(t, mux, c.target)
		if code != c.code {
			t.Errorf("GET %s: %d, want %d", c.target, code, c.code)
		}
		checkGoldenFile(t, "detect_"+c.name+".golden.json", body)
	}
	off := http.NewServeMux()
	NewDetection(nil).Register(off)
	code, body := serveJSON(t, off, "/api/v1/anomalies")
	if code != http.StatusServiceUnavailable {
		t.Errorf("disabled: %d, want 503", code)
	}
	checkGoldenFile(t, "detect_error_disabled.golden.json", body)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
