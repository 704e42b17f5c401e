package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/fsbucket"
	"github.com/clew-dev/clew/internal/fsbucket/crashfs"
	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/search"
)

// The crash tests drive a real store (the real write-ahead log in a temp
// directory, which fsyncs; the durable bucket over a crash-simulating file
// system) through appends, cuts, block writes, log truncations and two
// levels of compaction, crash it after every file system operation of the
// bucket, restart on what survived and check that every acknowledged span
// is found exactly once and that no half block is served.

const (
	crashRounds      = 4 // flushes; compaction then merges 4 → 2 → 1
	crashTraces      = 4 // per round
	crashSpans       = 3 // per trace
	crashBucketRoot  = "/data/blocks"
	crashSeed        = 77
	crashTenant      = "t1"
	crashFinalTraces = 2 // appended after compaction, left in the head
)

func crashConfig() Config {
	cfg := testConfig()
	cfg.CompactionMinBlocks = 2
	// The log's files outlive the simulated crash (only the bucket's file
	// system is simulated); its own fsyncs are tested in internal/wal.
	cfg.WALSync = "none"
	return cfg
}

// crashRun is one run of the scenario; it returns the file system at the
// end (crashed or not), the write-ahead log directory and how many traces
// (numbered from 0) were acknowledged.
type crashRun struct {
	fs     *crashfs.FS
	walDir string
	acked  int
}

func runCrashScenario(t *testing.T, opts crashfs.Options, crashAfter int) crashRun {
	t.Helper()
	mem := crashfs.New(opts)
	if err := mem.MkdirDurable(crashBucketRoot); err != nil {
		t.Fatal(err)
	}
	mem.CrashAfter(crashAfter)
	bkt, err := fsbucket.Open(crashBucketRoot, fsbucket.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	run := crashRun{fs: mem, walDir: t.TempDir()}
	clock := newClock()
	db, err := Open(context.Background(), crashConfig(), Options{
		Tenant: crashTenant, WALDir: run.walDir, Bucket: bkt,
		Registerer: prometheus.NewRegistry(), Now: clock.Now,
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	// Waits on a flush end at the crash: the store retries forever.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-mem.Dead():
			cancel()
		case <-ctx.Done():
		}
	}()
	now := uint64(clock.Now().UnixNano())
	appendTraces := func(n int) {
		b := makeBatch(crashSeed, run.acked, n, crashSpans, now)
		if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
			t.Fatalf("append: %v", err)
		}
		run.acked += n
	}
	for range crashRounds {
		appendTraces(crashTraces)
		clock.Advance(time.Second)
		if err := db.Flush(ctx); err != nil && !mem.Crashed() {
			t.Fatalf("flush: %v", err)
		}
		if mem.Crashed() {
			return run
		}
	}
	db.Compact(ctx)
	appendTraces(crashFinalTraces)
	return run
}

