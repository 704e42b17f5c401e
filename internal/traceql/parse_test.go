package traceql

import (
	"errors"
	"strings"
	"testing"
)

// validQueries are accepted queries, most adapted from the examples of
// Tempo's public TraceQL documentation, the rest exercising corners of the
// grammar. Each must reach a print/parse fixed point.
var validQueries = []string{
	// Spanset filters.
	`{}`,
	`{ }`,
	`{ span.http.status_code >= 200 && span.http.status_code < 300 }`,
	`{ resource.service.name = "frontend" && name = "POST /api/orders" }`,
	"{\n  resource.service.namespace = \"ecommerce\" &&\n  resource.service.name = \"frontend\" &&\n  resource.deployment.environment = \"production\" &&\n  name = \"POST /api/orders\"\n}",
	`{ resource.service.name="frontend" && name = "POST /api/orders" && status = error }`,
	`{ resource.service.name="frontend" && name = "POST /api/orders" && span.http.status_code >= 500 }`,
	`{ span.foo = "bar" }`,
	`{ span.foo != "bar" }`,
	`{ span.http.request.header.Accept =~ "application.*" }`,
	`{ span.http.request.header.Accept !~ "application.*" }`,
	`{ span:childCount = 0 }`,
	`{ resource.service.name = "frontend" && span:childCount = 0 }`,
	`{ span:childCount > 10 }`,
	`{ resource.deployment.environment =~ "prod-.*" && span.http.status_code = 200 }`,
	`{ trace:duration > 5s }`,
	`{ span:name = "foo" }`,
	`{ event:name = "foo" }`,
	`{ trace:id = "1234" }`,
	`{ link:traceID = "1234" }`,
	`{ resource.foo = "bar" }`,
	`{ link.foo = "bar" }`,
	`{ event.foo = "bar" }`,
	`{ span:status = ok }`,
	`{ span:statusMessage = "Forbidden" }`,
	`{ span:duration > 100ms }`,
	`{ span:name = "HTTP POST" }`,
	`{ span:kind = server }`,
	`{ span:id = "0000000000000001" }`,
	`{ span:parentID = "000000000000001" }`,
	`{ span:childCount > 0 }`,
	`{ trace:duration > 100ms }`,
	`{ trace:rootName = "HTTP GET" }`,
	`{ trace:rootService = "gateway" }`,
	`{ trace:id = "1234567890abcde" }`,
	`{ event:name = "exception" }`,
	`{ event:timeSinceStart > 2ms }`,
	`{ link:spanID = "0000000000000001" }`,
	`{ link:traceID = "1234567890abcde" }`,
	`{ instrumentation:name = "grpc" }`,
	`{ instrumentation:version = "1.0.0" }`,
	`{ resource.k8s.cluster.name="service-name" && trace:rootName !~ ".*perf.*" }`,
	`{ span.http.method = "GET" }`,
	`{ resource.deployment.environment = "production" }`,
	`{ span.db.system =~ "postgresql|mysql" }`,
	`{ event.exception.message =~ ".*something went wrong.*" }`,
	`{ link.opentracing.ref_type = "child_of" }`,
	`{ instrumentation.language = "java" }`,
	`{ span."attribute name with space" = "value" }`,
	`{ span.attribute."attribute name with space" = "value" }`,
	`{ span."quote \" and backslash \\" = 1 }`,
	`{ span.http.status_code = 200 }`,
	`{ span.retry_count > -1 }`,
	`{ span.value != minInt && span.value != maxInt }`,
	`{ event:timeSinceStart > -5s }`,
	`{ span.value > 1.5 }`,
	`{ span.optional_field = nil }`,
	`{ span.required_field != nil }`,
	`{ span.cache.hit = true }`,
	`{ span.http.status_code >= 400 && span.http.status_code < 500 }`,
	`{ span.http.status_code >= "400" }`,
	`{ span.http.method =~ "DELETE|GET" }`,
	`{ span.any_attribute != nil }`,
	`{ span.any_attribute = nil }`,
	`{ resource.service.version = nil }`,
	`{ event.exception.message = nil }`,
	`{ span.http.method = "DELETE" && status != ok }`,
	`{ span.cache.hit || span.http.status_code = 500 }`,
	`{ span.cache.hit = true || span.http.status_code = 500 }`,
	`{ resource.cloud.region = "us-east-1" && resource.cloud.region = "us-west-1" }`,
	`{ resource.cloud.region =~ "us-east-1|us-west-1" }`,
	`{ span.http.request_content_length > 10 * 1024 * 1024 }`,
	`{ .http.method = "GET" }`,
	`{ .foo }`,
	`{ !.foo }`,
	`{ !(span.a = 1 || span.b = 2) }`,
	`{ name = "x" || name = "y" && status = error }`,
	`{ (name = "x" || name = "y") && status = error }`,
	`{ duration > 1.5s }`,
	`{ duration > 500us }`,
	`{ duration > 500µs }`,
	`{ duration > 10ns }`,
	`{ duration < 2h }`,
	`{ duration >= 1h30m }`,
	`{ duration > 2 * 100ms }`,
	`{ duration - 1s > 100ms }`,
	`{ span.a + span.b * 2 > 10 }`,
	`{ (span.a + span.b) * 2 > 10 }`,
	`{ span.a - span.b - span.c = 0 }`,
	`{ span.a - (span.b - span.c) = 0 }`,
	`{ span.a / 2 % 3 = 1 }`,
	`{ span.a ^ 2 ^ 3 > 1 }`,
	`{ (span.a ^ 2) ^ 3 > 1 }`,
	`{ -span.a > 1 }`,
	`{ -(span.a + 1) > 1 }`,
	`{ 2 ^ -1 < span.a }`,
	`{ 1.5e3 < span.a }`,
	`{ span.a = .5 }`,
	`{ kind = client }`,
	`{ kind != internal }`,
	`{ kind = unspecified || kind = producer || kind = consumer }`,
	`{ status = unset }`,
	`{ statusMessage = "oops" }`,
	`{ rootName = "GET /" }`,
	`{ rootServiceName = "gateway" }`,
	`{ traceDuration > 1s }`,
	`{ nestedSetLeft > 0 && nestedSetRight < 100 && nestedSetParent = -1 }`,
	`{ span.bool = false }`,
	"{ span.path =~ `/api/v\\d+/.*` }",
	`{ span.msg = "tab\tnew\nline \u00e9" }`,
	`{ parent.span.http.method = "GET" }`,
	`{ parent.resource.service.name = "a" }`,
	`{ parent.foo = 1 }`,
	`{ span.k8s-pod/name = "x" }`,
	`{ "GET" = name }`,
	`{ 200 <= span.http.status_code }`,
	`{ true }`,
	`{ span.a = 1 } && { span.b = 2 }`,
	`{ span.service.name="frontend" && name = "GET /api/products/{id}" } && { span.db.system="postgresql" }`,
	`{ resource.deployment.environment = "production" } && { resource.deployment.environment = "staging" }`,
	`{ resource.service.name="frontend" } >> { status = error }`,
	`{ } !< { resource.service.name = "productcatalogservice" }`,
	`{ resource.service.name = "productcatalogservice" } ~ { resource.service.name="frontend" }`,
	`{ resource.deployment.environment = "production" } && { span.http.status_code = 200 }`,
	`{ span.http.method = "GET" && status = ok } && { span.http.method = "DELETE" && status != ok }`,
	`{ resource.cloud.region = "us-east-1" } || { resource.cloud.region = "us-west-1" }`,
	`{ span.http.url = "/path/of/api" } >> { span.db.name = "db-shard-001" }`,
	`{ span.http.url = "/path/of/api" && status = error } &>> { status = error }`,
	`{ status = error } !< { status = error }`,
	`{ .a } > { .b }`,
	`{ .a } < { .b }`,
	`{ .a } << { .b }`,
	`{ .a } !> { .b }`,
	`{ .a } !>> { .b }`,
	`{ .a } !<< { .b }`,
	`{ .a } !~ { .b }`,
	`{ .a } &> { .b }`,
	`{ .a } &< { .b }`,
	`{ .a } &<< { .b }`,
	`{ .a } &~ { .b }`,
	`{ .a } > { .b } > { .c }`,
	`{ .a } > ({ .b } > { .c })`,
	`{ .a } && { .b } || { .c }`,
	`{ .a } && ({ .b } || { .c })`,
	`{ .a } >> { .b } && { .c } << { .d }`,
	`({ .a } >> { .b }) && { .c }`,
	`(({ .a }))`,
	// Pipelines.
	`{ span.http.status_code >= 200 && span.http.status_code < 300 } | count() > 2`,
	`{ resource.deployment.environment = "production" && trace:duration > 2s } | count() > 30`,
	`{ span.http.status_code = 200 } | select(resource.service.name)`,
	`count() > 10`,
	`avg(duration) > 20ms`,
	`{ span.http.status_code = 200 } | count() > 3`,
	`{ } | sum(span.bytesProcessed) > 1000000000`,
	`{ status = error } | by(resource.service.name) | count() > 1`,
	`{ status = error } | select(span.http.status_code, span.http.url)`,
	`{ } | min(duration) < 1ms`,
	`{ } | max(span:duration) >= 1s`,
	`{ } | avg(span.size) / 2 > 10`,
	`{ } | count() > 1 | count() < 10`,
	`{ } | 2 < count()`,
	`{ } | count() + 1 > avg(span.n)`,
	`{ } | coalesce()`,
	`{ .a } | by(.b) | coalesce()`,
	`{ .a } | { .b }`,
	`{ .a } | { .b } && { .c }`,
	`({ .a } | count() > 1) && { .b }`,
	`({ .a } | count() > 1) >> ({ .b } | avg(duration) > 1s)`,
	`{ .a } | by(.b + 1)`,
	`{ .a } | select(span:id, trace:id, name)`,
	// Metrics.
	`{ span:duration < 5ms } | count_over_time() by(resource.service.name) | topk(10)`,
	`{ status = error } | rate() by (resource.service.name, name)`,
	`{ resource.service.name = "foo" && status = error } | rate()`,
	`{ resource.service.name = "foo" && status = error } | rate() by (span.http.route)`,
	`{ name = "GET /:endpoint" } | count_over_time() by (span.http.status_code)`,
	`{ name = "GET /:endpoint" } | min_over_time(duration) by (span.http.target)`,
	`{ name = "GET /:endpoint" } | min_over_time(span.http.status_code)`,
	`{ name = "GET /:endpoint" } | max_over_time(duration) by (span.http.target)`,
	`{ name = "GET /:endpoint" } | max_over_time(span.http.status_code)`,
	`{ name = "GET /:endpoint" } | quantile_over_time(duration, .99, .9, .5)`,
	`{ name = "GET /:endpoint" } | quantile_over_time(duration, .99) by (span.http.target)`,
	`{ name = "GET /:endpoint" } | quantile_over_time(span.http.status_code, .99, .9, .5)`,
	`{ } | histogram_over_time(duration) by (span.foo)`,
	`{ } | avg_over_time(span.http.response.size)`,
	`{ } | sum_over_time(span.http.response.size)`,
	`{ resource.service.name="a" && span.http.path="/myapi" } | compare({status=error})`,
	`{ } | compare({ duration > 1s }, 20)`,
	`{ } | compare({ duration > 1s }, 10, 1700000000000000000, 1700000300000000000)`,
	`{ resource.service.name = "foo" } | rate() by (instrumentation:name)`,
	`{ } | rate() by (resource.service.name) | topk(10)`,
	`{ } | rate() by (resource.service.name) | bottomk(3)`,
	`{ } | rate() by (resource.service.name) > 10`,
	`{ } | rate() by (resource.service.name) > 10 | topk(5)`,
	`{ } | quantile_over_time(duration, 0.95) > 250ms`,
	`{ } | quantile_over_time(duration, 0, 1)`,
	`{ .a } >> { .b } | rate()`,
	// Hints.
	`{} with (most_recent=true)`,
	`{ span.foo = "bar" } >> { status = error } with (most_recent=true)`,
	`{ span:name = "GET /:endpoint" } | quantile_over_time(duration, .99) by (span.http.target) with (exemplars=true)`,
	`{ } | rate() with(sample=true)`,
	`{ } | rate() with (sample=0.1)`,
	`{ } | rate() with (span_sample=0.05, exemplars=100)`,
	`{ } | rate() with (trace_sample=1)`,
	`{ } with (unknown_hint="kept")`,
}

