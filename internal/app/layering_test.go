package app

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/clew-dev/clew/"

// allowed lists, for each package, the clew packages and third-party module
// prefixes it may import (docs/architecture.md, "Packages and allowed
// imports"). The standard library is always allowed.
var allowed = map[string][]string{
	"internal/span":     {},
	"internal/search":   {"internal/span"},
	"internal/otlp":     {"internal/span"},
	"internal/traceql":  {"internal/span", "internal/search"},
	"internal/wal":      {"github.com/prometheus/client_golang"},
	"internal/block":    {"internal/span", "internal/search", "github.com/thanos-io/objstore", "github.com/klauspost/compress", "github.com/cespare/xxhash"},
	"internal/store":    {"internal/span", "internal/search", "internal/otlp", "internal/wal", "internal/block", "github.com/thanos-io/objstore", "github.com/prometheus/client_golang"},
	"internal/ingest":   {"internal/span", "internal/otlp", "google.golang.org/", "github.com/klauspost/compress", "github.com/prometheus/client_golang"},
	"internal/api":      {"internal/span", "internal/search", "internal/otlp", "internal/store", "internal/traceql", "internal/engine"},
	"internal/jaeger":   {"internal/api", "internal/span", "internal/search", "internal/otlp", "google.golang.org/", "github.com/jaegertracing/jaeger-idl"},
	"internal/zipkin":   {"internal/api", "internal/ingest", "internal/span", "internal/search", "internal/otlp", "github.com/prometheus/client_golang", "google.golang.org/protobuf"},
	"internal/engine":   {"internal/span", "internal/search", "internal/traceql", "internal/store"},
	"internal/analysis": {"internal/span"},
	"internal/insight":  {"internal/analysis", "internal/api", "internal/engine", "internal/traceql", "internal/search", "internal/span"},
	"internal/detect":   {"internal/analysis", "internal/spanmetrics", "internal/store", "internal/search", "internal/span"},
	"internal/tempo":    {"internal/api", "internal/engine", "internal/traceql", "internal/span", "internal/search", "internal/otlp"},
	"internal/config":   {"internal/api", "internal/ingest", "internal/store", "internal/wal", "internal/spanmetrics", "internal/detect", "gopkg.in/yaml.v3"},
	"internal/testutil": {"internal/span", "internal/otlp", "internal/store", "github.com/thanos-io/objstore"},
	"internal/loadgen":  {"internal/span", "google.golang.org/"},
	"internal/querycli": {},
	"internal/webui":    {},
	"internal/demo":     {"go.opentelemetry.io/otel", "go.opentelemetry.io/contrib/instrumentation", "google.golang.org/grpc"},
	"internal/app":      {"internal/", "github.com/prometheus/client_golang", "github.com/thanos-io/objstore", "google.golang.org/grpc"},
	"cmd/clew":          {"internal/app", "internal/config", "internal/loadgen", "internal/querycli", "internal/demo", "internal/wal", "internal/insight", "internal/detect"},

	// internal/spanmetrics sits beside internal/engine: fed by app, read by the analyses.
	"internal/spanmetrics": {"internal/span", "github.com/prometheus/client_golang"},

	// internal/jaegeringest sits beside internal/zipkin: a receiver on ports of its own.
	"internal/jaegeringest": {"internal/ingest", "internal/span", "internal/otlp", "github.com/prometheus/client_golang", "google.golang.org/", "github.com/jaegertracing/jaeger-idl", "github.com/apache/thrift"},

	// tools/traceqlbench drives the binary over the network only.
	"tools/traceqlbench": {},
}

// TestLayering keeps imports pointing down the package list, so that, for
// example, the store never depends on the API or the receivers.
func TestLayering(t *testing.T) {
	for pkg, allow := range allowed {
		p, err := build.Import(module+pkg, ".", 0)
		if err != nil {
			t.Fatalf("import %s: %v", pkg, err)
		}
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			rel := strings.TrimPrefix(imp, module)
			ok := slices.ContainsFunc(allow, func(a string) bool {
				return rel == a || strings.HasPrefix(rel, a) && (strings.HasSuffix(a, "/") || strings.HasPrefix(rel, a+"/")) || strings.HasPrefix(imp, a)
			})
			if !ok {
				t.Errorf("%s imports %s, which docs/architecture.md does not allow", pkg, rel)
			}
		}
	}
	// Every package with non-test code is listed, so a new one must be
	// placed in the layering too.
	for _, dir := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(filepath.Join("..", "..", dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			bp, err := build.ImportDir(p, 0)
			if err != nil || len(bp.GoFiles) == 0 || bp.Name == "e2e" {
				return nil
			}
			rel, _ := filepath.Rel(filepath.Join("..", ".."), p)
			if _, ok := allowed[filepath.ToSlash(rel)]; !ok {
				t.Errorf("package %s is not in the layering table", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