// checkRecovered restarts on what survived the crash and reports what is
// wrong: a store that does not open (a half or torn block), a lost or
// duplicated acknowledged span, a compacted block served beside its
// output.
func checkRecovered(t *testing.T, run crashRun, mode crashfs.Mode) error {
	t.Helper()
	walDir := t.TempDir()
	if err := os.CopyFS(walDir, os.DirFS(run.walDir)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	bkt, err := fsbucket.Open(crashBucketRoot, fsbucket.Options{FS: run.fs.Restart(mode), Registerer: reg})
	if err != nil {
		return fmt.Errorf("open bucket: %w", err)
	}
	db, err := Open(context.Background(), crashConfig(), Options{
		Tenant: crashTenant, WALDir: walDir, Bucket: bkt,
		Registerer: reg, Now: newClock().Now,
	})
	if err != nil {
		return fmt.Errorf("reopen: %w", err)
	}
	defer db.Close()
	var errs []error
	for i := range run.acked {
		b, ok, err := db.FindTrace(context.Background(), tid(crashSeed, i))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("trace %d: %w", i, err))
		case !ok:
			errs = append(errs, fmt.Errorf("acknowledged trace %d lost", i))
		case len(b.Spans) != crashSpans:
			errs = append(errs, fmt.Errorf("trace %d: %d spans, want %d", i, len(b.Spans), crashSpans))
		}
	}
	q := &search.Query{}
	if err := q.Compile(); err != nil {
		t.Fatal(err)
	}
	res, err := db.Search(context.Background(), q, 1, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("search: %w", err))
	} else if res.Total != run.acked {
		errs = append(errs, fmt.Errorf("search finds %d traces, want %d", res.Total, run.acked))
	}
	// Every span is held once: no block next to the blocks it was
	// compacted into, no log segment replayed that a block holds.
	st := db.Stats(context.Background())
	held := int64(st.HeadSpans)
	live := map[string]bool{}
	for _, m := range st.Blocks {
		held += m.Spans
		live[m.ID] = true
	}
	for _, m := range st.Blocks {
		for _, src := range m.Sources {
			if live[src] {
				errs = append(errs, fmt.Errorf("block %s served beside %s, which replaces it", src, m.ID))
			}
		}
	}
	if want := int64(run.acked * crashSpans); held != want {
		errs = append(errs, fmt.Errorf("store holds %d spans, want %d", held, want))
	}
	return errors.Join(errs...)
}

// crashPoints returns the crash points to test: every operation, or a
// spread of them under -short.
func crashPoints(total int) []int {
	step := 1
	if testing.Short() {
		step = max(1, total/25)
	}
	var ks []int
	for k := 0; k < total; k += step {
		ks = append(ks, k)
	}
	return append(ks, total)
}

func TestCrashAtEveryStep(t *testing.T) {
	full := runCrashScenario(t, crashfs.Options{}, -1)
	total := full.fs.Ops()
	if full.acked != crashRounds*crashTraces+crashFinalTraces {
		t.Fatalf("uncrashed run acknowledged %d traces", full.acked)
	}
	for _, mode := range []crashfs.Mode{crashfs.LoseUnsynced, crashfs.KeepEntries} {
		if err := checkRecovered(t, full, mode); err != nil {
			t.Fatalf("without a crash, mode %d: %v", mode, err)
		}
	}
	t.Logf("%d bucket file system operations per run", total)
	for _, k := range crashPoints(total) {
		run := runCrashScenario(t, crashfs.Options{}, k)
		for _, mode := range []crashfs.Mode{crashfs.LoseUnsynced, crashfs.KeepEntries} {
			if err := checkRecovered(t, run, mode); err != nil {
				t.Errorf("crash after operation %d of %d (mode %d, %d traces acknowledged): %v", k, total, mode, run.acked, err)
			}
		}
	}
}

// TestCrashWithoutSyncLosesSpans is the negative control: the same
// scenario on a file system where fsync does nothing (a bucket that never
// syncs, as the filesystem bucket) must lose acknowledged spans or serve a
// torn block at some crash point, proving the check can fail.
func TestCrashWithoutSyncLosesSpans(t *testing.T) {
	total := runCrashScenario(t, crashfs.Options{IgnoreSync: true}, -1).fs.Ops()
	failures := map[crashfs.Mode]int{}
	for _, k := range crashPoints(total) {
		run := runCrashScenario(t, crashfs.Options{IgnoreSync: true}, k)
		for _, mode := range []crashfs.Mode{crashfs.LoseUnsynced, crashfs.KeepEntries} {
			if err := checkRecovered(t, run, mode); err != nil {
				failures[mode]++
				if failures[mode] == 1 {
					t.Logf("mode %d, crash after %d: detected: %v", mode, k, err)
				}
			}
		}
	}
	for _, mode := range []crashfs.Mode{crashfs.LoseUnsynced, crashfs.KeepEntries} {
		if failures[mode] == 0 {
			t.Errorf("mode %d: no crash point of an unsynced bucket lost data: the crash test cannot fail", mode)
		}
	}
}
