package jaeger

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store"
)

// The compatibility suite: Jaeger's storage integration fixtures and every
// search case of queries.json, run through both Jaeger APIs, first against
// the head and then, after a flush, against blocks.

const compatDir = "testdata/compat"

// largeTraceSpans is the size of the large trace Jaeger's tests write:
// example_trace's spans repeated.
const largeTraceSpans = 10_008

// largeTraceID is the large trace's ID; it differs from example_trace's so
// that both can be stored side by side.
var largeTraceID = span.TraceID{0x10, 15: 0x11}

// compatCase is one search case of queries.json.
type compatCase struct {
	Caption string `json:"Caption"`
	Query   struct {
		ServiceName   string         `json:"ServiceName"`
		OperationName string         `json:"OperationName"`
		Tags          map[string]any `json:"Tags"`
		StartTimeMin  time.Time      `json:"StartTimeMin"`
		StartTimeMax  time.Time      `json:"StartTimeMax"`
		DurationMin   int64          `json:"DurationMin"` // nanoseconds
		DurationMax   int64          `json:"DurationMax"`
		NumTraces     int            `json:"NumTraces"`
	} `json:"Query"`
	ExpectedFixtures []string `json:"ExpectedFixtures"`
}

// fixtureShift is how far the fixtures move so that 2017-01-26 becomes
// yesterday (UTC), keeping the time of day, as Jaeger's tests do; the
// day-before spans of 2017-01-25 land on the day before yesterday.
func fixtureShift() uint64 {
	y := time.Now().UTC().AddDate(0, 0, -1)
	yesterday := time.Date(y.Year(), y.Month(), y.Day(), 0, 0, 0, 0, time.UTC)
	return uint64(yesterday.Sub(time.Date(2017, 1, 26, 0, 0, 0, 0, time.UTC)))
}

// traceShape is what a search answer is checked against: span counts by
// trace ID.
type traceShape map[string]int

// loadCompat stores every fixture trace, shifted, and the large trace. It
// returns each fixture's trace ID and span count by fixture name.
func loadCompat(t *testing.T, db *store.DB, shift uint64) map[string]traceShape {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(compatDir, "traces", "*.json"))
	if err != nil || len(paths) != 32 {
		t.Fatalf("want 32 fixture traces, got %d (%v)", len(paths), err)
	}
	fixtures := map[string]traceShape{}
	for _, p := range paths {
		b := decodeFixture(t, p, shift)
		shape := traceShape{}
		for i := range b.Spans {
			shape[b.Spans[i].TraceID.String()]++
		}
		fixtures[strings.TrimSuffix(filepath.Base(p), ".json")] = shape
		if filepath.Base(p) == "example_trace.json" {
			appendBatch(t, db, largeTrace(b))
		}
		appendBatch(t, db, b)
	}
	return fixtures
}

// largeTrace repeats example's spans to largeTraceSpans spans of one trace,
// one second apart. Like Jaeger's test it reuses the first span ID now and
// then; those spans differ in start time, so none is a duplicate.
func largeTrace(example *span.Batch) *span.Batch {
	b := &span.Batch{Resources: example.Resources, Scopes: example.Scopes, Spans: make([]span.Span, largeTraceSpans)}
	for i := range b.Spans {
		s := example.Spans[i%len(example.Spans)]
		s.TraceID = largeTraceID
		id := uint64(i + 1)
		if i > 0 && i%1000 == 0 {
			id = 1
		}
		s.SpanID = span.SpanID{}
		for k := range 8 {
			s.SpanID[7-k] = byte(id >> (8 * k))
		}
		off := uint64(i+1) * uint64(time.Second)
		s.StartUnixNano += off
		s.EndUnixNano += off
		b.Spans[i] = s
	}
	return b
}

func readCases(t *testing.T, name string) []compatCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(compatDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var cases []compatCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

// tagsJSON renders a case's tags as the JSON object both APIs take.
func tagsJSON(t *testing.T, tags map[string]any) string {
	b, err := json.Marshal(tags)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func legacyQuery(t *testing.T, c compatCase, shift uint64) string {
	q := c.Query
	v := url.Values{}
	v.Set("service", q.ServiceName)
	if q.OperationName != "" {
		v.Set("operation", q.OperationName)
	}
	if len(q.Tags) > 0 {
		v.Set("tags", tagsJSON(t, q.Tags))
	}
	v.Set("start", strconv.FormatUint((uint64(q.StartTimeMin.UnixNano())+shift)/1000, 10))
	v.Set("end", strconv.FormatUint((uint64(q.StartTimeMax.UnixNano())+shift)/1000, 10))
	if q.DurationMin > 0 {
		v.Set("minDuration", time.Duration(q.DurationMin).String())
	}
	if q.DurationMax > 0 {
		v.Set("maxDuration", time.Duration(q.DurationMax).String())
	}
	v.Set("limit", strconv.Itoa(q.NumTraces))
	return "/jaeger/api/traces?" + v.Encode()
}

func v3Query(t *testing.T, c compatCase, shift uint64) string {
	q := c.Query
	v := url.Values{}
	v.Set("query.service_name", q.ServiceName)
	if q.OperationName != "" {
		v.Set("query.operation_name", q.OperationName)
	}
	if len(q.Tags) > 0 {
		v.Set("query.attributes", tagsJSON(t, q.Tags))
	}
	v.Set("query.start_time_min", q.StartTimeMin.Add(time.Duration(shift)).Format(time.RFC3339Nano))
	v.Set("query.start_time_max", q.StartTimeMax.Add(time.Duration(shift)).Format(time.RFC3339Nano))
	if q.DurationMin > 0 {
		v.Set("query.duration_min", time.Duration(q.DurationMin).String())
	}
	if q.DurationMax > 0 {
		v.Set("query.duration_max", time.Duration(q.DurationMax).String())
	}
	v.Set("query.search_depth", strconv.Itoa(q.NumTraces))
	return "/jaeger/api/v3/traces?" + v.Encode()
}

// legacyShape reads trace IDs and span counts from a legacy answer.
func legacyShape(t *testing.T, body []byte) traceShape {
	t.Helper()
	var resp struct {
		Data []Trace `json:"data"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	got := traceShape{}
	for _, tr := range resp.Data {
		if _, dup := got[tr.TraceID]; dup {
			t.Errorf("trace %s returned twice", tr.TraceID)
		}
		got[tr.TraceID] = len(tr.Spans)
		for _, s := range tr.Spans {
			if s.TraceID != tr.TraceID {
				t.Errorf("span %s of trace %s has trace ID %s", s.SpanID, tr.TraceID, s.TraceID)
			}
			if _, ok := tr.Processes[s.ProcessID]; !ok {
				t.Errorf("span %s has unknown process %q", s.SpanID, s.ProcessID)
			}
		}
	}
	return got
}

// v3Shape reads trace IDs and span counts from an api_v3 answer.
func v3Shape(t *testing.T, body []byte) traceShape {
	t.Helper()
	var resp struct {
		Result struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct {
						TraceID string `json:"traceId"`
					} `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	got := traceShape{}
	for _, rs := range resp.Result.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				got[s.TraceID]++
			}
		}
	}
	return got
}

