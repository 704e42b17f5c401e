package zipkin

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// findFixture has two traces. Trace a (service "Shop" with a capital, as
// some tracers send it, calling "payments"):
//
//	a1 Shop "GET /Cart" 100µs: http.method=GET, remote "Redis", annotation "retried"
//	a2 Shop "db" 900µs:        db.system=pg, error=timeout
//	a3 payments "charge":      region=eu, annotation "ws"
//
// Trace b (service "shop", lower-case):
//
//	b1 shop "get /cart" 50µs: http.method=POST
const findFixture = `[
 {"traceId":"000000000000000a","id":"00000000000000a1","name":"GET /Cart","timestamp":1700000000000000,"duration":100,
  "localEndpoint":{"serviceName":"Shop"},"remoteEndpoint":{"serviceName":"Redis"},
  "tags":{"http.method":"GET"},"annotations":[{"timestamp":1700000000000010,"value":"retried"}]},
 {"traceId":"000000000000000a","id":"00000000000000a2","parentId":"00000000000000a1","name":"db","timestamp":1700000000000020,"duration":900,
  "localEndpoint":{"serviceName":"Shop"},"tags":{"db.system":"pg","error":"timeout"}},
 {"traceId":"000000000000000a","id":"00000000000000a3","parentId":"00000000000000a1","name":"charge","timestamp":1700000000000030,"duration":10,
  "localEndpoint":{"serviceName":"payments"},"tags":{"region":"eu"},"annotations":[{"timestamp":1700000000000031,"value":"ws"}]},
 {"traceId":"000000000000000b","id":"00000000000000b1","name":"get /cart","timestamp":1700000001000000,"duration":50,
  "localEndpoint":{"serviceName":"shop"},"tags":{"http.method":"POST"}}
]`

// TestFindZipkinSemantics checks GET /api/v2/traces against the rules of
// Zipkin's QueryRequest: a bare annotationQuery term matches a tag key or
// an annotation value, key=value a tag's value; every criterion may be met
// by a different span of the trace, but only by a span of serviceName when
// it is given; service, span and remote service names compare
// lower-cased.
func TestFindZipkinSemantics(t *testing.T) {
	srv := newTestServer(t)
	if code, msg := srv.post(t, "application/json", "", []byte(findFixture)); code != 202 {
		t.Fatalf("POST: %d %s", code, msg)
	}
	const window = "&endTs=1700000002000&lookback=10000"
	cases := []struct {
		name, query string
		want        []string // trace IDs, newest first
	}{
		{"tag terms on different spans", "annotationQuery=http.method=GET and db.system=pg", []string{"a"}},
		{"bare term is a tag key", "annotationQuery=http.method", []string{"b", "a"}},
		{"bare term is an annotation value", "annotationQuery=retried", []string{"a"}},
		{"bare term on another span's annotation", "annotationQuery=ws and error", []string{"a"}},
		{"bare term is not a tag value", "annotationQuery=GET", nil},
		{"tag values are case-sensitive", "annotationQuery=http.method=get", nil},
		{"key= is a bare term", "annotationQuery=db.system=", []string{"a"}},
		{"last tag term for a key wins", "annotationQuery=http.method=GET and http.method=POST", []string{"b"}},
		{"a bare term keeps the tag term", "annotationQuery=http.method=POST and http.method", []string{"b"}},
		{"no trace has both", "annotationQuery=error and http.method=POST", nil},
		{"service constrains the terms", "serviceName=shop&annotationQuery=region", nil},
		{"service constrains annotations", "serviceName=shop&annotationQuery=ws", nil},
		{"terms on the service's spans", "serviceName=payments&annotationQuery=region=eu and ws", []string{"a"}},
		{"service name case-insensitive", "serviceName=SHOP", []string{"b", "a"}},
		{"service name lower-cased", "serviceName=shop", []string{"b", "a"}},
		{"span name case-insensitive", "serviceName=shop&spanName=GET /CART", []string{"b", "a"}},
		{"span name and tag on different spans", "serviceName=shop&spanName=db&annotationQuery=http.method=GET", []string{"a"}},
		{"span name of another service", "serviceName=payments&spanName=db", nil},
		{"span name without service", "spanName=Charge", []string{"a"}},
		{"remote service case-insensitive", "remoteServiceName=REDIS&annotationQuery=db.system", []string{"a"}},
		{"duration and annotation on different spans", "serviceName=shop&minDuration=500&annotationQuery=retried", []string{"a"}},
		{"duration of another service's span", "serviceName=payments&minDuration=500", nil},
		{"unknown service", "serviceName=nope", nil},
		{"limit", "annotationQuery=http.method&limit=1", []string{"b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := "/api/v2/traces?" + encodeQuery(c.query) + window
			code, b := srv.get(t, path)
			if code != 200 {
				t.Fatalf("GET %s: %d %s", path, code, b)
			}
			var traces [][]zspanJSON
			if err := json.Unmarshal(b, &traces); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, b)
			}
			var got []string
			for _, tr := range traces {
				if len(tr) == 0 {
					t.Fatalf("GET %s: an empty trace", path)
				}
				got = append(got, strings.TrimLeft(tr[0]["traceId"].(string), "0"))
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("GET %s: traces %v, want %v", path, got, c.want)
			}
		})
	}
	lists := []struct{ path, want string }{
		{"/api/v2/services", `["payments","shop"]`},
		{"/api/v2/spans?serviceName=SHOP", `["db","get /cart"]`},
		{"/api/v2/spans?serviceName=Payments", `["charge"]`},
		{"/api/v2/spans?serviceName=nope", `[]`},
		{"/api/v2/remoteServices?serviceName=shop", `["redis"]`},
		{"/api/v2/remoteServices?serviceName=payments", `[]`},
	}
	for _, l := range lists {
		if code, b := srv.get(t, l.path); code != 200 || string(b) != l.want {
			t.Errorf("GET %s = %d %s, want %s", l.path, code, b, l.want)
		}
	}
}

// encodeQuery URL-encodes "k=v&k=v" whose values may hold spaces, '=' and
// '/'.
func encodeQuery(s string) string {
	v := url.Values{}
	for p := range strings.SplitSeq(s, "&") {
		k, val, _ := strings.Cut(p, "=")
		v.Add(k, val)
	}
	return v.Encode()
}

func TestParseAnnotationQuery(t *testing.T) {
	cases := []struct {
		in   string
		want []term
		err  bool
	}{
		{"", nil, false},
		{"error", []term{{key: "error", bare: true}}, false},
		{" a = b  and c ", []term{{key: "a", value: "b"}, {key: "c", bare: true}}, false},
		{"a=b=c", []term{{key: "a", value: "b=c"}}, false},
		{"a=1 and a=2", []term{{key: "a", value: "2"}}, false},
		{"a and a=2", []term{{key: "a", value: "2"}}, false},
		{"a=2 and a", []term{{key: "a", value: "2"}}, false},
		{"a=", []term{{key: "a", bare: true}}, false},
		{"=b", nil, true},
		{strings.Repeat("k and ", 3) + "x", []term{{key: "k", bare: true}, {key: "x", bare: true}}, false},
	}
	for _, c := range cases {
		got, err := parseAnnotationQuery(c.in)
		if (err != nil) != c.err || !slices.Equal(got, c.want) {
			t.Errorf("parseAnnotationQuery(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
	var many []string
	for i := range maxConds + 1 {
		many = append(many, "k"+strings.Repeat("x", i))
	}
	if _, err := parseAnnotationQuery(strings.Join(many, " and ")); err == nil {
		t.Errorf("%d terms: no error", len(many))
	}
}
