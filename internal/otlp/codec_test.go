package otlp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/clew-dev/clew/internal/span"
)

func TestProtoRoundTrip(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 7))
		b := randBatch(r, 1+r.IntN(40))
		buf := MarshalProto(nil, b)
		var got span.Batch
		res, err := d.DecodeProto(buf, &got)
		if err != nil {
			t.Fatalf("seed %d: DecodeProto: %v", seed, err)
		}
		if res.Modified || res.Spans != len(b.Spans) {
			t.Fatalf("seed %d: result %+v", seed, res)
		}
		if diff := diffSpans(got.Spans, b.Spans); diff != "" {
			t.Fatalf("seed %d: %s", seed, diff)
		}
		if len(got.Resources) != len(b.Resources) || len(got.Scopes) != len(b.Scopes) {
			t.Fatalf("seed %d: %d resources %d scopes, want %d %d", seed, len(got.Resources), len(got.Scopes), len(b.Resources), len(b.Scopes))
		}
		if again := MarshalProto(nil, &got); !bytes.Equal(again, buf) {
			t.Fatalf("seed %d: re-encoding differs", seed)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 8))
		b := randBatch(r, 1+r.IntN(40))
		buf := AppendJSON(nil, b.Spans)
		if !json.Valid(buf) {
			t.Fatalf("seed %d: invalid JSON %s", seed, buf)
		}
		var got span.Batch
		res, err := d.DecodeJSON(buf, &got)
		if err != nil {
			t.Fatalf("seed %d: DecodeJSON: %v", seed, err)
		}
		if res.Modified || res.Spans != len(b.Spans) {
			t.Fatalf("seed %d: result %+v", seed, res)
		}
		if diff := diffSpans(got.Spans, b.Spans); diff != "" {
			t.Fatalf("seed %d: %s", seed, diff)
		}
		if again := AppendJSON(nil, got.Spans); !bytes.Equal(again, buf) {
			t.Fatalf("seed %d: re-encoding differs", seed)
		}
	}
}

// TestPdataCrossCheck decodes what pdata encodes and has pdata decode what
// we encode, in both protobuf and JSON.
func TestPdataCrossCheck(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 9))
		b := randBatch(r, 1+r.IntN(30))
		td := toPdata(b.Spans)
		want := fromPdata(td)
		if diff := diffSpans(want, b.Spans); diff != "" {
			t.Fatalf("seed %d: test conversion is lossy: %s", seed, diff)
		}

		pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		var got span.Batch
		if _, err := d.DecodeProto(pb, &got); err != nil {
			t.Fatalf("seed %d: DecodeProto(pdata bytes): %v", seed, err)
		}
		if diff := diffSpans(got.Spans, want); diff != "" {
			t.Fatalf("seed %d: proto from pdata: %s", seed, diff)
		}

		js, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		got = span.Batch{}
		if _, err := d.DecodeJSON(js, &got); err != nil {
			t.Fatalf("seed %d: DecodeJSON(pdata bytes): %v\n%s", seed, err, js)
		}
		if diff := diffSpans(got.Spans, want); diff != "" {
			t.Fatalf("seed %d: JSON from pdata: %s\n%s", seed, diff, js)
		}

		back, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(MarshalProto(nil, b))
		if err != nil {
			t.Fatalf("seed %d: pdata UnmarshalTraces(MarshalProto): %v", seed, err)
		}
		if diff := diffSpans(fromPdata(back), want); diff != "" {
			t.Fatalf("seed %d: pdata from MarshalProto: %s", seed, diff)
		}

		back, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(AppendJSON(nil, b.Spans))
		if err != nil {
			t.Fatalf("seed %d: pdata UnmarshalTraces(AppendJSON): %v", seed, err)
		}
		if diff := diffSpans(fromPdata(back), want); diff != "" {
			t.Fatalf("seed %d: pdata from AppendJSON: %s", seed, diff)
		}
	}
}

