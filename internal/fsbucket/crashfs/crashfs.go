// Package crashfs is an in-memory fsbucket.FS for tests that simulates a
// power loss. It keeps, for every file, the data written and the data made
// durable by its last Sync, and for every directory, its entries and the
// entries made durable by its last SyncDir. Restart returns the file
// system a machine would find after losing power: only what was synced,
// every write, create, rename and remove not followed by the matching
// fsync undone.
//
// A test counts the mutating operations of a run (Ops), then re-runs
// crashing after operation k (CrashAfter) for every k: from then on every
// operation fails with ErrCrashed and changes nothing.
package crashfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clew-dev/clew/internal/fsbucket"
)

// ErrCrashed is returned by every operation after the crash point.
var ErrCrashed = errors.New("crashfs: simulated power loss")

// Options configure an FS.
type Options struct {
	// IgnoreSync makes Sync and SyncDir do nothing: the file system of a
	// writer that never fsyncs, for negative controls.
	IgnoreSync bool
}

type node struct {
	dir bool
	// files
	data, synced []byte
	// directories
	entries, durable map[string]*node
	mtime            time.Time
}

func newDir() *node {
	return &node{dir: true, entries: map[string]*node{}, durable: map[string]*node{}}
}

// FS is the simulated file system. Paths are absolute, slash-separated.
type FS struct {
	opts Options

	mu         sync.Mutex
	root       *node
	ops        int
	crashAfter int // -1: never
	crashed    bool
	dead       chan struct{}
}

var _ fsbucket.FS = (*FS)(nil)

// New returns an empty file system holding only the root directory.
func New(opts Options) *FS {
	return &FS{opts: opts, root: newDir(), crashAfter: -1, dead: make(chan struct{})}
}

// CrashAfter makes the file system crash when operation n+1 is attempted
// (n = 0: before the first); n < 0 never crashes.
func (f *FS) CrashAfter(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashAfter = n
}

// Crash crashes now.
func (f *FS) Crash() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashLocked()
}

func (f *FS) crashLocked() {
	if !f.crashed {
		f.crashed = true
		close(f.dead)
	}
}

// Ops returns how many mutating operations (create, write, sync, mkdir,
// rename, remove, directory sync) have been carried out.
func (f *FS) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// Crashed reports whether the crash point was reached.
func (f *FS) Crashed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.crashed
}

// Dead is closed at the crash.
func (f *FS) Dead() <-chan struct{} { return f.dead }

// Mode says which unsynced state a crash loses. Real file systems lose
// anything between the two: unsynced directory entries may or may not
// have reached the disk, unsynced data may not have.
type Mode int

const (
	// LoseUnsynced drops every unsynced directory change and file write.
	LoseUnsynced Mode = iota
	// KeepEntries keeps every directory entry as it was at the crash
	// (creates, renames, removes all on disk) but file data only as last
	// synced: a file renamed before its data was synced is found short or
	// empty, as after a crash on a file system that orders metadata but
	// not data.
	KeepEntries
)

// Restart returns a new file system holding what survived the crash
// under mode: each file with its synced data; the durable entries of each
// directory (LoseUnsynced) or all its entries (KeepEntries). A file
// reachable under two names (renamed, the two directories not synced
// alike) keeps both.
func (f *FS) Restart(mode Mode) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[*node]*node{}
	var cp func(n *node) *node
	cp = func(n *node) *node {
		if c, ok := seen[n]; ok {
			return c
		}
		var c *node
		if n.dir {
			c = newDir()
			seen[n] = c
			ents := n.durable
			if mode == KeepEntries {
				ents = n.entries
			}
			for name, ch := range ents {
				cc := cp(ch)
				c.entries[name] = cc
				c.durable[name] = cc
			}
		} else {
			c = &node{data: slices.Clone(n.synced), synced: slices.Clone(n.synced)}
			seen[n] = c
		}
		c.mtime = n.mtime
		return c
	}
	// The root itself always survives.
	return &FS{opts: f.opts, root: cp(f.root), crashAfter: -1, dead: make(chan struct{})}
}

// MkdirDurable creates dir and its missing parents, durable, without
// counting operations: the setup of a test.
func (f *FS) MkdirDurable(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.root
	for _, c := range split(dir) {
		ch, ok := n.entries[c]
		if !ok {
			ch = newDir()
			n.entries[c] = ch
			n.durable[c] = ch
		}
		if !ch.dir {
			return perr("mkdir", dir, syscall.ENOTDIR)
		}
		n = ch
	}
	return nil
}

// op admits one mutating operation.
func (f *FS) op() error {
	if f.crashed {
		return ErrCrashed
	}
	if f.crashAfter >= 0 && f.ops >= f.crashAfter {
		f.crashLocked()
		return ErrCrashed
	}
	f.ops++
	return nil
}

func (f *FS) read() error {
	if f.crashed {
		return ErrCrashed
	}
	return nil
}

func split(p string) []string {
	p = path.Clean("/" + strings.ReplaceAll(p, "\\", "/"))
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

func perr(op, p string, err error) error { return &fs.PathError{Op: op, Path: p, Err: err} }

// lookup returns the node at p.
func (f *FS) lookup(op, p string) (*node, error) {
	n := f.root
	for _, c := range split(p) {
		if !n.dir {
			return nil, perr(op, p, syscall.ENOTDIR)
		}
		ch, ok := n.entries[c]
		if !ok {
			return nil, perr(op, p, fs.ErrNotExist)
		}
		n = ch
	}
	return n, nil
}

// parent returns the directory holding p and p's base name.
func (f *FS) parent(op, p string) (*node, string, error) {
	parts := split(p)
	if len(parts) == 0 {
		return nil, "", perr(op, p, fs.ErrInvalid)
	}
	d, err := f.lookup(op, "/"+strings.Join(parts[:len(parts)-1], "/"))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", perr(op, p, syscall.ENOTDIR)
	}
	return d, parts[len(parts)-1], nil
}

