package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clew-dev/clew/internal/auth"
)

// tenantTraces is genTraces with every service name prefixed, so that
// each tenant's services, tag values and metrics are told apart.
func tenantTraces(prefix string, seed uint64, n int) ptrace.Traces {
	td := genTraces(seed, 0, n, 3)
	for _, rs := range td.ResourceSpans().All() {
		v, _ := rs.Resource().Attributes().Get("service.name")
		rs.Resource().Attributes().PutStr("service.name", prefix+v.Str())
	}
	return td
}

// tenantGet fetches u with the tenant header (none when tenant is "").
func tenantGet(t *testing.T, u, tenant string) (int, string) {
	t.Helper()
	if tenant == "" {
		return getWith(t, u)
	}
	return getWith(t, u, "X-Scope-OrgID", tenant)
}

// getWith fetches u with the headers given as name, value pairs.
func getWith(t *testing.T, u string, header ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tenantPost(t *testing.T, u, tenant, ctype string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTenantIsolation runs clew with multitenancy: two tenants write
// (OTLP/HTTP and OTLP/gRPC), and every read API answers each tenant with
// its own data and nothing of the other's, before and after a restart;
// requests without a tenant or with a malformed one are refused.
func TestTenantIsolation(t *testing.T) {
	dir := t.TempDir()
	zipkin := freePort(t)
	p := startClew(t, dir, "--multitenancy", "--zipkin-addr", zipkin)

	m := ptraceotlp.NewExportRequestFromTraces(tenantTraces("alpha-", 1, 5))
	body, err := m.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	if code, b := tenantPost(t, "http://"+p.otlpHTTP+"/v1/traces", "team-a", "application/x-protobuf", body); code != 200 {
		t.Fatalf("tenant a OTLP/HTTP: %d %s", code, b)
	}
	// Tenant b over gRPC, the tenant in the metadata as the Collector's
	// otlp exporter sends it with headers: {X-Scope-OrgID: team-b}.
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	export := func(tenant string, td ptrace.Traces) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if tenant != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "X-Scope-OrgID", tenant)
		}
		_, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		return err
	}
	if err := export("team-b", tenantTraces("bravo-", 2, 5)); err != nil {
		t.Fatalf("tenant b OTLP/gRPC: %v", err)
	}

	// Tenant c over Zipkin's v2 JSON.
	zspan := []byte(`[{"traceId":"c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c1","id":"00000000000000c1","name":"get","timestamp":` +
		fmt.Sprint(time.Now().Add(-time.Minute).UnixMicro()) + `,"duration":1000,"localEndpoint":{"serviceName":"charlie-zip"}}]`)
	if code, b := tenantPost(t, "http://"+zipkin+"/api/v2/spans", "team-c", "application/json", zspan); code != 202 {
		t.Fatalf("tenant c Zipkin: %d %s", code, b)
	}
	if code, b := tenantPost(t, "http://"+zipkin+"/api/v2/spans", "", "application/json", zspan); code != 401 {
		t.Errorf("Zipkin POST without a tenant: %d %s, want 401", code, b)
	}

	// Refusals: no tenant, a malformed one, a path out of the data
	// directory; nothing of them is stored anywhere.
	if err := export("", tenantTraces("nobody-", 3, 1)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC export without a tenant: %v, want Unauthenticated", err)
	}
	if err := export("../etc", tenantTraces("nobody-", 3, 1)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC export with tenant ../etc: %v, want InvalidArgument", err)
	}
	for _, c := range []struct {
		tenant string
		want   int
	}{{"", 401}, {"../x", 400}, {"a/b", 400}, {strings.Repeat("x", 151), 400}, {"a|b", 400}} {
		if code, b := tenantPost(t, "http://"+p.otlpHTTP+"/v1/traces", c.tenant, "application/x-protobuf", body); code != c.want {
			t.Errorf("OTLP/HTTP with tenant %q: %d %s, want %d", c.tenant, code, b, c.want)
		}
		if code, b := tenantGet(t, p.url("/api/v1/services"), c.tenant); code != c.want {
			t.Errorf("GET /api/v1/services with tenant %q: %d %s, want %d", c.tenant, code, b, c.want)
		}
	}
	// Health, metrics and the UI's files need no tenant.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, _ := tenantGet(t, p.url(path), ""); code != 200 {
			t.Errorf("GET %s without a tenant: %d, want 200", path, code)
		}
	}

	check := func(p *proc) {
		t.Helper()
		tenants := []struct{ name, own, other, ownTrace, otherTrace string }{
			{"team-a", "alpha-", "bravo-", traceHex(1, 0), traceHex(2, 0)},
			{"team-b", "bravo-", "alpha-", traceHex(2, 0), traceHex(1, 0)},
		}
		q := url.QueryEscape
		for _, tn := range tenants {
			// Read APIs whose answer must hold the tenant's own data.
			for _, u := range []string{
				p.url("/api/v1/services"),
				p.url("/api/v1/search?q=" + q("{}")),
				p.url("/api/v1/traces/" + tn.ownTrace),
				p.url("/api/v1/attributes/service.name/values"),
				p.url("/api/v1/red?since=1h"),
				p.url("/api/v1/servicegraph?since=1h"),
				p.url("/tempo/api/search?q=" + q("{}")),
				p.url("/tempo/api/traces/" + tn.ownTrace),
				p.url("/tempo/api/v2/search/tag/resource.service.name/values"),
				p.url("/jaeger/api/services"),
				p.url("/jaeger/api/traces/" + tn.ownTrace),
				p.url("/jaeger/api/traces?service=" + tn.own + "frontend&lookback=1h"),
				p.url("/jaeger/api/v3/services"),
				"http://" + zipkin + "/api/v2/services",
				"http://" + zipkin + "/api/v2/trace/" + tn.ownTrace,
			} {
				code, b := tenantGet(t, u, tn.name)
				if code != 200 {
					t.Errorf("%s GET %s: %d %s", tn.name, u, code, b)
					continue
				}
				if !strings.Contains(b, tn.own) {
					t.Errorf("%s GET %s: its own services (%s*) are missing: %.300s", tn.name, u, tn.own, b)
				}
				if strings.Contains(b, tn.other) || strings.Contains(b, tn.otherTrace) || strings.Contains(b, "charlie-") {
					t.Errorf("%s GET %s: answers with the other tenant's data: %.300s", tn.name, u, b)
				}
			}
			// The other tenant's trace is not found through any API.
			for _, u := range []string{
				p.url("/api/v1/traces/" + tn.otherTrace),
				p.url("/tempo/api/traces/" + tn.otherTrace),
				p.url("/jaeger/api/traces/" + tn.otherTrace),
				"http://" + zipkin + "/api/v2/trace/" + tn.otherTrace,
			} {
				if code, b := tenantGet(t, u, tn.name); code != 404 {
					t.Errorf("%s GET %s (the other tenant's trace): %d %.300s, want 404", tn.name, u, code, b)
				}
			}
		}
		// Tenant c sees its Zipkin span and nothing else; a tenant that
		// never wrote sees nothing.
		if code, b := tenantGet(t, p.url("/api/v1/services"), "team-c"); code != 200 || b != `{"services":["charlie-zip"]}`+"\n" {
			t.Errorf("team-c GET /api/v1/services: %d %q", code, b)
		}
		if code, b := tenantGet(t, p.url("/api/v1/services"), "team-d"); code != 200 || strings.Contains(b, "-") {
			t.Errorf("team-d GET /api/v1/services: %d %s", code, b)
		}
	}
	check(p)

	// Each tenant's data is apart on disk and comes back after a restart
	// (from the write-ahead logs, then from blocks).
	p.stop()
	p = startClew(t, dir, "--multitenancy", "--zipkin-addr", zipkin)
	check(p)
	for _, tn := range []string{"team-a", "team-b"} {
		if code, b := tenantPost(t, p.url("/api/v1/admin/flush"), tn, "application/json", nil); code != 200 && code != 204 {
			t.Fatalf("%s flush: %d %s", tn, code, b)
		}
	}
	p.stop()
	p = startClew(t, dir, "--multitenancy", "--zipkin-addr", zipkin)
	check(p)
	p.stop()
}

