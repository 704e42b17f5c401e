package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc/codes"

	"github.com/clew-dev/clew/internal/ingest"
	"github.com/clew-dev/clew/internal/logs"
)

type logSink struct {
	mu   sync.Mutex
	recs []logs.Record
	err  error
}

func (s *logSink) AppendLogs(_ context.Context, _ string, b *logs.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.recs = append(s.recs, b.Records...)
	return nil
}

// logsReq builds a request of records with the given bodies (and a
// severity number, which may be out of range).
func logsReq(sev int32, bodies ...string) plogotlp.ExportRequest {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for _, b := range bodies {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
		lr.SetSeverityNumber(plog.SeverityNumber(sev))
		lr.Body().SetStr(b)
		lr.Attributes().PutStr("k", "v")
		lr.SetTraceID(pcommon.TraceID{1, 2, 3})
		lr.SetSpanID(pcommon.SpanID{4, 5})
	}
	return plogotlp.NewExportRequestFromLogs(ld)
}

func mustProto(t *testing.T, r plogotlp.ExportRequest) []byte {
	b, err := r.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, r plogotlp.ExportRequest) []byte {
	b, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	return enc.EncodeAll(b, nil)
}

func TestLogsHTTP(t *testing.T) {
	long := strings.Repeat("x", 20)
	cases := []struct {
		name     string
		ctype    string
		encoding string
		body     func(t *testing.T) []byte
		code     int
		stored   int
		firstMsg string
		metric   [3]string // name, label value of reason or outcome, want
		want     float64
	}{
		{name: "protobuf", ctype: "application/x-protobuf", body: func(t *testing.T) []byte { return mustProto(t, logsReq(9, "hello", "world")) },
			code: 200, stored: 2, firstMsg: "hello", metric: [3]string{"clew_receiver_log_records_total", "outcome", "accepted"}, want: 2},
		{name: "json", ctype: "application/json", body: func(t *testing.T) []byte { return mustJSON(t, logsReq(9, "hello")) },
			code: 200, stored: 1, firstMsg: "hello"},
		{name: "gzip", ctype: "application/x-protobuf", encoding: "gzip", body: func(t *testing.T) []byte { return gz(mustProto(t, logsReq(9, "zipped"))) },
			code: 200, stored: 1, firstMsg: "zipped"},
		{name: "zstd", ctype: "application/json", encoding: "zstd", body: func(t *testing.T) []byte { return zst(mustJSON(t, logsReq(9, "zstd"))) },
			code: 200, stored: 1, firstMsg: "zstd"},
		{name: "long_body_truncated", ctype: "application/x-protobuf", body: func(t *testing.T) []byte { return mustProto(t, logsReq(9, long)) },
			code: 200, stored: 1, firstMsg: long[:8], metric: [3]string{"clew_receiver_truncated_total", "reason", "value_too_long"}, want: 1},
		{name: "invalid_utf8", ctype: "application/x-protobuf", body: func(t *testing.T) []byte { return mustProto(t, logsReq(9, "a\xffb")) },
			code: 200, stored: 1, firstMsg: "a\uFFFDb", metric: [3]string{"clew_receiver_truncated_total", "reason", "invalid_utf8"}, want: 1},
		{name: "unknown_severity", ctype: "application/x-protobuf", body: func(t *testing.T) []byte { return mustProto(t, logsReq(99, "s")) },
			code: 200, stored: 1, firstMsg: "s", metric: [3]string{"clew_receiver_truncated_total", "reason", "unknown_severity"}, want: 1},
		{name: "malformed", ctype: "application/x-protobuf", body: func(*testing.T) []byte { return []byte{0x0a, 0xff, 0xff} },
			code: 400, metric: [3]string{"clew_receiver_requests_refused_total", "reason", "malformed"}, want: 1},
		{name: "bad_json", ctype: "application/json", body: func(*testing.T) []byte { return []byte(`{"resourceLogs":[`) },
			code: 400, metric: [3]string{"clew_receiver_requests_refused_total", "reason", "malformed"}, want: 1},
		{name: "bad_gzip", ctype: "application/json", encoding: "gzip", body: func(*testing.T) []byte { return []byte("not gzip") },
			code: 400, metric: [3]string{"clew_receiver_requests_refused_total", "reason", "malformed"}, want: 1},
		{name: "unsupported_media", ctype: "text/plain", body: func(*testing.T) []byte { return []byte("x") },
			code: 415, metric: [3]string{"clew_receiver_requests_refused_total", "reason", "unsupported_media_type"}, want: 1},
		{name: "too_many_records", ctype: "application/x-protobuf", body: func(t *testing.T) []byte { return mustProto(t, logsReq(9, "1", "2", "3", "4", "5", "6")) },
			code: 400, metric: [3]string{"clew_receiver_requests_refused_total", "reason", "too_many_spans"}, want: 1},
		{name: "too_large", ctype: "application/x-protobuf", body: func(t *testing.T) []byte { return mustProto(t, logsReq(9, strings.Repeat("y", 5000))) },
			code: 413, metric: [3]string{"clew_receiver_requests_refused_total", "reason", "too_large"}, want: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg := testConfig()
			cfg.Limits.MaxSpansPerRequest = 5
			core := ingest.NewCore(cfg, "t", &sink{}, nil, reg)
			sk := &logSink{}
			recv := ingest.NewReceiver(core)
			recv.SetLogs(sk)
			srv := httptest.NewServer(recv.HTTPHandler())
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/logs", bytes.NewReader(tc.body(t)))
			req.Header.Set("Content-Type", tc.ctype)
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if len(sk.recs) != tc.stored {
				t.Fatalf("%d records stored, want %d", len(sk.recs), tc.stored)
			}
			if tc.stored > 0 {
				r := sk.recs[0]
				if r.Body != tc.firstMsg || r.Service != "checkout" || r.TraceID != [16]byte{1, 2, 3} || r.SpanID != [8]byte{4, 5} {
					t.Fatalf("stored %+v", r)
				}
			}
			if tc.metric[0] != "" {
				if got := value(t, reg, tc.metric[0], "protocol", "otlp_logs_http", tc.metric[1], tc.metric[2]); got != tc.want {
					t.Fatalf("%s{%s=%s} = %v, want %v", tc.metric[0], tc.metric[1], tc.metric[2], got, tc.want)
				}
			}
			if got := value(t, reg, "clew_receiver_spans_total", "protocol", "otlp_logs_http", "outcome", "accepted"); got != 0 {
				t.Fatalf("log records counted as spans: %v", got)
			}
		})
	}
}

