package spanmetrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// t0 is the tests' clock origin: a whole hour.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// open returns Metrics on dir ("" for memory) with clock c, closed when
// the test ends.
func open(t testing.TB, cfg Config, dir string, c *clock) *Metrics {
	t.Helper()
	m, err := Open(cfg, Options{Dir: dir, Now: c.now, Retention: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func tid(n int) span.TraceID { return span.TraceID{14: byte(n >> 8), 15: byte(n)} }
func sid(n int) span.SpanID  { return span.SpanID{6: byte(n >> 8), 7: byte(n)} }

func str(k, v string) span.Attr { return span.Attr{Key: k, Value: span.StringValue(v)} }

// builder makes batches of spans.
type builder struct {
	res map[string]*span.Resource
	b   span.Batch
}

func newBuilder() *builder { return &builder{res: map[string]*span.Resource{}} }

func (bb *builder) resource(svc, version string) *span.Resource {
	k := svc + "\x00" + version
	r := bb.res[k]
	if r == nil {
		r = &span.Resource{Attrs: []span.Attr{str("service.name", svc)}}
		if version != "" {
			r.Attrs = append(r.Attrs, str("service.version", version))
		}
		bb.res[k] = r
		bb.b.Resources = append(bb.b.Resources, r)
	}
	return r
}

// sp describes one span.
type sp struct {
	svc, version, name string
	kind               span.Kind
	trace, id, parent  int
	start              time.Time
	dur                time.Duration
	err                bool
	attrs              []span.Attr
	links              []span.Link
}

func (bb *builder) add(spans ...sp) *builder {
	for _, s := range spans {
		x := span.Span{TraceID: tid(s.trace), SpanID: sid(s.id), Name: s.name, Kind: s.kind, Resource: bb.resource(s.svc, s.version),
			StartUnixNano: uint64(s.start.UnixNano()), EndUnixNano: uint64(s.start.Add(s.dur).UnixNano()), Attrs: s.attrs, Links: s.links}
		if s.parent != 0 {
			x.ParentSpanID = sid(s.parent)
		}
		if s.err {
			x.StatusCode = span.StatusError
		}
		bb.b.Spans = append(bb.b.Spans, x)
	}
	return bb
}

func (bb *builder) batch() *span.Batch { b := bb.b; return &b }

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
