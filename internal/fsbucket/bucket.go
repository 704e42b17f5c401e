// Package fsbucket is an objstore.Bucket on a local file system that makes
// every change durable before it returns: Upload writes a temporary file
// beside the object, fsyncs it, renames it into place and fsyncs the
// directory (and every directory it had to create); Delete fsyncs the
// directories it removed entries from. A crash therefore leaves each object
// either absent or complete, never torn. Temporary files a crash left
// behind are removed when the bucket is opened, and counted.
//
// The layout on disk is that of thanos-io/objstore's filesystem bucket (an
// object "a/b/c" is the file <root>/a/b/c), and Iter, Get, GetRange,
// Exists, Attributes and Delete behave as that bucket's do, so data
// directories written by either are read by the other.
package fsbucket

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thanos-io/objstore"
)

// TempSuffix ends the name of every temporary file. Object names must not
// end with it; Iter never lists such files.
const TempSuffix = ".clew-tmp"

// Options carries what the code provides.
type Options struct {
	// FS is the file system; nil means the operating system's.
	FS         FS
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Bucket is a durable objstore.Bucket rooted at a local directory. Its
// methods are safe for concurrent use. Objects are immutable: an Upload of
// an existing name replaces it atomically.
type Bucket struct {
	root        string
	fs          FS
	isOS        bool
	log         *slog.Logger
	tempRemoved prometheus.Counter
}

var _ objstore.Bucket = (*Bucket)(nil)

// Open opens the bucket rooted at root (created by the first Upload if
// missing) and removes the temporary files of uploads a crash interrupted,
// with the directories they leave empty.
func Open(root string, opts Options) (*Bucket, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", root, err)
	}
	b := &Bucket{root: abs, fs: opts.FS, log: opts.Logger}
	if b.fs == nil {
		b.fs = OS{}
	}
	_, b.isOS = b.fs.(OS)
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.tempRemoved = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "clew_storage_temp_files_removed_total",
		Help: "Temporary files of interrupted block uploads removed when the block bucket was opened.",
	})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(b.tempRemoved); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register bucket metrics: %w", err)
			}
			b.tempRemoved = are.ExistingCollector.(prometheus.Counter)
		}
	}
	if err := b.cleanup(); err != nil {
		return nil, fmt.Errorf("open bucket %s: remove leftovers of interrupted uploads: %w", abs, err)
	}
	return b, nil
}

// LocalDir returns the directory the objects live in when the bucket is on
// the operating system's file system, so that readers may open object
// files directly; else "".
func (b *Bucket) LocalDir() string {
	if !b.isOS {
		return ""
	}
	return b.root
}

// cleanup removes the temporary files under the root.
func (b *Bucket) cleanup() error {
	st, err := b.fs.Stat(b.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", b.root)
	}
	_, err = b.cleanDir(b.root)
	return err
}

// cleanDir removes the temporary files under dir and reports whether dir
// is empty afterwards.
func (b *Bucket) cleanDir(dir string) (empty bool, err error) {
	ents, err := b.fs.ReadDir(dir)
	if err != nil {
		return false, err
	}
	left, removed := 0, 0
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			sub, err := b.cleanDir(p)
			if err != nil {
				return false, err
			}
			if !sub {
				left++
				continue
			}
			// Empty because its only entries were temporary files: the
			// directory of an upload that never completed.
			if err := b.fs.Remove(p); err != nil {
				return false, err
			}
			removed++
		case strings.HasSuffix(e.Name(), TempSuffix):
			if err := b.fs.Remove(p); err != nil {
				return false, err
			}
			b.tempRemoved.Inc()
			b.log.Warn("removed temporary file of an interrupted upload", "file", p)
			removed++
		default:
			left++
		}
	}
	if removed > 0 {
		if err := b.fs.SyncDir(dir); err != nil {
			return false, err
		}
	}
	return left == 0 && removed > 0, nil
}

// path maps an object name to its file, refusing names that leave the root.
func (b *Bucket) path(name string) (string, error) {
	if name == "" {
		return "", errors.New("object name is empty")
	}
	p := filepath.Join(b.root, filepath.FromSlash(name))
	if p != b.root && !strings.HasPrefix(p, b.root+string(filepath.Separator)) {
		return "", fmt.Errorf("object name %q leaves the bucket", name)
	}
	return p, nil
}

