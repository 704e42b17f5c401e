package spanmetrics

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse observes from several goroutines while others query,
// scrape and run the background work (run with -race).
func TestConcurrentUse(t *testing.T) {
	clk := &clock{t: t0.Add(30 * time.Second)}
	m, reg := openReg(t, DefaultConfig(), clk)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				b := benchBatch(g*100 + i)
				m.Observe(b)
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := m.Range(context.Background(), nil, t0, t0.Add(time.Hour), time.Minute); err != nil {
				t.Error(err)
			}
			if _, err := m.Graph(context.Background(), t0, t0.Add(time.Hour)); err != nil {
				t.Error(err)
			}
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
			clk.add(20 * time.Second)
			m.Tick(clk.now())
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	s, err := m.Range(context.Background(), nil, t0.Add(-time.Hour), clk.now().Add(time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := totalCalls(s); c != 3*50*1000 {
		t.Fatalf("calls %d, want %d", c, 3*50*1000)
	}
}
