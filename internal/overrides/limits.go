package overrides

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits are one tenant's limits. Every zero value means "no limit" or
// "the global setting", as each field says; the YAML keys are the names
// in the overrides file and in the answers of Handler.
type Limits struct {
	// IngestionRateSpans is the spans per second the tenant may send,
	// averaged by a token bucket (0 = unlimited).
	IngestionRateSpans int `yaml:"ingestion_rate_spans" json:"ingestion_rate_spans"`
	// IngestionBurstSpans is the size of that bucket: the spans a tenant
	// may send at once after a quiet period (0 = one second of
	// IngestionRateSpans).
	IngestionBurstSpans int `yaml:"ingestion_burst_spans" json:"ingestion_burst_spans"`
	// IngestionRateBytes is the request bytes per second (decoded OTLP
	// size as the receiver counts it) the tenant may send (0 = unlimited).
	IngestionRateBytes int64 `yaml:"ingestion_rate_bytes" json:"ingestion_rate_bytes"`
	// IngestionBurstBytes is the size of the bytes bucket (0 = one second
	// of IngestionRateBytes).
	IngestionBurstBytes int64 `yaml:"ingestion_burst_bytes" json:"ingestion_burst_bytes"`
	// MaxSpansPerTrace is the number of spans one trace may have; spans
	// beyond it are dropped at ingest (0 = unlimited). Counted
	// approximately, see TraceSpanCounter.
	MaxSpansPerTrace int `yaml:"max_spans_per_trace" json:"max_spans_per_trace"`
	// MaxAttributeValueBytes is the longest attribute value kept; longer
	// values are truncated (0 = the receivers' global limit).
	MaxAttributeValueBytes int `yaml:"max_attribute_value_bytes" json:"max_attribute_value_bytes"`
	// Retention is how long the tenant's blocks are kept (0 = the store's
	// retention).
	Retention Duration `yaml:"retention" json:"retention"`
	// MaxSearchDuration is the longest time range one search may cover
	// (0 = unlimited).
	MaxSearchDuration Duration `yaml:"max_search_duration" json:"max_search_duration"`
	// MaxConcurrentQueries is the number of queries of the tenant that may
	// run at once; more are refused, not queued (0 = unlimited).
	MaxConcurrentQueries int `yaml:"max_concurrent_queries" json:"max_concurrent_queries"`
	// QueryRate is the query requests per second the tenant may make on
	// the query port, averaged by a token bucket (0 = unlimited).
	QueryRate int `yaml:"query_rate" json:"query_rate"`
	// QueryBurst is the size of that bucket (0 = one second of QueryRate).
	QueryBurst int `yaml:"query_burst" json:"query_burst"`
	// SpanMetricsDimensions are the extra span-metrics dimensions (nil =
	// the global span-metrics configuration; an empty list = none).
	SpanMetricsDimensions []string `yaml:"spanmetrics_dimensions" json:"spanmetrics_dimensions"`
	// SpanMetricsMaxSeries caps the tenant's span-metrics series (0 = the
	// global cap).
	SpanMetricsMaxSeries int `yaml:"spanmetrics_max_series" json:"spanmetrics_max_series"`
}

// burstSpans is the effective size of the spans bucket.
func (l Limits) burstSpans() int {
	if l.IngestionBurstSpans > 0 {
		return l.IngestionBurstSpans
	}
	return l.IngestionRateSpans
}

// burstBytes is the effective size of the bytes bucket.
func (l Limits) burstBytes() int64 {
	if l.IngestionBurstBytes > 0 {
		return l.IngestionBurstBytes
	}
	return l.IngestionRateBytes
}

// queryBurst is the effective size of the queries bucket.
func (l Limits) queryBurst() int {
	if l.QueryBurst > 0 {
		return l.QueryBurst
	}
	return l.QueryRate
}

// clone returns l with its own copy of the dimensions.
func (l Limits) clone() Limits {
	l.SpanMetricsDimensions = slices.Clone(l.SpanMetricsDimensions)
	return l
}

