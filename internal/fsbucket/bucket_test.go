package fsbucket_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/clew-dev/clew/internal/fsbucket"
	"github.com/clew-dev/clew/internal/fsbucket/crashfs"
)

var ctx = context.Background()

func open(t *testing.T, root string, fsys fsbucket.FS) (*fsbucket.Bucket, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := fsbucket.Open(root, fsbucket.Options{FS: fsys, Registerer: reg})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return b, reg
}

var modes = []crashfs.Mode{crashfs.LoseUnsynced, crashfs.KeepEntries}

// newFS returns a crash-simulating file system with the directory dir,
// durable.
func newFS(t *testing.T, opts crashfs.Options, dir string) *crashfs.FS {
	t.Helper()
	fsys := crashfs.New(opts)
	if err := fsys.MkdirDurable(dir); err != nil {
		t.Fatal(err)
	}
	return fsys
}

func tempRemoved(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "clew_storage_temp_files_removed_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("clew_storage_temp_files_removed_total not registered")
	return 0
}

// TestAcceptance runs objstore's own bucket conformance suite.
func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 200 MB")
	}
	b, _ := open(t, t.TempDir(), nil)
	objstore.AcceptanceTest(t, b)
}

func list(t *testing.T, b objstore.Bucket, dir string, opts ...objstore.IterOption) []string {
	t.Helper()
	var out []string
	if err := b.Iter(ctx, dir, func(n string) error { out = append(out, n); return nil }, opts...); err != nil {
		t.Fatalf("iter %q: %v", dir, err)
	}
	return out
}

// TestSameLayoutAsFilesystemBucket writes with one bucket and reads with
// the other, both ways: existing data directories keep working.
func TestSameLayoutAsFilesystemBucket(t *testing.T) {
	objects := map[string]string{
		"t1/01/meta.json": "{}", "t1/01/data": "data", "t1/01/index": "idx",
		"t1/02/data": "d2", "t2/x": "x", "top": "top",
	}
	for _, dir := range []string{"writer-thanos", "writer-fsbucket"} {
		t.Run(dir, func(t *testing.T) {
			root := t.TempDir()
			tb, err := filesystem.NewBucket(root)
			if err != nil {
				t.Fatal(err)
			}
			fb, _ := open(t, root, nil)
			w, r := objstore.Bucket(tb), objstore.Bucket(fb)
			if dir == "writer-fsbucket" {
				w, r = r, w
			}
			for k, v := range objects {
				if err := w.Upload(ctx, k, strings.NewReader(v)); err != nil {
					t.Fatal(err)
				}
			}
			// An empty directory is not listed by either.
			if err := os.MkdirAll(filepath.Join(root, "t1", "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				dir  string
				opts []objstore.IterOption
			}{{"", nil}, {"t1/", nil}, {"t1", nil}, {"t1/01/", nil}, {"", []objstore.IterOption{objstore.WithRecursiveIter()}}, {"missing/", nil}} {
				if got, want := list(t, r, c.dir, c.opts...), list(t, w, c.dir, c.opts...); !slices.Equal(got, want) {
					t.Errorf("iter %q: reader lists %q, writer %q", c.dir, got, want)
				}
			}
			for k, v := range objects {
				rc, err := r.GetRange(ctx, k, 1, 2)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(rc)
				rc.Close()
				if want := v[min(1, len(v)):min(3, len(v))]; string(got) != want {
					t.Errorf("%s: range %q, want %q", k, got, want)
				}
				a, err := r.Attributes(ctx, k)
				if err != nil || a.Size != int64(len(v)) {
					t.Errorf("%s: attributes %+v %v", k, a, err)
				}
			}
			for _, bkt := range []objstore.Bucket{r, w} {
				if _, err := bkt.Get(ctx, "t1/02/meta.json"); !bkt.IsObjNotFoundErr(err) {
					t.Errorf("%s: missing object: %v is not a not-found error", bkt.Name(), err)
				}
			}
			// Deleting a block's objects removes its directory, as before.
			for _, n := range []string{"t1/01/meta.json", "t1/01/data", "t1/01/index"} {
				if err := r.Delete(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "t1", "01")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("block directory left after deleting its objects: %v", err)
			}
			if fb.LocalDir() != root {
				t.Errorf("LocalDir = %q, want %q", fb.LocalDir(), root)
			}
		})
	}
}

// TestUploadCrashAtEveryStep crashes an upload after each of its file
// system operations: after restart the object is absent or complete, no
// temporary file is listed, and leftovers are removed and counted.
func TestUploadCrashAtEveryStep(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 10_000)
	run := func(crash int, fsys *crashfs.FS) error {
		fsys.CrashAfter(crash)
		b, _ := open(t, "/data/blocks", fsys)
		if err := b.Upload(ctx, "old", strings.NewReader("old")); err != nil {
			return err
		}
		return b.Upload(ctx, "t1/block/data", bytes.NewReader(payload))
	}
	full := newFS(t, crashfs.Options{}, "/data")
	base := full.Ops()
	if err := run(-1, full); err != nil {
		t.Fatal(err)
	}
	total := full.Ops() - base
	sawLeftover := false
	for _, mode := range modes {
		for k := 0; k <= total; k++ {
			fsys := newFS(t, crashfs.Options{}, "/data")
			err := run(base+k, fsys)
			if k < total && !errors.Is(err, crashfs.ErrCrashed) {
				t.Fatalf("crash after %d of %d: upload returned %v", k, total, err)
			}
			after := fsys.Restart(mode)
			b, reg := open(t, "/data/blocks", after)
			sawLeftover = sawLeftover || tempRemoved(t, reg) > 0
			rec := list(t, b, "", objstore.WithRecursiveIter())
			for _, n := range rec {
				if strings.HasSuffix(n, fsbucket.TempSuffix) {
					t.Fatalf("crash after %d: temporary file %s listed", k, n)
				}
			}
			if ents, err := after.ReadDir("/data/blocks/t1/block"); err == nil {
				for _, e := range ents {
					if strings.HasSuffix(e.Name(), fsbucket.TempSuffix) {
						t.Fatalf("crash after %d: temporary file %s not removed at open", k, e.Name())
					}
				}
			}
			rc, err := b.Get(ctx, "t1/block/data")
			switch {
			case b.IsObjNotFoundErr(err):
				if k == total {
					t.Fatalf("completed upload lost")
				}
			case err != nil:
				t.Fatal(err)
			default:
				got, _ := io.ReadAll(rc)
				rc.Close()
				if !bytes.Equal(got, payload) {
					t.Fatalf("crash after %d: object has %d bytes, want %d", k, len(got), len(payload))
				}
			}
		}
	}
	if !sawLeftover {
		t.Error("no crash point left a temporary file to clean up: the cleanup is untested")
	}
}

