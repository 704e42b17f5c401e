package analysis

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// Quality issue types.
const (
	// IssueOrphans: spans whose parent never arrived.
	IssueOrphans = "orphan_spans"
	// IssuePropagation: broken context propagation, on either side: client
	// spans without a server child although the callee is instrumented,
	// and server spans that start a new trace although their caller is
	// instrumented.
	IssuePropagation = "broken_propagation"
	// IssueClockSkew: children that start before their parent.
	IssueClockSkew = "clock_skew"
	// IssueMissingVersion: spans whose resource has no service.version.
	IssueMissingVersion = "missing_service_version"
	// IssueMissingAttributes: spans without a semantic-convention
	// attribute their kind of span must have.
	IssueMissingAttributes = "missing_attributes"
)

// qualityWeights are the most points an issue takes off a service's score
// of 100; an issue takes weight × min(1, 5 × rate), so that one span in
// five with the issue costs its whole weight.
var qualityWeights = map[string]float64{
	IssueOrphans:           25,
	IssuePropagation:       30,
	IssueClockSkew:         10,
	IssueMissingVersion:    15,
	IssueMissingAttributes: 20,
}

// QualityOptions tune Quality. Zero fields take their defaults.
type QualityOptions struct {
	// MaxExamples bounds the example trace IDs per issue (default 3).
	MaxExamples int
	// SkewTolerance is how far a child may start before its parent before
	// it counts as clock skew (default 0).
	SkewTolerance time.Duration
}

// QualityIssue is one kind of instrumentation problem of a service.
type QualityIssue struct {
	Type string
	// Count spans have the issue, out of Of spans it applies to; Rate is
	// Count / Of and Penalty the points it takes off the score.
	Count, Of     int
	Rate, Penalty float64
	Message       string
	// Examples are traces that show it.
	Examples []span.TraceID
	// Attributes counts, for missing_attributes, the spans without each
	// attribute.
	Attributes map[string]int
}

// ServiceQuality is one service's instrumentation quality.
type ServiceQuality struct {
	Service       string
	Spans, Traces int
	// Versions are the service.version values seen, sorted.
	Versions []string
	// Score is 100 minus the issues' penalties, at least 0.
	Score  float64
	Issues []QualityIssue
}

// QualityReport is Quality's answer.
type QualityReport struct {
	Traces, Spans int
	// Services are by score ascending, then name.
	Services []ServiceQuality
}

type issueAcc struct {
	count, of int
	examples  []span.TraceID
	attrs     map[string]int
}

func (a *issueAcc) hit(id span.TraceID, max int) {
	a.count++
	if len(a.examples) < max && !slices.Contains(a.examples, id) {
		a.examples = append(a.examples, id)
	}
}

type svcAcc struct {
	spans, traces int
	versions      map[string]bool
	issues        map[string]*issueAcc
	lastTrace     int
}

func (s *svcAcc) issue(k string) *issueAcc {
	a := s.issues[k]
	if a == nil {
		a = &issueAcc{}
		s.issues[k] = a
	}
	return a
}

type spanRef struct {
	tree int
	i    int32
}