func parseOK(t *testing.T, q string) *Query {
	t.Helper()
	pq, err := Parse(q)
	if err != nil {
		t.Fatalf("Parse(%q) = %v", q, err)
	}
	return pq
}

// TestValid checks that every valid query parses and that printing it
// reaches a fixed point: parse(print(q)) has the same tree, and printing
// that again gives the same text.
func TestValid(t *testing.T) {
	if len(validQueries) < 150 {
		t.Fatalf("only %d valid queries", len(validQueries))
	}
	for _, q := range validQueries {
		t.Run(q, func(t *testing.T) {
			checkFixedPoint(t, q)
		})
	}
}

func checkFixedPoint(t *testing.T, q string) {
	t.Helper()
	pq := parseOK(t, q)
	printed := pq.String()
	again, err := Parse(printed)
	if err != nil {
		t.Fatalf("Parse(%q) = %v after printing %q", printed, err, q)
	}
	if d1, d2 := dump(pq), dump(again); d1 != d2 {
		t.Fatalf("tree changed by printing:\n query %q\n print %q\n  tree %s\n after %s", q, printed, d1, d2)
	}
	if p2 := again.String(); p2 != printed {
		t.Fatalf("printing is not stable: %q then %q", printed, p2)
	}
	// Positions are within the input and ordered.
	pos, end := pq.Extent()
	if pos < 0 || end > len(q) || pos > end {
		t.Fatalf("query extent [%d, %d) outside input of %d bytes", pos, end, len(q))
	}
}