func (b *Bucket) Provider() objstore.ObjProvider { return objstore.FILESYSTEM }

// Name is "fs: <root>", as thanos' filesystem bucket names itself.
func (b *Bucket) Name() string { return "fs: " + b.root }

func (b *Bucket) Close() error { return nil }

// IsObjNotFoundErr reports whether err means the object does not exist.
func (b *Bucket) IsObjNotFoundErr(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func (b *Bucket) IsAccessDeniedErr(error) bool { return false }

func (b *Bucket) SupportedIterOptions() []objstore.IterOptionType {
	return []objstore.IterOptionType{objstore.Recursive, objstore.UpdatedAt}
}

// Iter calls f for each object and each non-empty directory (name ending
// in "/") directly under dir, sorted by name; recursively, for each object
// under dir.
func (b *Bucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...objstore.IterOption) error {
	var keep []objstore.IterOption
	for _, o := range opts {
		if o.Type == objstore.Recursive {
			keep = append(keep, o)
		}
	}
	return b.IterWithAttributes(ctx, dir, func(a objstore.IterObjectAttributes) error { return f(a.Name) }, keep...)
}

func (b *Bucket) IterWithAttributes(ctx context.Context, dir string, f func(objstore.IterObjectAttributes) error, opts ...objstore.IterOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := objstore.ValidateIterOptions(b.SupportedIterOptions(), opts...); err != nil {
		return err
	}
	params := objstore.ApplyIterOptions(opts...)
	abs := filepath.Join(b.root, filepath.FromSlash(dir))
	if abs != b.root && !strings.HasPrefix(abs, b.root+string(filepath.Separator)) {
		return fmt.Errorf("directory %q leaves the bucket", dir)
	}
	st, err := b.fs.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil
	}
	ents, err := b.fs.ReadDir(abs)
	if err != nil {
		return fmt.Errorf("list %s: %w", abs, err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), TempSuffix) {
			continue
		}
		name := filepath.ToSlash(filepath.Join(dir, e.Name()))
		if e.IsDir() {
			empty, err := b.dirEmpty(filepath.Join(abs, e.Name()))
			if err != nil {
				return err
			}
			if empty {
				continue
			}
			name += objstore.DirDelim
			if params.Recursive {
				if err := b.IterWithAttributes(ctx, name, f, opts...); err != nil {
					return err
				}
				continue
			}
		}
		a := objstore.IterObjectAttributes{Name: name}
		if params.LastModified {
			info, err := b.fs.Stat(filepath.Join(abs, e.Name()))
			if err != nil {
				return fmt.Errorf("stat %s: %w", name, err)
			}
			a.SetLastModified(info.ModTime())
		}
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// dirEmpty reports whether dir holds nothing but temporary files.
func (b *Bucket) dirEmpty(dir string) (bool, error) {
	ents, err := b.fs.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), TempSuffix) {
			return false, nil
		}
	}
	return true, nil
}

// Get returns a reader of the whole object.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	return b.GetRange(ctx, name, 0, -1)
}

// GetRange returns a reader of length bytes from off (-1: to the end). A
// range past the end is cut short, as the filesystem bucket does.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := b.path(name)
	if err != nil {
		return nil, err
	}
	if off < 0 || length < -1 {
		return nil, fmt.Errorf("get %s: invalid range offset %d length %d", name, off, length)
	}
	f, err := b.fs.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if st.IsDir() {
		_ = f.Close()
		return nil, fmt.Errorf("get %s: is a directory", name)
	}
	off = min(off, st.Size())
	if off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("seek %s to %d: %w", name, off, err)
		}
	}
	size := st.Size() - off
	if length == -1 {
		return objstore.ObjectSizerReadCloser{ReadCloser: f, Size: func() (int64, error) { return size, nil }}, nil
	}
	return objstore.ObjectSizerReadCloser{
		ReadCloser: limitedReadCloser{Reader: io.LimitReader(f, length), Closer: f},
		Size:       func() (int64, error) { return min(length, size), nil },
	}, nil
}

