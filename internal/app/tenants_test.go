package app

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/clew-dev/clew/internal/overrides"
	"github.com/clew-dev/clew/internal/storage"
)

// TestLimitQueries checks max_concurrent_queries on the query port: a
// tenant's second query while its first runs is refused with 429, another
// tenant's and requests without a tenant pass, and the place frees when
// the first ends.
func TestLimitQueries(t *testing.T) {
	ov, err := overrides.New(overrides.Limits{MaxConcurrentQueries: 1}, "", nil, overrides.Options{})
	if err != nil {
		t.Fatal(err)
	}
	block, started := make(chan struct{}), make(chan struct{})
	h := limitQueries(ov, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Block") != "" {
			close(started)
			<-block
		}
	}))
	req := func(tenant string, hold bool) int {
		r := httptest.NewRequest("GET", "/api/v1/services", nil)
		if tenant != "" {
			r = r.WithContext(storage.WithTenant(r.Context(), tenant))
		}
		if hold {
			r.Header.Set("X-Block", "1")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); req("team-a", true) }()
	<-started // team-a's first query holds its one place
	if code := req("team-a", false); code != http.StatusTooManyRequests {
		t.Errorf("team-a's second query: %d, want 429", code)
	}
	if code := req("team-b", false); code != 200 {
		t.Errorf("team-b's query: %d, want 200", code)
	}
	if code := req("", false); code != 200 {
		t.Errorf("a request without a tenant: %d, want 200", code)
	}
	close(block)
	wg.Wait()
	if code := req("team-a", false); code != 200 {
		t.Errorf("team-a's query after the first ended: %d, want 200", code)
	}
}