// authGet and authPost send a request with a bearer token and a tenant
// header (each left out when "").
func authDo(t *testing.T, method, u, token, tenant string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, u, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/x-protobuf")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTenantAuth runs clew with multitenancy and tokens: a token decides
// its tenant and may not name another, rights gate writes, reads and the
// admin endpoints (pprof included), and a missing or unknown token is
// refused.
func TestTenantAuth(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clew.yaml")
	yaml := "multitenancy: true\nauth:\n  tokens:\n" +
		"    - {name: a, sha256: " + auth.HashToken("token-a") + ", tenant: team-a, rights: [write, read]}\n" +
		"    - {name: b, sha256: " + auth.HashToken("token-b") + ", tenant: team-b, rights: [write, read]}\n" +
		"    - {name: ops, sha256: " + auth.HashToken("token-ops") + ", tenants: ['*'], rights: [read, admin]}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg)
	m := ptraceotlp.NewExportRequestFromTraces(tenantTraces("alpha-", 1, 2))
	body, _ := m.MarshalProto()
	otlp := "http://" + p.otlpHTTP + "/v1/traces"
	for _, c := range []struct {
		name, method, u, token, tenant string
		body                           []byte
		want                           int
	}{
		{"write without token", "POST", otlp, "", "team-a", body, 401},
		{"write with unknown token", "POST", otlp, "nope", "team-a", body, 401},
		{"write to another tenant", "POST", otlp, "token-b", "team-a", body, 403},
		{"write without the right", "POST", otlp, "token-ops", "team-a", body, 403},
		{"write", "POST", otlp, "token-a", "", body, 200},
		{"read without token", "GET", p.url("/api/v1/services"), "", "team-a", nil, 401},
		{"read another tenant", "GET", p.url("/api/v1/services"), "token-b", "team-a", nil, 403},
		{"flush without admin", "POST", p.url("/api/v1/admin/flush"), "token-a", "", nil, 403},
		{"flush as operator", "POST", p.url("/api/v1/admin/flush"), "token-ops", "team-a", nil, 200},
		{"pprof without token", "GET", p.url("/debug/pprof/"), "", "", nil, 401},
		{"pprof without admin", "GET", p.url("/debug/pprof/"), "token-a", "", nil, 403},
		{"pprof as operator", "GET", p.url("/debug/pprof/"), "token-ops", "team-a", nil, 200},
		{"health needs nothing", "GET", p.url("/readyz"), "", "", nil, 200},
	} {
		if got := authDo(t, c.method, c.u, c.token, c.tenant, c.body); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// The token's tenant holds the spans; the other token's does not.
	for _, c := range []struct{ token, tenant, want string }{{"token-a", "", "alpha-"}, {"token-ops", "team-a", "alpha-"}, {"token-b", "", ""}} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", p.url("/api/v1/services"), nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		if c.tenant != "" {
			req.Header.Set("X-Scope-OrgID", c.tenant)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(b), "alpha-") != (c.want != "") {
			t.Errorf("services with %s (tenant %q): %d %s", c.token, c.tenant, resp.StatusCode, b)
		}
	}
	p.stop()
}