// TestShape pins the tree of a representative subset: precedence,
// associativity, scopes, literals and stages.
func TestShape(t *testing.T) {
	for _, tc := range []struct{ q, want string }{
		{`{}`, `(query {})`},
		{`{ .a = 1 }`, `(query {(= attr::"a" int:1)})`},
		{`{ span.http.status_code >= 200 && span.http.status_code < 300 } | count() > 2`,
			`(query (| {(&& (>= attr:span:"http.status_code" int:200) (< attr:span:"http.status_code" int:300))} (> (count) int:2)))`},
		{`{ name = "x" || name = "y" && status = error }`,
			`(query {(|| (= intr:name str:"x") (&& (= intr:name str:"y") (= intr:status status:error)))})`},
		{`{ span.a - span.b - span.c = 0 }`, `(query {(= (- (- attr:span:"a" attr:span:"b") attr:span:"c") int:0)})`},
		{`{ span.a ^ 2 ^ 3 > 1 }`, `(query {(> (^ attr:span:"a" (^ int:2 int:3)) int:1)})`},
		{`{ span.a + span.b * 2 > 10 }`, `(query {(> (+ attr:span:"a" (* attr:span:"b" int:2)) int:10)})`},
		{`{ -span.a ^ 2 > 1 }`, `(query {(> (- (^ attr:span:"a" int:2)) int:1)})`},
		{`{ -2 ^ 2 > .a }`, `(query {(> (^ int:-2 int:2) attr::"a")})`},
		{`{ span.value != minInt }`, `(query {(!= attr:span:"value" int:-9223372036854775808)})`},
		{`{ .x = -9223372036854775808 }`, `(query {(= attr::"x" int:-9223372036854775808)})`},
		{`{ event:timeSinceStart > -5s }`, `(query {(> intr:event:timeSinceStart dur:-5000000000)})`},
		{`{ duration >= 1h30m }`, `(query {(>= intr:duration dur:5400000000000)})`},
		{`{ duration > 500µs }`, `(query {(> intr:duration dur:500000)})`},
		{`{ span.a = .5 }`, `(query {(= attr:span:"a" float:0.5)})`},
		{`{ !.foo }`, `(query {(! attr::"foo")})`},
		{`{ span.attribute."attribute name with space" = "value" }`, `(query {(= attr:span:"attribute.attribute name with space" str:"value")})`},
		{`{ parent.resource.service.name = "a" }`, `(query {(= parent:attr:resource:"service.name" str:"a")})`},
		{`{ parent.foo = 1 }`, `(query {(= parent:attr::"foo" int:1)})`},
		{"{ span.p =~ `a\\d` }", `(query {(=~ attr:span:"p" str:"a\\d")})`},
		{`{ kind = server && span:status = ok }`, `(query {(&& (= intr:kind kind:server) (= intr:span:status status:ok))})`},
		{`{ .a } && { .b } || { .c }`, `(query (|| (&& {attr::"a"} {attr::"b"}) {attr::"c"}))`},
		{`{ .a } > { .b } > { .c }`, `(query (> (> {attr::"a"} {attr::"b"}) {attr::"c"}))`},
		{`{ .a } >> { .b } && { .c } << { .d }`, `(query (&& (>> {attr::"a"} {attr::"b"}) (<< {attr::"c"} {attr::"d"})))`},
		{`{ .a } !~ { .b }`, `(query (!~ {attr::"a"} {attr::"b"}))`},
		{`{ .a } &>> { .b }`, `(query (&>> {attr::"a"} {attr::"b"}))`},
		{`({ .a } | count() > 1) && { .b }`, `(query (&& (sub (| {attr::"a"} (> (count) int:1))) {attr::"b"}))`},
		{`(({ .a }))`, `(query {attr::"a"})`},
		{`{ status = error } | by(resource.service.name) | count() > 1`,
			`(query (| {(= intr:status status:error)} (by attr:resource:"service.name") (> (count) int:1)))`},
		{`avg(duration) > 20ms`, `(query (> (avg intr:duration) dur:20000000))`},
		{`{ } | coalesce()`, `(query (| {} (coalesce)))`},
		{`{ name = "GET /:endpoint" } | quantile_over_time(duration, .99, .9) by (span.http.target) > 1s`,
			`(query (| {(= intr:name str:"GET /:endpoint")} (quantile_over_time intr:duration q=0.99 q=0.9 (by attr:span:"http.target") > dur:1000000000)))`},
		{`{ } | compare({status=error}, 10, 1, 2)`, `(query (| {} (compare {(= intr:status status:error)} top=10 start=1 end=2)))`},
		{`{ } | rate() by (resource.service.name) | topk(10)`, `(query (| {} (rate (by attr:resource:"service.name")) (topk bottom=false 10)))`},
		{`{} with (most_recent=true, sample=0.1)`, `(query {} (with most_recent=bool:true sample=float:0.1))`},
	} {
		t.Run(tc.q, func(t *testing.T) {
			if got := dump(parseOK(t, tc.q)); got != tc.want {
				t.Errorf("Parse(%q)\n got %s\nwant %s", tc.q, got, tc.want)
			}
		})
	}
}