func (f *FS) CreateExcl(name string) (fsbucket.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(); err != nil {
		return nil, err
	}
	d, base, err := f.parent("create", name)
	if err != nil {
		return nil, err
	}
	if _, ok := d.entries[base]; ok {
		return nil, perr("create", name, fs.ErrExist)
	}
	n := &node{mtime: time.Now()}
	d.entries[base] = n
	return &file{fs: f, n: n, name: name}, nil
}

type file struct {
	fs     *FS
	n      *node
	name   string
	closed bool
}

func (w *file) Write(p []byte) (int, error) {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if w.closed {
		return 0, perr("write", w.name, fs.ErrClosed)
	}
	if err := w.fs.op(); err != nil {
		return 0, err
	}
	w.n.data = append(w.n.data, p...)
	w.n.mtime = time.Now()
	return len(p), nil
}

func (w *file) Sync() error {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if w.closed {
		return perr("sync", w.name, fs.ErrClosed)
	}
	if err := w.fs.op(); err != nil {
		return err
	}
	if !w.fs.opts.IgnoreSync {
		w.n.synced = slices.Clone(w.n.data)
	}
	return nil
}

func (w *file) Close() error {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	if w.closed {
		return perr("close", w.name, fs.ErrClosed)
	}
	w.closed = true
	return w.fs.read()
}

func (f *FS) Open(name string) (fsbucket.ReadFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(); err != nil {
		return nil, err
	}
	n, err := f.lookup("open", name)
	if err != nil {
		return nil, err
	}
	return &readFile{fs: f, info: info(path.Base(name), n), r: bytes.NewReader(slices.Clone(n.data))}, nil
}

type readFile struct {
	fs   *FS
	info fs.FileInfo
	r    *bytes.Reader
}

func (r *readFile) Read(p []byte) (int, error) {
	if r.fs.Crashed() {
		return 0, ErrCrashed
	}
	return r.r.Read(p)
}

func (r *readFile) Seek(off int64, whence int) (int64, error) { return r.r.Seek(off, whence) }
func (r *readFile) Close() error                              { return nil }
func (r *readFile) Stat() (fs.FileInfo, error)                { return r.info, nil }

var _ io.ReadSeekCloser = (*readFile)(nil)

type fileInfo struct {
	name  string
	size  int64
	dir   bool
	mtime time.Time
}

func info(name string, n *node) fileInfo {
	return fileInfo{name: name, size: int64(len(n.data)), dir: n.dir, mtime: n.mtime}
}

func (i fileInfo) Name() string { return i.name }
func (i fileInfo) Size() int64  { return i.size }
func (i fileInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (i fileInfo) ModTime() time.Time { return i.mtime }
func (i fileInfo) IsDir() bool        { return i.dir }
func (i fileInfo) Sys() any           { return nil }

func (f *FS) Stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(); err != nil {
		return nil, err
	}
	n, err := f.lookup("stat", name)
	if err != nil {
		return nil, err
	}
	return info(path.Base(name), n), nil
}

func (f *FS) ReadDir(dir string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(); err != nil {
		return nil, err
	}
	d, err := f.lookup("readdir", dir)
	if err != nil {
		return nil, err
	}
	if !d.dir {
		return nil, perr("readdir", dir, syscall.ENOTDIR)
	}
	names := make([]string, 0, len(d.entries))
	for name := range d.entries {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]fs.DirEntry, len(names))
	for i, name := range names {
		out[i] = fs.FileInfoToDirEntry(info(name, d.entries[name]))
	}
	return out, nil
}

func (f *FS) Mkdir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(); err != nil {
		return err
	}
	d, base, err := f.parent("mkdir", dir)
	if err != nil {
		return err
	}
	if _, ok := d.entries[base]; ok {
		return perr("mkdir", dir, fs.ErrExist)
	}
	n := newDir()
	n.mtime = time.Now()
	d.entries[base] = n
	return nil
}

func (f *FS) Rename(oldname, newname string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(); err != nil {
		return err
	}
	od, obase, err := f.parent("rename", oldname)
	if err != nil {
		return err
	}
	n, ok := od.entries[obase]
	if !ok {
		return perr("rename", oldname, fs.ErrNotExist)
	}
	nd, nbase, err := f.parent("rename", newname)
	if err != nil {
		return err
	}
	if old, ok := nd.entries[nbase]; ok && (old.dir || n.dir) {
		return perr("rename", newname, fs.ErrExist)
	}
	delete(od.entries, obase)
	nd.entries[nbase] = n
	return nil
}

func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(); err != nil {
		return err
	}
	d, base, err := f.parent("remove", name)
	if err != nil {
		return err
	}
	n, ok := d.entries[base]
	if !ok {
		return perr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.entries) > 0 {
		return perr("remove", name, syscall.ENOTEMPTY)
	}
	delete(d.entries, base)
	return nil
}

func (f *FS) SyncDir(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.op(); err != nil {
		return err
	}
	d, err := f.lookup("syncdir", dir)
	if err != nil {
		return err
	}
	if !d.dir {
		return perr("syncdir", dir, syscall.ENOTDIR)
	}
	if !f.opts.IgnoreSync {
		d.durable = maps.Clone(d.entries)
	}
	return nil
}