// Validate reports the first value out of range, naming its key.
func (l Limits) Validate() error {
	for _, c := range []struct {
		key string
		v   int64
	}{
		{"ingestion_rate_spans", int64(l.IngestionRateSpans)},
		{"ingestion_burst_spans", int64(l.IngestionBurstSpans)},
		{"ingestion_rate_bytes", l.IngestionRateBytes},
		{"ingestion_burst_bytes", l.IngestionBurstBytes},
		{"max_spans_per_trace", int64(l.MaxSpansPerTrace)},
		{"max_attribute_value_bytes", int64(l.MaxAttributeValueBytes)},
		{"retention", int64(l.Retention)},
		{"max_search_duration", int64(l.MaxSearchDuration)},
		{"max_concurrent_queries", int64(l.MaxConcurrentQueries)},
		{"query_rate", int64(l.QueryRate)},
		{"query_burst", int64(l.QueryBurst)},
		{"spanmetrics_max_series", int64(l.SpanMetricsMaxSeries)},
	} {
		if c.v < 0 {
			return fmt.Errorf("%s must not be negative", c.key)
		}
	}
	seen := map[string]bool{}
	for _, d := range l.SpanMetricsDimensions {
		switch {
		case strings.TrimSpace(d) == "":
			return errors.New("spanmetrics_dimensions: empty dimension")
		case seen[d]:
			return fmt.Errorf("spanmetrics_dimensions: %q is listed twice", d)
		}
		seen[d] = true
	}
	return nil
}

// Duration is a time.Duration read from YAML as a Go duration ("30s",
// "1h30m") or with a leading number of days ("7d", "1d12h"); it is
// written back, in YAML and JSON, as a Go duration string.
type Duration time.Duration

