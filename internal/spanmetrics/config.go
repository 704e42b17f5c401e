package spanmetrics

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Config holds the user-facing settings of span metrics and the service
// graph (the spanmetrics: section of the configuration file).
type Config struct {
	// Enabled turns span metrics, the service graph and their history on.
	Enabled bool `yaml:"enabled"`
	// Dimensions are extra labels of the traces_spanmetrics_* series: each
	// is an attribute key, looked up on the span first and then on its
	// resource. The label name is the key with every character that a
	// Prometheus label cannot hold replaced by "_" (http.route →
	// http_route). The history (Range, /api/v1/red) does not keep them.
	Dimensions []string `yaml:"dimensions"`
	// MaxValuesPerDimension bounds the distinct values of each label
	// (service, span_name, each dimension, service.version, the virtual
	// nodes of the graph) among the live series; a new value beyond it is
	// replaced by "__other__" and counted in
	// clew_spanmetrics_overflow_total{dimension}.
	MaxValuesPerDimension int `yaml:"max_values_per_dimension"`
	// MaxSeries bounds the Prometheus series of span metrics and, as well,
	// the edges of the service graph. Beyond it spans fold into one series
	// whose labels are all "__other__" (counted with dimension="series").
	MaxSeries int `yaml:"max_series"`
	// HistogramBuckets are the bucket upper bounds, in seconds, of the
	// Prometheus latency histograms. The history keeps finer buckets of
	// its own (spanmetrics.LatencyBounds).
	HistogramBuckets []float64 `yaml:"histogram_buckets"`
	// PairingWait is how long a client (or producer) span waits for its
	// server (or consumer) span, and the other way round, before it counts
	// as unpaired (or, with a peer attribute, as a call to a virtual node).
	PairingWait time.Duration `yaml:"pairing_wait"`
	// MaxPendingPairs bounds the spans waiting for their partner; beyond
	// it new ones are dropped from the graph (counted in
	// traces_service_graph_dropped_spans_total).
	MaxPendingPairs int `yaml:"max_pending_pairs"`
}

// DefaultConfig returns the settings clew runs with when none are given.
func DefaultConfig() Config {
	return Config{
		Enabled:               true,
		Dimensions:            []string{},
		MaxValuesPerDimension: 1000,
		MaxSeries:             10000,
		HistogramBuckets:      []float64{0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384},
		PairingWait:           10 * time.Second,
		MaxPendingPairs:       100000,
	}
}

var builtinLabels = []string{"service", "span_name", "span_kind", "status_code", "client", "server", "connection_type", "le", "trace_id"}

var labelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// labelName turns an attribute key into a Prometheus label name.
func labelName(key string) string {
	b := []byte(key)
	for i, c := range b {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// Validate reports settings that cannot work, saying what to change.
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]string{}
	for _, d := range c.Dimensions {
		if d == "" {
			errs = append(errs, errors.New("dimensions: an empty attribute key"))
			continue
		}
		l := labelName(d)
		if !labelRE.MatchString(l) || slices.Contains(builtinLabels, l) || len(l) >= 2 && l[:2] == "__" {
			errs = append(errs, fmt.Errorf("dimensions: %q gives the label %q, which is reserved or invalid", d, l))
		}
		if prev, ok := seen[l]; ok {
			errs = append(errs, fmt.Errorf("dimensions: %q and %q both give the label %q", prev, d, l))
		}
		seen[l] = d
	}
	if len(c.Dimensions) > 16 {
		errs = append(errs, fmt.Errorf("dimensions: at most 16, got %d", len(c.Dimensions)))
	}
	if c.MaxValuesPerDimension < 1 {
		errs = append(errs, fmt.Errorf("max_values_per_dimension must be positive, got %d", c.MaxValuesPerDimension))
	}
	if c.MaxSeries < 1 {
		errs = append(errs, fmt.Errorf("max_series must be positive, got %d", c.MaxSeries))
	}
	if len(c.HistogramBuckets) == 0 || len(c.HistogramBuckets) > 64 {
		errs = append(errs, fmt.Errorf("histogram_buckets: want 1 to 64 bounds, got %d", len(c.HistogramBuckets)))
	}
	for i, b := range c.HistogramBuckets {
		if !(b > 0) || i > 0 && b <= c.HistogramBuckets[i-1] {
			errs = append(errs, errors.New("histogram_buckets: want positive seconds in increasing order"))
			break
		}
	}
	if c.PairingWait < time.Second || c.PairingWait > 10*time.Minute {
		errs = append(errs, fmt.Errorf("pairing_wait must be between 1s and 10m, got %s", c.PairingWait))
	}
	if c.MaxPendingPairs < 1 {
		errs = append(errs, fmt.Errorf("max_pending_pairs must be positive, got %d", c.MaxPendingPairs))
	}
	return errors.Join(errs...)
}
