// Package spanmetrics turns accepted spans into RED metrics (rate, errors,
// duration) per service, operation and span kind, and into a service graph
// (edges from client/server and producer/consumer span pairs, with virtual
// nodes for databases, queues and uninstrumented peers). Both are exposed
// in Prometheus format under the names Grafana's APM table and service graph
// read (traces_spanmetrics_*, traces_service_graph_*) and kept as a history
// at one-minute resolution on disk, which Range and Edges query and the
// HTTP API (/api/v1/red, /api/v1/servicegraph) serves.
//
// Observe is on the ingest path: it takes one lock per batch, and in steady
// state (every series already known) it allocates nothing per span. Label
// values are bounded per dimension (beyond the limit they become
// "__other__") and the series in total, so hostile attribute values keep
// memory and series bounded.
package spanmetrics

import (
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"math/bits"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/span"
)

// staleAfter is how long a series or edge may go without spans before it
// is dropped from the Prometheus exposition (and its label values free
// their places in the limits). Its history stays.
const staleAfter = 15 * time.Minute

// tickInterval is how often the background loop writes closed minutes,
// expires pending pairs and evicts stale series.
const tickInterval = 10 * time.Second

// Options carries what the code, not the user, decides.
type Options struct {
	// Dir holds the history's segment files; empty keeps the same frames
	// in memory (tests; bounded only by Retention).
	Dir string
	// Retention deletes history older than this; 0 keeps it forever.
	Retention time.Duration
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// OnSeriesOverflow, when set, is told of every span folded into the
	// overflow series by MaxSeries (a tenant's limit hits).
	OnSeriesOverflow func(n int)
}

// hookCounter is a counter that also tells fn what it counts.
type hookCounter struct {
	prometheus.Counter
	fn func(int)
}

func (c hookCounter) Inc() {
	c.Counter.Inc()
	c.fn(1)
}

// Metrics observes span batches and answers RED and service-graph
// queries. Its methods are safe for concurrent use.
type Metrics struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	retention  time.Duration
	seed       maphash.Seed
	promBounds []time.Duration // cfg.HistogramBuckets
	labelNames []string        // dimension label names

	mu sync.Mutex
	// Guarded by mu:
	table       map[uint64]*entry // by label hash; collisions chained
	nEntries    int
	series      map[Key]*histSeries
	edges       map[EdgeKey]*edgeEntry
	unpaired    map[EdgeKey]uint64
	dropped     map[EdgeKey]uint64
	limService  *limiter
	limOp       *limiter
	limVersion  *limiter
	limPeer     *limiter
	limDims     []*limiter
	openBuckets int // minute buckets held in memory
	liveEdges   int // edges not stale
	graph       graphState
	dimScratch  []string
	res         resInfo // Observe's per-resource scratch
	foldScratch []string

	// flushMu makes a minute either in memory or on disk for a reader:
	// the flush holds it for writing from taking buckets out of memory to
	// having written them; Range and Edges hold it for reading.
	flushMu sync.RWMutex
	disk    *disk

	seriesOverflow prometheus.Counter
	m              *selfMetrics

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open returns span metrics with cfg, loading the history under opts.Dir
// (repairing a torn last frame) and starting the background loop that
// writes closed minutes, compacts hours and applies retention. Close stops
// it. The collectors are registered on opts.Registerer.
func Open(cfg Config, opts Options) (*Metrics, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("spanmetrics config: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Metrics{
		cfg:       cfg,
		log:       opts.Logger.With("component", "spanmetrics"),
		now:       opts.Now,
		retention: opts.Retention,
		seed:      maphash.MakeSeed(),
		table:     make(map[uint64]*entry),
		series:    make(map[Key]*histSeries),
		edges:     make(map[EdgeKey]*edgeEntry),
		unpaired:  make(map[EdgeKey]uint64),
		dropped:   make(map[EdgeKey]uint64),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	for _, s := range cfg.HistogramBuckets {
		m.promBounds = append(m.promBounds, time.Duration(math.Round(s*1e9)))
	}
	for _, d := range cfg.Dimensions {
		m.labelNames = append(m.labelNames, labelName(d))
	}
	m.m = newSelfMetrics()
	lim := func(dim string) *limiter {
		return newLimiter(cfg.MaxValuesPerDimension, m.m.overflow.WithLabelValues(dim))
	}
	m.limService, m.limOp, m.limVersion, m.limPeer = lim("service"), lim("span_name"), lim("service.version"), lim("peer")
	for _, d := range cfg.Dimensions {
		m.limDims = append(m.limDims, lim(d))
	}
	m.seriesOverflow = m.m.overflow.WithLabelValues("series")
	if opts.OnSeriesOverflow != nil {
		m.seriesOverflow = hookCounter{m.seriesOverflow, opts.OnSeriesOverflow}
	}
	m.dimScratch = make([]string, len(cfg.Dimensions))
	m.foldScratch = make([]string, len(cfg.Dimensions))
	m.graph.init()
	dir := opts.Dir
	if dir != "" {
		dir = filepath.Clean(dir)
	}
	d, err := openDisk(dir, m.log, m.m)
	if err != nil {
		return nil, err
	}
	m.disk = d
	m.applyRetention(m.now())
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(collector{m}); err != nil {
			return nil, fmt.Errorf("register span metrics: %w", err)
		}
		if err := m.m.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	go m.loop()
	return m, nil
}

// Close stops the background loop, settles the pending pairs that have
// waited long enough and writes every minute in memory, the current one
// included, to disk. It is idempotent; Observe after Close is ignored.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.closeErr = m.flush(m.now(), true)
	})
	return m.closeErr
}