func TestLogsGRPC(t *testing.T) {
	reg := prometheus.NewRegistry()
	core := ingest.NewCore(testConfig(), "t", &sink{}, nil, reg)
	sk := &logSink{}
	recv := ingest.NewReceiver(core)
	recv.SetLogs(sk)
	a := invoke(t, recv.NewGRPCServer(), "/opentelemetry.proto.collector.logs.v1.LogsService/Export", mustProto(t, logsReq(17, "via grpc")))
	if !a.ok || len(sk.recs) != 1 || sk.recs[0].Body != "via grpc" || sk.recs[0].Severity != 17 {
		t.Fatalf("answer %+v, stored %+v", a, sk.recs)
	}
	if got := value(t, reg, "clew_receiver_requests_total", "protocol", "otlp_logs_grpc", "outcome", "accepted"); got != 1 {
		t.Fatalf("requests accepted = %v", got)
	}
	a = invoke(t, recv.NewGRPCServer(), "/opentelemetry.proto.collector.logs.v1.LogsService/Export", []byte{0x0a, 0xff})
	if a.grpc != codes.InvalidArgument {
		t.Fatalf("malformed: %+v", a)
	}
	// A store that asks to retry gives RESOURCE_EXHAUSTED.
	sk.err = ingest.ErrRetryable
	a = invoke(t, recv.NewGRPCServer(), "/opentelemetry.proto.collector.logs.v1.LogsService/Export", mustProto(t, logsReq(1, "x")))
	if a.grpc != codes.ResourceExhausted {
		t.Fatalf("store overloaded: %+v", a)
	}
	if got := value(t, reg, "clew_receiver_log_records_total", "protocol", "otlp_logs_grpc", "outcome", "refused"); got != 1 {
		t.Fatalf("log records refused = %v", got)
	}
}
