package traceql

import "testing"

// BenchmarkParse parses a typical query: a structural operator between two
// filters, a grouping, an aggregate filter and a hint.
func BenchmarkParse(b *testing.B) {
	const q = `{ resource.service.name = "frontend" && span.http.status_code >= 500 && duration > 100ms } >> { span.db.system =~ "postgres|mysql" && status = error } | by(resource.service.name) | count() > 2 with (most_recent=true)`
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if _, err := Parse(q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkString prints the same query.
func BenchmarkString(b *testing.B) {
	q, err := Parse(`{ resource.service.name = "frontend" && span.http.status_code >= 500 && duration > 100ms } >> { span.db.system =~ "postgres|mysql" && status = error } | by(resource.service.name) | count() > 2 with (most_recent=true)`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = q.String()
	}
}