func (m *Metrics) loop() {
	defer close(m.done)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Tick(m.now())
		}
	}
}

// Now is the time of m's clock (Options.Now).
func (m *Metrics) Now() time.Time { return m.now() }

// Tick runs one round of the background work at now: pairing spans that
// wait for their other side expire, idle series are evicted, closed
// minutes are written to the history, the history is compacted and
// retention applied. The loop Open starts calls it every few seconds;
// callers that drive m with their own clock (Options.Now) call it
// themselves.
func (m *Metrics) Tick(now time.Time) {
	m.mu.Lock()
	m.expirePending(now.UnixNano())
	m.evictStale(now.UnixNano())
	m.mu.Unlock()
	if err := m.flush(now, false); err != nil {
		m.log.Error("write span metrics history", "err", err)
	}
	if err := m.disk.compact(now); err != nil {
		m.log.Error("compact span metrics history", "err", err)
	}
	m.applyRetention(now)
}

func (m *Metrics) applyRetention(now time.Time) {
	if m.retention <= 0 {
		return
	}
	if err := m.disk.deleteBefore(now.Add(-m.retention)); err != nil {
		m.log.Error("apply span metrics retention", "err", err)
	}
}

// entry is one Prometheus series of span metrics (its label values plus
// the service version, which the exposition sums over). Guarded by mu.
type entry struct {
	next    *entry
	hash    uint64
	service string
	op      string
	version string
	kind    span.Kind
	status  span.StatusCode
	dims    []string

	calls    uint64
	size     uint64
	durSum   time.Duration
	promHist []uint64 // len(promBounds)+1
	promEx   []promExemplar
	hs       *histSeries
	lastSeen int64        // unix ns of the last batch
	edges    [2]edgeCache // the last edges whose client span this entry counted
}

// promExemplar is the latest span seen in one Prometheus bucket.
type promExemplar struct {
	trace span.TraceID
	dur   time.Duration
	ts    int64 // unix ns
}

// histSeries holds the open minutes of one history Key. Guarded by mu.
type histSeries struct {
	key  Key
	refs int // entries pointing here
	open openSet
}

// minuteBucket is a Bucket being filled in memory. Guarded by mu.
type minuteBucket struct {
	minute int64 // unix minutes
	calls  uint64
	errors uint64
	durSum time.Duration
	hist   [numBuckets]uint64
	ex     exemplarSet
}

// exemplarSet keeps the slowest span, the last error and the last span.
type exemplarSet struct {
	slow, err, recent Exemplar
	n                 uint8 // 0: empty
	hasErr            bool
}

func (e *exemplarSet) observe(x *Exemplar) {
	if e.n == 0 || x.Duration > e.slow.Duration {
		e.slow = *x
	}
	if x.Error {
		e.err, e.hasErr = *x, true
	}
	e.recent = *x
	e.n = 1
}

