package analysis

import (
	"cmp"
	"slices"
	"strings"

	"github.com/clew-dev/clew/internal/span"
)

// RankOptions tune RankAttributes. Zero fields take their defaults.
type RankOptions struct {
	// MaxValuesPerKey: a key with more distinct values than this (or with
	// more than 20 and more than half as many as the spans that have it)
	// is taken for an identifier unique per span (a request ID, a
	// timestamp) and skipped. Default 50.
	MaxValuesPerKey int
	// Alpha is the family-wise significance level; each of the m values
	// tested must reach p < Alpha/m (Bonferroni). Default 0.05.
	Alpha float64
	// MinDiff is the smallest difference in proportion reported (default
	// 0.05: five percentage points).
	MinDiff float64
	// MaxResults bounds the values returned (default 50).
	MaxResults int
}

func (o RankOptions) withDefaults() RankOptions {
	if o.MaxValuesPerKey <= 0 {
		o.MaxValuesPerKey = 50
	}
	if o.Alpha <= 0 || o.Alpha >= 1 {
		o.Alpha = 0.05
	}
	if o.MinDiff <= 0 {
		o.MinDiff = 0.05
	}
	if o.MaxResults <= 0 {
		o.MaxResults = 50
	}
	return o
}

// AttrDiff is one attribute value that is more common in the selection
// than in the baseline.
type AttrDiff struct {
	// Key is "resource.<key>" or "span.<key>" (TraceQL's scopes), or an
	// intrinsic: "name", "status" or "kind".
	Key string
	// Value is the value as a string; Missing marks the absence of the
	// key (Value is then "").
	Value   string
	Missing bool
	// Selection and Baseline count the spans with the value in each set,
	// SelectionShare and BaselineShare as fractions of the set.
	Selection, Baseline           int
	SelectionShare, BaselineShare float64
	// Diff is SelectionShare - BaselineShare (positive).
	Diff float64
	// Z and PValue are the two-proportion z-test's statistic and two-sided
	// p-value.
	Z, PValue float64
}

// Ranking is RankAttributes' answer.
type Ranking struct {
	// Selection and Baseline are the numbers of spans compared.
	Selection, Baseline int
	// Tested is the number of (key, value) pairs tested.
	Tested int
	// Attributes are the significant values, by Diff descending.
	Attributes []AttrDiff
	// SkippedKeys are the keys left out as identifiers (too many distinct
	// values), sorted.
	SkippedKeys []string
}

// maxRankValueLen bounds a value's length; longer values are cut (and
// compared cut).
const maxRankValueLen = 256

// ignoredKeys are identifiers and timestamps, unique per span or request
// by definition.
var ignoredKeys = map[string]bool{
	"span.trace_id": true, "span.span_id": true, "span.traceId": true, "span.spanId": true,
	"span.messaging.message.id": true, "span.messaging.message.conversation_id": true,
	"span.http.request.header.x-request-id": true, "span.request.id": true, "span.request_id": true,
	"resource.process.pid": true,
}

func ignoredKey(k string) bool {
	return ignoredKeys[k] || strings.HasSuffix(k, "timestamp") || strings.HasSuffix(k, ".time") ||
		strings.HasSuffix(k, "_time") || strings.HasSuffix(k, ".trace_id") || strings.HasSuffix(k, ".span_id")
}

type counts struct {
	present [2]int
	values  map[string]*[2]int
}

// RankAttributes ranks the attribute values (resource and span attributes,
// and the span name, status and kind) by how much more common they are in
// sel than in base, a BubbleUp-style comparison: for each value, the
// difference in the proportion of spans that have it, kept only when a
// two-proportion z-test finds it significant (with a Bonferroni correction
// over every value tested) and it is at least MinDiff. The absence of a key
// is a value too. Keys that look like per-span identifiers are skipped.
// A difference that is not significant is not reported.
func RankAttributes(sel, base []*span.Span, opt RankOptions) *Ranking {
	opt = opt.withDefaults()
	out := &Ranking{Selection: len(sel), Baseline: len(base)}
	keys := map[string]*counts{}
	note := func(set int, k, v string) {
		if ignoredKey(k) {
			return
		}
		c := keys[k]
		if c == nil {
			c = &counts{values: map[string]*[2]int{}}
			keys[k] = c
		}
		c.present[set]++
		if len(c.values) > opt.MaxValuesPerKey {
			return // an identifier: stop collecting values
		}
		if len(v) > maxRankValueLen {
			v = strings.ToValidUTF8(v[:maxRankValueLen], "")
		}
		n := c.values[v]
		if n == nil {
			n = new([2]int)
			c.values[v] = n
		}
		n[set]++
	}
	for set, spans := range [2][]*span.Span{sel, base} {
		for _, s := range spans {
			note(set, "name", s.Name)
			note(set, "status", s.StatusCode.String())
			note(set, "kind", s.Kind.String())
			if s.Resource != nil {
				for j, a := range s.Resource.Attrs {
					if scalar(a.Value) && !dupKey(s.Resource.Attrs[:j], a.Key) {
						note(set, "resource."+a.Key, a.Value.AsString())
					}
				}
			}
			for j, a := range s.Attrs {
				if scalar(a.Value) && !dupKey(s.Attrs[:j], a.Key) {
					note(set, "span."+a.Key, a.Value.AsString())
				}
			}
		}
	}
	n := [2]int{len(sel), len(base)}
	var cands []AttrDiff
	for k, c := range keys {
		present := c.present[0] + c.present[1]
		if d := len(c.values); d > opt.MaxValuesPerKey || d > 20 && 2*d > present {
			out.SkippedKeys = append(out.SkippedKeys, strings.Clone(k))
			continue
		}
		add := func(v string, missing bool, a, b int) {
			out.Tested++
			ad := AttrDiff{Key: k, Value: v, Missing: missing, Selection: a, Baseline: b}
			if n[0] > 0 {
				ad.SelectionShare = float64(a) / float64(n[0])
			}
			if n[1] > 0 {
				ad.BaselineShare = float64(b) / float64(n[1])
			}
			ad.Diff = ad.SelectionShare - ad.BaselineShare
			ad.Z, ad.PValue = twoProportionZ(a, n[0], b, n[1])
			cands = append(cands, ad)
		}
		for v, vc := range c.values {
			add(v, false, vc[0], vc[1])
		}
		if miss0, miss1 := n[0]-c.present[0], n[1]-c.present[1]; miss0+miss1 > 0 {
			add("", true, miss0, miss1)
		}
	}
	slices.Sort(out.SkippedKeys)
	limit := opt.Alpha / float64(max(out.Tested, 1))
	for _, ad := range cands {
		if ad.Diff >= opt.MinDiff && ad.PValue < limit {
			ad.Key, ad.Value = strings.Clone(ad.Key), strings.Clone(ad.Value)
			out.Attributes = append(out.Attributes, ad)
		}
	}
	slices.SortFunc(out.Attributes, func(a, b AttrDiff) int {
		if c := cmp.Compare(b.Diff, a.Diff); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	if len(out.Attributes) > opt.MaxResults {
		out.Attributes = out.Attributes[:opt.MaxResults]
	}
	return out
}

func scalar(v span.Value) bool {
	switch v.Type {
	case span.TypeString, span.TypeBool, span.TypeInt, span.TypeDouble:
		return true
	}
	return false
}

// dupKey reports whether key is among attrs (an attribute repeated in one
// span counts once).
func dupKey(attrs []span.Attr, key string) bool {
	for i := range attrs {
		if attrs[i].Key == key {
			return true
		}
	}
	return false
}