// TestTenantRateLimit runs clew with an overrides file: a tenant over its
// ingestion rate gets 429 with Retry-After while another tenant's writes
// and reads go on, and a raised limit applies without a restart.
func TestTenantRateLimit(t *testing.T) {
	dir := t.TempDir()
	ovPath := filepath.Join(dir, "overrides.yaml")
	write := func(rate int) {
		t.Helper()
		replaceFile(t, ovPath, fmt.Sprintf("overrides:\n  team-slow:\n    ingestion_rate_spans: %d\n    ingestion_burst_spans: %d\n", rate, rate))
	}
	write(10)
	cfg := filepath.Join(dir, "clew.yaml")
	if err := os.WriteFile(cfg, []byte("multitenancy: true\noverrides:\n  file: "+ovPath+"\n  reload_interval: 100ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg)
	body, _ := ptraceotlp.NewExportRequestFromTraces(tenantTraces("slow-", 1, 2)).MarshalProto() // 6 spans
	otlp := "http://" + p.otlpHTTP + "/v1/traces"
	post := func(tenant string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", otlp, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if code, _ := post("team-slow"); code != 200 {
		t.Fatalf("first request within the burst: %d", code)
	}
	code, retry := post("team-slow")
	if code != 429 || retry == "" {
		t.Fatalf("second request over the rate: %d, Retry-After %q; want 429 with a Retry-After", code, retry)
	}
	for i := 0; i < 20; i++ {
		if code, _ := post("team-fast"); code != 200 {
			t.Fatalf("team-fast request %d: %d; another tenant's limit must not touch it", i, code)
		}
	}
	if code, b := tenantGet(t, p.url("/api/v1/limits"), "team-slow"); code != 200 || !strings.Contains(b, "ingestion_rate_spans") {
		t.Errorf("GET /api/v1/limits: %d %s", code, b)
	}
	code, b := tenantGet(t, p.url("/metrics"), "")
	if code != 200 || !strings.Contains(b, `clew_tenant_limit_hits_total{limit="ingestion_rate_spans",tenant="team-slow"}`) {
		t.Errorf("/metrics lacks the tenant's limit hits")
	}
	// Raise the limit: it applies without a restart.
	write(100000)
	// Wait until the reload shows in the tenant's limits: a request
	// accepted meanwhile proves nothing, since the old bucket refills too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := tenantGet(t, p.url("/api/v1/limits"), "team-slow")
		if code == 200 && strings.Contains(b, `"ingestion_rate_spans":100000`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the raised limit did not apply within 10s: %d %s", code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The bucket keeps the tokens it had (a few, at the old rate), so the
	// first request may wait for them, briefly at the new rate.
	for {
		code, _ := post("team-slow")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request accepted at the raised limit within 10s: %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// 120 spans at once: far over the old burst of 10, so only the new
	// limit lets them all in.
	for i := 0; i < 20; i++ {
		if code, _ := post("team-slow"); code != 200 {
			t.Fatalf("team-slow request %d after the raise: %d", i, code)
		}
	}
	p.stop()
}

// TestTenantSpanLimits runs a tenant's max_spans_per_trace,
// max_attribute_value_bytes and max_search_duration against the real
// binary: the spans of a trace beyond the limit are rejected (OTLP
// partial success) and counted, long values are cut, and a search longer
// than the limit is refused with 400 on the native and Tempo APIs while
// another tenant is untouched.
func TestTenantSpanLimits(t *testing.T) {
	dir := t.TempDir()
	ovPath := filepath.Join(dir, "overrides.yaml")
	ov := "overrides:\n  team-a:\n    max_spans_per_trace: 4\n    max_attribute_value_bytes: 5\n    max_search_duration: 1h\n" +
		"  team-q:\n    query_rate: 1\n    query_burst: 2\n"
	if err := os.WriteFile(ovPath, []byte(ov), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "clew.yaml")
	if err := os.WriteFile(cfg, []byte("multitenancy: true\noverrides:\n  file: "+ovPath+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg)

	// One trace of 6 spans, each with a 20-byte attribute.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "lim")
	ss := rs.ScopeSpans().AppendEmpty()
	tid := pcommon.TraceID(traceID(77, 0))
	now := time.Now()
	for i := range 6 {
		s := ss.Spans().AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{7, 7, 7, 7, 7, 7, 7, byte(i + 1)})
		s.SetName("op")
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i+1) * time.Millisecond)))
		s.Attributes().PutStr("payload", strings.Repeat("x", 20))
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	for _, tenant := range []string{"team-a", "team-b"} {
		code, resp := tenantPost(t, "http://"+p.otlpHTTP+"/v1/traces", tenant, "application/x-protobuf", body)
		if code != 200 {
			t.Fatalf("%s: export answered %d %s", tenant, code, resp)
		}
		er := ptraceotlp.NewExportResponse()
		if err := er.UnmarshalProto([]byte(resp)); err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		if tenant == "team-a" {
			want = 2
		}
		if got := er.PartialSuccess().RejectedSpans(); got != want {
			t.Errorf("%s: partial success rejected %d spans, want %d (%q)", tenant, got, want, er.PartialSuccess().ErrorMessage())
		}
	}
	for tenant, want := range map[string]struct {
		spans   int
		payload string
	}{"team-a": {4, "xxxxx"}, "team-b": {6, strings.Repeat("x", 20)}} {
		code, b := tenantGet(t, p.url("/api/v1/traces/"+traceHex(77, 0)), tenant)
		if code != 200 {
			t.Fatalf("%s: trace by ID %d %s", tenant, code, b)
		}
		var tr otlpTrace
		if err := json.Unmarshal([]byte(b), &tr); err != nil {
			t.Fatal(err)
		}
		if n := len(tr.spanIDs()); n != want.spans {
			t.Errorf("%s: %d spans stored, want %d", tenant, n, want.spans)
		}
		for _, rs := range tr.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					for _, a := range s.Attributes {
						if a.Key == "payload" && a.Value["stringValue"] != want.payload {
							t.Errorf("%s: payload stored as %v, want %q", tenant, a.Value["stringValue"], want.payload)
						}
					}
				}
			}
		}
	}
	// The search range: 2h is over team-a's 1h, not over team-b's none;
	// an open range is bounded to the last hour, and finds the trace.
	end := now.Add(time.Minute).Unix()
	long := fmt.Sprintf("&start=%d&end=%d", end-7200, end)
	for _, u := range []string{"/api/v1/search?service=lim" + long, "/tempo/api/search?q=%7B%7D" + long} {
		if code, b := tenantGet(t, p.url(u), "team-a"); code != 400 || !strings.Contains(b, "max_search_duration") {
			t.Errorf("team-a %s: %d %s; want 400 naming max_search_duration", u, code, b)
		}
		if code, b := tenantGet(t, p.url(u), "team-b"); code != 200 {
			t.Errorf("team-b %s: %d %s; want 200", u, code, b)
		}
	}
	var sr searchResp
	if code := getJSONTenant(t, p.url("/api/v1/search?service=lim"), "team-a", &sr); code != 200 || len(sr.Traces) != 1 {
		t.Errorf("team-a open search: %d, %d traces; want the one trace of the last hour", code, len(sr.Traces))
	}
	// The query rate: a burst of 2, then 429 with a retry hint; other
	// tenants are not touched.
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodGet, p.url("/api/v1/services"), nil)
		req.Header.Set("X-Scope-OrgID", "team-q")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 200
		if i == 2 {
			want = 429
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 over the query rate without Retry-After")
			}
		}
		if resp.StatusCode != want {
			t.Errorf("team-q query %d: %d, want %d", i, resp.StatusCode, want)
		}
	}
	code, b := tenantGet(t, p.url("/api/v1/limits"), "team-a")
	if code != 200 || !strings.Contains(b, `"max_spans_per_trace":2`) || !strings.Contains(b, `"max_attribute_value_bytes":6`) || !strings.Contains(b, `"max_search_duration":2`) {
		t.Errorf("GET /api/v1/limits for team-a does not show the hits (2 spans, 6 values, 2 searches): %d %s", code, b)
	}
	// SIGHUP reloads the file at once (the poll is every 10 s).
	replaceFile(t, ovPath, "overrides:\n  team-a:\n    max_spans_per_trace: 9\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b := tenantGet(t, p.url("/api/v1/limits"), "team-a")
		if code == 200 && strings.Contains(b, `"max_spans_per_trace":9`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file rewritten and SIGHUP sent: limits not reloaded within 5s: %d %s", code, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
}

func getJSONTenant(t *testing.T, u, tenant string, v any) int {
	t.Helper()
	code, b := tenantGet(t, u, tenant)
	if code == 200 {
		if err := json.Unmarshal([]byte(b), v); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	return code
}

// TestCrossTenantReads reads two tenants at once with X-Scope-OrgID
// "a|b" (cross_tenant_reads): search, trace by ID and service lists see
// both tenants' traces on the native, Tempo and Jaeger APIs; writes and
// the per-tenant analyses refuse several tenants.
func TestCrossTenantReads(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clew.yaml")
	if err := os.WriteFile(cfg, []byte("multitenancy: true\ncross_tenant_reads: true\noverrides:\n  defaults:\n    max_concurrent_queries: 16\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg)
	for _, tn := range []struct {
		name, prefix string
		seed         uint64
	}{{"team-a", "alpha-", 11}, {"team-b", "bravo-", 12}} {
		body, _ := ptraceotlp.NewExportRequestFromTraces(tenantTraces(tn.prefix, tn.seed, 3)).MarshalProto()
		if code, b := tenantPost(t, "http://"+p.otlpHTTP+"/v1/traces", tn.name, "application/x-protobuf", body); code != 200 {
			t.Fatalf("%s: export %d %s", tn.name, code, b)
		}
	}
	both := "team-a|team-b"
	for _, u := range []string{"/api/v1/services", "/jaeger/api/services", "/tempo/api/search/tag/service.name/values"} {
		code, b := tenantGet(t, p.url(u), both)
		if code != 200 || !strings.Contains(b, "alpha-") || !strings.Contains(b, "bravo-") {
			t.Errorf("%s for %q: %d %s; want both tenants' services", u, both, code, b)
		}
		if code, b := tenantGet(t, p.url(u), "team-a"); code != 200 || strings.Contains(b, "bravo-") {
			t.Errorf("%s for team-a alone: %d %s; want only its services", u, code, b)
		}
	}
	var sr searchResp
	if code := getJSONTenant(t, p.url("/api/v1/search?limit=100"), both, &sr); code != 200 || len(sr.Traces) != 6 || sr.Total != 6 {
		t.Errorf("native search across tenants: %d, %d traces, total %d; want the 6 of both", code, len(sr.Traces), sr.Total)
	}
	if code, b := tenantGet(t, p.url("/tempo/api/search?q=%7B%7D&limit=100"), both); code != 200 || strings.Count(b, `"traceID"`) != 6 {
		t.Errorf("Tempo search across tenants: %d, %d traces; want 6", code, strings.Count(b, `"traceID"`))
	}
	for _, id := range []string{traceHex(11, 0), traceHex(12, 0)} {
		if code, _ := tenantGet(t, p.url("/api/v1/traces/"+id), both); code != 200 {
			t.Errorf("trace %s across tenants: %d, want 200", id, code)
		}
	}
	if code, _ := tenantGet(t, p.url("/api/v1/traces/"+traceHex(12, 0)), "team-a"); code != 404 {
		t.Errorf("team-b's trace read as team-a: %d, want 404", code)
	}
	// Several tenants are for reads of traces only.
	body, _ := ptraceotlp.NewExportRequestFromTraces(tenantTraces("x-", 13, 1)).MarshalProto()
	if code, b := tenantPost(t, "http://"+p.otlpHTTP+"/v1/traces", both, "application/x-protobuf", body); code != 400 {
		t.Errorf("write across tenants: %d %s, want 400", code, b)
	}
	if code, b := tenantGet(t, p.url("/api/v1/red"), both); code != 400 || !strings.Contains(b, "across tenants") {
		t.Errorf("RED across tenants: %d %s, want 400 saying why", code, b)
	}
	if code, b := tenantGet(t, p.url("/api/v1/limits"), both); code != 400 {
		t.Errorf("limits across tenants: %d %s, want 400", code, b)
	}
}