// Quality scores the instrumentation of each service seen in trees (a
// sample of recent, complete traces): orphan spans, broken context
// propagation, parent/child clock skew, missing service.version and missing
// semantic-convention attributes (see missingAttrs).
//
// Propagation is judged from the sample as a whole. A client span without
// a server child is broken when the callee is instrumented: when other
// client spans of the same operation have server children, or when a
// server span of the same name started a new trace within the client
// span's interval. That pair is blamed on the server's service when the
// client's service propagates context on its other calls and the server's
// never continues a trace, on the client's in the opposite case, and on
// both otherwise.
func Quality(trees []*Tree, opt QualityOptions) *QualityReport {
	if opt.MaxExamples <= 0 {
		opt.MaxExamples = 3
	}
	tol := uint64(max(opt.SkewTolerance, 0))
	rep := &QualityReport{Traces: len(trees)}
	svcs := map[string]*svcAcc{}
	get := func(name string, tree int) *svcAcc {
		s := svcs[name]
		if s == nil {
			s = &svcAcc{versions: map[string]bool{}, issues: map[string]*issueAcc{}, lastTrace: -1}
			svcs[name] = s
		}
		if s.lastTrace != tree {
			s.lastTrace = tree
			s.traces++
		}
		return s
	}
	clientHasServer := map[OpKey]bool{} // a client operation with a server child somewhere
	injects := map[string]bool{}        // a service with a client span that has a server child
	extracts := map[string]bool{}       // a service with a server span that has a parent
	var childless, serverRoots []spanRef

	for ti, t := range trees {
		orphan := make(map[int]bool, len(t.Orphans))
		for _, o := range t.Orphans {
			orphan[o] = true
		}
		for _, i := range t.Order() {
			s := &t.Spans[i]
			name := t.Service(int(i))
			sa := get(name, ti)
			sa.spans++
			rep.Spans++
			if v := versionOf(s.Resource); v != "" {
				sa.versions[v] = true
			}
			mv := sa.issue(IssueMissingVersion)
			mv.of++
			if versionOf(s.Resource) == "" {
				mv.hit(s.TraceID, opt.MaxExamples)
			}
			or := sa.issue(IssueOrphans)
			or.of++
			if orphan[int(i)] {
				or.hit(s.TraceID, opt.MaxExamples)
			}
			if missing := missingAttrs(s); missing != nil {
				ma := sa.issue(IssueMissingAttributes)
				ma.of++
				if len(missing) > 0 {
					ma.hit(s.TraceID, opt.MaxExamples)
					if ma.attrs == nil {
						ma.attrs = map[string]int{}
					}
					for _, k := range missing {
						ma.attrs[k]++
					}
				}
			}
			if p := t.parent[i]; p >= 0 {
				sk := sa.issue(IssueClockSkew)
				sk.of++
				ps := &t.Spans[p]
				// Only a start before the parent's breaks causality: a
				// server span often ends a little after its client's (it
				// ends once the response is written, while the client may
				// already have read it), and asynchronous children outlive
				// their parents.
				if s.StartUnixNano+tol < ps.StartUnixNano {
					sk.hit(s.TraceID, opt.MaxExamples)
				}
				if s.Kind == span.KindServer {
					extracts[name] = true
				}
			}
			switch s.Kind {
			case span.KindClient:
				if isDB(s) || hasPrefixKey(s.Attrs, "messaging.") {
					break
				}
				sa.issue(IssuePropagation).of++
				hasServer := false
				for _, c := range t.Children(int(i)) {
					if t.Spans[c].Kind == span.KindServer {
						hasServer = true
						break
					}
				}
				if hasServer {
					clientHasServer[t.Op(int(i))] = true
					injects[name] = true
				} else if len(t.Children(int(i))) == 0 {
					childless = append(childless, spanRef{ti, i})
				}
			case span.KindServer:
				sa.issue(IssuePropagation).of++
				if s.ParentSpanID.IsZero() {
					serverRoots = append(serverRoots, spanRef{ti, i})
				}
			}
		}
	}

	// Pair root server spans with childless client spans of the same name
	// around them.
	byName := map[string][]int{}
	for k, c := range childless {
		byName[trees[c.tree].Spans[c.i].Name] = append(byName[trees[c.tree].Spans[c.i].Name], k)
	}
	matched := make([]bool, len(childless))
	blame := func(svc string, ref spanRef) {
		svcs[svc].issue(IssuePropagation).hit(trees[ref.tree].Spans[ref.i].TraceID, opt.MaxExamples)
	}
	for _, r := range serverRoots {
		rs := &trees[r.tree].Spans[r.i]
		rsvc := trees[r.tree].Service(int(r.i))
		for _, k := range byName[rs.Name] {
			c := childless[k]
			cs := &trees[c.tree].Spans[c.i]
			csvc := trees[c.tree].Service(int(c.i))
			if matched[k] || csvc == rsvc || rs.StartUnixNano+tol < cs.StartUnixNano || rs.EndUnixNano > cs.EndUnixNano+tol {
				continue
			}
			matched[k] = true
			clientOK, serverOK := injects[csvc], extracts[rsvc]
			if !(serverOK && !clientOK) {
				blame(rsvc, r)
			}
			if !(clientOK && !serverOK) {
				blame(csvc, c)
			}
			break
		}
	}
	for k, c := range childless {
		if !matched[k] && clientHasServer[trees[c.tree].Op(int(c.i))] {
			blame(trees[c.tree].Service(int(c.i)), c)
		}
	}

	for name, sa := range svcs {
		sq := ServiceQuality{Service: name, Spans: sa.spans, Traces: sa.traces, Score: 100}
		for v := range sa.versions {
			sq.Versions = append(sq.Versions, v)
		}
		slices.Sort(sq.Versions)
		for _, typ := range []string{IssueOrphans, IssuePropagation, IssueClockSkew, IssueMissingVersion, IssueMissingAttributes} {
			a := sa.issues[typ]
			if a == nil || a.count == 0 || a.of == 0 {
				continue
			}
			qi := QualityIssue{Type: typ, Count: a.count, Of: a.of, Rate: float64(a.count) / float64(a.of), Examples: a.examples, Attributes: a.attrs}
			qi.Penalty = math.Round(10*qualityWeights[typ]*min(1, 5*qi.Rate)) / 10
			qi.Message = issueMessage(typ, qi, a.attrs)
			sq.Score -= qi.Penalty
			sq.Issues = append(sq.Issues, qi)
		}
		sq.Score = math.Round(10*max(sq.Score, 0)) / 10
		rep.Services = append(rep.Services, sq)
	}
	slices.SortFunc(rep.Services, func(a, b ServiceQuality) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.Service, b.Service)
	})
	return rep
}

