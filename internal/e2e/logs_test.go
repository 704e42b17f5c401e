package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// genLogs makes n log records: record i belongs to trace i/5 (of seed)
// and span i, service "checkout" for even i and "payment" for odd, with
// severity ERROR every 10th record, else INFO.
func genLogs(seed uint64, first, n int) plog.Logs {
	ld := plog.NewLogs()
	now := time.Now()
	for _, svc := range []string{"checkout", "payment"} {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", svc)
		rl.Resource().Attributes().PutStr("host.name", "e2e-host")
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("e2e")
		for i := first; i < first+n; i++ {
			if (i%2 == 0) != (svc == "checkout") {
				continue
			}
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
			lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now))
			sev := plog.SeverityNumberInfo
			if i%10 == 0 {
				sev = plog.SeverityNumberError
			}
			lr.SetSeverityNumber(sev)
			lr.Body().SetStr(fmt.Sprintf("log line %d of order-%d", i, i/5))
			lr.Attributes().PutInt("line", int64(i))
			lr.SetTraceID(traceID(seed, i/5))
			var sid pcommon.SpanID
			sid[0], sid[6], sid[7] = byte(seed), byte(i>>8), byte(i)
			lr.SetSpanID(sid)
		}
	}
	return ld
}

func (p *proc) postLogs(ctype, encoding string, body []byte) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+p.otlpHTTP+"/v1/logs", bytes.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("POST /v1/logs: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

type logsResp struct {
	Logs []struct {
		Time       string         `json:"time"`
		Severity   string         `json:"severity"`
		Body       string         `json:"body"`
		Service    string         `json:"service"`
		TraceID    string         `json:"traceId"`
		SpanID     string         `json:"spanId"`
		Attributes map[string]any `json:"attributes"`
		Resource   map[string]any `json:"resource"`
	} `json:"logs"`
	NextCursor string `json:"nextCursor"`
}

func TestLogs(t *testing.T) {
	dir := t.TempDir()
	p := startClew(t, dir)

	// 100 records over gRPC, 100 over HTTP protobuf, 100 over HTTP JSON
	// (gzip): 60 traces of 5 records.
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(genLogs(7, 0, 100))); err != nil {
		t.Fatalf("gRPC logs export: %v", err)
	}
	conn.Close()
	pb, _ := plogotlp.NewExportRequestFromLogs(genLogs(7, 100, 100)).MarshalProto()
	if code, body := p.postLogs("application/x-protobuf", "", pb); code != 200 {
		t.Fatalf("HTTP protobuf logs: %d %s", code, body)
	}
	js, _ := plogotlp.NewExportRequestFromLogs(genLogs(7, 200, 100)).MarshalJSON()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(js)
	_ = zw.Close()
	if code, body := p.postLogs("application/json", "gzip", gz.Bytes()); code != 200 {
		t.Fatalf("HTTP JSON logs: %d %s", code, body)
	}
	if code, body := p.postLogs("application/x-protobuf", "", []byte{0x0a, 0xff, 0x01}); code != 400 {
		t.Fatalf("malformed logs: %d %s, want 400", code, body)
	}

	check := func(p *proc) {
		t.Helper()
		// Every trace's 5 records, from the trace.
		for _, tr := range []int{0, 21, 59} {
			var r logsResp
			if code := p.getJSON("/api/v1/traces/"+traceHex(7, tr)+"/logs", &r); code != 200 || len(r.Logs) != 5 {
				t.Fatalf("logs of trace %d: status %d, %d records", tr, code, len(r.Logs))
			}
			for j, l := range r.Logs {
				if want := fmt.Sprintf("log line %d of order-%d", tr*5+4-j, tr); l.Body != want || l.TraceID != traceHex(7, tr) {
					t.Fatalf("trace %d record %d: %+v, want body %q", tr, j, l, want)
				}
			}
		}
		// Search: service and severity, paged newest first.
		seen := map[string]bool{}
		cursor, last := "", ""
		for range 20 {
			var r logsResp
			if code := p.getJSON("/api/v1/logs?service=payment&severity=warn&limit=4&cursor="+cursor, &r); code != 200 {
				t.Fatalf("search: %d", code)
			}
			for _, l := range r.Logs {
				if l.Service != "payment" || l.Severity != "ERROR" || seen[l.Body] || (last != "" && l.Time > last) {
					t.Fatalf("search returned %+v (seen %v, after %s)", l, seen[l.Body], last)
				}
				seen[l.Body], last = true, l.Time
			}
			if cursor = r.NextCursor; cursor == "" {
				break
			}
		}
		// Odd i with i%10 == 0: none. Errors are even, so payment has none.
		if len(seen) != 0 {
			t.Fatalf("payment errors: %d, want 0", len(seen))
		}
		var r logsResp
		p.getJSON("/api/v1/logs?service=checkout&severity=error&limit=100", &r)
		if len(r.Logs) != 30 {
			t.Fatalf("checkout errors: %d, want 30", len(r.Logs))
		}
		// Body substring and regexp, attribute.
		p.getJSON("/api/v1/logs?contains=order-42&regexp=line%2021[0-4]%20&attr=host.name=e2e-host", &r)
		if len(r.Logs) != 5 {
			t.Fatalf("text search: %d records, want 5", len(r.Logs))
		}
		if code, _ := p.get("/api/v1/logs?regexp=("); code != 400 {
			t.Fatalf("bad regexp: %d, want 400", code)
		}
		// Grafana's trace to logs, through the Loki API.
		code, body := p.get("/loki/api/v1/query_range?start=1&end=" + fmt.Sprint(time.Now().Add(time.Hour).UnixNano()) + "&query=" +
			url.QueryEscape(`{service_name="payment"} |= "`+traceHex(7, 21)+`"`))
		if code != 200 || strings.Count(string(body), "of order-21") != 3 || !strings.Contains(string(body), `"service_name":"payment"`) {
			t.Fatalf("Loki query_range: %d %s", code, body)
		}
		code, body = p.get("/loki/api/v1/query?time=" + fmt.Sprint(time.Now().Add(time.Second).UnixNano()) + "&query=" +
			url.QueryEscape(`sum by (service_name) (count_over_time({host_name="e2e-host"} |= "order-" [10m]))`))
		// 150 checkout records of seed 7, and 2 of seed 8 after the restart.
		if code != 200 || !regexp.MustCompile(`\{"metric":\{"service_name":"checkout"\},"value":\[[0-9.]+,"15[02]"\]\}`).Match(body) {
			t.Fatalf("Loki metric query: %d %s", code, body)
		}
	}
	check(p)
	// Part of it into blocks, the rest in the write-ahead log.
	if code, body := p.post("/api/v1/admin/flush", "", nil); code != 200 && code != 204 {
		t.Fatalf("flush: %d %s", code, body)
	}
	pb, _ = plogotlp.NewExportRequestFromLogs(genLogs(8, 15, 5)).MarshalProto()
	if code, body := p.postLogs("application/x-protobuf", "", pb); code != 200 {
		t.Fatalf("HTTP protobuf logs: %d %s", code, body)
	}
	_, metrics := p.get("/metrics")
	for _, m := range []string{`clew_receiver_log_records_total{outcome="accepted",protocol="otlp_logs_grpc"} 100`,
		`clew_receiver_log_records_total{outcome="accepted",protocol="otlp_logs_http"} 205`,
		`clew_receiver_requests_refused_total{protocol="otlp_logs_http",reason="malformed"} 1`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	p.stop()
	p = startClew(t, dir)
	check(p)
	var r logsResp
	if code := p.getJSON("/api/v1/traces/"+traceHex(8, 3)+"/logs", &r); code != 200 || len(r.Logs) != 5 {
		t.Fatalf("logs of a trace replayed from the write-ahead log: %d, %d records", code, len(r.Logs))
	}
	p.stop()
}

// TestLogsSIGKILL: log records acknowledged before a SIGKILL are there
// after the restart (replayed from the log write-ahead log).
func TestLogsSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := startClew(t, dir)
	for i := range 4 {
		pb, _ := plogotlp.NewExportRequestFromLogs(genLogs(9, i*50, 50)).MarshalProto()
		if code, body := p.postLogs("application/x-protobuf", "", pb); code != 200 {
			t.Fatalf("HTTP protobuf logs: %d %s", code, body)
		}
	}
	p.kill()
	p = startClew(t, dir)
	var r logsResp
	if code := p.getJSON("/api/v1/logs?limit=1000&attr=host.name=e2e-host", &r); code != 200 || len(r.Logs) != 200 {
		t.Fatalf("after SIGKILL: status %d, %d records, want 200", code, len(r.Logs))
	}
	p.stop()
}

