package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/store/storetest"
	"github.com/clew-dev/clew/internal/testutil"
)

func newAnalysisServer(t *testing.T) *httptest.Server {
	t.Helper()
	db := storetest.OpenStore(t, testutil.AnalysisFixture())
	s := NewAnalysis(db, AnalysisConfig{Now: func() time.Time { return testutil.AnalysisNow }}, nil)
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestAnalysisGolden(t *testing.T) {
	srv := newAnalysisServer(t)
	tid := func(n byte) string { return testutil.TID(n).String() }
	cases := []struct {
		name string
		path string
		code int
	}{
		{"explain_n_plus_one", "/api/v1/explain/" + tid(41), 200},
		{"explain_retry", "/api/v1/explain/" + tid(42), 200},
		{"explain_slow_inventory", "/api/v1/explain/" + tid(35) + "?since=20m", 200},
		{"explain_normal", "/api/v1/explain/" + tid(5), 200},
		{"explain_no_cohort", "/api/v1/explain/" + tid(43), 200},
		{"explain_not_found", "/api/v1/explain/" + tid(99), 404},
		{"explain_bad_id", "/api/v1/explain/xyz", 400},
		{"explain_bad_cohort", "/api/v1/explain/" + tid(41) + "?cohort=0", 400},
		{"criticalpath", "/api/v1/criticalpath?service=gateway&operation=GET+/api/products&tail=0.95", 200},
		{"criticalpath_missing_operation", "/api/v1/criticalpath?service=gateway", 400},
		{"criticalpath_bad_tail", "/api/v1/criticalpath?service=gateway&operation=x&tail=2", 400},
		{"rank_native", "/api/v1/attributes/rank?service=inventory&operation=GET+/stock&minDuration=50ms", 200},
		{"rank_traceql", "/api/v1/attributes/rank?q=" + escape(`{ resource.service.name = "inventory" && duration > 50ms }`) +
			"&baseline=" + escape(`{ resource.service.name = "inventory" && duration < 50ms }`), 200},
		{"rank_no_selection", "/api/v1/attributes/rank", 400},
		{"rank_bad_traceql", "/api/v1/attributes/rank?q=" + escape("{ duration >"), 400},
		{"quality", "/api/v1/quality", 200},
		{"quality_bad_range", "/api/v1/quality?since=-1h", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("GET %s: %d %s, want %d", c.path, resp.StatusCode, body, c.code)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, body, "", "  "); err != nil {
				t.Fatalf("not JSON: %s", body)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", c.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update): %v", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("GET %s:\n%s\nwant:\n%s", c.path, pretty.Bytes(), want)
			}
		})
	}
}

func escape(s string) string {
	r := strings.NewReplacer(" ", "+", "\"", "%22", "{", "%7B", "}", "%7D", "&", "%26", ">", "%3E", "<", "%3C", "=", "%3D")
	return r.Replace(s)
}
