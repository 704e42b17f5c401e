package webui

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

var app = fstest.MapFS{
	"index.html":           {Data: []byte(`<!doctype html><div id="app"></div><script src="/ui/assets/index-abc.js"></script>`)},
	"assets/index-abc.js":  {Data: []byte(strings.Repeat("console.log('clew');\n", 200))},
	"assets/index-abc.css": {Data: []byte("body{}")},
	"favicon.svg":          {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
	".gitkeep":             {Data: nil},
}

func serve(t *testing.T, u *UI, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	u.Register(mux)
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServeBuilt(t *testing.T) {
	u := newUI(app)
	if !u.Built() {
		t.Fatal("Built() = false with an index.html")
	}
	cases := []struct {
		name, target string
		hdr          map[string]string
		code         int
		ctype        string
		cache        string
		encoding     string
		contains     string
	}{
		{"root", "/ui/", nil, 200, "text/html; charset=utf-8", "no-cache", "", `id="app"`},
		{"client route", "/ui/trace/5b8efff798038103d269b633813fc60c", nil, 200, "text/html; charset=utf-8", "no-cache", "", `id="app"`},
		{"deep client route with query", "/ui/compare?a=1&b=2", nil, 200, "text/html; charset=utf-8", "no-cache", "", `id="app"`},
		{"index by name", "/ui/index.html", nil, 200, "text/html; charset=utf-8", "no-cache", "", `id="app"`},
		{"asset", "/ui/assets/index-abc.js", nil, 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "", "console.log"},
		{"asset gzip", "/ui/assets/index-abc.js", map[string]string{"Accept-Encoding": "br, gzip"}, 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "gzip", "console.log"},
		{"small asset not compressed", "/ui/assets/index-abc.css", map[string]string{"Accept-Encoding": "gzip"}, 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", "", "body{}"},
		{"top-level file", "/ui/favicon.svg", nil, 200, "image/svg+xml", "no-cache", "", "<svg"},
		{"missing asset", "/ui/assets/index-old.js", nil, 404, "", "", "", ""},
		{"dot file", "/ui/.gitkeep", nil, 404, "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := serve(t, u, "GET", c.target, c.hdr)
			if r.StatusCode != c.code {
				t.Fatalf("GET %s: %d, want %d", c.target, r.StatusCode, c.code)
			}
			if c.code != 200 {
				return
			}
			if got := r.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type = %q, want %q", got, c.ctype)
			}
			if got := r.Header.Get("Cache-Control"); got != c.cache {
				t.Errorf("Cache-Control = %q, want %q", got, c.cache)
			}
			if got := r.Header.Get("Content-Encoding"); got != c.encoding {
				t.Errorf("Content-Encoding = %q, want %q", got, c.encoding)
			}
			if b := body(t, r); !strings.Contains(b, c.contains) {
				t.Errorf("body %.80q does not contain %q", b, c.contains)
			}
		})
	}
}

// TestTraversal calls the handler directly (ServeMux would clean the
// path first): a path climbing out of the root stays inside it.
func TestTraversal(t *testing.T) {
	req := httptest.NewRequest("GET", "/ui/", nil)
	req.URL.Path = "/ui/../../assets/index-abc.js"
	rec := httptest.NewRecorder()
	newUI(app).ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "console.log") {
		t.Fatalf("GET %s: %d %.40q, want the asset inside the root", req.URL.Path, rec.Code, rec.Body.String())
	}
}

func TestRevalidate(t *testing.T) {
	u := newUI(app)
	r := serve(t, u, "GET", "/ui/search", nil)
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	r = serve(t, u, "GET", "/ui/search", map[string]string{"If-None-Match": etag})
	if r.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", r.StatusCode)
	}
}

func TestRedirectWithoutSlash(t *testing.T) {
	r := serve(t, newUI(app), "GET", "/ui", nil)
	if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui: %d to %q, want 301 to /ui/", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestPlaceholder(t *testing.T) {
	u := newUI(fstest.MapFS{".gitkeep": {}})
	if u.Built() {
		t.Fatal("Built() = true without index.html")
	}
	for _, target := range []string{"/ui/", "/ui/search", "/ui/trace/abc"} {
		r := serve(t, u, "GET", target, nil)
		b := body(t, r)
		if r.StatusCode != 200 || !strings.Contains(b, "make ui") {
			t.Errorf("GET %s: %d %.60q, want 200 with the build instructions", target, r.StatusCode, b)
		}
	}
}

// TestEmbedded checks the embedded files: the placeholder always, and the
// real app's index when `make ui` has run.
func TestEmbedded(t *testing.T) {
	if !bytes.Contains(placeholder, []byte("make ui")) {
		t.Fatal("placeholder does not say how to build the UI")
	}
	u := New()
	r := serve(t, u, "GET", "/ui/", nil)
	b := body(t, r)
	if u.Built() && strings.Contains(b, `name="clew-ui" content="placeholder"`) {
		t.Fatal("built UI serves the placeholder")
	}
	if !u.Built() && !strings.Contains(b, "make ui") {
		t.Fatal("unbuilt UI does not serve the placeholder")
	}
}
