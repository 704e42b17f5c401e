package insight

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite golden files")

const ms = testutil.Ms

// now is the fixed present of the tests: 10 minutes after the fixture's
// first trace.
var now = time.Unix(0, testutil.Base).Add(10 * time.Minute)

// fixture is a small shop, one trace every 5 s from testutil.Base:
//
//	traces 1-30:  gateway GET /api/products → catalog ListProducts (one
//	              query) and gateway GET /stock → inventory 1.0 GET /stock
//	traces 31-40: the same with inventory 2.0, whose GET /stock takes 60 ms
//	trace 41:     ListProducts runs ten by-ID queries (N+1)
//	trace 42:     the gateway's GET /stock retried twice after 503s
//	traces 43-48: checkout PlaceOrder calls inventory's GET /stock, then
//	              POST /charges, and payment's server span starts its
//	              own trace (44, 46, 48)
//	trace 49:     a span whose parent never arrived
func fixture() *span.Batch {
	b := &span.Batch{}
	sc := &span.Scope{Name: "io.clew.test"}
	b.Scopes = []*span.Scope{sc}
	resources := map[string]*span.Resource{}
	res := func(svc, version string) *span.Resource {
		k := svc + "@" + version
		if r := resources[k]; r != nil {
			return r
		}
		r := &span.Resource{Attrs: []span.Attr{testutil.Str("service.name", svc)}}
		if version != "" {
			r.Attrs = append(r.Attrs, testutil.Str("service.version", version))
		}
		resources[k] = r
		b.Resources = append(b.Resources, r)
		return r
	}
	var trace, next int
	var t0 uint64
	add := func(parent int, r *span.Resource, name string, kind span.Kind, start, dur float64, attrs ...span.Attr) int {
		next++
		s := span.Span{TraceID: testutil.TID(byte(trace)), SpanID: span.SpanID{0: byte(trace), 7: byte(next)},
			Name: name, Kind: kind, Resource: r, Scope: sc,
			StartUnixNano: t0 + uint64(start*ms), EndUnixNano: t0 + uint64((start+dur)*ms), Attrs: attrs}
		if parent > 0 {
			s.ParentSpanID = span.SpanID{0: byte(trace), 7: byte(parent)}
		}
		b.Spans = append(b.Spans, s)
		return next
	}
	begin := func(n int) {
		trace, next = n, 0
		t0 = uint64(testutil.Base) + uint64(n-1)*5e9
	}
	str := testutil.Str
	http := func(method string, code int64) []span.Attr {
		return []span.Attr{str("http.request.method", method), testutil.Num("http.response.status_code", code)}
	}
	db := func(q string) []span.Attr {
		return []span.Attr{str("db.system.name", "postgresql"), str("db.query.text", q)}
	}
	gw, cat := res("gateway", "2.3.1"), res("catalog", "3.0.4")
	products := func(n int, inv *span.Resource, stock float64, nPlusOne int, retries int) {
		begin(n)
		j := float64(n%7) * 0.3
		q := 6 + j
		if nPlusOne > 0 {
			q = 2 + float64(nPlusOne)*1.5
		}
		list := 1 + q + 1
		stockAt := 1 + list + 0.5
		stockDur := float64(retries+1) * (stock + 1)
		root := add(0, gw, "GET /api/products", span.KindServer, 0, stockAt+stockDur+1, http("GET", 200)...)
		c := add(root, cat, "ListProducts", span.KindServer, 1, list, str("rpc.system.name", "grpc"), str("rpc.method", "ListProducts"))
		if nPlusOne > 0 {
			add(c, cat, "SELECT products", span.KindClient, 2, 2, db("SELECT id FROM products")...)
			for k := range nPlusOne {
				add(c, cat, "SELECT products", span.KindClient, 4+float64(k)*1.5, 1.4, db("SELECT * FROM products WHERE id = $1")...)
			}
		} else {
			add(c, cat, "SELECT products", span.KindClient, 2, q, db("SELECT * FROM products")...)
		}
		at := stockAt
		for k := range retries + 1 {
			code := int64(200)
			if k < retries {
				code = 503
			}
			attrs := append(http("GET", code), str("url.template", "/stock"))
			if k > 0 {
				attrs = append(attrs, testutil.Num("http.request.resend_count", int64(k)))
			}
			cl := add(root, gw, "GET /stock", span.KindClient, at, stock+0.5, attrs...)
			add(cl, inv, "GET /stock", span.KindServer, at+0.2, stock, http("GET", code)...)
			at += stock + 1
		}
	}
	inv1, inv2 := res("inventory", "1.0"), res("inventory", "2.0")
	for n := 1; n <= 30; n++ {
		products(n, inv1, 3+float64(n%5)*0.2, 0, 0)
	}
	for n := 31; n <= 40; n++ {
		products(n, inv2, 60+float64(n%3), 0, 0)
	}
	products(41, inv1, 3, 10, 0)
	products(42, inv1, 3, 0, 2)
	co, pay := res("checkout", "1.4.2"), res("payment", "2.1.7")
	for n := 43; n <= 48; n += 2 {
		begin(n)
		root := add(0, co, "PlaceOrder", span.KindServer, 0, 50, str("rpc.system.name", "grpc"), str("rpc.method", "PlaceOrder"))
		cl := add(root, co, "GET /stock", span.KindClient, 1, 3, http("GET", 200)...)
		add(cl, inv1, "GET /stock", span.KindServer, 1.5, 2, http("GET", 200)...)
		add(root, co, "POST /charges", span.KindClient, 5, 40, http("POST", 200)...)
		t := t0
		begin(n + 1)
		t0 = t
		proot := add(0, pay, "POST /charges", span.KindServer, 6, 38, http("POST", 200)...)
		add(proot, pay, "INSERT payments", span.KindClient, 7, 3, db("INSERT INTO payments")...)
	}
	begin(49)
	add(0, res("batch", ""), "nightly", span.KindInternal, 0, 10)
	b.Spans[len(b.Spans)-1].ParentSpanID = span.SpanID{7: 0xee}
	return b
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	db := storetest.OpenStore(t, fixture())
	s := New(db, Config{}, nil)
	s.now = func() time.Time { return now }
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestGolden(t *testing.T) {
	srv := newTestServer(t)
	tid := func(n byte) string { return testutil.TID(n).String() }
	cases := []struct {
		name string
		path string
		code int
	}{
		{"explain_n_plus_one", "/api/v1/explain/" + tid(41), 200},
		{"explain_retry", "/api/v1/explain/" + tid(42), 200},
		{"explain_slow_inventory", "/api/v1/explain/" + tid(35) + "?since=20m", 200},
		{"explain_normal", "/api/v1/explain/" + tid(5), 200},
		{"explain_no_cohort", "/api/v1/explain/" + tid(43), 200},
		{"explain_not_found", "/api/v1/explain/" + tid(99), 404},
		{"explain_bad_id", "/api/v1/explain/xyz", 400},
		{"explain_bad_cohort", "/api/v1/explain/" + tid(41) + "?cohort=0", 400},
		{"criticalpath", "/api/v1/criticalpath?service=gateway&operation=GET+/api/products&tail=0.95", 200},
		{"criticalpath_missing_operation", "/api/v1/criticalpath?service=gateway", 400},
		{"criticalpath_bad_tail", "/api/v1/criticalpath?service=gateway&operation=x&tail=2", 400},
		{"rank_native", "/api/v1/attributes/rank?service=inventory&operation=GET+/stock&minDuration=50ms", 200},
		{"rank_traceql", "/api/v1/attributes/rank?q=" + escape(`{ resource.service.name = "inventory" && duration > 50ms }`) +
			"&baseline=" + escape(`{ resource.service.name = "inventory" && duration < 50ms }`), 200},
		{"rank_no_selection", "/api/v1/attributes/rank", 400},
		{"rank_bad_traceql", "/api/v1/attributes/rank?q=" + escape("{ duration >"), 400},
		{"quality", "/api/v1/quality", 200},
		{"quality_bad_range", "/api/v1/quality?since=-1h", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatalf("not JSON: %s", body)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", c.name+".golden.json")
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
				t.Errorf("GET %s:\n%s\nwant:\n%s", c.path, pretty.Bytes(), want)
			}
		})
	}
}

