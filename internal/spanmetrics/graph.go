package spanmetrics

import (
	"encoding/binary"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/clew-dev/clew/internal/span"
)

// graphAttrs are the attributes of a span that name a virtual node.
type graphAttrs struct {
	dbSystem, dbSystemLegacy string // db.system.name, db.system
	messaging                string // messaging.system
	peerService              string // peer.service
	serverAddress            string // server.address
	netPeerName              string // net.peer.name (legacy)
}

func (g *graphAttrs) see(a *span.Attr) {
	if a.Value.Type != span.TypeString || a.Value.Str == "" {
		return
	}
	switch a.Key {
	case "db.system.name":
		g.dbSystem = a.Value.Str
	case "db.system":
		g.dbSystemLegacy = a.Value.Str
	case "messaging.system":
		g.messaging = a.Value.Str
	case "peer.service":
		g.peerService = a.Value.Str
	case "server.address":
		g.serverAddress = a.Value.Str
	case "net.peer.name":
		g.netPeerName = a.Value.Str
	}
}

// peer returns the virtual node a client or producer span calls when no
// server or consumer span pairs with it, and the connection type, or "".
func (g *graphAttrs) peer() (string, string) {
	switch {
	case g.messaging != "":
		return g.messaging, ConnMessaging
	case g.peerService != "":
		return g.peerService, ConnVirtual
	case g.serverAddress != "":
		return g.serverAddress, ConnVirtual
	case g.netPeerName != "":
		return g.netPeerName, ConnVirtual
	}
	return "", ""
}

// pkey names a span: the client or producer span by its own ID, the server
// or consumer span by its parent's (or a link's).
type pkey struct {
	trace span.TraceID
	span  span.SpanID
}

// hash folds k into the 64-bit map key of the pending tables (seeded, so
// that chosen IDs cannot aim at collisions). A lookup checks the IDs it
// can (client spans, and server spans found through their parent).
func (k pkey) hash(seed uint64) uint64 {
	lo := binary.LittleEndian.Uint64(k.trace[:8])
	hi := binary.LittleEndian.Uint64(k.trace[8:])
	return mix(mix(seed^lo, hi), binary.LittleEndian.Uint64(k.span[:]))
}

// pending is a span waiting for its partner.
type pending struct {
	expires   int64  // unix ns
	entry     *entry // the span's RED entry: caches its edges
	trace     span.TraceID
	spanID    span.SpanID
	parent    span.SpanID
	service   string // interned: the entry's
	peer      string // interned; client side only
	peerConn  string
	start     int64 // unix minute of the bucket
	dur       time.Duration
	err       bool
	messaging bool // producer or consumer
	client    bool
	done      bool // paired (a consumer may still sit under its other keys)
	refs      int  // map entries pointing here
}

// graphState pairs spans. Guarded by Metrics.mu.
type graphState struct {
	clients   map[uint64]*pending // client and producer spans by pkey.hash of their span ID
	servers   map[uint64]*pending // server and consumer spans by pkey.hash of parent or link
	seed      uint64
	free      []*pending
	peers     map[string]string // interned peer names
	nextSweep int64             // unix ns of the next expiry sweep
}

func (g *graphState) init() {
	g.clients = make(map[uint64]*pending)
	g.servers = make(map[uint64]*pending)
	g.seed = rand.Uint64()
	g.peers = make(map[string]string)
}

func (g *graphState) alloc() *pending {
	if n := len(g.free); n > 0 {
		p := g.free[n-1]
		g.free = g.free[:n-1]
		return p
	}
	return new(pending)
}

// intern returns the kept copy of a peer name. The table is cleared when it
// grows past max: the names in pending spans stay valid, they are strings.
func (g *graphState) intern(s string, max int) string {
	if v, ok := g.peers[s]; ok {
		return v
	}
	if len(g.peers) >= max {
		clear(g.peers)
	}
	v := strings.Clone(s)
	g.peers[v] = v
	return v
}

const maxLinkKeys = 4