func TestCompatQueries(t *testing.T) {
	db := openDB(t)
	srv := serve(t, db)
	shift := fixtureShift()
	fixtures := loadCompat(t, db, shift)
	cases := readCases(t, "queries.json")
	if len(cases) != 25 {
		t.Fatalf("queries.json has %d cases, want 25", len(cases))
	}
	run := func(t *testing.T) {
		for i, c := range cases {
			t.Run(fmt.Sprintf("%02d_%s", i+1, strings.ReplaceAll(c.Caption, " ", "_")), func(t *testing.T) {
				want := traceShape{}
				for _, f := range c.ExpectedFixtures {
					shape, ok := fixtures[f]
					if !ok {
						t.Fatalf("no fixture %q", f)
					}
					maps.Copy(want, shape)
				}
				for _, api := range []struct {
					name  string
					path  string
					shape func(*testing.T, []byte) traceShape
				}{
					{"legacy", legacyQuery(t, c, shift), legacyShape},
					{"v3", v3Query(t, c, shift), v3Shape},
				} {
					code, body := get(t, srv, api.path)
					if code != 200 {
						t.Errorf("%s: GET %s: %d %s", api.name, api.path, code, body)
						continue
					}
					if got := api.shape(t, body); !maps.Equal(got, want) {
						t.Errorf("%s: GET %s\n got traces (span counts) %v\nwant %v", api.name, api.path, got, want)
					}
				}
			})
		}
	}
	t.Run("head", run)
	if err := db.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); len(st.Blocks) == 0 {
		t.Fatalf("flush wrote no block: %+v", st)
	}
	t.Run("blocks", run)
}

// TestCompatQueriesES documents why queries_es.json is not run: its two
// cases rely on Elasticsearch reading tag values as regular expressions
// ("same.*" matching "sameplacevalue1", "same\*" matching "same*"). Jaeger
// compares tag values exactly in every other backend, and so does clew.
func TestCompatQueriesES(t *testing.T) {
	cases := readCases(t, "queries_es.json")
	if len(cases) != 2 {
		t.Fatalf("queries_es.json has %d cases, want 2", len(cases))
	}
	t.Skip("queries_es.json: Elasticsearch regex semantics for tag values; clew compares tag values as exact strings")
}

// TestLargeTrace checks that the 10,008-span trace comes back whole from
// trace by ID and from search, in both APIs.
func TestLargeTrace(t *testing.T) {
	db := openDB(t)
	srv := serve(t, db)
	fixtures := loadCompat(t, db, fixtureShift())
	id := largeTraceID.String()
	example := fixtures["example_trace"]
	want := traceShape{id: largeTraceSpans}
	wantSearch := maps.Clone(example)
	wantSearch[id] = largeTraceSpans
	for _, c := range []struct {
		path  string
		shape func(*testing.T, []byte) traceShape
		want  traceShape
	}{
		{"/jaeger/api/traces/" + id, legacyShape, want},
		{"/jaeger/api/v3/traces/" + id, v3Shape, want},
		{"/jaeger/api/traces?service=example-service-1", legacyShape, wantSearch},
		{"/jaeger/api/v3/traces?query.serviceName=example-service-1", v3Shape, wantSearch},
	} {
		code, body := get(t, srv, c.path)
		if code != 200 {
			t.Fatalf("GET %s: %d %.300s", c.path, code, body)
		}
		if got := c.shape(t, body); !maps.Equal(got, c.want) {
			t.Errorf("GET %s: got %v, want %v", c.path, got, c.want)
		}
	}
	// Span IDs repeat (as in Jaeger's test), but no span is lost.
	_, body := get(t, srv, "/jaeger/api/traces/"+id)
	var resp struct{ Data []Trace }
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatal(err)
	}
	starts := map[uint64]bool{}
	for _, s := range resp.Data[0].Spans {
		starts[s.StartTime] = true
	}
	if len(starts) != largeTraceSpans {
		t.Errorf("got %d distinct start times, want %d", len(starts), largeTraceSpans)
	}
	if ids := slices.Collect(maps.Keys(resp.Data[0].Processes)); len(ids) != 3 {
		t.Errorf("got processes %v, want 3 (one per service)", ids)
	}
}
