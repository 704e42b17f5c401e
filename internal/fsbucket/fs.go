package fsbucket

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// FS is the file system a Bucket works on: the operating system's (OS) in
// production, a crash-simulating one in tests. Names are absolute paths in
// the operating system's syntax.
//
// Durability follows POSIX: data written to a file survives a crash only
// once File.Sync returned; a created, renamed or removed directory entry
// survives only once SyncDir of its directory returned.
type FS interface {
	// CreateExcl creates a new file for writing; it fails if name exists.
	CreateExcl(name string) (File, error)
	// Open opens a file for reading.
	Open(name string) (ReadFile, error)
	// Stat describes a file or directory; a missing one is fs.ErrNotExist.
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(dir string) ([]fs.DirEntry, error)
	// Mkdir creates one directory; its parent must exist.
	Mkdir(dir string) error
	// Rename replaces newname with oldname atomically.
	Rename(oldname, newname string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
}

// File is a file open for writing.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// ReadFile is a file open for reading.
type ReadFile interface {
	io.ReadSeekCloser
	Stat() (fs.FileInfo, error)
}

// OS is the operating system's file system.
type OS struct{}

var _ FS = OS{}

func (OS) CreateExcl(name string) (File, error) {
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
}

func (OS) Open(name string) (ReadFile, error)        { return os.Open(filepath.Clean(name)) }
func (OS) Stat(name string) (fs.FileInfo, error)     { return os.Stat(name) }
func (OS) ReadDir(dir string) ([]fs.DirEntry, error) { return os.ReadDir(dir) }
func (OS) Mkdir(dir string) error                    { return os.Mkdir(dir, 0o755) }
func (OS) Rename(oldname, newname string) error      { return os.Rename(oldname, newname) }
func (OS) Remove(name string) error                  { return os.Remove(name) }

func (OS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	// Some file systems refuse fsync on a directory (EINVAL); they order
	// directory updates themselves.
	if errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	return errors.Join(err, d.Close())
}
