package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// segmentNameDigits is the zero-padded width of segment file names, so that
// names sort lexically in index order up to 99,999,999 segments.
const segmentNameDigits = 8

// segmentName returns the file name of segment index.
func segmentName(index int) string {
	return fmt.Sprintf("%0*d", segmentNameDigits, index)
}

// parseSegmentName returns the index encoded in name, and false for names
// that are not segment files (temporary files, lock files, editors' backups).
func parseSegmentName(name string) (int, bool) {
	if len(name) < segmentNameDigits {
		return 0, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < '0' || name[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// segmentInfo is one segment file found on disk.
type segmentInfo struct {
	index int
	size  int64
}

// listSegments returns the segment files in dir in index order.
func listSegments(dir string) ([]segmentInfo, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read wal dir: %w", err)
	}
	var segs []segmentInfo
	for _, e := range entries {
		index, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stat segment %d: %w", index, err)
		}
		segs = append(segs, segmentInfo{index: index, size: info.Size()})
	}
	slices.SortFunc(segs, func(a, b segmentInfo) int { return a.index - b.index })
	// Names such as 00000001 and 000000001 parse to the same index.
	for i := 1; i < len(segs); i++ {
		if segs[i].index == segs[i-1].index {
			return nil, fmt.Errorf("list wal dir: two files for segment %d", segs[i].index)
		}
	}
	return segs, nil
}

// createSegment creates segment index in dir and writes its header. The file
// must not exist yet. The caller syncs the directory.
func createSegment(dir string, index int) (*os.File, error) {
	path := filepath.Join(dir, segmentName(index))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment %d: %w", index, err)
	}
	if _, err := f.Write(appendSegmentHeader(make([]byte, 0, segmentHeaderSize))); err != nil {
		f.Close()
		return nil, fmt.Errorf("write segment %d header: %w", index, err)
	}
	return f, nil
}

// syncDir fsyncs a directory so that file creations and removals in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open wal dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync wal dir: %w", err)
	}
	return nil
}
