package jaeger

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/clew-dev/clew/internal/otlp"
	"github.com/clew-dev/clew/internal/span"
	"github.com/clew-dev/clew/internal/store"
	"github.com/clew-dev/clew/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// openDB opens a store on a temporary directory with a filesystem bucket.
func openDB(t *testing.T) *store.DB { return storetest.OpenStore(t) }

// serve mounts the API under /jaeger, as the app does.
func serve(t *testing.T, db *store.DB) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	New(db, nil).Register(mux, "/jaeger")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func appendBatch(t *testing.T, db *store.DB, b *span.Batch) {
	t.Helper()
	if err := db.Append(context.Background(), otlp.MarshalProto(nil, b), b); err != nil {
		t.Fatal(err)
	}
}

// decodeFixture decodes an OTLP JSON file, adding shift nanoseconds to
// every timestamp. The batch is valid until the decoder is used again.
func decodeFixture(t *testing.T, path string, shift uint64) *span.Batch {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := &span.Batch{}
	res, err := otlp.NewDecoder(otlp.Limits{}).DecodeJSON(data, b)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if res.Rejected > 0 || res.Modified {
		t.Fatalf("decode %s: %+v", path, res)
	}
	for i := range b.Spans {
		s := &b.Spans[i]
		s.StartUnixNano += shift
		s.EndUnixNano += shift
		for j := range s.Events {
			s.Events[j].TimeUnixNano += shift
		}
	}
	return b
}

// get fetches path and returns the status and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, body
}

// checkGolden compares body, indented, with testdata/golden/name.json.
func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("invalid JSON %q: %v", body, err)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
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
		t.Errorf("%s:\n got: %s\nwant: %s", name, pretty.Bytes(), want)
	}
}