// TestDeleteCrashAtEveryStep: a deletion interrupted anywhere leaves the
// object complete or gone; a returned Delete survives the crash.
func TestDeleteCrashAtEveryStep(t *testing.T) {
	setup := func() (*crashfs.FS, *fsbucket.Bucket) {
		fsys := newFS(t, crashfs.Options{}, "/b")
		b, _ := open(t, "/b", fsys)
		for _, n := range []string{"t1/blk/meta.json", "t1/blk/data", "t1/other/data"} {
			if err := b.Upload(ctx, n, strings.NewReader("content of "+n)); err != nil {
				t.Fatal(err)
			}
		}
		return fsys, b
	}
	fsys, b := setup()
	base := fsys.Ops()
	if err := b.Delete(ctx, "t1/blk/meta.json"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "t1/blk/data"); err != nil {
		t.Fatal(err)
	}
	total := fsys.Ops() - base
	for _, mode := range modes {
		for k := 0; k <= total; k++ {
			fsys, b := setup()
			fsys.CrashAfter(fsys.Ops() + k)
			err1 := b.Delete(ctx, "t1/blk/meta.json")
			err2 := b.Delete(ctx, "t1/blk/data")
			after, _ := open(t, "/b", fsys.Restart(mode))
			for i, n := range []string{"t1/blk/meta.json", "t1/blk/data"} {
				ok, err := after.Exists(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					if (i == 0 && err1 == nil) || (i == 1 && err2 == nil) {
						t.Fatalf("crash after %d: %s deleted, yet back after restart", k, n)
					}
					rc, _ := after.Get(ctx, n)
					got, _ := io.ReadAll(rc)
					rc.Close()
					if string(got) != "content of "+n {
						t.Fatalf("crash after %d: %s is %q", k, n, got)
					}
				}
			}
			if ok, _ := after.Exists(ctx, "t1/other/data"); !ok {
				t.Fatalf("crash after %d: unrelated object lost", k)
			}
			if k == total && slices.Contains(list(t, after, "t1/"), "t1/blk/") {
				t.Fatalf("empty block directory left")
			}
		}
	}
}

