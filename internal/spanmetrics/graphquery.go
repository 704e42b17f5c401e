package spanmetrics

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// Node types of the service graph answer.
const (
	NodeService   = "service"
	NodeDatabase  = "database"
	NodeMessaging = "messaging"
	NodeExternal  = "external"
)

// Node is a node of the service graph over a time range.
type Node struct {
	ID     string // service name or virtual node name
	Type   string // NodeService, NodeDatabase, NodeMessaging or NodeExternal
	Calls  uint64 // services: server and consumer spans; virtual nodes: calls into them
	Errors uint64
}

// GraphEdge is an edge of the service graph with its totals over a range.
type GraphEdge struct {
	Key   EdgeKey
	Total Bucket // Start is the range's start
}

// Graph is the service graph over a time range.
type Graph struct {
	Nodes []Node      // sorted by ID
	Edges []GraphEdge // sorted by client, server, connection type
}

// Graph returns the service graph over the minutes that start in
// [start, end): every edge with its totals, and every node (the services
// with spans in the range and the nodes the edges name) with its calls.
func (m *Metrics) Graph(ctx context.Context, start, end time.Time) (*Graph, error) {
	step, origin := wholeRange(start, end)
	ea, err := m.edgeAcc(ctx, start, end, step, origin)
	if err != nil {
		return nil, err
	}
	ra, err := m.rangeAcc(ctx, nil, start, end, step, origin)
	if err != nil {
		return nil, err
	}
	nodes := map[string]*Node{}
	node := func(id, typ string) *Node {
		n := nodes[id]
		if n == nil {
			n = &Node{ID: id, Type: typ}
			nodes[id] = n
		} else if typ == NodeService {
			n.Type = NodeService // a real service wins over a virtual node of the same name
		}
		return n
	}
	for k, steps := range ra.byKey {
		n := node(k.Service, NodeService)
		if k.Kind != span.KindServer && k.Kind != span.KindConsumer {
			continue
		}
		for _, b := range steps {
			n.Calls += b.calls
			n.Errors += b.errors
		}
	}
	g := &Graph{}
	for _, k := range slices.SortedFunc(maps.Keys(ea.byKey), compareEdgeKey) {
		var tot minuteBucket
		for _, b := range ea.byKey[k] {
			tot.merge(b)
		}
		b := tot.bucket()
		b.Start = start
		g.Edges = append(g.Edges, GraphEdge{Key: k, Total: b})
		node(k.Client, NodeService)
	}
	for _, e := range g.Edges {
		typ := NodeService
		switch e.Key.ConnectionType {
		case ConnDatabase:
			typ = NodeDatabase
		case ConnMessaging:
			typ = NodeMessaging
		case ConnVirtual:
			typ = NodeExternal
		}
		if n := nodes[e.Key.Server]; n != nil && n.Type == NodeService {
			continue // a service: its calls are its own spans'
		}
		if typ == NodeService {
			node(e.Key.Server, typ)
			continue
		}
		n := node(e.Key.Server, typ)
		n.Calls += e.Total.Calls
		n.Errors += e.Total.Errors
	}
	for _, id := range slices.Sorted(maps.Keys(nodes)) {
		g.Nodes = append(g.Nodes, *nodes[id])
	}
	return g, nil
}

// wholeRange returns a step and origin that make [start, end) one bucket.
func wholeRange(start, end time.Time) (time.Duration, int64) {
	origin := floorDiv(start.Unix(), 60) * 60
	span := end.Unix() - origin + 60
	step := time.Duration((span+59)/60) * time.Minute
	return max(step, time.Minute), origin
}

// Dependency is one caller→callee pair with its calls over a time range,
// summed over connection types, as Jaeger's and Zipkin's dependency
// endpoints report them.
type Dependency struct {
	Parent, Child string
	CallCount     uint64
	ErrorCount    uint64
}

// Dependencies returns the caller→callee pairs of the service graph over
// [start, end), sorted by parent and child.
func (m *Metrics) Dependencies(ctx context.Context, start, end time.Time) ([]Dependency, error) {
	step, origin := wholeRange(start, end)
	ea, err := m.edgeAcc(ctx, start, end, step, origin)
	if err != nil {
		return nil, err
	}
	type pc struct{ p, c string }
	sum := map[pc]*Dependency{}
	for k, steps := range ea.byKey {
		d := sum[pc{k.Client, k.Server}]
		if d == nil {
			d = &Dependency{Parent: k.Client, Child: k.Server}
			sum[pc{k.Client, k.Server}] = d
		}
		for _, b := range steps {
			d.CallCount += b.calls
			d.ErrorCount += b.errors
		}
	}
	out := make([]Dependency, 0, len(sum))
	for _, d := range sum {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Dependency) int {
		if a.Parent != b.Parent {
			return cmpStr(a.Parent, b.Parent)
		}
		return cmpStr(a.Child, b.Child)
	})
	return out, nil
}