// list returns the distinct exemplars: slowest, error, recent.
func (e *exemplarSet) list(max int) []Exemplar {
	if e.n == 0 {
		return nil
	}
	out := make([]Exemplar, 0, 3)
	out = append(out, e.slow)
	if e.hasErr && e.err.SpanID != e.slow.SpanID {
		out = append(out, e.err)
	}
	if len(out) < max && e.recent.SpanID != e.slow.SpanID && (!e.hasErr || e.recent.SpanID != e.err.SpanID) {
		out = append(out, e.recent)
	}
	return out[:min(len(out), max)]
}

func (b *minuteBucket) observe(d time.Duration, isErr bool, x *Exemplar) {
	b.calls++
	if isErr {
		b.errors++
	}
	b.durSum += d
	b.hist[bucketIndex(d)]++
	b.ex.observe(x)
}

// bucket converts b into an exported Bucket.
func (b *minuteBucket) bucket() Bucket {
	h := make([]uint64, numBuckets)
	copy(h, b.hist[:])
	return Bucket{Start: time.Unix(b.minute*60, 0).UTC(), Calls: b.calls, Errors: b.errors, DurationSum: b.durSum, Hist: h, Exemplars: b.ex.list(3)}
}

// openSet is the minute buckets of one series or edge still in memory.
type openSet struct {
	last *minuteBucket
	list []*minuteBucket
}

// maxOpenFactor bounds the minute buckets in memory to this many times
// MaxSeries: a span whose minute would open one more goes to the current
// minute instead.
const maxOpenFactor = 2

func (m *Metrics) bucketFor(o *openSet, minute, nowMinute int64) *minuteBucket {
	if o.last != nil && o.last.minute == minute {
		return o.last
	}
	for _, b := range o.list {
		if b.minute == minute {
			o.last = b
			return b
		}
	}
	if minute != nowMinute && m.openBuckets >= maxOpenFactor*m.cfg.MaxSeries {
		m.m.lateClamped.Inc()
		return m.bucketFor(o, nowMinute, nowMinute)
	}
	b := &minuteBucket{minute: minute}
	o.list = append(o.list, b)
	o.last = b
	m.openBuckets++
	return b
}

func mix(h, x uint64) uint64 {
	return bits.RotateLeft64((h^x)*0x9E3779B97F4A7C15, 29)
}

// resInfo is what Observe derives once per resource.
type resInfo struct {
	res     *span.Resource
	service string
	version string
	hash    uint64
	dims    []string // resource values of the dimensions ("" when absent)
	dimsSet []bool
}

func (m *Metrics) loadResource(ri *resInfo, r *span.Resource) {
	ri.res = r
	ri.service, ri.version = "", ""
	if ri.dims == nil {
		ri.dims = make([]string, len(m.cfg.Dimensions))
		ri.dimsSet = make([]bool, len(m.cfg.Dimensions))
	}
	clear(ri.dims)
	clear(ri.dimsSet)
	if r != nil {
		for i := range r.Attrs {
			a := &r.Attrs[i]
			switch a.Key {
			case "service.name":
				if a.Value.Type == span.TypeString {
					ri.service = a.Value.Str
				}
			case "service.version":
				ri.version = valueString(a.Value)
			}
			for j, d := range m.cfg.Dimensions {
				if a.Key == d {
					ri.dims[j], ri.dimsSet[j] = valueString(a.Value), true
				}
			}
		}
	}
	if ri.service == "" {
		ri.service = "unknown_service"
	}
	ri.hash = mix(maphash.String(m.seed, ri.service), maphash.String(m.seed, ri.version))
}

var smallInts = func() []string {
	s := make([]string, 1000)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return s
}()

// valueString renders an attribute value as a label value without
// allocating for strings, booleans and small integers.
func valueString(v span.Value) string {
	switch v.Type {
	case span.TypeString:
		return v.Str
	case span.TypeBool:
		if v.Bool() {
			return "true"
		}
		return "false"
	case span.TypeInt:
		if n := v.Int(); n >= 0 && n < int64(len(smallInts)) {
			return smallInts[n]
		}
	case span.TypeEmpty:
		return ""
	}
	return v.AsString()
}