func TestExportResponse(t *testing.T) {
	for _, tc := range []struct {
		rejected int64
		msg      string
	}{{0, ""}, {3, "rejected 3 spans"}, {0, "warning only"}, {1 << 40, strings.Repeat("x", 300)}} {
		resp := ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalProto(AppendExportResponseProto(nil, tc.rejected, tc.msg)); err != nil {
			t.Fatalf("proto %+v: %v", tc, err)
		}
		if ps := resp.PartialSuccess(); ps.RejectedSpans() != tc.rejected || ps.ErrorMessage() != tc.msg {
			t.Errorf("proto %+v: got %d %q", tc, ps.RejectedSpans(), ps.ErrorMessage())
		}
		js := AppendExportResponseJSON(nil, tc.rejected, tc.msg)
		resp = ptraceotlp.NewExportResponse()
		if err := resp.UnmarshalJSON(js); err != nil {
			t.Fatalf("json %s: %v", js, err)
		}
		if ps := resp.PartialSuccess(); ps.RejectedSpans() != tc.rejected || ps.ErrorMessage() != tc.msg {
			t.Errorf("json %s: got %d %q", js, ps.RejectedSpans(), ps.ErrorMessage())
		}
	}
	if got := string(AppendExportResponseJSON(nil, 0, "")); got != "{}" {
		t.Errorf("empty JSON response = %s", got)
	}
	if got := AppendExportResponseProto(nil, 0, ""); len(got) != 0 {
		t.Errorf("empty proto response = %x", got)
	}
}

// Protobuf builders for hand-made messages.
type pb []byte

func (p pb) bytes(num int, b []byte) pb {
	p = appendUvarint(p, uint64(num)<<3|wtBytes)
	p = appendUvarint(p, uint64(len(b)))
	return append(p, b...)
}
func (p pb) str(num int, s string) pb { return p.bytes(num, []byte(s)) }
func (p pb) varint(num int, v uint64) pb {
	return appendUvarint(appendUvarint(p, uint64(num)<<3|wtVarint), v)
}
func (p pb) fixed64(num int, v uint64) pb {
	return binary.LittleEndian.AppendUint64(appendUvarint(p, uint64(num)<<3|wtFixed64), v)
}
func (p pb) raw(b ...byte) pb { return append(p, b...) }

var (
	goodTrace = bytes.Repeat([]byte{0xab}, 16)
	goodSpan  = bytes.Repeat([]byte{0xcd}, 8)
)

func pbSpan(extra ...func(pb) pb) pb {
	s := pb{}.bytes(1, goodTrace).bytes(2, goodSpan).str(5, "op").fixed64(7, 100).fixed64(8, 50)
	for _, f := range extra {
		s = f(s)
	}
	return s
}

func pbRequest(spans ...pb) []byte {
	ss := pb{}.bytes(1, pb{}.str(1, "lib"))
	for _, s := range spans {
		ss = ss.bytes(2, s)
	}
	rs := pb{}.bytes(1, pb{}.bytes(1, pb{}.str(1, "service.name").bytes(2, pb{}.str(1, "svc")))).bytes(2, ss)
	return pb{}.bytes(1, rs)
}

func nested(depth int) pb {
	v := pb{}.str(1, "leaf")
	for range depth {
		v = pb{}.bytes(5, pb{}.bytes(1, v))
	}
	return v
}

