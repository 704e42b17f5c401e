package ingest

import "testing"

func TestBudget(t *testing.T) {
	b := NewBudget(100)
	steps := []struct {
		reserve int64 // 0: release the last reservation
		ok      bool
		cur     int64
	}{
		{60, true, 60},
		{50, false, 60}, // would exceed
		{40, true, 100}, // exactly full
		{1, false, 100},
	}
	for i, s := range steps {
		cur, ok := b.Reserve(s.reserve)
		if ok != s.ok || cur != s.cur {
			t.Fatalf("step %d: Reserve(%d) = %d, %v; want %d, %v", i, s.reserve, cur, ok, s.cur, s.ok)
		}
	}
	if cur := b.Release(100); cur != 0 {
		t.Fatalf("after releasing everything: %d in flight", cur)
	}
	// One request larger than the whole budget passes when nothing else is
	// in flight, so that it can make progress.
	if cur, ok := b.Reserve(500); !ok || cur != 500 {
		t.Fatalf("oversized request alone: %d, %v", cur, ok)
	}
	if _, ok := b.Reserve(1); ok {
		t.Fatal("a second request passed while an oversized one is in flight")
	}
}

func TestDecompressRefusesUnknownEncoding(t *testing.T) {
	if _, err := Decompress("br", []byte("x"), nil, 10); err == nil {
		t.Fatal("Decompress(br) succeeded")
	}
}
