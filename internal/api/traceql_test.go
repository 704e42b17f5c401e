package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/clew-dev/clew/internal/storage"
)

// TestTraceQLSearchGolden pins the answers of GET /api/v1/search?q=.
func TestTraceQLSearchGolden(t *testing.T) {
	srv := newTestServer(t)
	cases := []struct {
		name, query string
		code        int
	}{
		{"traceql_error", "q=" + url.QueryEscape(`{ status = error }`), 200},
		{"traceql_structural", "q=" + url.QueryEscape(`{ resource.service.name = "frontend" } > { resource.service.name = "payment" }`) + "&traces=full", 200},
		{"traceql_page", "q=" + url.QueryEscape(`{ }`) + "&limit=1", 200},
		{"traceql_none", "q=" + url.QueryEscape(`{ name = "nope" }`), 200},
		{"traceql_since", "q=" + url.QueryEscape(`{ }`) + "&since=1m", 200},
		{"traceql_parse_error", "q=" + url.QueryEscape(`{ span.http.response.status_code >= }`), 400},
		{"traceql_type_error", "q=" + url.QueryEscape("{ duration > 1 }"), 400},
		{"traceql_metrics", "q=" + url.QueryEscape("{ } | rate()"), 400},
		{"traceql_with_native", "q=" + url.QueryEscape("{ }") + "&service=frontend", 400},
		{"traceql_empty", "q=", 400},
		{"traceql_bad_cursor", "q=" + url.QueryEscape("{ }") + "&cursor=AAAA", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := getJSON(t, srv.URL+"/api/v1/search?"+c.query, c.code)
			checkGolden(t, c.name, body)
		})
	}
}

// TestTraceQLSearchPaging follows nextCursor through every page: each
// trace comes once, newest first, and the last page has no cursor.
func TestTraceQLSearchPaging(t *testing.T) {
	srv := newTestServer(t)
	var all TraceQLSearchResponse
	if err := json.Unmarshal(getJSON(t, srv.URL+"/api/v1/search?q="+url.QueryEscape("{ }")+"&limit=10", 200), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.Traces) != 2 || all.NextCursor != "" || all.TotalIsLowerBound || all.Total != 2 {
		t.Fatalf("one page of 10: %d traces, total %d (lower bound %v), cursor %q; want 2, 2, false, none", len(all.Traces), all.Total, all.TotalIsLowerBound, all.NextCursor)
	}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		u := srv.URL + "/api/v1/search?q=" + url.QueryEscape("{ }") + "&limit=1"
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var res TraceQLSearchResponse
		if err := json.Unmarshal(getJSON(t, u, 200), &res); err != nil {
			t.Fatal(err)
		}
		for _, tr := range res.Traces {
			got = append(got, tr.TraceID)
		}
		if res.NextCursor == "" {
			break
		}
		if !res.TotalIsLowerBound || res.Total != len(got)+1 {
			t.Fatalf("page %d: total %d (lower bound %v), want %d, true", page, res.Total, res.TotalIsLowerBound, len(got)+1)
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		cursor = res.NextCursor
	}
	if len(got) != 2 || got[0] != all.Traces[0].TraceID || got[1] != all.Traces[1].TraceID {
		t.Fatalf("paged traces %v, want %s, %s", got, all.Traces[0].TraceID, all.Traces[1].TraceID)
	}
}

func TestTraceQLCursorRoundTrip(t *testing.T) {
	c := traceQLCursor{offset: 300, start: 1764000000000000000}
	c.id[0], c.id[15] = 0xab, 0x01
	got, err := decodeTraceQLCursor(c.encode())
	if err != nil || got != c {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", c, got, err)
	}
	for _, bad := range []string{"", "AAAA", encodeCursor(storage.Cursor{Start: 1}), c.encode()[:10]} {
		if _, err := decodeTraceQLCursor(bad); err == nil {
			t.Errorf("decodeTraceQLCursor(%q) accepted a bad cursor", bad)
		}
	}
}

func FuzzTraceQLCursor(f *testing.F) {
	f.Add(traceQLCursor{offset: 20, start: 5}.encode())
	f.Add("cQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeTraceQLCursor(s)
		if err != nil {
			return
		}
		if c.offset < 0 {
			t.Fatalf("negative offset from %q", s)
		}
		if again, err := decodeTraceQLCursor(c.encode()); err != nil || again != c {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

func getJSON(t *testing.T, u string, code int) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d %s, want %d", u, resp.StatusCode, body, code)
	}
	return body
}

func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("invalid JSON %q: %v", body, err)
	}
	golden := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run go test -update): %v", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("%s:\n got: %s\nwant: %s", name, pretty.Bytes(), want)
	}
}