type limitedReadCloser struct {
	io.Reader
	io.Closer
}

// Exists reports whether the object exists (a directory is not one).
func (b *Bucket) Exists(ctx context.Context, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := b.path(name)
	if err != nil {
		return false, err
	}
	st, err := b.fs.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", name, err)
	}
	return !st.IsDir(), nil
}

// Attributes returns the object's size and modification time.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	if err := ctx.Err(); err != nil {
		return objstore.ObjectAttributes{}, err
	}
	p, err := b.path(name)
	if err != nil {
		return objstore.ObjectAttributes{}, err
	}
	st, err := b.fs.Stat(p)
	if err != nil {
		return objstore.ObjectAttributes{}, fmt.Errorf("stat %s: %w", name, err)
	}
	return objstore.ObjectAttributes{Size: st.Size(), LastModified: st.ModTime()}, nil
}

// Upload writes r to the object name and returns once it is durable: a
// temporary file in the object's directory is written and fsynced, renamed
// over name, and the directory fsynced. Missing parent directories are
// created, each made durable in its parent. On failure the object is
// unchanged.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, _ ...objstore.ObjectUploadOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if p == b.root || strings.HasSuffix(p, TempSuffix) {
		return fmt.Errorf("upload %s: invalid object name", name)
	}
	dir := filepath.Dir(p)
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+filepath.Base(p)+"."+hex.EncodeToString(rnd[:])+TempSuffix)
	var f File
	// A concurrent Delete may remove a directory it found empty between
	// its creation and ours of the file: create it again.
	for try := 0; ; try++ {
		if err := b.mkdirAll(dir); err != nil {
			return fmt.Errorf("upload %s: create directory: %w", name, err)
		}
		f, err = b.fs.CreateExcl(tmp)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || try == 2 {
			return fmt.Errorf("upload %s: %w", name, err)
		}
	}
	if err := b.writeTemp(ctx, f, r); err != nil {
		_ = b.fs.Remove(tmp)
		return fmt.Errorf("upload %s: %w", name, err)
	}
	if err := b.fs.Rename(tmp, p); err != nil {
		_ = b.fs.Remove(tmp)
		return fmt.Errorf("upload %s: %w", name, err)
	}
	if err := b.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("upload %s: sync directory: %w", name, err)
	}
	return nil
}

// writeTemp copies r into f, fsyncs and closes it.
func (b *Bucket) writeTemp(ctx context.Context, f File, r io.Reader) error {
	_, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// mkdirAll creates dir and its missing parents, fsyncing each parent after
// the entry is added so that the new directories survive a crash.
func (b *Bucket) mkdirAll(dir string) error {
	st, err := b.fs.Stat(dir)
	if err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return fmt.Errorf("%s: root missing", dir)
	}
	if err := b.mkdirAll(parent); err != nil {
		return err
	}
	if err := b.fs.Mkdir(dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return b.fs.SyncDir(parent)
}

// Delete removes the object, or everything under a directory name, then
// the directories this leaves empty up to the root, and returns once the
// removals are durable. A missing object is not an error, as with the
// filesystem bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := b.path(name)
	if err != nil {
		return err
	}
	if p == b.root {
		return errors.New("delete: refusing to delete the bucket root")
	}
	if err := b.removeAll(p); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		err := b.fs.SyncDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if dir == b.root {
				return nil // nothing was ever stored
			}
			continue // missing, or removed by a concurrent Delete, which syncs its parent
		}
		if err != nil {
			return fmt.Errorf("delete %s: sync directory: %w", name, err)
		}
		if dir == b.root {
			return nil
		}
		ents, err := b.fs.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		if len(ents) > 0 {
			return nil
		}
		if err := b.fs.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if ents, rerr := b.fs.ReadDir(dir); rerr == nil && len(ents) > 0 {
				return nil // an Upload put something into it meanwhile
			}
			return fmt.Errorf("delete %s: remove empty directory: %w", name, err)
		}
	}
}

// removeAll removes p and, for a directory, everything under it.
func (b *Bucket) removeAll(p string) error {
	st, err := b.fs.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		ents, err := b.fs.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := b.removeAll(filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := b.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
