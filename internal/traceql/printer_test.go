package traceql

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// printerInputs are queries written unevenly: odd spacing, redundant
// parentheses, aliases of literals. The golden file pins their canonical
// form.
var printerInputs = []string{
	`{}`,
	`{span.http.status_code>=200&&span.http.status_code<300}|count()>2`,
	"{ .a = `raw\\d` }",
	`{ ((.a = 1)) && (((.b = 2))) }`,
	`{ (.a = 1 && .b = 2) && .c = 3 }`,
	`{ .a = 1 && (.b = 2 && .c = 3) }`,
	`{ .a = 1 || (.b = 2 && .c = 3) }`,
	`{ (.a = 1 || .b = 2) && .c = 3 }`,
	`{ (.a + .b) * (.c - .d) / .e > 1 }`,
	`{ .a - (.b + .c) > 1 }`,
	`{ (.a ^ .b) ^ .c > 1 }`,
	`{ .a ^ (.b ^ .c) > 1 }`,
	`{ -(.a) > 1 }`,
	`{ -(-(.a)) > 1 }`,
	`{ - 5 < .a }`,
	`{ -(5) < .a }`,
	`{ -minInt < .a }`,
	`{ !(!.a) }`,
	`{ (.a = 1) = true }`,
	`{ duration > 1.5s && duration < 1h30m && duration != 1000ms }`,
	`{ duration > 0.5ms && duration > 1500000ns && duration > 60s }`,
	`{ .a = 1.0 && .b = 1e3 && .c = .25 && .d = 1e-7 }`,
	`{ .s = "quote\" backslash\\ tab\t" }`,
	`{ span."with space" = 1 && span."a.b" = 2 && ."0lead" = 3 && parent."span.x" = 4 }`,
	`{ resource."quo\"te" = 1 }`,
	`{ .a } >> ({ .b } >> { .c })`,
	`({ .a } >> { .b }) >> { .c }`,
	`({ .a } || { .b }) && { .c }`,
	`{ .a } || ({ .b } && { .c })`,
	`(({ .a } | count() > 1)) && { .b }`,
	`{ } | by( resource.service.name ,name ) | select(span.a,span.b)`,
	`{ }|rate()by(resource.service.name)|topk(10)`,
	`{ } | quantile_over_time(duration, .5, 1, 0.99) by (span.route) >= 100ms`,
	`{ } | compare({status=error},5,1,2)`,
	`{ }with(most_recent=true,sample=.5)`,
	`{ minInt < .a && .a < maxInt }`,
}

func TestPrinterGolden(t *testing.T) {
	var b strings.Builder
	for _, in := range printerInputs {
		q := parseOK(t, in)
		b.WriteString(in + "\n=> " + q.String() + "\n\n")
		checkFixedPoint(t, in)
	}
	path := filepath.Join("testdata", "printer.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("printer output differs from %s (run with -update to accept):\n%s", path, got)
	}
}