// TestPositions checks node extents on one query.
func TestPositions(t *testing.T) {
	q := `{ span.a = "x" } >> { duration > 1s } | count() > 2`
	pq := parseOK(t, q)
	st := pq.Pipeline.Stages
	op := st[0].(*SpansetOperation)
	for _, tc := range []struct {
		n    Node
		want string
	}{
		{pq, q},
		{op, `{ span.a = "x" } >> { duration > 1s }`},
		{op.LHS, `{ span.a = "x" }`},
		{op.LHS.(*SpansetFilter).Expr, `span.a = "x"`},
		{op.LHS.(*SpansetFilter).Expr.(*BinaryExpr).RHS, `"x"`},
		{op.RHS.(*SpansetFilter).Expr.(*BinaryExpr).RHS, `1s`},
		{st[1], `count() > 2`},
	} {
		pos, end := tc.n.Extent()
		if got := q[pos:end]; got != tc.want {
			t.Errorf("extent of %T = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("{ duration = }")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse error %T is not a *ParseError", err)
	}
	want := `1:14: unexpected "}" after operator "=", expected a value: string, number, duration, true, false, nil, status or kind`
	if pe.Error() != want {
		t.Errorf("error = %q, want %q", pe.Error(), want)
	}
	if pe.Pos != 13 || pe.End != 14 || len(pe.Expected) != 8 {
		t.Errorf("error = %+v", pe)
	}
	_, err = Parse("{ span.a = 1 &&\n  span.b = }")
	if !errors.As(err, &pe) || pe.Line != 2 || pe.Col != 12 {
		t.Errorf("multi-line error = %+v", err)
	}
	_, err = Parse(`{ span.é = 1 && x }`)
	if !errors.As(err, &pe) || pe.Col != 17 || pe.Pos != 17 {
		t.Errorf("column counts code points: %+v", err)
	}
}

func TestLimits(t *testing.T) {
	long := "{ " + strings.Repeat(`.a = 1 && `, MaxQueryLen/10) + ".a = 1 }"
	if _, err := Parse(long); err == nil || !strings.Contains(err.Error(), "longer than the limit") {
		t.Errorf("Parse(long) = %v", err)
	}
	for _, q := range []string{
		strings.Repeat("(", 100) + "{}" + strings.Repeat(")", 100),
		"{ " + strings.Repeat("!", 100) + ".a }",
		"{ " + strings.Repeat("-", 100) + ".a > 1 }",
		"{ .a = " + strings.Repeat("(", 100) + "1" + strings.Repeat(")", 100) + " }",
		"{ .a = 2" + strings.Repeat(" ^ 2", 100) + " }",
		strings.Repeat("(", 20000) + "{}",
	} {
		_, err := Parse(q)
		if err == nil || !strings.Contains(err.Error(), "nests deeper") {
			t.Errorf("Parse(%.30q...) = %v, want nesting error", q, err)
		}
	}
	// Just within the limits.
	checkFixedPoint(t, strings.Repeat("(", MaxDepth-1)+"{ .a }"+strings.Repeat(")", MaxDepth-1))
	// Long flat chains are fine and do not overflow anything.
	flat := "{ .a = 1" + strings.Repeat(" && .a = 1", 10000) + " }"
	checkFixedPoint(t, flat)
}
