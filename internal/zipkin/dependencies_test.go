package zipkin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/ingest"
)

type fakeDeps struct{ start, end time.Time }

func (f *fakeDeps) Dependencies(_ context.Context, start, end time.Time) ([]Dependency, error) {
	f.start, f.end = start, end
	return []Dependency{{Parent: "frontend", Child: "checkout", CallCount: 7, ErrorCount: 2}, {Parent: "checkout", Child: "redis", CallCount: 3}}, nil
}

func TestDependenciesFromSource(t *testing.T) {
	src := &fakeDeps{}
	z := New(ingest.NewCore(ingest.DefaultConfig(), "t", nil, nil, nil), nil, nil)
	z.SetDependencies(src)
	mux := http.NewServeMux()
	z.Register(mux)
	for _, c := range []struct {
		url        string
		start, end time.Time
	}{
		{"/api/v2/dependencies?endTs=1521186012000&lookback=60000", time.UnixMilli(1521186012000 - 60000), time.UnixMilli(1521186012000)},
		{"/api/v2/dependencies?endTs=1521186012000", time.UnixMilli(0), time.UnixMilli(1521186012000)},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", c.url, nil))
		want := `[{"parent":"frontend","child":"checkout","callCount":7,"errorCount":2},{"parent":"checkout","child":"redis","callCount":3}]`
		if rec.Code != 200 || rec.Body.String() != want {
			t.Fatalf("%s: %d %s", c.url, rec.Code, rec.Body)
		}
		if !src.start.Equal(c.start) || !src.end.Equal(c.end) {
			t.Fatalf("%s: range %s..%s", c.url, src.start, src.end)
		}
	}
}
