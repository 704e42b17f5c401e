package overrides

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeClock is a settable clock for the token buckets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// setup writes content to an overrides file and opens it with a fake
// clock and a fresh registry.
func setup(t *testing.T, defaults Limits, content string, opts Options) (*Overrides, string, *prometheus.Registry, *fakeClock) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, path, content)
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	reg := prometheus.NewRegistry()
	opts.Logger = quiet
	if opts.Now == nil {
		opts.Now = clock.Now
	}
	o, err := New(defaults, path, reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return o, path, reg, clock
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as a config management tool would
		t.Fatal(err)
	}
}

func hits(o *Overrides, tenant string, l Limit) float64 {
	return testutil.ToFloat64(o.hits.WithLabelValues(tenant, l.String()))
}

func TestNewRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.yaml")
	writeFile(t, path, "overrides:\n  a:\n    nope: 1\n")
	_, err := New(Limits{}, path, nil, Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v, want one naming the file and the key", err)
	}
	if _, err := New(Limits{}, filepath.Join(t.TempDir(), "missing.yaml"), nil, Options{Logger: quiet}); err == nil {
		t.Fatal("a missing file was accepted")
	}
	if _, err := New(Limits{IngestionRateSpans: -1}, "", nil, Options{Logger: quiet}); err == nil {
		t.Fatal("negative defaults were accepted")
	}
}

