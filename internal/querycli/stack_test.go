package querycli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/tempo"
)

// TestRealStack runs clew query against clew's own Tempo API over a real
// store, in process: the table and the server's actual answers, not canned
// ones, for a search, a metrics query and a rejected query.
func TestRealStack(t *testing.T) {
	db := storetest.OpenStore(t)

	now := time.Now()
	start := uint64(now.Add(-2 * time.Minute).UnixNano())
	res := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("x")}}}
	other := &span.Resource{Attrs: []span.Attr{{Key: "service.name", Value: span.StringValue("y")}}}
	tid, _ := span.ParseTraceID("5b8efff798038103d269b633813fc60c")
	otherTID, _ := span.ParseTraceID("0af7651916cd43dd8448eb211c80319c")
	root, _ := span.ParseSpanID("eee19b7ec3c1b173")
	child, _ := span.ParseSpanID("eee19b7ec3c1b174")
	lone, _ := span.ParseSpanID("b7ad6b7169203331")
	b := &span.Batch{
		Resources: []*span.Resource{res, other},
		Spans: []span.Span{
			{TraceID: tid, SpanID: root, Name: "GET /hello", Kind: span.KindServer, StartUnixNano: start, EndUnixNano: start + 42_000_000, Resource: res},
			{TraceID: tid, SpanID: child, ParentSpanID: root, Name: "lookup", Kind: span.KindInternal, StartUnixNano: start + 1_000_000, EndUnixNano: start + 40_000_000, Resource: res},
			{TraceID: otherTID, SpanID: lone, Name: "GET /other", Kind: span.KindServer, StartUnixNano: start, EndUnixNano: start + 1_000_000, Resource: other},
		},
	}
	if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	tempo.New(db, nil).Register(mux, "/tempo")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	query := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"--addr", srv.URL}, args...), &stdout, &stderr, time.Now(), time.UTC)
		return stdout.String(), stderr.String(), err
	}

	t.Run("search", func(t *testing.T) {
		out, errOut, err := query(`{ resource.service.name = "x" }`)
		if err != nil {
			t.Fatalf("clew query: %v (stderr %q)", err, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("got %d lines, want a header, one trace and its two spans:\n%s", len(lines), out)
		}
		wantStart := time.Unix(0, int64(start)).UTC().Format(timeLayout)
		for _, want := range []string{"5b8efff798038103d269b633813fc60c", wantStart, "42ms", "x", "GET /hello", "2"} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("trace line %q lacks %q", lines[1], want)
			}
		}
		for i, want := range []string{"eee19b7ec3c1b173  GET /hello  42ms", "eee19b7ec3c1b174  lookup      39ms"} {
			if !strings.HasPrefix(lines[2+i], "  "+want) {
				t.Errorf("span line %q, want it to start with %q", lines[2+i], "  "+want)
			}
		}
		if strings.Contains(out, "0af7651916cd43dd8448eb211c80319c") {
			t.Errorf("the trace of service y matched:\n%s", out)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		out, errOut, err := query("--since", "10m", "--step", "1m", `{ resource.service.name = "x" } | count_over_time()`)
		if err != nil {
			t.Fatalf("clew query: %v (stderr %q)", err, errOut)
		}
		if !strings.HasPrefix(out, `{__name__="count_over_time"}`+"\n  TIME") {
			t.Errorf("output does not start with the series labels and the header:\n%s", out)
		}
		sum := 0.0
		for _, l := range strings.Split(out, "\n")[2:] {
			if f := strings.Fields(l); len(f) == 2 {
				v, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					t.Fatalf("row %q: %v", l, err)
				}
				sum += v
			}
		}
		if sum != 2 {
			t.Errorf("the samples add up to %g, want 2 spans:\n%s", sum, out)
		}
	})

	t.Run("bad query", func(t *testing.T) {
		out, _, err := query(`{ resource.service.name = }`)
		want := "invalid TraceQL query: 1:27: "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "\n  { resource.service.name = }\n                            ^") {
			t.Fatalf("error %v, want the server's message starting %q and a caret under the }", err, want)
		}
		if out != "" {
			t.Errorf("stdout %q, want nothing", out)
		}
	})
}
