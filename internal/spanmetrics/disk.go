package spanmetrics

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// disk holds the history: one file per UTC hour of bucket time, each a
// header and a sequence of checksummed frames (docs/format/spanmetrics.md).
// With an empty dir the files are kept in memory (tests, or no data
// directory). Appends, compaction and deletion come from one goroutine at a
// time (the flush, under Metrics.flushMu, and the background loop); reads
// may run concurrently with them.
type disk struct {
	dir string
	log *slog.Logger
	m   *selfMetrics

	mu    sync.Mutex
	hours map[int64]*hourInfo // guarded by mu
}

type hourInfo struct {
	frames int
	size   int64
	mem    []byte // the file's bytes when dir is empty
}

const hourLayout = "20060102T15"

func hourFile(h int64) string {
	return time.Unix(h*3600, 0).UTC().Format(hourLayout) + ".seg"
}

func parseHourFile(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".seg")
	if !ok {
		return 0, false
	}
	t, err := time.Parse(hourLayout, s)
	if err != nil {
		return 0, false
	}
	return t.Unix() / 3600, true
}

// openDisk opens (creating) dir and checks every file: a torn or corrupt
// tail is cut off at the last good frame (what a crash during an append
// leaves), a file with a bad header is set aside as *.corrupt.
func openDisk(dir string, log *slog.Logger, m *selfMetrics) (*disk, error) {
	d := &disk{dir: dir, log: log, m: m, hours: map[int64]*hourInfo{}}
	if dir == "" {
		return d, nil
	}
	if err := mkdirAllSync(dir); err != nil {
		return nil, fmt.Errorf("create span metrics dir: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read span metrics dir: %w", err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(filepath.Join(dir, e.Name())) // an unfinished compaction
			continue
		}
		h, ok := parseHourFile(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if !bytes.HasPrefix(b, []byte(fileMagic)) {
			log.Warn("span metrics file without a valid header set aside", "file", path)
			m.repairs.Inc()
			if err := os.Rename(path, path+".corrupt"); err != nil {
				return nil, fmt.Errorf("set aside %s: %w", path, err)
			}
			if err := syncDir(dir); err != nil {
				return nil, fmt.Errorf("set aside %s: %w", path, err)
			}
			continue
		}
		good, frames := validPrefix(b)
		if good < len(b) {
			log.Warn("span metrics file had a torn or corrupt tail; cut at the last good frame",
				"file", path, "kept_bytes", good, "dropped_bytes", len(b)-good)
			m.repairs.Inc()
			if err := truncateSync(path, int64(good)); err != nil {
				return nil, fmt.Errorf("repair %s: %w", path, err)
			}
		}
		d.hours[h] = &hourInfo{frames: frames, size: int64(good)}
	}
	d.updateSize()
	return d, nil
}

// validPrefix returns the length of b's header and whole, checksummed
// frames, and how many frames that is.
func validPrefix(b []byte) (int, int) {
	rest := b[len(fileMagic):]
	frames := 0
	for len(rest) > 0 {
		_, r, ok := nextFrame(rest)
		if !ok {
			break
		}
		rest = r
		frames++
	}
	return len(b) - len(rest), frames
}

func (d *disk) updateSize() {
	var n int64
	for _, h := range d.hours {
		n += h.size
	}
	d.m.diskBytes.Set(float64(n))
}

// appendFrame appends one encoded frame to hour's file and syncs it.
func (d *disk) appendFrame(hour int64, frame []byte) error {
	d.mu.Lock()
	info := d.hours[hour]
	d.mu.Unlock()
	if d.dir == "" {
		d.mu.Lock()
		defer d.mu.Unlock()
		if info == nil {
			info = &hourInfo{mem: []byte(fileMagic)}
			d.hours[hour] = info
		}
		info.mem = append(slices.Clip(info.mem), frame...) // readers keep the old slice
		info.frames++
		info.size = int64(len(info.mem))
		d.updateSize()
		return nil
	}
	path := filepath.Join(d.dir, hourFile(hour))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	fresh := info == nil
	buf := frame
	if fresh {
		buf = append([]byte(fileMagic), frame...)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if fresh {
		// The new file's entry must be durable too.
		if err := syncDir(d.dir); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	}
	d.mu.Lock()
	if info == nil {
		info = &hourInfo{}
		d.hours[hour] = info
	}
	info.frames++
	info.size += int64(len(buf))
	d.updateSize()
	d.mu.Unlock()
	return nil
}

// syncDir makes dir's entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = f.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil // the file system does not sync directories
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// mkdirAllSync creates dir and its missing parents, each made durable in
// its parent.
func mkdirAllSync(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// truncateSync cuts path to size and makes the cut durable.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hoursIn returns the hours with data in [from, to] (unix hours), ascending.
func (d *disk) hoursIn(from, to int64) []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var hs []int64
	for h := range d.hours {
		if h >= from && h <= to {
			hs = append(hs, h)
		}
	}
	slices.Sort(hs)
	return hs
}

// read returns the valid frames of hour's file (none if it is gone).
func (d *disk) read(hour int64) ([][]byte, error) {
	var b []byte
	if d.dir == "" {
		d.mu.Lock()
		if info := d.hours[hour]; info != nil {
			b = info.mem
		}
		d.mu.Unlock()
	} else {
		var err error
		b, err = os.ReadFile(filepath.Join(d.dir, hourFile(hour)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read span metrics hour: %w", err)
		}
	}
	if !bytes.HasPrefix(b, []byte(fileMagic)) {
		return nil, nil
	}
	var frames [][]byte
	rest := b[len(fileMagic):]
	for len(rest) > 0 {
		p, r, ok := nextFrame(rest)
		if !ok {
			break // an append in progress, or a tail a crash tore
		}
		frames = append(frames, p)
		rest = r
	}
	return frames, nil
}

// compactAfter is how long after its end an hour's frames are merged into
// one: late spans may still add frames, which a later pass merges again.
const compactAfter = 5 * time.Minute

// compact rewrites each finished hour of several frames as one frame
// (write to a temporary file, sync, rename), so that a series' key is
// stored once per hour rather than once per minute.
func (d *disk) compact(now time.Time) error {
	d.mu.Lock()
	var todo []int64
	for h, info := range d.hours {
		if info.frames > 1 && time.Unix((h+1)*3600, 0).Add(compactAfter).Before(now) {
			todo = append(todo, h)
		}
	}
	d.mu.Unlock()
	slices.Sort(todo)
	var errs []error
	for _, h := range todo {
		if err := d.compactHour(h); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *disk) compactHour(h int64) error {
	frames, err := d.read(h)
	if err != nil {
		return err
	}
	series := map[Key][]*minuteBucket{}
	edges := map[EdgeKey][]*minuteBucket{}
	addTo := func(list []*minuteBucket, b *minuteBucket) []*minuteBucket {
		for _, x := range list {
			if x.minute == b.minute {
				x.merge(b)
				return list
			}
		}
		c := *b
		return append(list, &c)
	}
	v := &frameVisitor{
		wantSeries: func(Key) bool { return true },
		onSeries:   func(k Key, b *minuteBucket) { series[k] = addTo(series[k], b) },
		wantEdge:   func(EdgeKey) bool { return true },
		onEdge:     func(k EdgeKey, b *minuteBucket) { edges[k] = addTo(edges[k], b) },
	}
	for _, f := range frames {
		if err := decodeFrame(f, h, v); err != nil {
			// A frame with a good checksum that does not decode is a bug
			// or a foreign file: keep the file as it is.
			return fmt.Errorf("compact hour %s: %w", hourFile(h), err)
		}
	}
	recs := groupByHour(series, edges)[h]
	if recs == nil {
		recs = &hourRecs{}
	}
	buf := append([]byte(fileMagic), encodeFrame(nil, h, recs.series, recs.edges)...)
	if d.dir == "" {
		d.mu.Lock()
		d.hours[h] = &hourInfo{frames: 1, size: int64(len(buf)), mem: buf}
		d.updateSize()
		d.mu.Unlock()
		return nil
	}
	path := filepath.Join(d.dir, hourFile(h))
	tmp := path + ".tmp"
	if err := writeSync(tmp, buf); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	if err := syncDir(d.dir); err != nil {
		return err
	}
	d.mu.Lock()
	d.hours[h] = &hourInfo{frames: 1, size: int64(len(buf))}
	d.updateSize()
	d.mu.Unlock()
	d.m.compactions.Inc()
	return nil
}

func writeSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// deleteBefore removes the hours that end before t.
func (d *disk) deleteBefore(t time.Time) error {
	d.mu.Lock()
	var old []int64
	for h := range d.hours {
		if (h+1)*3600 <= t.Unix() {
			old = append(old, h)
		}
	}
	d.mu.Unlock()
	var errs []error
	for _, h := range old {
		if d.dir != "" {
			if err := os.Remove(filepath.Join(d.dir, hourFile(h))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete span metrics hour: %w", err))
				continue
			}
		}
		d.mu.Lock()
		delete(d.hours, h)
		d.updateSize()
		d.mu.Unlock()
	}
	if d.dir != "" && len(old) > 0 {
		if err := syncDir(d.dir); err != nil {
			errs = append(errs, fmt.Errorf("delete span metrics hours: %w", err))
		}
	}
	return errors.Join(errs...)
}

// bytes returns the history's total size.
func (d *disk) totalBytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, h := range d.hours {
		n += h.size
	}
	return n
}
