// Package webui serves clew's web UI, the single-page app under web/, from
// files embedded in the binary. `make ui` builds the app and copies it
// into dist/, which go:embed picks up; a binary built without it (plain
// `go build`, no Node) embeds only a placeholder page that says how to
// build the UI. See docs/ui.md.
//
// The UI lives under /ui/ on the query port. Files that exist are served
// as they are (hashed assets with a year-long immutable cache, the rest
// revalidated); any other path under /ui/ is a client route and gets
// index.html, so that deep links such as /ui/trace/<id> load the app,
// which then reads its state from the URL.
package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// Prefix is the path the UI is served under.
const Prefix = "/ui/"

//go:embed all:dist
var dist embed.FS

//go:embed placeholder.html
var placeholder []byte

// UI serves the web UI. It is safe for concurrent use.
type UI struct {
	files fs.FS
	built bool
	index *file

	mu    sync.Mutex
	cache map[string]*file // by path under the root, loaded on first use
}

// file is one servable file with its precomputed validators and, for
// compressible content, its gzip encoding.
type file struct {
	name  string
	data  []byte
	gz    []byte // nil when not worth compressing
	etag  string
	ctype string
}

// New returns the UI embedded in the binary: the built app when `make ui`
// ran before the build, else the placeholder page.
func New() *UI {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("BUG: embedded dist: " + err.Error())
	}
	return newUI(sub)
}

// newUI serves the app in files (index.html at the root); without an
// index.html it serves the placeholder for every page.
func newUI(files fs.FS) *UI {
	u := &UI{files: files, cache: map[string]*file{}}
	if b, err := fs.ReadFile(files, "index.html"); err == nil {
		u.built = true
		u.index = newFile("index.html", b)
	} else {
		u.index = newFile("index.html", placeholder)
	}
	return u
}

// Built reports whether the real UI is embedded (not the placeholder).
func (u *UI) Built() bool { return u.built }

// Register adds the UI's routes to mux: everything under Prefix, and the
// prefix without its slash redirecting to it.
func (u *UI) Register(mux *http.ServeMux) {
	mux.Handle("GET "+Prefix, u)
	mux.Handle("HEAD "+Prefix, u)
	mux.Handle("GET "+strings.TrimSuffix(Prefix, "/"), http.RedirectHandler(Prefix, http.StatusMovedPermanently))
}

// ServeHTTP serves a file of the app, or index.html for a client route.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(r.URL.Path, Prefix)), "/")
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	f := u.lookup(rel)
	switch {
	case f != nil:
		if strings.HasPrefix(rel, "assets/") {
			// Vite names assets by content hash: they never change.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
	case strings.HasPrefix(rel, "assets/") || isDotPath(rel):
		// A missing asset is a 404, not the app: a stale page asking for
		// an old bundle must fail visibly.
		http.NotFound(w, r)
		return
	default:
		f = u.index
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'self'")
		h.Set("Referrer-Policy", "same-origin")
	}
	h.Set("Content-Type", f.ctype)
	h.Add("Vary", "Accept-Encoding")
	data, etag := f.data, f.etag
	if f.gz != nil && acceptsGzip(r) {
		data, etag = f.gz, f.etag[:len(f.etag)-1]+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// lookup returns the file at rel, or nil when there is none (or rel is
// the index, which is served as a client route).
func (u *UI) lookup(rel string) *file {
	if !u.built || rel == "" || rel == "." || rel == "index.html" || isDotPath(rel) {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if f, ok := u.cache[rel]; ok {
		return f
	}
	b, err := fs.ReadFile(u.files, rel)
	var f *file
	if err == nil {
		f = newFile(rel, b)
	}
	u.cache[rel] = f // a miss is remembered too: the set of files is fixed
	return f
}

func newFile(name string, b []byte) *file {
	sum := sha256.Sum256(b)
	f := &file{name: name, data: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	f.ctype = mime.TypeByExtension(path.Ext(name))
	if f.ctype == "" {
		f.ctype = "application/octet-stream"
	}
	if len(b) >= 1024 && compressible(f.ctype) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		if buf.Len() < len(b)*9/10 {
			f.gz = buf.Bytes()
		}
	}
	return f
}

func compressible(ctype string) bool {
	for _, p := range []string{"text/", "application/javascript", "text/javascript", "application/json", "image/svg+xml"} {
		if strings.HasPrefix(ctype, p) {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// isDotPath reports whether a segment of rel starts with a dot (.gitkeep
// and the like are not part of the app).
func isDotPath(rel string) bool {
	for _, seg := range strings.Split(rel, "/") {
		if strings.HasPrefix(seg, ".") {
			return true
		}
	}
	return false
}