// TestNoSyncLosesUploads is the negative control of the crash tests: on a
// file system where fsync does nothing (a bucket that never syncs), a
// completed upload is lost at the crash.
func TestNoSyncLosesUploads(t *testing.T) {
	fsys := newFS(t, crashfs.Options{IgnoreSync: true}, "/b")
	b, _ := open(t, "/b", fsys)
	if err := b.Upload(ctx, "t1/blk/data", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	after, _ := open(t, "/b", fsys.Restart(crashfs.LoseUnsynced))
	if ok, _ := after.Exists(ctx, "t1/blk/data"); ok {
		t.Fatal("an unsynced upload survived the simulated crash: the crash model does not drop unsynced state")
	}
}

// failFS fails the n-th call of one operation.
type failFS struct {
	fsbucket.FS
	op   string
	n    int
	seen int
}

var errInjected = errors.New("injected failure")

func (f *failFS) fail(op string) error {
	if op != f.op {
		return nil
	}
	f.seen++
	if f.seen == f.n {
		return errInjected
	}
	return nil
}

func (f *failFS) CreateExcl(name string) (fsbucket.File, error) {
	if err := f.fail("create"); err != nil {
		return nil, err
	}
	w, err := f.FS.CreateExcl(name)
	if err != nil {
		return nil, err
	}
	return &failFile{File: w, f: f}, nil
}

func (f *failFS) Mkdir(dir string) error {
	if err := f.fail("mkdir"); err != nil {
		return err
	}
	return f.FS.Mkdir(dir)
}

func (f *failFS) Rename(o, n string) error {
	if err := f.fail("rename"); err != nil {
		return err
	}
	return f.FS.Rename(o, n)
}

func (f *failFS) Remove(name string) error {
	if err := f.fail("remove"); err != nil {
		return err
	}
	return f.FS.Remove(name)
}

func (f *failFS) SyncDir(dir string) error {
	if err := f.fail("syncdir"); err != nil {
		return err
	}
	return f.FS.SyncDir(dir)
}

type failFile struct {
	fsbucket.File
	f *failFS
}

func (w *failFile) Write(p []byte) (int, error) {
	if err := w.f.fail("write"); err != nil {
		return 0, err
	}
	return w.File.Write(p)
}

func (w *failFile) Sync() error {
	if err := w.f.fail("sync"); err != nil {
		return err
	}
	return w.File.Sync()
}

func (w *failFile) Close() error {
	err := w.File.Close()
	if ferr := w.f.fail("close"); ferr != nil {
		return ferr
	}
	return err
}

// TestUploadErrors: every failing step fails the upload with the cause,
// leaves no temporary file behind and the old object (if any) intact,
// except that a failed directory sync after the rename reports the error
// with the new object in place (it is not known durable).
func TestUploadErrors(t *testing.T) {
	cases := []struct {
		op     string
		n      int
		newObj bool // the new content is visible after the failure
	}{
		{"mkdir", 1, false},
		{"mkdir", 2, false},
		{"create", 1, false},
		{"write", 1, false},
		{"sync", 1, false},
		{"close", 1, false},
		{"rename", 1, false},
		{"syncdir", 1, false}, // parent of the new directory
		{"syncdir", 3, true},  // the object's directory, after the rename
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s#%d", c.op, c.n), func(t *testing.T) {
			mem := newFS(t, crashfs.Options{}, "/b")
			f := &failFS{FS: mem, op: c.op, n: c.n}
			b, _ := open(t, "/b", f)
			err := b.Upload(ctx, "t1/blk/data", strings.NewReader("new"))
			if !errors.Is(err, errInjected) {
				t.Fatalf("upload: %v, want the injected failure", err)
			}
			ok, _ := b.Exists(ctx, "t1/blk/data")
			if ok != c.newObj {
				t.Errorf("object visible = %v, want %v", ok, c.newObj)
			}
			for _, n := range list(t, b, "", objstore.WithRecursiveIter()) {
				if strings.Contains(n, fsbucket.TempSuffix) {
					t.Errorf("temporary file %s listed", n)
				}
			}
			if ents, err := mem.ReadDir("/b/t1/blk"); err == nil {
				for _, e := range ents {
					if strings.HasSuffix(e.Name(), fsbucket.TempSuffix) {
						t.Errorf("temporary file %s left behind", e.Name())
					}
				}
			}
		})
	}
}

