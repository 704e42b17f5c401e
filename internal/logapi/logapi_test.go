package logapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/logs"
)

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in    string
		check func(*logs.Query) bool
		err   string
	}{
		{in: "", check: func(q *logs.Query) bool { return q.Start == 0 && q.End == 0 && q.MinSeverity == 0 }},
		{in: "service=api&severity=warn", check: func(q *logs.Query) bool { return q.Service == "api" && q.MinSeverity == 13 }},
		{in: "severity=17", check: func(q *logs.Query) bool { return q.MinSeverity == 17 }},
		{in: "since=1h", check: func(q *logs.Query) bool {
			return q.Start == now.Add(-time.Hour).UnixNano() && q.End == now.UnixNano()+1
		}},
		{in: "attr=http.status_code=500&attr=a=b=c", check: func(q *logs.Query) bool {
			return len(q.Attrs) == 2 && q.Attrs[0] == logs.KV{Key: "http.status_code", Value: "500"} && q.Attrs[1].Value == "b=c"
		}},
		{in: "contains=x&notcontains=y&regexp=a.c&notregexp=%5Ed", check: func(q *logs.Query) bool {
			return len(q.Contains) == 1 && len(q.NotContains) == 1 && len(q.Regexp) == 1 && len(q.NotRegexp) == 1
		}},
		{in: "trace_id=4bf92f3577b34da6a3ce929d0e0e4736&span_id=00f067aa0ba902b7", check: func(q *logs.Query) bool {
			return q.TraceID != nil && q.TraceID[0] == 0x4b && q.SpanID != nil && q.SpanID[7] == 0xb7
		}},
		{in: "severity=loud", err: "severity"},
		{in: "severity=25", err: "severity"},
		{in: "attr=novalue", err: "key=value"},
		{in: "attr==v", err: "key=value"},
		{in: "regexp=(", err: "regexp"},
		{in: "regexp=" + strings.Repeat("a", 2000), err: "at most 1024"},
		{in: "trace_id=xyz", err: "trace_id"},
		{in: "span_id=0102", err: "span_id"},
		{in: "start=2026-12-07T11:00:00Z&end=2026-12-07T10:00:00Z", err: "before start"},
		{in: strings.Repeat("contains=a&", 40), err: "at most 32"},
	}
	for _, c := range cases {
		v, err := url.ParseQuery(c.in)
		if err != nil {
			t.Fatal(err)
		}
		q, err := ParseQuery(v, now)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseQuery(%.60q) error = %v, want one naming %q", c.in, err, c.err)
			}
		case err != nil:
			t.Errorf("ParseQuery(%.60q): %v", c.in, err)
		case !c.check(q):
			t.Errorf("ParseQuery(%.60q) = %+v", c.in, q)
		}
	}
}

// fakeReader serves recs (newest first) through Query.Match, with the
// cursor, as the store's contract says.
type fakeReader struct{ recs []logs.Record }

func (f *fakeReader) SearchLogs(_ context.Context, q *logs.Query, limit int, after logs.Cursor) (logs.Page, error) {
	var p logs.Page
	for i := range f.recs {
		r := &f.recs[i]
		if !q.Match(r) || !after.Before(logs.KeyOf(r)) {
			continue
		}
		if len(p.Records) == limit {
			p.Next = logs.Cursor{Key: logs.KeyOf(&p.Records[limit-1]), Set: true}
			break
		}
		p.Records = append(p.Records, *r)
	}
	return p, nil
}

func (f *fakeReader) LogStats(context.Context) logs.Stats {
	return logs.Stats{HeadRecords: len(f.recs)}
}

func (f *fakeReader) LogResources(context.Context, int64, int64) ([][]logs.KV, error) {
	var out [][]logs.KV
	for i := range f.recs {
		if len(f.recs[i].Resource) > 0 {
			out = append(out, f.recs[i].Resource)
		}
	}
	return out, nil
}

func TestEndpoints(t *testing.T) {
	var recs []logs.Record
	for i := 9; i >= 0; i-- { // newest first
		r := logs.Record{Time: int64(1000 + i), Severity: uint8(9 + i%2*8), Body: "line " + string(rune('0'+i)), BodyType: 's', Service: "api",
			Attrs: []logs.KV{{Key: "n", Value: "1", Type: 'i'}}}
		r.TraceID[15] = byte(i % 2)
		r.TraceID[0] = 1
		recs = append(recs, r)
	}
	mux := http.NewServeMux()
	New(&fakeReader{recs}, nil).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, m
	}
	code, m := get("/api/v1/logs?severity=error&limit=2")
	if code != 200 || m["count"].(float64) != 2 || m["nextCursor"] == nil {
		t.Fatalf("search: %d %v", code, m)
	}
	first := m["logs"].([]any)[0].(map[string]any)
	if first["body"] != "line 9" || first["severity"] != "ERROR" || first["attributes"].(map[string]any)["n"] != 1.0 {
		t.Fatalf("first record %v", first)
	}
	code, m = get("/api/v1/logs?severity=error&limit=2&cursor=" + m["nextCursor"].(string))
	if code != 200 || m["logs"].([]any)[0].(map[string]any)["body"] != "line 5" {
		t.Fatalf("second page: %d %v", code, m)
	}
	code, m = get("/api/v1/traces/01000000000000000000000000000001/logs")
	if code != 200 || m["count"].(float64) != 5 {
		t.Fatalf("trace logs: %d %v", code, m)
	}
	if code, m := get("/api/v1/logs/stats"); code != 200 || m["headRecords"] != 10.0 {
		t.Fatalf("stats: %d %v", code, m)
	}
	for _, bad := range []string{"/api/v1/traces/zz/logs", "/api/v1/logs?cursor=not-a-cursor", "/api/v1/logs?limit=0", "/api/v1/logs?limit=5000", "/api/v1/logs?regexp=*"} {
		if code, m := get(bad); code != 400 || m["error"] == "" {
			t.Errorf("GET %s: %d %v, want 400 with an error", bad, code, m)
		}
	}
}