func versionOf(r *span.Resource) string {
	if r == nil {
		return ""
	}
	return attrString(r.Attrs, "service.version")
}

func issueMessage(typ string, qi QualityIssue, attrs map[string]int) string {
	pct := fmt.Sprintf("%d of %d spans (%.1f%%)", qi.Count, qi.Of, 100*qi.Rate)
	switch typ {
	case IssueOrphans:
		return pct + " have a parent that never arrived (lost, sampled out or sent elsewhere)"
	case IssuePropagation:
		return pct + " break context propagation: calls to an instrumented service without its server span as a child, or server spans starting a new trace while an instrumented caller waits"
	case IssueClockSkew:
		return pct + " start before their parent: clocks disagree between hosts"
	case IssueMissingVersion:
		return pct + " come from a resource without service.version: deployments cannot be told apart"
	case IssueMissingAttributes:
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if c := cmp.Compare(attrs[b], attrs[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		for i, k := range keys {
			keys[i] = fmt.Sprintf("%s (%d)", k, attrs[k])
		}
		return pct + " lack semantic-convention attributes: " + strings.Join(keys, ", ")
	}
	return pct
}

// missingAttrs returns the semantic-convention attributes span s lacks, or
// nil when no rule applies to it (an empty non-nil slice when it has them
// all). HTTP spans (with http.* or url.* attributes) need
// http.request.method; database spans (db.*) db.system.name; RPC spans
// (rpc.*) rpc.system.name and rpc.method; messaging spans (messaging.*)
// messaging.system and messaging.operation.type. The attribute's older
// name (http.method, db.system, rpc.system, messaging.operation) is
// accepted too. Each kind found adds its rule.
func missingAttrs(s *span.Span) []string {
	var out []string
	applies := false
	// need wants one of keys (the current name first, then older ones).
	need := func(keys ...string) {
		applies = true
		for _, k := range keys {
			if _, ok := attr(s.Attrs, k); ok {
				return
			}
		}
		out = append(out, keys[0])
	}
	if hasPrefixKey(s.Attrs, "http.") || hasPrefixKey(s.Attrs, "url.") {
		need("http.request.method", "http.method")
	}
	if hasPrefixKey(s.Attrs, "db.") {
		need("db.system.name", "db.system")
	}
	if hasPrefixKey(s.Attrs, "rpc.") {
		need("rpc.system.name", "rpc.system")
		need("rpc.method")
	}
	if hasPrefixKey(s.Attrs, "messaging.") {
		need("messaging.system")
		need("messaging.operation.type", "messaging.operation")
	}
	if !applies {
		return nil
	}
	if out == nil {
		out = []string{}
	}
	return out
}
