package jaeger

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

type legacyDepsFake struct {
	start, end time.Time
	err        error
}

func (f *legacyDepsFake) Dependencies(_ context.Context, start, end time.Time) ([]Dependency, error) {
	f.start, f.end = start, end
	return []Dependency{{Parent: "frontend", Child: "checkout", CallCount: 7}, {Parent: "checkout", Child: "postgresql", CallCount: 3}}, f.err
}

func TestDependencies(t *testing.T) {
	cases := []struct {
		name, url  string
		err        error
		code       int
		body       string
		start, end time.Time
	}{
		{"range", "/jaeger/api/dependencies?endTs=1764000000000&lookback=3600000", nil, 200,
			`{"data":[{"parent":"frontend","child":"checkout","callCount":7},{"parent":"checkout","child":"postgresql","callCount":3}],"total":0,"limit":0,"offset":0,"errors":null}` + "\n",
			time.UnixMilli(1764000000000 - 3600000), time.UnixMilli(1764000000000)},
		{"default lookback", "/jaeger/api/dependencies?endTs=1764000000000", nil, 200, "",
			time.UnixMilli(1764000000000).Add(-24 * time.Hour), time.UnixMilli(1764000000000)},
		{"bad endTs", "/jaeger/api/dependencies?endTs=soon", nil, 400, "", time.Time{}, time.Time{}},
		{"source fails", "/jaeger/api/dependencies?endTs=1764000000000", errors.New("disk on fire"), 500, "", time.Time{}, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &legacyDepsFake{err: c.err}
			a := New(nil, nil)
			a.SetDependencies(src)
			mux := http.NewServeMux()
			a.Register(mux, "/jaeger")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", c.url, nil))
			if rec.Code != c.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.code, rec.Body)
			}
			if c.body != "" && rec.Body.String() != c.body {
				t.Fatalf("body\n%s\nwant\n%s", rec.Body, c.body)
			}
			if !c.start.IsZero() && (!src.start.Equal(c.start) || !src.end.Equal(c.end)) {
				t.Fatalf("range %s..%s, want %s..%s", src.start, src.end, c.start, c.end)
			}
		})
	}
}