func TestNoFile(t *testing.T) {
	o, err := New(Limits{MaxSpansPerTrace: 9}, "", nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := o.For("x").MaxSpansPerTrace; got != 9 {
		t.Fatalf("For = %d, want the default 9", got)
	}
	if err := o.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o.Run(ctx) // returns
}

func TestReload(t *testing.T) {
	o, path, reg, _ := setup(t, Limits{MaxSpansPerTrace: 100},
		"overrides:\n  a:\n    max_spans_per_trace: 5\n", Options{Interval: 5 * time.Millisecond})
	if got := o.For("a").MaxSpansPerTrace; got != 5 {
		t.Fatalf("a: %d, want 5", got)
	}
	if got := o.For("b").MaxSpansPerTrace; got != 100 {
		t.Fatalf("b: %d, want the default 100", got)
	}
	if got := testutil.ToFloat64(o.reloads.WithLabelValues("success")); got != 1 {
		t.Fatalf("successes = %v, want 1 (the load in New)", got)
	}
	if testutil.ToFloat64(o.lastSuccessG) == 0 {
		t.Fatal("last success timestamp not set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { o.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	writeFile(t, path, "overrides:\n  '*':\n    max_spans_per_trace: 50\n  a:\n    max_spans_per_trace: 7\n")
	waitFor(t, "the new limits", func() bool { return o.For("a").MaxSpansPerTrace == 7 && o.For("b").MaxSpansPerTrace == 50 })
	if got := testutil.ToFloat64(o.reloads.WithLabelValues("success")); got != 2 {
		t.Errorf("successes = %v, want 2", got)
	}

	// A broken file keeps the limits in force, and is counted once.
	writeFile(t, path, "overrides:\n  a:\n    max_spans_per_trace: [\n")
	waitFor(t, "the failure", func() bool { return testutil.ToFloat64(o.reloads.WithLabelValues("failure")) == 1 })
	time.Sleep(30 * time.Millisecond) // several more polls
	if got := testutil.ToFloat64(o.reloads.WithLabelValues("failure")); got != 1 {
		t.Errorf("failures = %v, want 1: an unchanged bad file is counted once", got)
	}
	if got := o.For("a").MaxSpansPerTrace; got != 7 {
		t.Errorf("after a bad file a: %d, want the previous 7", got)
	}
	if st := o.Status(); !strings.Contains(st.LastError, path) {
		t.Errorf("Status.LastError = %q, want the parse error", st.LastError)
	}
	// So does an invalid one, and a missing one.
	writeFile(t, path, "overrides:\n  a:\n    max_spans_per_trace: -7\n")
	waitFor(t, "the second failure", func() bool { return testutil.ToFloat64(o.reloads.WithLabelValues("failure")) == 2 })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the third failure", func() bool { return testutil.ToFloat64(o.reloads.WithLabelValues("failure")) == 3 })
	if got := o.For("a").MaxSpansPerTrace; got != 7 {
		t.Errorf("after bad files a: %d, want the previous 7", got)
	}

	// The last good file put back loads again.
	writeFile(t, path, "overrides:\n  '*':\n    max_spans_per_trace: 50\n  a:\n    max_spans_per_trace: 7\n")
	waitFor(t, "the good file again", func() bool { return testutil.ToFloat64(o.reloads.WithLabelValues("success")) == 3 })
	if st := o.Status(); st.LastError != "" {
		t.Errorf("LastError = %q after the good file was put back", st.LastError)
	}

	// Fixed, it loads, and the error is gone.
	writeFile(t, path, "overrides:\n  a:\n    max_spans_per_trace: 8\n")
	waitFor(t, "the fixed file", func() bool { return o.For("a").MaxSpansPerTrace == 8 })
	if got := o.For("b").MaxSpansPerTrace; got != 100 {
		t.Errorf("b: %d, want the default again (the \"*\" entry is gone)", got)
	}
	if st := o.Status(); st.LastError != "" {
		t.Errorf("LastError = %q after a good reload", st.LastError)
	}
	n, err := testutil.GatherAndCount(reg, "clew_overrides_reloads_total", "clew_overrides_last_reload_success_timestamp_seconds")
	if err != nil || n != 3 {
		t.Errorf("gathered %d series (%v), want 3", n, err)
	}
}

// TestReloadSameSize rewrites the file with content of the same size at
// once, within the file system's time resolution: the content is compared.
func TestReloadSameSize(t *testing.T) {
	o, path, _, _ := setup(t, Limits{}, "overrides:\n  a:\n    max_spans_per_trace: 1\n", Options{})
	for i := 2; i <= 9; i++ {
		content := strings.Replace("overrides:\n  a:\n    max_spans_per_trace: N\n", "N", string(rune('0'+i)), 1)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		// Keep the modification time: only the content tells.
		if err := os.Chtimes(path, time.Time{}, time.Now().Truncate(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := o.check(false); err != nil {
			t.Fatal(err)
		}
		if got := o.For("a").MaxSpansPerTrace; got != i {
			t.Fatalf("after writing %d: %d", i, got)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestAllowIngest(t *testing.T) {
	o, path, _, clock := setup(t, Limits{}, `
overrides:
  spans:
    ingestion_rate_spans: 10
  bytes:
    ingestion_rate_bytes: 1000
    ingestion_burst_bytes: 2000
`, Options{})

	// Unlimited tenants always pass.
	for range 100 {
		if _, ok := o.AllowIngest("free", 1000, 1<<20); !ok {
			t.Fatal("an unlimited tenant was refused")
		}
	}

	// The bucket holds one second of spans (burst 0 = the rate).
	for i := range 10 {
		if _, ok := o.AllowIngest("spans", 1, 100); !ok {
			t.Fatalf("span %d refused within the burst", i)
		}
	}
	retry, ok := o.AllowIngest("spans", 1, 100)
	if ok || retry <= 0 || retry > 100*time.Millisecond {
		t.Fatalf("over the burst: ok=%v retry=%v, want a refusal with retry in (0, 100ms]", ok, retry)
	}
	clock.Advance(retry)
	if _, ok := o.AllowIngest("spans", 1, 100); !ok {
		t.Fatal("refused after waiting retryAfter")
	}
	if got := hits(o, "spans", IngestionRateSpans); got != 1 {
		t.Errorf("spans hits = %v, want 1", got)
	}
	if got := hits(o, "spans", IngestionRateBytes); got != 0 {
		t.Errorf("bytes hits of the spans tenant = %v, want 0", got)
	}

	// Bytes: a burst of 2000, then 1000 per second; a refusal takes nothing.
	if _, ok := o.AllowIngest("bytes", 1, 1500); !ok {
		t.Fatal("first request refused")
	}
	retry, ok = o.AllowIngest("bytes", 1, 1000)
	if ok || retry < 400*time.Millisecond || retry > 500*time.Millisecond {
		t.Fatalf("ok=%v retry=%v, want a refusal with about 500ms", ok, retry)
	}
	clock.Advance(500 * time.Millisecond)
	if _, ok := o.AllowIngest("bytes", 1, 1000); !ok {
		t.Fatal("refused after the retry time")
	}

	// A request larger than the bucket passes when it is full, and leaves
	// a debt: 5000 bytes from a full bucket of 2000 owe 3 s.
	clock.Advance(10 * time.Second)
	if _, ok := o.AllowIngest("bytes", 1, 5000); !ok {
		t.Fatal("an oversized request was refused with a full bucket")
	}
	retry, ok = o.AllowIngest("bytes", 1, 1)
	if ok || retry < 3*time.Second || retry > 3100*time.Millisecond {
		t.Fatalf("after the oversized request ok=%v retry=%v, want about 3s", ok, retry)
	}
	clock.Advance(retry)
	if _, ok := o.AllowIngest("bytes", 1, 1); !ok {
		t.Fatal("refused after paying the debt")
	}
	if got := hits(o, "bytes", IngestionRateBytes); got != 2 {
		t.Errorf("bytes hits = %v, want 2", got)
	}

	// A reload changes the rate of the existing bucket.
	writeFile(t, path, "overrides:\n  spans:\n    ingestion_rate_spans: 1000\n")
	if err := o.Reload(); err != nil {
		t.Fatal(err)
	}
	o.AllowIngest("spans", 1, 1) // the new rate applies from here
	clock.Advance(time.Second)
	for i := range 1000 {
		if _, ok := o.AllowIngest("spans", 1, 1); !ok {
			t.Fatalf("span %d refused after raising the rate", i)
		}
	}
	if _, ok := o.AllowIngest("spans", 1, 1); ok {
		t.Fatal("span 1001 passed")
	}
	// And lifting the limit lifts it.
	writeFile(t, path, "overrides: {}\n")
	if err := o.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.AllowIngest("spans", 5000, 1); !ok {
		t.Fatal("refused without a limit")
	}
}

func TestAllowIngestConcurrent(t *testing.T) {
	o, _, _, clock := setup(t, Limits{IngestionRateSpans: 100, IngestionBurstSpans: 500}, "", Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, ok := o.AllowIngest("t", 1, 1); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 500 {
		t.Fatalf("allowed %d spans on a still clock, want exactly the burst 500", allowed)
	}
	if got := hits(o, "t", IngestionRateSpans); got != 8*200-500 {
		t.Errorf("hits = %v, want %d", got, 8*200-500)
	}
	clock.Advance(time.Second)
	if _, ok := o.AllowIngest("t", 100, 1); !ok {
		t.Fatal("a second's worth refused after a second")
	}
}

func TestStartQuery(t *testing.T) {
	o, _, _, _ := setup(t, Limits{MaxConcurrentQueries: 2}, "overrides:\n  free:\n    max_concurrent_queries: 0\n", Options{})
	d1, err := o.StartQuery("a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := o.StartQuery("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartQuery("b"); err != nil {
		t.Fatalf("another tenant was limited: %v", err)
	}
	_, err = o.StartQuery("a")
	var le *LimitError
	if !errors.Is(err, ErrLimited) || !errors.As(err, &le) || le.Limit != MaxConcurrentQueries || !strings.Contains(err.Error(), "max_concurrent_queries") {
		t.Fatalf("third query: %v, want a LimitError naming max_concurrent_queries", err)
	}
	d1()
	d1() // a second call does nothing
	d3, err := o.StartQuery("a")
	if err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	if _, err := o.StartQuery("a"); err == nil {
		t.Fatal("a double done freed two places")
	}
	d2()
	d3()
	if got := o.Tenant("a").RunningQueries; got != 0 {
		t.Errorf("running = %d, want 0", got)
	}
	if got := hits(o, "a", MaxConcurrentQueries); got != 2 {
		t.Errorf("hits = %v, want 2", got)
	}
	for range 50 {
		if _, err := o.StartQuery("free"); err != nil {
			t.Fatal("an unlimited tenant was limited")
		}
	}
}

func TestCheckSearchRange(t *testing.T) {
	o, _, _, _ := setup(t, Limits{MaxSearchDuration: Duration(24 * time.Hour)}, "overrides:\n  free:\n    max_search_duration: 0s\n", Options{})
	end := time.Unix(1_700_000_000, 0)
	if err := o.CheckSearchRange("a", end.Add(-24*time.Hour), end); err != nil {
		t.Fatalf("exactly the limit: %v", err)
	}
	err := o.CheckSearchRange("a", end.Add(-25*time.Hour), end)
	if !errors.Is(err, ErrLimited) || !strings.Contains(err.Error(), "max_search_duration") || !strings.Contains(err.Error(), "25h0m0s") {
		t.Fatalf("over the limit: %v", err)
	}
	if err := o.CheckSearchRange("free", time.Time{}, end); err != nil {
		t.Fatalf("unlimited: %v", err)
	}
	if got := hits(o, "a", MaxSearchDuration); got != 1 {
		t.Errorf("hits = %v, want 1", got)
	}
}

func TestTenantBound(t *testing.T) {
	o, _, reg, _ := setup(t, Limits{MaxConcurrentQueries: 1}, "overrides:\n  listed:\n    max_concurrent_queries: 1\n", Options{MaxTenants: 2})
	for _, tn := range []string{"a", "b", "c", "d", "listed"} {
		o.Hit(tn, MaxAttributeValueBytes, 1)
	}
	for tn, want := range map[string]float64{"a": 1, "b": 1, OtherTenant: 2, "listed": 1} {
		if got := hits(o, tn, MaxAttributeValueBytes); got != want {
			t.Errorf("hits of %s = %v, want %v", tn, got, want)
		}
	}
	if got := o.Tenant("c").Hits["max_attribute_value_bytes"]; got != 2 {
		t.Errorf("hits seen by c = %v, want the shared 2", got)
	}
	// The tenants beyond the bound share one limit.
	done, err := o.StartQuery("c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.StartQuery("d"); err == nil {
		t.Error("the tenants beyond the bound do not share their state")
	}
	done()
	if got := o.Tenant("c").CountedAs; got != OtherTenant {
		t.Errorf("CountedAs = %q", got)
	}
	// 4 label values (a, b, listed, __other__) × 7 limits.
	if n, err := testutil.GatherAndCount(reg, "clew_tenant_limit_hits_total"); err != nil || n != 4*int(numLimits) {
		t.Errorf("%d series (%v), want %d", n, err, 4*int(numLimits))
	}
}

func TestHit(t *testing.T) {
	o, _, _, _ := setup(t, Limits{}, "", Options{})
	o.Hit("a", SpanMetricsMaxSeries, 3)
	o.Hit("a", SpanMetricsMaxSeries, 0)
	o.Hit("a", Limit(99), 1)
	if got := hits(o, "a", SpanMetricsMaxSeries); got != 3 {
		t.Fatalf("hits = %v", got)
	}
	if got := o.Tenant("a").Hits["spanmetrics_max_series"]; got != 3 {
		t.Fatalf("Tenant hits = %v", got)
	}
}

func TestHandler(t *testing.T) {
	o, _, _, _ := setup(t, Limits{MaxSpansPerTrace: 10, Retention: Duration(48 * time.Hour)},
		"overrides:\n  a:\n    max_search_duration: 1h\n", Options{})
	o.Hit("a", MaxSpansPerTrace, 4)
	o.Hit("b", MaxSearchDuration, 1)
	h := o.Handler()

	get := func(ctx context.Context, url string) (int, []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil).WithContext(ctx))
		return rec.Code, rec.Body.Bytes()
	}
	code, body := get(storage.WithTenant(context.Background(), "a"), "/api/v1/limits")
	var ts TenantStatus
	if err := json.Unmarshal(body, &ts); code != 200 || err != nil {
		t.Fatalf("%d %s %v", code, body, err)
	}
	if ts.Tenant != "a" || !ts.Listed || ts.Hits["max_spans_per_trace"] != 4 || len(ts.Hits) != int(numLimits) {
		t.Errorf("status = %+v", ts)
	}
	for _, want := range []string{`"max_search_duration":"1h0m0s"`, `"retention":"48h0m0s"`, `"max_spans_per_trace":10`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("%s lacks %s", body, want)
		}
	}

	// Without a tenant in the context: the default tenant.
	_, body = get(context.Background(), "/api/v1/limits")
	if err := json.Unmarshal(body, &ts); err != nil || ts.Tenant != storage.DefaultTenant || ts.Listed {
		t.Errorf("no tenant: %s", body)
	}

	code, body = get(context.Background(), "/api/v1/limits?all=1")
	var st Status
	if err := json.Unmarshal(body, &st); code != 200 || err != nil {
		t.Fatalf("%d %s %v", code, body, err)
	}
	var names []string
	for _, ts := range st.Tenants {
		names = append(names, ts.Tenant)
	}
	if strings.Join(names, ",") != "a,b,"+storage.DefaultTenant || st.Default.MaxSpansPerTrace != 10 || st.LastReload.IsZero() {
		t.Errorf("all: %s", body)
	}

	if code, _ := get(context.Background(), "/api/v1/limits?all=yes"); code != http.StatusBadRequest {
		t.Errorf("all=yes: %d", code)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/limits", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestTraceSpanCounter(t *testing.T) {
	o, _, _, _ := setup(t, Limits{MaxSpansPerTrace: 5}, "overrides:\n  free:\n    max_spans_per_trace: 0\n", Options{})
	c := NewTraceSpanCounter(o, 1024)
	id1, id2 := [16]byte{1}, [16]byte{2}
	for _, step := range []struct {
		tenant string
		id     [16]byte
		n      int
		want   int
	}{
		{"a", id1, 3, 3},
		{"a", id1, 3, 2},
		{"a", id1, 1, 0},
		{"a", id2, 5, 5},
		{"b", id1, 4, 4}, // the same ID in another tenant is another trace
		{"b", id1, 0, 0},
		{"free", id1, 100, 100},
	} {
		if got := c.Add(step.tenant, step.id, step.n); got != step.want {
			t.Errorf("Add(%s, %x, %d) = %d, want %d", step.tenant, step.id[0], step.n, got, step.want)
		}
	}
	if got := hits(o, "a", MaxSpansPerTrace); got != 2 {
		t.Errorf("dropped spans counted = %v, want 2", got)
	}
}

// TestTraceSpanCounterBounded checks the approximation: memory stays
// bounded, recent traces are counted exactly, a forgotten one restarts
// (never over-counts).
func TestTraceSpanCounterBounded(t *testing.T) {
	o, _, _, _ := setup(t, Limits{MaxSpansPerTrace: 2}, "", Options{})
	const capacity = 64 * 16
	c := NewTraceSpanCounter(o, capacity)
	id := func(i int) (b [16]byte) {
		for j := range 16 {
			b[j] = byte(i >> (8 * (j % 4)) * (j + 1))
		}
		b[8], b[9] = byte(i), byte(i>>8) // shard by the low bytes
		return b
	}
	old := id(1 << 20)
	c.Add("t", old, 2)
	for i := range 100 * capacity {
		if got := c.Add("t", id(i), 2); got != 2 {
			t.Fatalf("trace %d: first spans refused (over-count)", i)
		}
		// A trace within the last capacity/2 traces is still counted.
		if i >= capacity/4 {
			if got := c.Add("t", id(i-capacity/4), 5); got != 0 {
				t.Fatalf("trace %d forgotten after %d others", i-capacity/4, capacity/4)
			}
		}
	}
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].cur) + len(c.shards[i].prev)
	}
	if total > capacity {
		t.Fatalf("%d traces held, capacity %d", total, capacity)
	}
	if got := c.Add("t", old, 3); got != 2 {
		t.Fatalf("a forgotten trace: %d allowed, want a fresh count of 2", got)
	}
}

func TestTraceSpanCounterMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates")
	}
	o, _, _, _ := setup(t, Limits{MaxSpansPerTrace: 1000}, "", Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := NewTraceSpanCounter(o, DefaultTraceCapacity)
	var id [16]byte
	for i := range 4 * DefaultTraceCapacity {
		id[8], id[9], id[10], id[11] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		id[0] = byte(i * 7)
		c.Add("t", id, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / DefaultTraceCapacity
	t.Logf("%.1f bytes per trace of capacity", per)
	if per > 44 {
		t.Errorf("%.1f bytes per trace of capacity, documented as about 36", per)
	}
	runtime.KeepAlive(c)
}

func BenchmarkAllowIngest(b *testing.B) {
	o, err := New(Limits{IngestionRateSpans: 1e9, IngestionRateBytes: 1e12}, "", nil, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("limited", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				o.AllowIngest("t", 100, 20000)
			}
		})
	})
	free, _ := New(Limits{}, "", nil, Options{Logger: quiet})
	b.Run("unlimited", func(b *testing.B) {
		for b.Loop() {
			free.AllowIngest("t", 100, 20000)
		}
	})
}

func BenchmarkTraceSpanCounter(b *testing.B) {
	o, err := New(Limits{MaxSpansPerTrace: 1000}, "", nil, Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	// A batch of 100 spans of 10 traces each, per call, with trace IDs
	// rotating through more traces than the counter holds.
	const spansPerCall = 100
	c := NewTraceSpanCounter(o, 1<<16)
	b.RunParallel(func(pb *testing.PB) {
		var id [16]byte
		i := 0
		for pb.Next() {
			for range 10 {
				i++
				id[8], id[9], id[10] = byte(i), byte(i>>8), byte(i>>16)
				c.Add("t", id, spansPerCall/10)
			}
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spansPerCall), "ns/span")
}

// TestAllowQuery checks the query rate: a burst, then a refusal with a
// retry hint and a hit, a refill with time, and tenants apart.
func TestAllowQuery(t *testing.T) {
	o, _, _, clock := setup(t, Limits{}, "overrides:\n  a:\n    query_rate: 2\n    query_burst: 3\n", Options{})
	for i := range 3 {
		if _, ok := o.AllowQuery("a"); !ok {
			t.Fatalf("query %d refused within the burst", i)
		}
	}
	retry, ok := o.AllowQuery("a")
	if ok || retry <= 0 || retry > 500*time.Millisecond {
		t.Fatalf("over the burst: ok=%v retry=%v, want a refusal with retry in (0, 500ms]", ok, retry)
	}
	if got := o.Tenant("a").Hits["query_rate"]; got != 1 {
		t.Errorf("query_rate hits = %d, want 1", got)
	}
	for range 100 {
		if _, ok := o.AllowQuery("b"); !ok {
			t.Fatal("a tenant without a query rate was refused")
		}
	}
	clock.Advance(retry)
	if _, ok := o.AllowQuery("a"); !ok {
		t.Error("refused after waiting the retry hint")
	}
}