// observeGraph pairs s with its partner or leaves it waiting. Called with
// mu held, for client, server, producer and consumer spans.
func (m *Metrics) observeGraph(s *span.Span, e *entry, ga *graphAttrs, d time.Duration, isErr bool, minute, nowMinute, nowNs int64) {
	g := &m.graph
	svc := e.service
	me := pending{entry: e, trace: s.TraceID, spanID: s.SpanID, service: svc, start: minute, dur: d, err: isErr,
		messaging: s.Kind == span.KindProducer || s.Kind == span.KindConsumer}
	switch s.Kind {
	case span.KindClient, span.KindProducer:
		me.client = true
		if s.Kind == span.KindClient {
			if db := ga.dbSystem; db != "" || ga.dbSystemLegacy != "" {
				if db == "" {
					db = ga.dbSystemLegacy
				}
				// Databases report no server spans: the edge is known now.
				m.edgeCall(EdgeKey{Client: svc, Server: db, ConnectionType: ConnDatabase}, &me, nil, nowMinute, nowNs)
				return
			}
		}
		k := pkey{s.TraceID, s.SpanID}.hash(g.seed)
		if p := g.servers[k]; p != nil && (p.trace != s.TraceID || p.parent == s.SpanID || p.messaging) {
			delete(g.servers, k)
			if !p.done {
				p.done = true
				m.pair(&me, p, nowMinute, nowNs)
				g.unref(p)
				return
			}
			g.unref(p)
		}
		if _, dup := g.clients[k]; dup { // (or, once in 2^64, another span)
			return // the same span again
		}
		if !m.pendingRoom(svc, "") {
			return
		}
		if name, conn := ga.peer(); name != "" {
			me.peer, me.peerConn = g.intern(name, 4*m.cfg.MaxValuesPerDimension), conn
		}
		p := g.alloc()
		*p = me
		p.expires = nowNs + int64(m.cfg.PairingWait)
		p.refs = 1
		g.clients[k] = p
	case span.KindServer, span.KindConsumer:
		me.parent = s.ParentSpanID
		var keys [1 + maxLinkKeys]uint64
		n := 0
		if !s.ParentSpanID.IsZero() {
			keys[n] = pkey{s.TraceID, s.ParentSpanID}.hash(g.seed)
			n++
		}
		if s.Kind == span.KindConsumer {
			for i := range s.Links {
				if n == len(keys) {
					break
				}
				if !s.Links[i].SpanID.IsZero() {
					keys[n] = pkey{s.Links[i].TraceID, s.Links[i].SpanID}.hash(g.seed)
					n++
				}
			}
		}
		if n == 0 {
			return // a root: nobody instrumented called it
		}
		for i, k := range keys[:n] {
			byParent := i == 0 && !s.ParentSpanID.IsZero()
			if c := g.clients[k]; c != nil && (!byParent || c.trace == s.TraceID && c.spanID == s.ParentSpanID) {
				delete(g.clients, k)
				m.pair(c, &me, nowMinute, nowNs)
				g.unref(c)
				return
			}
		}
		if !m.pendingRoom("", svc) {
			return
		}
		p := g.alloc()
		*p = me
		p.expires = nowNs + int64(m.cfg.PairingWait)
		for _, k := range keys[:n] {
			if q := g.servers[k]; q != nil {
				if !q.done {
					continue // another span waits on this parent: keep the first
				}
				g.unref(q)
			}
			g.servers[k] = p
			p.refs++
		}
		if p.refs == 0 {
			g.free = append(g.free, p)
		}
	}
}

// unref drops one map reference to p, recycling it after the last.
func (g *graphState) unref(p *pending) {
	p.refs--
	if p.refs <= 0 {
		*p = pending{}
		g.free = append(g.free, p)
	}
}

// pendingRoom reports whether one more span may wait, counting a drop if
// not.
func (m *Metrics) pendingRoom(client, server string) bool {
	if len(m.graph.clients)+len(m.graph.servers) < m.cfg.MaxPendingPairs {
		return true
	}
	m.dropped[EdgeKey{Client: client, Server: server}]++
	return false
}

// sweepEvery is how often Observe looks for pending spans past their wait.
const sweepEvery = int64(time.Second)

// expirePending settles the spans that waited PairingWait: a client or
// producer span with a peer becomes a call to a virtual node, anything else
// counts as unpaired. It walks the pending spans, so Observe calls it at
// most once per sweepEvery.
func (m *Metrics) expirePending(nowNs int64) {
	g := &m.graph
	g.nextSweep = nowNs + sweepEvery
	nowMinute := nowNs / 60e9
	for k, p := range g.clients {
		if p.expires > nowNs {
			continue
		}
		delete(g.clients, k)
		if p.peer != "" {
			m.edgeCall(EdgeKey{Client: p.service, Server: p.peer, ConnectionType: p.peerConn}, p, nil, nowMinute, nowNs)
		} else {
			m.unpaired[EdgeKey{Client: p.service}]++
		}
		g.unref(p)
	}
	for k, p := range g.servers {
		if p.expires > nowNs {
			continue
		}
		delete(g.servers, k)
		if !p.done {
			p.done = true // counted once, under its first key
			m.unpaired[EdgeKey{Server: p.service}]++
		}
		g.unref(p)
	}
	m.m.pending.Set(float64(len(g.clients) + len(g.servers)))
}

// pair records the call from client c to server s.
func (m *Metrics) pair(c, s *pending, nowMinute, nowNs int64) {
	conn := ConnService
	if c.messaging || s.messaging {
		conn = ConnMessaging
	}
	m.edgeCall(EdgeKey{Client: c.service, Server: s.service, ConnectionType: conn}, c, s, nowMinute, nowNs)
}