// TestLogsTenants: with multitenancy, each tenant's log records are
// stored and found under its own X-Scope-OrgID only, over HTTP and gRPC,
// and a request without a tenant is refused.
func TestLogsTenants(t *testing.T) {
	dir := t.TempDir()
	p := startClew(t, dir, "--multitenancy")
	pb, _ := plogotlp.NewExportRequestFromLogs(genLogs(3, 0, 10)).MarshalProto()
	if code, body := tenantPost(t, "http://"+p.otlpHTTP+"/v1/logs", "acme", "application/x-protobuf", pb); code != 200 {
		t.Fatalf("acme logs: %d %s", code, body)
	}
	if code, _ := tenantPost(t, "http://"+p.otlpHTTP+"/v1/logs", "", "application/x-protobuf", pb); code < 400 {
		t.Fatalf("logs without a tenant: %d, want a refusal", code)
	}
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", "globex"), 30*time.Second)
	defer cancel()
	if _, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(genLogs(4, 0, 20))); err != nil {
		t.Fatalf("globex gRPC logs: %v", err)
	}
	for _, c := range []struct {
		tenant string
		want   int
	}{{"acme", 10}, {"globex", 20}, {"initech", 0}} {
		code, body := tenantGet(t, p.url("/api/v1/logs?limit=100"), c.tenant)
		if code != 200 || strings.Count(body, `"body":`) != c.want {
			t.Fatalf("tenant %s: %d, %d records, want %d", c.tenant, code, strings.Count(body, `"body":`), c.want)
		}
	}
	if code, body := tenantGet(t, p.url("/api/v1/traces/"+traceHex(3, 1)+"/logs"), "globex"); code != 200 || strings.Contains(body, `"body":`) {
		t.Fatalf("acme's trace seen by globex: %d %s", code, body)
	}
	p.stop()
}