// ParseDuration reads a Duration: Go's syntax, optionally preceded by a
// whole number of days ("7d", "1d12h"), or "0".
func ParseDuration(s string) (Duration, error) {
	rest := s
	var days int64
	if i := strings.IndexByte(rest, 'd'); i > 0 {
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n < 0 || n > 106751 { // time.Duration's range in days
			return 0, fmt.Errorf("%q is not a duration such as 30s, 5m or 7d", s)
		}
		days, rest = n, rest[i+1:]
		if rest == "" {
			return Duration(time.Duration(days) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil || (days > 0 && d < 0) {
		return 0, fmt.Errorf("%q is not a duration such as 30s, 5m or 7d", s)
	}
	total := time.Duration(days)*24*time.Hour + d
	if total < d { // overflow
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	return Duration(total), nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes the duration as a string (for JSON).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText writes (and days), for JSON.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Wildcard is the key of the overrides file whose limits apply to every
// tenant the file does not list.
const Wildcard = "*"

// file is the overrides file: the runtime overrides of Tempo's
// convention, one entry per tenant and "*" for the rest.
type file struct {
	Overrides map[string]patch `yaml:"overrides"`
}

// patch is one entry of the file: only the keys it sets change the limits
// it is laid over.
type patch struct {
	IngestionRateSpans     *int      `yaml:"ingestion_rate_spans"`
	IngestionBurstSpans    *int      `yaml:"ingestion_burst_spans"`
	IngestionRateBytes     *int64    `yaml:"ingestion_rate_bytes"`
	IngestionBurstBytes    *int64    `yaml:"ingestion_burst_bytes"`
	MaxSpansPerTrace       *int      `yaml:"max_spans_per_trace"`
	MaxAttributeValueBytes *int      `yaml:"max_attribute_value_bytes"`
	Retention              *Duration `yaml:"retention"`
	MaxSearchDuration      *Duration `yaml:"max_search_duration"`
	MaxConcurrentQueries   *int      `yaml:"max_concurrent_queries"`
	QueryRate              *int      `yaml:"query_rate"`
	QueryBurst             *int      `yaml:"query_burst"`
	SpanMetricsDimensions  *[]string `yaml:"spanmetrics_dimensions"`
	SpanMetricsMaxSeries   *int      `yaml:"spanmetrics_max_series"`
}

// over returns base with the keys p sets replaced.
func (p patch) over(base Limits) Limits {
	l := base.clone()
	set(&l.IngestionRateSpans, p.IngestionRateSpans)
	set(&l.IngestionBurstSpans, p.IngestionBurstSpans)
	set(&l.IngestionRateBytes, p.IngestionRateBytes)
	set(&l.IngestionBurstBytes, p.IngestionBurstBytes)
	set(&l.MaxSpansPerTrace, p.MaxSpansPerTrace)
	set(&l.MaxAttributeValueBytes, p.MaxAttributeValueBytes)
	set(&l.Retention, p.Retention)
	set(&l.MaxSearchDuration, p.MaxSearchDuration)
	set(&l.MaxConcurrentQueries, p.MaxConcurrentQueries)
	set(&l.QueryRate, p.QueryRate)
	set(&l.QueryBurst, p.QueryBurst)
	if p.SpanMetricsDimensions != nil {
		l.SpanMetricsDimensions = slices.Clone(*p.SpanMetricsDimensions)
		if l.SpanMetricsDimensions == nil {
			l.SpanMetricsDimensions = []string{} // "[]": none, not the global list
		}
	}
	set(&l.SpanMetricsMaxSeries, p.SpanMetricsMaxSeries)
	return l
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// MaxTenantNameBytes is the longest tenant name the file may list.
const MaxTenantNameBytes = 256

// Parsed is the content of an overrides file resolved against the static
// defaults: the limits of every listed tenant and of the rest.
type Parsed struct {
	// Default applies to every tenant not in Tenants: the static defaults
	// with the file's "*" entry laid over them.
	Default Limits
	// Tenants are the listed tenants' limits, each entry laid over
	// Default.
	Tenants map[string]Limits
}

// Parse reads an overrides file's content (name is used in errors only)
// over defaults. Unknown keys, values out of range and invalid tenant
// names are errors naming the file, the tenant and the key; an empty file
// lists no tenant.
func Parse(name string, data []byte, defaults Limits) (Parsed, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return Parsed{}, fmt.Errorf("overrides file %s: %w", name, err)
	}
	// A second document would be silently ignored: refuse it.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Parsed{}, fmt.Errorf("overrides file %s: more than one YAML document", name)
	}
	if err := defaults.Validate(); err != nil {
		return Parsed{}, fmt.Errorf("overrides defaults: %w", err)
	}
	p := Parsed{Default: defaults.clone(), Tenants: make(map[string]Limits, len(f.Overrides))}
	if w, ok := f.Overrides[Wildcard]; ok {
		p.Default = w.over(defaults)
		if err := p.Default.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("overrides file %s: tenant %q: %w", name, Wildcard, err)
		}
	}
	for t, e := range f.Overrides {
		if t == Wildcard {
			continue
		}
		if err := ValidTenant(t); err != nil {
			return Parsed{}, fmt.Errorf("overrides file %s: %w", name, err)
		}
		l := e.over(p.Default)
		if err := l.Validate(); err != nil {
			return Parsed{}, fmt.Errorf("overrides file %s: tenant %q: %w", name, t, err)
		}
		p.Tenants[t] = l
	}
	return p, nil
}

// ValidTenant reports whether t may name a tenant in the overrides file:
// non-empty, at most MaxTenantNameBytes, printable ASCII without spaces
// (what an X-Scope-OrgID header can carry).
func ValidTenant(t string) error {
	if t == "" {
		return errors.New("empty tenant name")
	}
	if len(t) > MaxTenantNameBytes {
		return fmt.Errorf("tenant name %.32q... is longer than %d bytes", t, MaxTenantNameBytes)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("tenant name %q: byte %d is not printable ASCII", t, i)
		}
	}
	return nil
}