// Observe adds the spans of an accepted batch to the metrics, the graph and
// the history. b is not retained: what is kept is copied. Safe for
// concurrent use; a nil Metrics ignores it.
func (m *Metrics) Observe(b *span.Batch) {
	if m == nil || len(b.Spans) == 0 {
		return
	}
	now := m.now()
	nowNs := now.UnixNano()
	nowMinute := nowNs / 60e9
	lo := nowNs - int64(m.maxAge())
	hi := nowNs + int64(10*time.Minute)

	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.stop:
		return
	default:
	}
	ri := &m.res
	ri.res = nil
	first := true
	dims := m.dimScratch
	for i := range b.Spans {
		s := &b.Spans[i]
		if first || s.Resource != ri.res {
			m.loadResource(ri, s.Resource)
			first = false
		}
		h := mix(ri.hash, maphash.String(m.seed, s.Name))
		h = mix(h, uint64(s.Kind)<<8|uint64(s.StatusCode))
		var gi graphAttrs
		needGraph := s.Kind >= span.KindClient || s.Kind == span.KindServer
		// Only client and producer spans name virtual nodes.
		size := spanSize(s, &gi, s.Kind == span.KindClient || s.Kind == span.KindProducer)
		if len(dims) > 0 {
			for j, d := range m.cfg.Dimensions {
				dims[j] = ri.dims[j]
				for k := range s.Attrs {
					if s.Attrs[k].Key == d {
						dims[j] = valueString(s.Attrs[k].Value)
						break
					}
				}
				h = mix(h, maphash.String(m.seed, dims[j]))
			}
		}
		e := m.lookup(h, ri.service, s.Name, ri.version, s.Kind, s.StatusCode, dims)
		if e == nil {
			e = m.create(h, ri.service, s.Name, ri.version, s.Kind, s.StatusCode, dims)
		}
		d := time.Duration(s.Duration())
		isErr := s.StatusCode == span.StatusError
		e.calls++
		e.size += size
		e.durSum += d
		pi := promIndex(m.promBounds, d)
		e.promHist[pi]++
		e.promEx[pi] = promExemplar{trace: s.TraceID, dur: d, ts: nowNs}
		e.lastSeen = nowNs

		minute := nowMinute
		if st := int64(s.StartUnixNano); s.StartUnixNano <= math.MaxInt64 && st >= lo && st <= hi {
			minute = st / 60e9
		}
		x := Exemplar{TraceID: s.TraceID, SpanID: s.SpanID, Duration: d, Error: isErr}
		m.bucketFor(&e.hs.open, minute, nowMinute).observe(d, isErr, &x)

		if needGraph {
			m.observeGraph(s, e, &gi, d, isErr, minute, nowMinute, nowNs)
		}
	}
	if nowNs >= m.graph.nextSweep {
		m.expirePending(nowNs)
	}
}

// maxAge is how far in the past a span's start may be for the history to
// file it under its own minute; older spans count at their arrival.
func (m *Metrics) maxAge() time.Duration {
	if m.retention > 0 {
		return m.retention
	}
	return 30 * 24 * time.Hour
}