func TestDecodeProtoCases(t *testing.T) {
	small := Limits{MaxSpansPerRequest: 3, MaxAttrValueBytes: 8, MaxAttrsPerSpan: 2, MaxEventsPerSpan: 1, MaxLinksPerSpan: 1, MaxNameBytes: 4}
	attr := func(k, v string) func(pb) pb {
		return func(p pb) pb { return p.bytes(9, pb{}.str(1, k).bytes(2, pb{}.str(1, v))) }
	}
	link := func(tid []byte) func(pb) pb {
		return func(p pb) pb { return p.bytes(13, pb{}.bytes(1, tid).bytes(2, goodSpan)) }
	}
	for _, tc := range []struct {
		name    string
		lim     Limits
		in      []byte
		errSub  string // request error containing this
		spans   int
		check   func(t *testing.T, r Result, b *span.Batch)
		errorIs error
	}{
		{name: "empty", in: nil, spans: 0},
		{name: "one span", in: pbRequest(pbSpan()), spans: 1, check: func(t *testing.T, r Result, b *span.Batch) {
			s := b.Spans[0]
			if s.Name != "op" || s.StartUnixNano != 100 || s.EndUnixNano != 50 || s.Duration() != 0 || s.Resource.ServiceName() != "svc" || s.Scope.Name != "lib" {
				t.Errorf("span %+v", s)
			}
			if r.Modified || r.Message != "" {
				t.Errorf("result %+v", r)
			}
		}},
		{name: "15-byte trace id rejected", in: pbRequest(pbSpan(func(p pb) pb { return p.bytes(1, goodTrace[:15]) }), pbSpan()), spans: 1,
			check: func(t *testing.T, r Result, b *span.Batch) {
				if r.Rejected != 1 || r.RejectReasons[ReasonInvalidTraceID] != 1 || !r.Modified || !strings.Contains(r.Message, "invalid_trace_id: 1") {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "zero trace id rejected", in: pbRequest(pbSpan(func(p pb) pb { return p.bytes(1, make([]byte, 16)) })), spans: 0,
			check: func(t *testing.T, r Result, b *span.Batch) {
				if r.RejectReasons[ReasonInvalidTraceID] != 1 || len(b.Resources) != 0 || len(b.Scopes) != 0 {
					t.Errorf("result %+v, %d resources", r, len(b.Resources))
				}
			}},
		{name: "missing span id rejected", in: pbRequest(pb{}.bytes(1, goodTrace)), spans: 0,
			check: func(t *testing.T, r Result, b *span.Batch) {
				if r.RejectReasons[ReasonInvalidSpanID] != 1 {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "bad parent rejected", in: pbRequest(pbSpan(func(p pb) pb { return p.bytes(4, goodSpan[:3]) })), spans: 0,
			check: func(t *testing.T, r Result, b *span.Batch) {
				if r.RejectReasons[ReasonInvalidParentSpanID] != 1 {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "bad link dropped", in: pbRequest(pbSpan(link(goodTrace[:5]))), spans: 1,
			check: func(t *testing.T, r Result, b *span.Batch) {
				if s := b.Spans[0]; len(s.Links) != 0 || s.DroppedLinks != 1 || r.DroppedLinks != 1 || !r.Modified {
					t.Errorf("span %+v result %+v", s, r)
				}
			}},
		{name: "limits", lim: small, in: pbRequest(pbSpan(attr("long-key", "0123456789"), attr("b", "ééé😀"), attr("c", "x"),
			link(goodTrace), link(goodTrace), func(p pb) pb { return p.str(5, "toolongname").bytes(11, pb{}).bytes(11, pb{}) })), spans: 1,
			check: func(t *testing.T, r Result, b *span.Batch) {
				s := b.Spans[0]
				if s.Name != "tool" || len(s.Attrs) != 2 || s.Attrs[0].Key != "long" || s.Attrs[0].Value.Str != "01234567" || s.Attrs[1].Value.Str != "ééé" {
					t.Errorf("span %+v", s)
				}
				if s.DroppedAttrs != 1 || s.DroppedLinks != 1 || s.DroppedEvents != 1 || len(s.Events) != 1 || len(s.Links) != 1 {
					t.Errorf("span %+v", s)
				}
				if r.Truncated != 5 /* incl. the resource key service.name */ || r.DroppedAttrs != 1 || r.DroppedLinks != 1 || r.DroppedEvents != 1 || !r.Modified || r.Message == "" {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "too many spans", lim: small, in: pbRequest(pbSpan(), pbSpan(), pbSpan(), pbSpan()), errSub: "more than 3 spans", errorIs: ErrTooManySpans},
		{name: "unknown fields and groups skipped", in: pbRequest(pbSpan(func(p pb) pb {
			p = p.varint(99, 7).fixed64(98, 1).str(97, "x").raw(0x9b, 0x06 /* start group 99 */, 0x08, 0x01, 0x9c, 0x06 /* end group 99 */)
			return p.raw(0x0d, 1, 2, 3, 4) // field 1 as fixed32: wrong wire type, skipped
		})), spans: 1},
		{name: "oneof last wins", in: pbRequest(pbSpan(func(p pb) pb {
			return p.bytes(9, pb{}.str(1, "k").bytes(2, pb{}.str(1, "s").varint(3, 42)))
		})), spans: 1, check: func(t *testing.T, r Result, b *span.Batch) {
			if v := b.Spans[0].Attrs[0].Value; v.Type != span.TypeInt || v.Int() != 42 {
				t.Errorf("value %+v", v)
			}
		}},
		{name: "negative int and kind out of range", in: pbRequest(pbSpan(func(p pb) pb {
			return p.varint(6, math.MaxUint64).bytes(9, pb{}.str(1, "k").bytes(2, pb{}.varint(3, math.MaxUint64))).bytes(15, pb{}.varint(3, 9))
		})), spans: 1, check: func(t *testing.T, r Result, b *span.Batch) {
			s := b.Spans[0]
			if s.Kind != span.KindUnspecified || s.Attrs[0].Value.Int() != -1 || s.StatusCode != span.StatusUnset {
				t.Errorf("span %+v", s)
			}
		}},
		{name: "nesting at limit", in: pbRequest(pbSpan(func(p pb) pb { return p.bytes(9, pb{}.str(1, "k").bytes(2, nested(maxValueDepth-1))) })), spans: 1},
		{name: "nesting too deep", in: pbRequest(pbSpan(func(p pb) pb { return p.bytes(9, pb{}.str(1, "k").bytes(2, nested(maxValueDepth))) })), errSub: "nested deeper than 32"},
		{name: "truncated", in: pbRequest(pbSpan())[:20], errSub: "exceeds"},
		{name: "bad varint", in: []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, errSub: "malformed varint"},
		{name: "field zero", in: []byte{0x00, 0x01}, errSub: "field number 0"},
		{name: "bad wire type", in: []byte{0x0e}, errSub: "invalid wire type 6"},
		{name: "unterminated group", in: []byte{0x0b, 0x08, 0x01}, errSub: "unterminated group"},
		{name: "bad length", in: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, errSub: "exceeds"},
		{name: "error inside span names it", in: pbRequest(pbSpan(func(p pb) pb { return p.raw(0x4a, 0x03, 0x0a, 0x05, 'a') })), errSub: "spans[0] (span 0 of request)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.lim)
			b := &span.Batch{Spans: make([]span.Span, 1)} // the decoder appends
			res, err := d.DecodeProto(tc.in, b)
			if tc.errSub != "" {
				var de *DecodeError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("DecodeProto error = %v, want a *DecodeError containing %q", err, tc.errSub)
				}
				if tc.errorIs != nil && !errors.Is(err, tc.errorIs) {
					t.Fatalf("error %v is not %v", err, tc.errorIs)
				}
				if len(b.Spans) != 1 || len(b.Resources) != 0 {
					t.Fatalf("batch changed on error")
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeProto: %v", err)
			}
			b.Spans = b.Spans[1:]
			if res.Spans != tc.spans || len(b.Spans) != tc.spans {
				t.Fatalf("got %d spans (result %+v), want %d", len(b.Spans), res, tc.spans)
			}
			if tc.check != nil {
				tc.check(t, res, b)
			}
		})
	}
}

func TestDecodeJSONCases(t *testing.T) {
	wrap := func(spanJSON string) string {
		return `{"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[` + spanJSON + `]}]}]}`
	}
	const ids = `"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"`
	deep := `{"stringValue":"x"}`
	for range maxValueDepth {
		deep = `{"arrayValue":{"values":[` + deep + `]}}`
	}
	for _, tc := range []struct {
		name   string
		in     string
		errSub string
		check  func(t *testing.T, r Result, b *span.Batch)
	}{
		{name: "numbers exact", in: wrap(`{` + ids + `,"startTimeUnixNano":1700000000123456789,"endTimeUnixNano":"1.7e18","attributes":[{"key":"a","value":{"intValue":-9223372036854775808}},{"key":"b","value":{"intValue":"15e2"}}]}`),
			check: func(t *testing.T, r Result, b *span.Batch) {
				s := b.Spans[0]
				if s.StartUnixNano != 1700000000123456789 || s.EndUnixNano != 1700000000000000000 || s.Attrs[0].Value.Int() != math.MinInt64 || s.Attrs[1].Value.Int() != 1500 {
					t.Errorf("span %+v", s)
				}
			}},
		{name: "escapes", in: wrap(`{` + ids + `,"name":"a\"b\\c\u00e9\ud83d\ude00\n\/","attributes":[{"key":"k\u0041","value":{"stringValue":"\ud800x"}}]}`),
			check: func(t *testing.T, r Result, b *span.Batch) {
				s := b.Spans[0]
				if s.Name != "a\"b\\cé😀\n/" || s.Attrs[0].Key != "kA" || s.Attrs[0].Value.Str != "\uFFFDx" {
					t.Errorf("name %q attr %+v", s.Name, s.Attrs[0])
				}
			}},
		{name: "nulls and unknown", in: wrap(`{` + ids + `,"name":null,"kind":null,"attributes":null,"status":null,"x":{"y":[1,{"z":null}]},"events":[{"name":"e","attributes":[{"key":"k","value":{"stringValue":null,"intValue":"3"}}]}]}`),
			check: func(t *testing.T, r Result, b *span.Batch) {
				if v := b.Spans[0].Events[0].Attrs[0].Value; v.Int() != 3 {
					t.Errorf("value %+v", v)
				}
			}},
		{name: "bytes url no padding", in: wrap(`{` + ids + `,"attributes":[{"key":"k","value":{"bytesValue":"-_8"}}]}`),
			check: func(t *testing.T, r Result, b *span.Batch) {
				if v := b.Spans[0].Attrs[0].Value; v.Str != "\xfb\xff" {
					t.Errorf("value %q", v.Str)
				}
			}},
		{name: "zero span id rejected", in: wrap(`{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0000000000000000"}`),
			check: func(t *testing.T, r Result, b *span.Batch) {
				if len(b.Spans) != 0 || r.RejectReasons[ReasonInvalidSpanID] != 1 {
					t.Errorf("result %+v", r)
				}
			}},
		{name: "base64 id", in: wrap(`{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA==","spanId":"0102030405060708"}`), errSub: "not hex"},
		{name: "short span id", in: wrap(`{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"01020304050607"}`), errSub: "spanId is 7 bytes, want 8"},
		{name: "bad link id", in: wrap(`{` + ids + `,"links":[{"traceId":"zz"}]}`), errSub: "link traceId"},
		{name: "float int", in: wrap(`{` + ids + `,"startTimeUnixNano":1.5}`), errSub: "not an integer"},
		{name: "negative time", in: wrap(`{` + ids + `,"startTimeUnixNano":"-1"}`), errSub: "negative"},
		{name: "int overflow", in: wrap(`{` + ids + `,"attributes":[{"key":"k","value":{"intValue":"9223372036854775808"}}]}`), errSub: "overflows int64"},
		{name: "bad enum", in: wrap(`{` + ids + `,"kind":"SPAN_KIND_BOGUS"}`), errSub: "kind"},
		{name: "deep", in: wrap(`{` + ids + `,"attributes":[{"key":"k","value":` + deep + `}]}`), errSub: "nested deeper"},
		{name: "deep unknown", in: `{"x":` + strings.Repeat("[", 100000) + `}`, errSub: "nested deeper than 512"},
		{name: "trailing garbage", in: `{} x`, errSub: "after the JSON object"},
		{name: "truncated", in: wrap(`{` + ids)[:60], errSub: "unterminated string"},
		{name: "empty body", in: ``, errSub: "empty body"},
		{name: "bad escape", in: `{"a\q":1}`, errSub: "invalid escape"},
		{name: "bad literal", in: `{"a":tru}`, errSub: "invalid literal"},
		{name: "missing comma", in: `{"a":1 "b":2}`, errSub: "want ',' or '}'"},
		{name: "bad base64", in: wrap(`{` + ids + `,"attributes":[{"key":"k","value":{"bytesValue":"!!!"}}]}`), errSub: "not base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(DefaultLimits())
			var b span.Batch
			res, err := d.DecodeJSON([]byte(tc.in), &b)
			if tc.errSub != "" {
				var de *DecodeError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.errSub) {
					t.Fatalf("DecodeJSON error = %v, want a *DecodeError containing %q", err, tc.errSub)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeJSON: %v", err)
			}
			if tc.check != nil {
				tc.check(t, res, &b)
			}
		})
	}
}

func TestJSONLimits(t *testing.T) {
	lim := Limits{MaxAttrsPerSpan: 1, MaxEventsPerSpan: 1, MaxLinksPerSpan: 1, MaxNameBytes: 3, MaxAttrValueBytes: 2, MaxSpansPerRequest: 1}
	in := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"abcdef",
	"attributes":[{"key":"a","value":{"stringValue":"xyz"}},{"key":"b","value":{}}],"droppedAttributesCount":4,
	"events":[{},{}],"links":[{},{},{}]}]}]}]}`
	var b span.Batch
	res, err := NewDecoder(lim).DecodeJSON([]byte(in), &b)
	if err != nil {
		t.Fatal(err)
	}
	s := b.Spans[0]
	if s.Name != "abc" || len(s.Attrs) != 1 || s.Attrs[0].Value.Str != "xy" || s.DroppedAttrs != 5 || s.DroppedEvents != 1 || s.DroppedLinks != 2 {
		t.Errorf("span %+v", s)
	}
	if res.Truncated != 2 || res.DroppedAttrs != 1 || res.DroppedEvents != 1 || res.DroppedLinks != 2 || !res.Modified {
		t.Errorf("result %+v", res)
	}
	in2 := strings.Replace(in, `"spans":[{`, `"spans":[{},{`, 1)
	if _, err := NewDecoder(lim).DecodeJSON([]byte(in2), &b); !errors.Is(err, ErrTooManySpans) {
		t.Errorf("two spans over a limit of one: %v", err)
	}
}

// TestGrouping checks that encoders group by pointer runs and keep order.
func TestGrouping(t *testing.T) {
	r1, r2 := &span.Resource{SchemaURL: "r1"}, &span.Resource{SchemaURL: "r2"}
	s1, s2 := &span.Scope{Name: "s1"}, &span.Scope{Name: "s2"}
	mk := func(n byte, r *span.Resource, s *span.Scope) span.Span {
		return span.Span{TraceID: span.TraceID{n}, SpanID: span.SpanID{n}, Resource: r, Scope: s}
	}
	spans := []span.Span{mk(1, r1, s1), mk(2, r1, s1), mk(3, r1, s2), mk(4, r2, s2), mk(5, r1, s1), mk(6, nil, nil)}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(AppendSpansProto(nil, spans))
	if err != nil {
		t.Fatal(err)
	}
	var shape []string
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			shape = append(shape, rs.SchemaUrl()+"/"+ss.Scope().Name()+":"+string(rune('0'+ss.Spans().Len())))
		}
	}
	if got, want := strings.Join(shape, " "), "r1/s1:2 r1/s2:1 r2/s2:1 r1/s1:1 /:1"; got != want {
		t.Errorf("shape %q, want %q", got, want)
	}
	var b span.Batch
	if _, err := NewDecoder(DefaultLimits()).DecodeJSON(AppendJSON(nil, spans), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Resources) != 4 || len(b.Scopes) != 5 || b.Spans[0].Resource != b.Spans[2].Resource || b.Spans[0].Scope == b.Spans[2].Scope {
		t.Errorf("JSON grouping: %d resources %d scopes", len(b.Resources), len(b.Scopes))
	}
}

// TestDecoderReuse checks that a reused decoder gives the same results and
// that a failed decode leaves the batch as it was.
func TestDecoderReuse(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	r := rand.New(rand.NewPCG(3, 3))
	for i := range 20 {
		b := randBatch(r, 1+r.IntN(100))
		var got span.Batch
		if _, err := d.DecodeProto(MarshalProto(nil, b), &got); err != nil {
			t.Fatal(err)
		}
		if diff := diffSpans(got.Spans, b.Spans); diff != "" {
			t.Fatalf("round %d: %s", i, diff)
		}
		got.Reset()
		if _, err := d.DecodeJSON(AppendJSON(nil, b.Spans), &got); err != nil {
			t.Fatal(err)
		}
		if diff := diffSpans(got.Spans, b.Spans); diff != "" {
			t.Fatalf("round %d JSON: %s", i, diff)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 10, "hello"}, {"hello", 3, "hel"}, {"héllo", 2, "h"}, {"héllo", 3, "hé"},
		{"😀😀", 5, "😀"}, {"😀", 3, ""}, {"\x80\x80\x80\x80\x80", 4, "\x80\x80\x80\x80"},
	} {
		if got := truncate(tc.in, tc.max); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestParseInteger(t *testing.T) {
	for _, tc := range []struct {
		in  string
		neg bool
		mag uint64
		ok  bool
	}{
		{"0", false, 0, true}, {"18446744073709551615", false, math.MaxUint64, true}, {"18446744073709551616", false, 0, false},
		{"-5", true, 5, true}, {"1.0", false, 1, true}, {"1.5", false, 0, false}, {"15e2", false, 1500, true},
		{"1500e-2", false, 15, true}, {"1501e-2", false, 0, false}, {"1e20", false, 0, false}, {"0e99999", false, 0, true},
		{"", false, 0, false}, {"-", false, 0, false}, {"1.", false, 0, false}, {"1e", false, 0, false}, {" 1", false, 0, false},
		{"9007199254740993", false, 9007199254740993, true},
	} {
		neg, mag, ok := parseInteger(tc.in)
		if ok != tc.ok || ok && (neg != tc.neg || mag != tc.mag) {
			t.Errorf("parseInteger(%q) = %v, %d, %v; want %v, %d, %v", tc.in, neg, mag, ok, tc.neg, tc.mag, tc.ok)
		}
	}
}

func TestDecoderResetReleases(t *testing.T) {
	d := NewDecoder(DefaultLimits())
	b := benchBatch(50)
	buf := MarshalProto(nil, b)
	var got span.Batch
	if _, err := d.DecodeProto(buf, &got); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	for _, c := range d.attrs.chunks {
		for i := range c {
			if c[i].Key != "" || c[i].Value.Str != "" {
				t.Fatalf("attr arena still references input after Reset")
			}
		}
	}
	got.Reset()
	if _, err := d.DecodeProto(buf, &got); err != nil {
		t.Fatal(err)
	}
	if diff := diffSpans(got.Spans, b.Spans); diff != "" {
		t.Fatal(diff)
	}
}

// TestArenaRetention checks that one huge request does not pin its arenas.
func TestArenaRetention(t *testing.T) {
	var a arena[span.Attr]
	for range 1000 {
		a.alloc(100)
	}
	a.reset(retainAttrs)
	total := 0
	for _, c := range a.chunks {
		total += len(c)
	}
	if total > retainAttrs {
		t.Fatalf("retained %d elements, cap %d", total, retainAttrs)
	}
	if s := a.alloc(3); len(s) != 3 || cap(s) != 3 {
		t.Fatalf("alloc after reset: len %d cap %d", len(s), cap(s))
	}
}

// TestDecodeAllocs pins the allocation target: after warm-up a decoder
// appends a 500-span request to a reused batch without allocating.
func TestDecodeAllocs(t *testing.T) {
	src := benchBatch(benchSpans)
	for _, tc := range []struct {
		name   string
		buf    []byte
		decode func(*Decoder, []byte, *span.Batch) (Result, error)
	}{
		{"proto", MarshalProto(nil, src), (*Decoder).DecodeProto},
		{"json", AppendJSON(nil, src.Spans), (*Decoder).DecodeJSON},
	} {
		d := NewDecoder(DefaultLimits())
		var b span.Batch
		allocs := testing.AllocsPerRun(20, func() {
			b.Reset()
			if _, err := tc.decode(d, tc.buf, &b); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 1 {
			t.Errorf("%s: %.1f allocations per 500-span request, want ≤ 1", tc.name, allocs)
		}
	}
}

func TestJSONErrorMessages(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[{},{"name":5}]}]}]}`, `resourceSpans[0].scopeSpans[0].spans[1] (span 1 of request): name: want a string (at byte 54)`},
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80"}]}]}]}`, `traceId is 14 bytes, want 16`},
		{`[]`, `not a JSON object (at byte 0)`},
	} {
		_, err := NewDecoder(DefaultLimits()).DecodeJSON([]byte(tc.in), &span.Batch{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeJSON(%s) error = %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

// TestCleanString pins the string rule every receiver shares: repair
// invalid UTF-8 first, then cut at a rune boundary.
func TestCleanString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
		fix  Fix
	}{
		{"hello", 10, "hello", 0},
		{"hello", 3, "hel", FixTruncated},
		{"a\xffb", 10, "a\uFFFDb", FixRepaired},
		{"a\xff\xfe\xfdb", 10, "a\uFFFDb", FixRepaired}, // one replacement per run
		{"abcdef\xff\xff", 8, "abcdef", FixRepaired | FixTruncated},
		{"héllo", 2, "h", FixTruncated},
		{"\x80\x80", 0, "\uFFFD", FixRepaired}, // no length limit
	} {
		got, fix := CleanString(tc.in, tc.max)
		if got != tc.want || fix != tc.fix {
			t.Errorf("CleanString(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, got, fix, tc.want, tc.fix)
		}
	}
}
