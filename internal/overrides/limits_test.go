package overrides

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	defaults := Limits{IngestionRateSpans: 1000, MaxSpansPerTrace: 50000, SpanMetricsDimensions: []string{"http.method"}}
	tests := []struct {
		name    string
		file    string
		def     Limits            // want Default
		tenants map[string]Limits // want Tenants
	}{
		{name: "empty file", file: "", def: defaults, tenants: map[string]Limits{}},
		{name: "no overrides", file: "overrides: {}\n", def: defaults, tenants: map[string]Limits{}},
		{
			name: "wildcard and tenant layered",
			file: `
overrides:
  "*":
    ingestion_rate_spans: 200
    max_search_duration: 1d
  team-a:
    ingestion_burst_bytes: 4096
    ingestion_rate_bytes: 1024
    retention: 7d12h
    spanmetrics_dimensions: []
  team-b:
    ingestion_rate_spans: 0
    max_concurrent_queries: 4
    spanmetrics_dimensions: [region, zone]
    spanmetrics_max_series: 100
    max_attribute_value_bytes: 2048
`,
			def: Limits{IngestionRateSpans: 200, MaxSpansPerTrace: 50000, MaxSearchDuration: Duration(24 * time.Hour), SpanMetricsDimensions: []string{"http.method"}},
			tenants: map[string]Limits{
				"team-a": {IngestionRateSpans: 200, IngestionRateBytes: 1024, IngestionBurstBytes: 4096, MaxSpansPerTrace: 50000,
					Retention: Duration(7*24*time.Hour + 12*time.Hour), MaxSearchDuration: Duration(24 * time.Hour), SpanMetricsDimensions: []string{}},
				"team-b": {MaxSpansPerTrace: 50000, MaxSearchDuration: Duration(24 * time.Hour), MaxConcurrentQueries: 4,
					SpanMetricsDimensions: []string{"region", "zone"}, SpanMetricsMaxSeries: 100, MaxAttributeValueBytes: 2048},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("o.yaml", []byte(tt.file), defaults)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Default, tt.def) {
				t.Errorf("Default = %+v, want %+v", p.Default, tt.def)
			}
			if !reflect.DeepEqual(p.Tenants, tt.tenants) {
				t.Errorf("Tenants = %+v, want %+v", p.Tenants, tt.tenants)
			}
		})
	}
	// The defaults are not changed through the shared dimensions.
	if defaults.SpanMetricsDimensions[0] != "http.method" {
		t.Fatal("Parse changed the defaults")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		{"unknown top-level key", "limits: {}\n", []string{"o.yaml", "limits"}},
		{"unknown key", "overrides:\n  a:\n    ingestion_rate: 5\n", []string{"o.yaml", "line 3", "ingestion_rate"}},
		{"negative", "overrides:\n  a:\n    max_spans_per_trace: -1\n", []string{"o.yaml", `tenant "a"`, "max_spans_per_trace must not be negative"}},
		{"negative wildcard", "overrides:\n  '*':\n    ingestion_burst_bytes: -1\n", []string{`tenant "*"`, "ingestion_burst_bytes"}},
		{"negative duration", "overrides:\n  a:\n    retention: -1h\n", []string{"retention must not be negative"}},
		{"bad duration", "overrides:\n  a:\n    max_search_duration: soon\n", []string{"line 3", `"soon" is not a duration`}},
		{"not a number", "overrides:\n  a:\n    ingestion_rate_spans: lots\n", []string{"o.yaml", "lots"}},
		{"empty tenant", "overrides:\n  '':\n    ingestion_rate_spans: 1\n", []string{"empty tenant name"}},
		{"tenant with space", "overrides:\n  'a b':\n    ingestion_rate_spans: 1\n", []string{`"a b"`, "printable ASCII"}},
		{"long tenant", "overrides:\n  " + strings.Repeat("x", 300) + ":\n    ingestion_rate_spans: 1\n", []string{"longer than 256"}},
		{"duplicate dimension", "overrides:\n  a:\n    spanmetrics_dimensions: [x, x]\n", []string{`"x" is listed twice`}},
		{"empty dimension", "overrides:\n  a:\n    spanmetrics_dimensions: ['']\n", []string{"empty dimension"}},
		{"two documents", "overrides: {}\n---\noverrides: {}\n", []string{"more than one YAML document"}},
		{"duplicate tenant", "overrides:\n  a: {}\n  a: {}\n", []string{"o.yaml", "already defined"}},
		{"not a map", "overrides: [1, 2]\n", []string{"o.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("o.yaml", []byte(tt.file), Limits{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseBadDefaults(t *testing.T) {
	if _, err := Parse("o.yaml", nil, Limits{MaxConcurrentQueries: -1}); err == nil || !strings.Contains(err.Error(), "defaults") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "30s", want: 30 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "0d", want: 0},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "xd", bad: true},
		{in: "-1d", bad: true},
		{in: "1d-1h", bad: true},
		{in: "1dd", bad: true},
		{in: "200000d", bad: true},
		{in: "106751d24h", bad: true},
		{in: "7 days", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.Std() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got.Std(), err, tt.want)
		}
	}
}