func promIndex(bounds []time.Duration, d time.Duration) int {
	lo, hi := 0, len(bounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bounds[mid] < d {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

func (m *Metrics) lookup(h uint64, svc, op, ver string, kind span.Kind, st span.StatusCode, dims []string) *entry {
	for e := m.table[h]; e != nil; e = e.next {
		if e.hash == h && e.kind == kind && e.status == st && e.op == op && e.service == svc && e.version == ver && equalStrings(e.dims, dims) {
			return e
		}
	}
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// create makes the entry for a label set seen for the first time, folding
// values beyond their dimension's limit (or every value, when the series
// are at their limit) into Other, which may land on an existing entry.
func (m *Metrics) create(h uint64, svc, op, ver string, kind span.Kind, st span.StatusCode, dims []string) *entry {
	fsvc, fop, fver := m.limService.admit(svc), m.limOp.admit(op), m.limVersion.admit(ver)
	fdims := m.foldScratch
	for j := range dims {
		fdims[j] = m.limDims[j].admit(dims[j])
	}
	if m.nEntries >= m.cfg.MaxSeries {
		m.seriesOverflow.Inc()
		fsvc, fop, fver = Other, Other, ""
		for j := range fdims {
			fdims[j] = Other
		}
	}
	if fsvc != svc || fop != op || fver != ver || !equalStrings(fdims, dims) {
		h = m.hashLabels(fsvc, fop, fver, kind, st, fdims)
		if e := m.lookup(h, fsvc, fop, fver, kind, st, fdims); e != nil {
			return e
		}
	}
	e := &entry{
		hash:     h,
		service:  m.limService.acquire(fsvc),
		op:       m.limOp.acquire(fop),
		version:  m.limVersion.acquire(fver),
		kind:     kind,
		status:   st,
		promHist: make([]uint64, len(m.promBounds)+1),
		promEx:   make([]promExemplar, len(m.promBounds)+1),
	}
	if len(fdims) > 0 {
		e.dims = make([]string, len(fdims))
		for j := range fdims {
			e.dims[j] = m.limDims[j].acquire(fdims[j])
		}
	}
	k := Key{Service: e.service, Operation: e.op, Kind: kind, Version: e.version}
	hs := m.series[k]
	if hs == nil {
		hs = &histSeries{key: k}
		m.series[k] = hs
	}
	hs.refs++
	e.hs = hs
	e.next = m.table[h]
	m.table[h] = e
	m.nEntries++
	m.m.series.Set(float64(m.nEntries))
	return e
}

func (m *Metrics) hashLabels(svc, op, ver string, kind span.Kind, st span.StatusCode, dims []string) uint64 {
	h := mix(mix(maphash.String(m.seed, svc), maphash.String(m.seed, ver)), maphash.String(m.seed, op))
	h = mix(h, uint64(kind)<<8|uint64(st))
	for _, d := range dims {
		h = mix(h, maphash.String(m.seed, d))
	}
	return h
}

// evictStale drops entries and edges without spans for staleAfter.
func (m *Metrics) evictStale(nowNs int64) {
	cut := nowNs - int64(staleAfter)
	for h, head := range m.table {
		var keep *entry
		for e := head; e != nil; {
			next := e.next
			if e.lastSeen < cut {
				m.limService.release(e.service)
				m.limOp.release(e.op)
				m.limVersion.release(e.version)
				for j, d := range e.dims {
					m.limDims[j].release(d)
				}
				e.hs.refs--
				if e.hs.refs == 0 && len(e.hs.open.list) == 0 {
					delete(m.series, e.hs.key)
				}
				m.nEntries--
			} else {
				e.next = keep
				keep = e
			}
			e = next
		}
		if keep == nil {
			delete(m.table, h)
		} else {
			m.table[h] = keep
		}
	}
	m.m.series.Set(float64(m.nEntries))
	for k, e := range m.edges {
		if !e.stale && e.lastSeen < cut {
			m.releaseEdge(e)
			m.liveEdges--
			if len(e.open.list) == 0 {
				delete(m.edges, k)
			} else {
				e.stale = true
			}
		}
	}
	m.m.edges.Set(float64(m.liveEdges))
}

// spanSize estimates the span's size in OTLP protobuf bytes (what
// traces_spanmetrics_size_total adds up) and, when graph is set, picks the
// attributes the service graph reads in the same pass.
func spanSize(s *span.Span, g *graphAttrs, graph bool) uint64 {
	n := 16 + 2 + 8 + 2 + 18 + 2 + len(s.Name) + 2 + len(s.TraceState) + len(s.StatusMessage) + 4
	if !s.ParentSpanID.IsZero() {
		n += 10
	}
	n += attrsSize(s.Attrs)
	if graph {
		for i := range s.Attrs {
			g.see(&s.Attrs[i])
		}
	}
	for i := range s.Events {
		n += 13 + len(s.Events[i].Name) + attrsSize(s.Events[i].Attrs)
	}
	for i := range s.Links {
		n += 28 + len(s.Links[i].TraceState) + attrsSize(s.Links[i].Attrs)
	}
	return uint64(n)
}

// attrsSize estimates the encoded size of attributes: key and string
// bytes plus 10 bytes of framing and number per attribute.
func attrsSize(attrs []span.Attr) int {
	n := 10 * len(attrs)
	for i := range attrs {
		a := &attrs[i]
		n += len(a.Key) + len(a.Value.Str)
		if a.Value.Type >= span.TypeArray {
			for _, v := range a.Value.Array {
				n += len(v.Str) + 4
			}
			n += attrsSize(a.Value.Map)
		}
	}
	return n
}
