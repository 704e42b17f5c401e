package app

import (
	"bufio"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/clew-dev/clew/"

// thirdParty lists, for each package, the third-party module prefixes it
// may import. Which clew packages a package may import is read from the
// table in docs/architecture.md ("Packages and allowed imports"), the one
// source of truth for the layering; only module paths, which the table
// names loosely ("prometheus client", "jaeger-idl"), are spelled out here.
// The standard library is always allowed.
var thirdParty = map[string][]string{
	"internal/auth":            {"github.com/go-jose/go-jose/v4", "github.com/prometheus/client_golang"},
	"internal/wal":             {"github.com/prometheus/client_golang"},
	"internal/block":           {"github.com/thanos-io/objstore", "github.com/klauspost/compress", "github.com/cespare/xxhash"},
	"internal/fsbucket":        {"github.com/thanos-io/objstore", "github.com/prometheus/client_golang"},
	"internal/logs":            {"go.opentelemetry.io/collector/pdata"},
	"internal/logstore":        {"github.com/thanos-io/objstore", "github.com/klauspost/compress", "github.com/prometheus/client_golang"},
	"internal/store":           {"github.com/thanos-io/objstore", "github.com/prometheus/client_golang"},
	"internal/ingest":          {"google.golang.org/", "github.com/klauspost/compress", "github.com/prometheus/client_golang"},
	"internal/tenant":          {"github.com/prometheus/client_golang", "google.golang.org/grpc"},
	"internal/jaeger":          {"google.golang.org/", "github.com/jaegertracing/jaeger-idl"},
	"internal/zipkin":          {"google.golang.org/protobuf"},
	"internal/jaegeringest":    {"google.golang.org/", "github.com/jaegertracing/jaeger-idl", "github.com/apache/thrift"},
	"internal/spanmetrics":     {"github.com/prometheus/client_golang"},
	"internal/config":          {"gopkg.in/yaml.v3"},
	"internal/overrides":       {"gopkg.in/yaml.v3", "github.com/prometheus/client_golang", "golang.org/x/time/rate"},
	"internal/tlsconfig":       {"github.com/prometheus/client_golang"},
	"internal/store/storetest": {"github.com/thanos-io/objstore"},
	"internal/loadgen":         {"google.golang.org/"},
	"internal/demo":            {"go.opentelemetry.io/otel", "go.opentelemetry.io/contrib/instrumentation", "google.golang.org/grpc"},
	"internal/app":             {"github.com/prometheus/client_golang", "github.com/thanos-io/objstore", "google.golang.org/grpc"},
	"tools/topologyscore":      {"github.com/prometheus/client_golang"},
}

// storeImporters are the only packages whose non-test code may import the
// concrete store: every query front end reads through the contract of
// internal/storage (Reader, Admin), so that another implementation can take
// the store's place; tools that run the store in process open it through
// app.OpenStore, and other packages' tests through the store's own test
// support, internal/store/storetest.
var storeImporters = []string{"internal/app", "internal/store/storetest"}

// layer is one row of the table: a package and the clew packages its row
// names (by their last path element), or every package above it.
type layer struct {
	pkg   string
	names []string
	above bool // "everything above"
}

var (
	rowRE    = regexp.MustCompile("^\\| `((?:internal|cmd|tools)/[a-z0-9/]+)` \\|[^|]*\\|([^|]*)\\|")
	parensRE = regexp.MustCompile(`\([^)]*\)`)
)

// readLayers parses the package table of docs/architecture.md, in order.
func readLayers(t *testing.T) []layer {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var layers []layer
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := rowRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		l := layer{pkg: m[1]}
		cell := strings.ReplaceAll(m[2], "`", "")
		cell = parensRE.ReplaceAllString(cell, "")
		if strings.Contains(cell, "everything above") {
			l.above = true
		}
		for _, part := range strings.Split(cell, ",") {
			if fields := strings.Fields(part); len(fields) > 0 {
				l.names = append(l.names, strings.TrimPrefix(fields[0], "internal/"))
			}
		}
		layers = append(layers, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(layers) < 10 {
		t.Fatalf("read %d rows from the package table of docs/architecture.md; has its format changed?", len(layers))
	}
	return layers
}

// TestLayering keeps imports pointing up the package table (to packages
// listed before the importer, and named in its row), so that, for
// example, the store never depends on the API or the receivers.
func TestLayering(t *testing.T) {
	layers := readLayers(t)
	index := map[string]int{}
	for i, l := range layers {
		if _, dup := index[l.pkg]; dup {
			t.Errorf("%s has two rows in docs/architecture.md", l.pkg)
		}
		index[l.pkg] = i
	}
	for pkg := range thirdParty {
		if _, ok := index[pkg]; !ok {
			t.Errorf("thirdParty names %s, which has no row in docs/architecture.md", pkg)
		}
	}
	for i, l := range layers {
		p, err := build.Import(module+l.pkg, ".", 0)
		if err != nil {
			t.Errorf("the row of %s names no package: %v", l.pkg, err)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			rel, ours := strings.CutPrefix(imp, module)
			if !ours {
				if !slices.ContainsFunc(thirdParty[l.pkg], func(a string) bool { return strings.HasPrefix(imp, a) }) {
					t.Errorf("%s imports %s, a module its row does not allow", l.pkg, imp)
				}
				continue
			}
			if rel == "internal/store" && !slices.Contains(storeImporters, l.pkg) {
				t.Errorf("%s imports internal/store: read through internal/storage (Reader, Admin) instead", l.pkg)
			}
			j, listed := index[rel]
			switch {
			case !listed:
				t.Errorf("%s imports %s, which has no row in docs/architecture.md", l.pkg, rel)
			case j >= i:
				t.Errorf("%s imports %s, which is listed below it: imports must point up the table", l.pkg, rel)
			case !l.above && !slices.Contains(l.names, filepath.Base(rel)) && !slices.Contains(l.names, rel):
				t.Errorf("%s imports %s, which its row in docs/architecture.md does not name", l.pkg, rel)
			}
		}
	}
	// Every package with non-test code has a row, so a new one must be
	// placed in the layering too.
	for _, dir := range []string{"internal", "cmd", "tools"} {
		err := filepath.WalkDir(filepath.Join("..", "..", dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if d.Name() == "node_modules" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			bp, err := build.ImportDir(p, 0)
			if err != nil || len(bp.GoFiles) == 0 || bp.Name == "e2e" {
				return nil
			}
			rel, _ := filepath.Rel(filepath.Join("..", ".."), p)
			if _, ok := index[filepath.ToSlash(rel)]; !ok {
				t.Errorf("package %s has no row in docs/architecture.md", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