// TestPatchCoversLimits keeps the file's patch in step with Limits: every
// key of Limits can be set in the file, with the same type.
func TestPatchCoversLimits(t *testing.T) {
	lt, pt := reflect.TypeFor[Limits](), reflect.TypeFor[patch]()
	if lt.NumField() != pt.NumField() {
		t.Fatalf("Limits has %d fields, patch %d", lt.NumField(), pt.NumField())
	}
	for i := range lt.NumField() {
		lf, pf := lt.Field(i), pt.Field(i)
		if lf.Name != pf.Name || lf.Tag.Get("yaml") != pf.Tag.Get("yaml") || reflect.PointerTo(lf.Type) != pf.Type {
			t.Errorf("Limits.%s (%s, yaml %q) and patch.%s (%s, yaml %q) differ", lf.Name, lf.Type, lf.Tag.Get("yaml"), pf.Name, pf.Type, pf.Tag.Get("yaml"))
		}
		if lf.Tag.Get("yaml") != lf.Tag.Get("json") {
			t.Errorf("Limits.%s: yaml and json keys differ", lf.Name)
		}
	}
	// Every key set once, and each must change its field.
	var b strings.Builder
	b.WriteString("overrides:\n  a:\n")
	for i := range lt.NumField() {
		key := lt.Field(i).Tag.Get("yaml")
		val := "3"
		switch lt.Field(i).Type {
		case reflect.TypeFor[Duration]():
			val = "3s"
		case reflect.TypeFor[[]string]():
			val = "[x]"
		}
		b.WriteString("    " + key + ": " + val + "\n")
	}
	p, err := Parse("o.yaml", []byte(b.String()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(p.Tenants["a"])
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("key %s did not set Limits.%s", lt.Field(i).Tag.Get("yaml"), lt.Field(i).Name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("overrides:\n  '*':\n    ingestion_rate_spans: 10\n  a:\n    retention: 7d\n    spanmetrics_dimensions: [x]\n"))
	f.Add([]byte("overrides: {a: {max_search_duration: 1d12h, max_concurrent_queries: 3}}"))
	f.Add([]byte("overrides:\n  a:\n    bogus: 1\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("overrides: &x {a: *x}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, Limits{IngestionRateSpans: 5})
		if err != nil {
			return
		}
		if err := p.Default.Validate(); err != nil {
			t.Fatalf("accepted invalid defaults: %v", err)
		}
		for name, l := range p.Tenants {
			if err := ValidTenant(name); err != nil {
				t.Fatalf("accepted tenant: %v", err)
			}
			if err := l.Validate(); err != nil {
				t.Fatalf("accepted invalid limits of %q: %v", name, err)
			}
		}
	})
}
