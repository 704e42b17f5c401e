package jaeger

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/clew-dev/clew/internal/search"
	"github.com/clew-dev/clew/internal/span"
)

// queryString renders a parsed search for comparison.
func queryString(p *findParams) string {
	q := p.query
	var b strings.Builder
	b.WriteString(q.Service + "|" + q.SpanName)
	for _, n := range []uint64{q.Start, q.End, q.MinDuration, q.MaxDuration, uint64(p.limit)} {
		b.WriteString("|" + itoa(n))
	}
	for _, c := range q.Conds {
		b.WriteString("|" + c.Scope.String() + ":" + c.Key + c.Op.String() + c.Value.Type.String() + ":" + c.Value.AsString())
	}
	for _, id := range p.traceIDs {
		b.WriteString("|id:" + id.String())
	}
	if p.raw {
		b.WriteString("|raw")
	}
	return b.String()
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestParseV3Find(t *testing.T) {
	const want = "svc|op|1764000000123456789|1764003600000000000|1000000|2000000000|20|any:a=string:1|any:b=string:true|any:c=string:x|raw"
	camel := "query.serviceName=svc&query.operationName=op&query.startTimeMin=2025-11-24T16:00:00.123456789Z" +
		"&query.startTimeMax=2025-11-24T17:00:00Z&query.durationMin=1ms&query.durationMax=2s&query.searchDepth=20" +
		`&query.attributes={"a":1,"b":true,"c":"x"}&query.rawTraces=true`
	snake := "query.service_name=svc&query.operation_name=op&query.start_time_min=2025-11-24T16:00:00.123456789Z" +
		"&query.start_time_max=2025-11-24T17:00:00Z&query.duration_min=1ms&query.duration_max=2s&query.search_depth=20" +
		`&query.attributes={"c":"x","b":"true","a":"1"}&query.raw_traces=true`
	cases := []struct {
		in, want, err string
	}{
		{camel, want, ""},
		{snake, want, ""},
		{"query.num_traces=20&query.startTimeMin=2025-11-24T18:00:00%2B02:00", "||1764000000000000000|0|0|0|20", ""},
		{"", "||0|0|0|0|100", ""},
		{"query.searchDepth=0", "||0|0|0|0|100", ""},
		{"query.searchDepth=5000", "||0|0|0|0|1000", ""},
		{"query.startTimeMin=1764000000", "", "query.startTimeMin"},
		{"query.startTimeMax=2025-13-01T00:00:00Z", "", "query.startTimeMax"},
		{"query.durationMin=5", "", "query.durationMin"},
		{"query.durationMax=-1s", "", "query.durationMax"},
		{"query.durationMin=2s&query.durationMax=1s", "", "minimum duration"},
		{"query.startTimeMin=2025-11-24T17:00:00Z&query.startTimeMax=2025-11-24T16:00:00Z", "", "after end"},
		{"query.searchDepth=-1", "", "query.searchDepth"},
		{"query.searchDepth=ten", "", "query.searchDepth"},
		{"query.attributes=a=b", "", "query.attributes"},
		{`query.attributes={"a":{"b":1}}`, "", "query.attributes"},
		{`query.attributes={"a":null}`, "", "query.attributes"},
		{`query.attributes={"":"x"}`, "", "empty tag key"},
		{`query.attributes={"a":"1"}{}`, "", "trailing"},
		{"query.rawTraces=maybe", "", "query.rawTraces"},
		{"query.serviceName=" + strings.Repeat("x", maxParamLen+1), "", "longer than"},
	}
	for _, c := range cases {
		v, err := url.ParseQuery(c.in)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseV3Find(v, 1000)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseV3Find(%q) error = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseV3Find(%q): %v", c.in, err)
			continue
		}
		if got := queryString(p); got != c.want {
			t.Errorf("parseV3Find(%q)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestParseLegacyFind(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"service=svc&operation=op&start=1764000000000000&end=1764000001000000&minDuration=1.5ms&maxDuration=1s&limit=20",
			"svc|op|1764000000000000000|1764000001000000000|1500000|1000000000|20", ""},
		{`service=s&tags={"error":"true","http.status_code":500}&tag=k:v:w&tag=error:false`,
			"s||0|0|0|0|100|any:error=string:false|any:http.status_code=string:500|any:k=string:v:w", ""},
		{"traceID=1&traceID=00000000000000000000000000000002&raw=1", "||0|0|0|0|100|id:00000000000000000000000000000001|id:00000000000000000000000000000002|raw", ""},
		{"limit=0", "||0|0|0|0|100", ""},
		{"start=2025-11-24T16:00:00Z", "", "'start'"},
		{"end=-5", "", "'end'"},
		{"minDuration=abc", "", "'minDuration'"},
		{"maxDuration=100", "", "'maxDuration'"},
		{"limit=-3", "", "'limit'"},
		{"tags=[1,2]", "", "'tags'"},
		{"tags={", "", "'tags'"},
		{"tag=novalue", "", "malformed 'tag'"},
		{"tag=:v", "", "malformed 'tag'"},
		{"traceID=xyz", "", "malformed trace ID"},
		{"traceID=000", "", "malformed trace ID"},
		{"traceID=" + strings.Repeat("f", 33), "", "malformed trace ID"},
		{"raw=yes", "", "'raw'"},
		{"start=2000000&end=1000000", "", "after end"},
	}
	for _, c := range cases {
		v, err := url.ParseQuery(c.in)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseLegacyFind(v, 1000)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseLegacyFind(%q) error = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseLegacyFind(%q): %v", c.in, err)
			continue
		}
		if got := queryString(p); got != c.want {
			t.Errorf("parseLegacyFind(%q)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestTagConds(t *testing.T) {
	q := &search.Query{}
	if err := addTagConds(q, map[string]string{"b": "2", "a": "x"}); err != nil {
		t.Fatal(err)
	}
	want := []search.Cond{
		{Scope: search.ScopeAny, Key: "a", Op: search.OpEq, Value: span.StringValue("x")},
		{Scope: search.ScopeAny, Key: "b", Op: search.OpEq, Value: span.StringValue("2")},
	}
	if !reflect.DeepEqual(q.Conds, want) {
		t.Errorf("got %+v, want %+v", q.Conds, want)
	}
	many := map[string]string{}
	for i := range maxConds + 1 {
		many[itoa(uint64(i))] = "v"
	}
	if err := addTagConds(&search.Query{}, many); err == nil {
		t.Error("no error for too many tags")
	}
}

// TestBadRequests checks that bad parameters are 400 in each API's error
// envelope, with a message naming the parameter.
func TestBadRequests(t *testing.T) {
	srv := serve(t, openDB(t))
	cases := []struct {
		path, msg string
		v3        bool
	}{
		{"/jaeger/api/traces?limit=x", "'limit'", false},
		{"/jaeger/api/traces?start=yesterday", "'start'", false},
		{"/jaeger/api/traces?tags=notjson", "'tags'", false},
		{"/jaeger/api/traces/nothex", "malformed trace ID", false},
		{"/jaeger/api/traces/00000000000000000000000000000001?start=x", "'start'", false},
		{"/jaeger/api/traces/00000000000000000000000000000001?raw=x", "'raw'", false},
		{"/jaeger/api/operations?spanKind=x", "spanKind", false},
		{"/jaeger/api/dependencies?endTs=x", "'endTs'", false},
		{"/jaeger/api/dependencies?lookback=-1", "'lookback'", false},
		{"/jaeger/api/v3/traces?query.durationMin=x", "query.durationMin", true},
		{"/jaeger/api/v3/traces?query.searchDepth=x", "query.searchDepth", true},
		{"/jaeger/api/v3/traces/zz", "malformed trace ID", true},
		{"/jaeger/api/v3/traces/1?startTime=x", "startTime", true},
		{"/jaeger/api/v3/traces/1?end_time=x", "endTime", true},
		{"/jaeger/api/v3/traces/1?raw_traces=x", "rawTraces", true},
		{"/jaeger/api/v3/operations?service=a&spanKind=x", "spanKind", true},
	}
	for _, c := range cases {
		code, body := get(t, srv, c.path)
		if code != 400 {
			t.Errorf("GET %s: %d %s, want 400", c.path, code, body)
			continue
		}
		var msg string
		if c.v3 {
			var e v3Error
			if err := json.Unmarshal(body, &e); err != nil || e.Error.HTTPCode != 400 {
				t.Errorf("GET %s: body %s is not an api_v3 error", c.path, body)
			}
			msg = e.Error.Message
		} else {
			var e legacyResponse
			if err := json.Unmarshal(body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != 400 || e.Data != nil {
				t.Errorf("GET %s: body %s is not a legacy error envelope", c.path, body)
				continue
			}
			msg = e.Errors[0].Msg
		}
		if !strings.Contains(msg, c.msg) {
			t.Errorf("GET %s: message %q does not mention %q", c.path, msg, c.msg)
		}
	}
}
