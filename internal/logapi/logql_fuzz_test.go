package logapi

import "testing"

// FuzzLogQL: hostile LogQL gives an error or a query, never a panic.
func FuzzLogQL(f *testing.F) {
	for _, s := range []string{
		`{service_name="a", b=~"x.*"} |= "e" != "f" |~ "g" !~ "h"`,
		`sum by (level) (count_over_time({a="b"} | drop __error__ [1m]))`,
		`rate({a="b"}[5m])`, `sum(count_over_time({a="b"}[1d])) by (x)`,
		`{a="\u00ff\"\\"}`, "{a=`raw`}", `{a=~"((((a))))"}`, `{`, `}`, `|=`, `[`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if q, err := ParseLogQL(s); err == nil && q == nil {
			t.Fatal("nil query without an error")
		}
		if m, err := parseMetric(s); err == nil && (m == nil || m.q == nil || m.window <= 0) {
			t.Fatalf("bad metric query without an error: %+v", m)
		}
	})
}