func TestDeleteErrors(t *testing.T) {
	for _, op := range []string{"remove", "syncdir"} {
		t.Run(op, func(t *testing.T) {
			mem := newFS(t, crashfs.Options{}, "/b")
			b, _ := open(t, "/b", mem)
			if err := b.Upload(ctx, "t1/blk/data", strings.NewReader("x")); err != nil {
				t.Fatal(err)
			}
			fb, _ := open(t, "/b", &failFS{FS: mem, op: op, n: 1})
			if err := fb.Delete(ctx, "t1/blk/data"); !errors.Is(err, errInjected) {
				t.Fatalf("delete: %v, want the injected failure", err)
			}
		})
	}
}

func TestBadNamesAndRanges(t *testing.T) {
	b, _ := open(t, t.TempDir(), nil)
	if err := b.Upload(ctx, "a/obj", strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		err  error
	}{
		{"upload empty name", b.Upload(ctx, "", strings.NewReader("x"))},
		{"upload outside root", b.Upload(ctx, "../x", strings.NewReader("x"))},
		{"upload temp name", b.Upload(ctx, "a/x"+fsbucket.TempSuffix, strings.NewReader("x"))},
		{"delete outside root", b.Delete(ctx, "../../etc")},
		{"delete root", b.Delete(ctx, ".")},
		{"iter outside root", b.Iter(ctx, "../", func(string) error { return nil })},
		{"get empty name", func() error { _, err := b.Get(ctx, ""); return err }()},
		{"negative offset", func() error { _, err := b.GetRange(ctx, "a/obj", -1, 2); return err }()},
		{"bad length", func() error { _, err := b.GetRange(ctx, "a/obj", 0, -2); return err }()},
		{"get directory", func() error { _, err := b.Get(ctx, "a"); return err }()},
	} {
		if c.err == nil {
			t.Errorf("%s: no error", c.what)
		} else if b.IsObjNotFoundErr(c.err) {
			t.Errorf("%s: %v is a not-found error", c.what, c.err)
		}
	}
	// Past the end: empty, as the filesystem bucket.
	rc, err := b.GetRange(ctx, "a/obj", 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(rc); len(got) != 0 {
		t.Errorf("range past the end read %q", got)
	}
	rc.Close()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Upload(cctx, "a/c", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("upload with a cancelled context: %v", err)
	}
	if err := b.Upload(ctx, "a/r", io.MultiReader(strings.NewReader("x"), errReader{})); err == nil {
		t.Error("upload of a failing reader succeeded")
	}
	if ok, _ := b.Exists(ctx, "a/r"); ok {
		t.Error("failed upload left an object")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errInjected }

// TestOpenRemovesLeftovers: temporary files are removed and counted, the
// directories left empty go, objects stay.
func TestOpenRemovesLeftovers(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "t1", "a"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "t1", "b"), 0o755))
	must(os.WriteFile(filepath.Join(root, "t1", "a", "data"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(root, "t1", "a", ".index.1"+fsbucket.TempSuffix), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(root, "t1", "b", ".data.2"+fsbucket.TempSuffix), []byte("x"), 0o644))
	b, reg := open(t, root, nil)
	if got := tempRemoved(t, reg); got != 2 {
		t.Errorf("temp files removed = %v, want 2", got)
	}
	if got := list(t, b, "", objstore.WithRecursiveIter()); !slices.Equal(got, []string{"t1/a/data"}) {
		t.Errorf("objects after open: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "t1", "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory of an interrupted upload left: %v", err)
	}
}