// edgeEntry is one edge: its Prometheus counters and its open minutes.
// Guarded by mu.
type edgeEntry struct {
	key        EdgeKey
	calls      uint64
	failed     uint64
	clientHist []uint64 // len(promBounds)+1
	serverHist []uint64
	clientSum  time.Duration
	serverSum  time.Duration
	clientN    uint64
	serverN    uint64
	clientEx   []promExemplar
	serverEx   []promExemplar
	open       openSet
	lastSeen   int64
	virtual    bool // Server is a virtual node (held in limPeer)
	stale      bool // evicted from the exposition; kept until its minutes are written
}

// edgeCall counts one call on edge k; c is the client side (nil when only
// the server is known), s the server side (nil for a virtual node).
func (m *Metrics) edgeCall(k EdgeKey, c, s *pending, nowMinute, nowNs int64) {
	// The client's RED entry remembers its last edges, which spares
	// hashing three strings per call.
	var cache *[2]edgeCache
	if c != nil && c.entry != nil {
		cache = &c.entry.edges
	}
	var e *edgeEntry
	if cache != nil {
		for _, x := range cache {
			if x.e != nil && !x.e.stale && x.server == k.Server && x.conn == k.ConnectionType && x.client == k.Client {
				e = x.e
				break
			}
		}
	}
	if e == nil {
		e = m.edges[k]
		if e == nil || e.stale {
			e = m.newEdge(k)
		}
		if cache != nil {
			cache[1] = cache[0]
			// e.key holds owned copies; k's strings may alias the request.
			// (A folded edge never hits the cache: its key is __other__.)
			cache[0] = edgeCache{client: e.key.Client, server: e.key.Server, conn: e.key.ConnectionType, e: e}
		}
	}
	e.lastSeen = nowNs
	e.calls++
	isErr := c != nil && c.err || s != nil && s.err
	if isErr {
		e.failed++
	}
	ref := c
	if ref == nil {
		ref = s
	}
	if c != nil {
		i := promIndex(m.promBounds, c.dur)
		e.clientHist[i]++
		e.clientSum += c.dur
		e.clientN++
		e.clientEx[i] = promExemplar{trace: c.trace, dur: c.dur, ts: nowNs}
	}
	if s != nil {
		i := promIndex(m.promBounds, s.dur)
		e.serverHist[i]++
		e.serverSum += s.dur
		e.serverN++
		e.serverEx[i] = promExemplar{trace: s.trace, dur: s.dur, ts: nowNs}
	}
	x := Exemplar{TraceID: ref.trace, SpanID: ref.spanID, Duration: ref.dur, Error: isErr}
	m.bucketFor(&e.open, ref.start, nowMinute).observe(ref.dur, isErr, &x)
}

// edgeCache is one remembered edge of a RED entry.
type edgeCache struct {
	client, server, conn string // the unfolded key
	e                    *edgeEntry
}

// newEdge returns the entry for k, folding names beyond their limits.
func (m *Metrics) newEdge(k EdgeKey) *edgeEntry {
	virtual := k.ConnectionType == ConnDatabase || k.ConnectionType == ConnVirtual
	serverLim := m.limService
	if virtual {
		serverLim = m.limPeer
	}
	f := EdgeKey{Client: m.limService.admit(k.Client), Server: serverLim.admit(k.Server), ConnectionType: k.ConnectionType}
	if m.liveEdges >= m.cfg.MaxSeries {
		m.seriesOverflow.Inc()
		f.Client, f.Server = Other, Other
	}
	if e := m.edges[f]; e != nil && !e.stale {
		return e
	}
	old := m.edges[f]
	e := &edgeEntry{
		key:        EdgeKey{Client: m.limService.acquire(f.Client), Server: serverLim.acquire(f.Server), ConnectionType: f.ConnectionType},
		clientHist: make([]uint64, len(m.promBounds)+1),
		serverHist: make([]uint64, len(m.promBounds)+1),
		clientEx:   make([]promExemplar, len(m.promBounds)+1),
		serverEx:   make([]promExemplar, len(m.promBounds)+1),
		virtual:    virtual,
	}
	if old != nil {
		e.open = old.open // a stale edge's unwritten minutes carry over
	}
	m.edges[e.key] = e // the owned copy: f's strings may alias the request
	m.liveEdges++
	m.m.edges.Set(float64(m.liveEdges))
	return e
}

func (m *Metrics) releaseEdge(e *edgeEntry) {
	m.limService.release(e.key.Client)
	if e.virtual {
		m.limPeer.release(e.key.Server)
	} else {
		m.limService.release(e.key.Server)
	}
}
