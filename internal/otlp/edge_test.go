package otlp

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/clew-dev/clew/internal/span"
)

const (
	edgeStartNS = "1700000000123456789"
	edgeEndNS   = "1700000000987654321"
)

// TestEdgeCases runs the OTLP/JSON compatibility cases in testdata/edge
// (copied from the shared compat suite, Apache-2.0, see LICENSE there).
func TestEdgeCases(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "edge", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var suite struct {
		Cases []struct {
			File       string `json:"file"`
			Gzip       bool   `json:"gzip"`
			Expect     string `json:"expect"`
			TraceID    string `json:"traceId"`
			Spans      *int   `json:"spans"`
			ExactStart bool   `json:"exactStart"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &suite); err != nil {
		t.Fatal(err)
	}
	if len(suite.Cases) == 0 {
		t.Fatal("no cases")
	}
	// Our decisions for the "either" cases.
	either := map[string]struct {
		accept   bool
		spans    int
		rejected int
	}{
		"enum_names.json":      {accept: true, spans: 1},
		"snake_case_keys.json": {accept: true, spans: 1},
		"special_doubles.json": {accept: true, spans: 1},
		"zero_trace_id.json":   {accept: true, spans: 0, rejected: 1},
	}
	d := NewDecoder(DefaultLimits())
	for _, c := range suite.Cases {
		name := c.File
		if c.Gzip {
			name += "+gzip"
		}
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "edge", c.File))
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.ReplaceAll(body, []byte("__START_NS__"), []byte(edgeStartNS))
			body = bytes.ReplaceAll(body, []byte("__END_NS__"), []byte(edgeEndNS))
			if c.Gzip {
				var zb bytes.Buffer
				zw := gzip.NewWriter(&zb)
				zw.Write(body)
				zw.Close()
				zr, err := gzip.NewReader(&zb)
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			var b span.Batch
			res, err := d.DecodeJSON(body, &b)
			switch c.Expect {
			case "reject":
				var de *DecodeError
				if !errors.As(err, &de) {
					t.Fatalf("DecodeJSON = %+v, %v; want a *DecodeError", res, err)
				}
				if len(b.Spans) != 0 {
					t.Fatalf("batch has %d spans after an error", len(b.Spans))
				}
				t.Logf("error: %v", err)
				return
			case "either":
				want, ok := either[c.File]
				if !ok {
					t.Fatalf("no decision for either case %s", c.File)
				}
				if !want.accept {
					if err == nil {
						t.Fatalf("accepted, want reject")
					}
					return
				}
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if res.Spans != want.spans || res.Rejected != want.rejected {
					t.Fatalf("result %+v, want %d spans, %d rejected", res, want.spans, want.rejected)
				}
			case "accept":
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
			default:
				t.Fatalf("unknown expectation %q", c.Expect)
			}
			if c.Spans != nil && res.Spans != *c.Spans {
				t.Fatalf("decoded %d spans, want %d", res.Spans, *c.Spans)
			}
			if res.Spans != len(b.Spans) {
				t.Fatalf("Result.Spans = %d, batch has %d", res.Spans, len(b.Spans))
			}
			for _, s := range b.Spans {
				if c.TraceID != "" && s.TraceID.String() != c.TraceID {
					t.Errorf("trace ID %s, want %s", s.TraceID, c.TraceID)
				}
				if c.ExactStart && (s.StartUnixNano != 1700000000123456789 || s.EndUnixNano != 1700000000987654321) {
					t.Errorf("start/end %d/%d, want %s/%s", s.StartUnixNano, s.EndUnixNano, edgeStartNS, edgeEndNS)
				}
				if s.Resource == nil || s.Scope == nil {
					t.Errorf("span without resource or scope")
				}
			}
			// Whatever was accepted must survive AppendJSON and decode the same.
			out := AppendJSON(nil, b.Spans)
			var b2 span.Batch
			if _, err := NewDecoder(DefaultLimits()).DecodeJSON(out, &b2); err != nil {
				t.Fatalf("re-decode %s: %v", out, err)
			}
			if diff := diffSpans(b2.Spans, b.Spans); diff != "" {
				t.Fatalf("JSON round trip: %s", diff)
			}
			checkEdgeValues(t, c.File, b.Spans)
		})
	}
}

// checkEdgeValues checks the decoded values of the cases that test them.
func checkEdgeValues(t *testing.T, file string, spans []span.Span) {
	t.Helper()
	attr := func(s span.Span, k string) span.Value {
		for _, a := range s.Attrs {
			if a.Key == k {
				return a.Value
			}
		}
		t.Fatalf("no attribute %q", k)
		return span.Value{}
	}
	switch file {
	case "int64_as_numbers.json":
		if v := attr(spans[0], "big"); v.Type != span.TypeInt || v.Int() != 9007199254740993 {
			t.Errorf("big = %+v, want int 9007199254740993", v)
		}
	case "int64_as_strings.json":
		if v := attr(spans[0], "big"); v.Int() != 9223372036854775807 {
			t.Errorf("big = %+v", v)
		}
		if v := attr(spans[0], "neg"); v.Int() != -42 {
			t.Errorf("neg = %+v", v)
		}
	case "enum_names.json":
		if s := spans[0]; s.Kind != span.KindServer || s.StatusCode != span.StatusError || s.StatusMessage != "boom" {
			t.Errorf("kind %v status %v %q", s.Kind, s.StatusCode, s.StatusMessage)
		}
	case "uppercase_hex_ids.json":
		s := spans[0]
		if s.SpanID.String() != "eee19b7ec3c1b174" || s.ParentSpanID.String() != "eee19b7ec3c1b173" {
			t.Errorf("ids %s %s", s.SpanID, s.ParentSpanID)
		}
		if s.Scope.Name != "my.library" || s.Scope.Version != "1.0.0" || s.Resource.ServiceName() != "edge-uppercase-ids" {
			t.Errorf("scope %+v resource %+v", s.Scope, s.Resource)
		}
	case "special_doubles.json":
		s := spans[0]
		if v := attr(s, "nan"); v.Type != span.TypeDouble || v.Double() == v.Double() {
			t.Errorf("nan = %+v", v)
		}
		if v := attr(s, "inf"); v.Double() <= 1e308 {
			t.Errorf("inf = %v", v.Double())
		}
		if v := attr(s, "quoted"); v.Double() != 1.5 {
			t.Errorf("quoted = %v", v.Double())
		}
	case "all_value_types.json":
		s := spans[0]
		want := map[string]string{"s": "string", "b": "bool", "i": "int", "d": "double", "by": "bytes", "arr": "array", "kv": "map", "empty": "empty"}
		for k, typ := range want {
			if got := attr(s, k).Type.String(); got != typ {
				t.Errorf("%s has type %s, want %s", k, got, typ)
			}
		}
		if v := attr(s, "by"); v.Str != "\x00\x0009" {
			t.Errorf("bytes = %q", v.Str)
		}
		if v := attr(s, "arr"); len(v.Array) != 2 || v.Array[1].Int() != 1 {
			t.Errorf("arr = %+v", v)
		}
		if len(s.Events) != 1 || s.Events[0].Name != "ev" || len(s.Links) != 1 || s.StatusCode != span.StatusOK || s.Kind != span.KindClient {
			t.Errorf("span %+v", s)
		}
		if s.Links[0].SpanID.String() != "b7ad6b7169200004" || len(s.Links[0].Attrs) != 1 {
			t.Errorf("link %+v", s.Links[0])
		}
	case "snake_case_keys.json":
		if s := spans[0]; s.TraceID.String() != "0af7651916cd43dd8448eb211c800008" || s.Resource.ServiceName() != "edge-snake-case" || s.StartUnixNano == 0 {
			t.Errorf("snake case span %+v", s)
		}
	}
}