func escape(s string) string {
	r := strings.NewReplacer(" ", "+", "\"", "%22", "{", "%7B", "}", "%7D", "&", "%26", ">", "%3E", "<", "%3C", "=", "%3D")
	return r.Replace(s)
}

func TestExplainCLI(t *testing.T) {
	srv := newTestServer(t)
	for _, c := range []struct {
		name string
		args []string
		err  string
	}{
		{"explain_cli_text", []string{"--addr", srv.URL, testutil.TID(41).String()}, ""},
		{"explain_cli_json", []string{testutil.TID(42).String(), "-o", "json", "--addr", srv.URL + "/"}, ""},
		{"", []string{"--addr", srv.URL, testutil.TID(99).String()}, "trace 00000000000000000000000000000063 not found (HTTP 404)"},
		{"", []string{"--addr", srv.URL}, "missing the trace ID"},
		{"", []string{"--addr", srv.URL, "a", "b"}, "want one trace ID"},
		{"", []string{"--addr", "ftp://x", "a"}, "want a URL"},
		{"", []string{"-o", "yaml", "a"}, "want text or json"},
		{"", []string{"--addr", "http://127.0.0.1:1", "a"}, "connection refused"},
	} {
		var out, errOut bytes.Buffer
		err := ExplainMain(context.Background(), c.args, &out, &errOut)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.args, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		golden := filepath.Join("testdata", c.name+".golden")
		if *update {
			if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden (run go test -update): %v", err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%q:\n%s\nwant:\n%s", c.args, out.Bytes(), want)
		}
	}
}
