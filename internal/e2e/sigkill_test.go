package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestSIGKILLKeepsAcknowledgedSpans sends spans from several clients while
// clew cuts its head into blocks, kills clew with SIGKILL mid-stream,
// restarts it and checks that every acknowledged span is queryable.
func TestSIGKILLKeepsAcknowledgedSpans(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "clew.yaml")
	// A small head forces cuts (and block writes) while clients send.
	if err := os.WriteFile(cfg, []byte("store:\n  max_head_spans: 3000\n  compaction_interval: 1s\n  compaction_min_blocks: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, dir, "--config", cfg)
	conn, err := grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	const perReq, spansPer = 10, 8
	var (
		mu    sync.Mutex
		acked []int // first trace index of each acknowledged request
		next  atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := int(next.Add(perReq)) - perReq
				req := ptraceotlp.NewExportRequestFromTraces(genTraces(7, first, perReq, spansPer))
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := client.Export(cctx, req)
				ccancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, first)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)
	p.kill() // mid-stream: requests in flight get errors, never acks
	cancel()
	wg.Wait()
	mu.Lock()
	firsts := append([]int(nil), acked...)
	mu.Unlock()
	if len(firsts) < 20 {
		t.Fatalf("only %d requests acknowledged before the kill; the test needs more load", len(firsts))
	}
	t.Logf("%d requests (%d spans) acknowledged before SIGKILL", len(firsts), len(firsts)*perReq*spansPer)

	p = startClew(t, dir, "--config", cfg)
	for _, first := range firsts {
		checkTraces(t, p, 7, first, perReq, spansPer)
	}
	p.stop()
}
