package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// maxBackoff caps the wait between two retries of one request.
const maxBackoff = 5 * time.Second

// Sidecar is the JSON written next to the trace ID file: the queries the
// benchmark runs and trace IDs to fetch.
type Sidecar struct {
	Shape string `json:"shape"`
	Seed  uint64 `json:"seed"`
	// Traces and Spans count delivered traces and accepted spans.
	Traces int64 `json:"traces"`
	Spans  int64 `json:"spans"`
	// Needle matches exactly one trace; nil when that trace was not
	// delivered.
	Needle *Query `json:"needle"`
	// Broad matches many traces.
	Broad Query `json:"broad"`
	// SampleTraceIDs holds up to 50 delivered trace IDs spread over the run.
	SampleTraceIDs []string `json:"sampleTraceIDs"`
	// SampleTraceSpans holds the span count of each sample trace.
	SampleTraceSpans []int `json:"sampleTraceSpans"`
}

// stats are the run's shared counters.
type stats struct {
	requests, sent, accepted, rejected, failed, failedReqs atomic.Int64
	traces, retries, retriedReqs                           atomic.Int64

	mu     sync.Mutex
	errors []string // guarded by mu
}

func (s *stats) addError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := err.Error()
	if len(s.errors) < 10 && !slices.Contains(s.errors, msg) {
		s.errors = append(s.errors, msg)
	}
}

// traceLog writes delivered trace IDs and keeps the needle and a sample.
type traceLog struct {
	mu     sync.Mutex
	w      *bufio.Writer // guarded by mu; nil when no file was asked for
	f      *os.File
	needle *TraceRef  // guarded by mu
	sample []TraceRef // guarded by mu; traces whose index is a multiple of stride
	stride int64      // guarded by mu
	buf    []byte     // guarded by mu
}

const sampleSize = 50

func (l *traceLog) add(refs []TraceRef) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range refs {
		ref := refs[i]
		if ref.Needle {
			l.needle = &ref
		}
		if ref.Index%l.stride == 0 {
			l.sample = append(l.sample, ref)
			if len(l.sample) > 4*sampleSize {
				l.stride *= 2
				l.sample = slices.DeleteFunc(l.sample, func(r TraceRef) bool { return r.Index%l.stride != 0 })
			}
		}
		if l.w != nil {
			l.buf = append(l.buf[:0], ref.ID.String()...)
			l.buf = append(l.buf, '\n')
			if _, err := l.w.Write(l.buf); err != nil {
				return fmt.Errorf("write trace ids: %w", err)
			}
		}
	}
	return nil
}

// finish closes the ID file and writes the sidecar.
func (l *traceLog) finish(path string, sc Sidecar) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return nil
	}
	err := l.w.Flush()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write trace ids: %w", err)
	}
	slices.SortFunc(l.sample, func(a, b TraceRef) int { return int(a.Index - b.Index) })
	sc.SampleTraceIDs = []string{}
	sc.SampleTraceSpans = []int{}
	n := min(sampleSize, len(l.sample))
	for i := range n {
		ref := l.sample[i*len(l.sample)/n]
		sc.SampleTraceIDs = append(sc.SampleTraceIDs, ref.ID.String())
		sc.SampleTraceSpans = append(sc.SampleTraceSpans, ref.Spans)
	}
	if l.needle != nil {
		sc.Needle.TraceID = l.needle.ID.String()
	} else {
		sc.Needle = nil
	}
	b, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return fmt.Errorf("encode sidecar: %w", err)
	}
	if err := os.WriteFile(path+".json", append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	return nil
}

// errGiveUp marks a request that kept failing with retryable errors for
// longer than Config.RetryMax; it ends the run.
var errGiveUp = errors.New("give up retrying")

// Run sends load as cfg describes, writing a progress line every second to
// progress unless cfg.Quiet. It returns the report, also when the run ends
// early with an error: a request retried for longer than cfg.RetryMax, a
// failed write of the trace ID file, or ctx being cancelled.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().Add(-5 * time.Second)
	}
	if cfg.retryInitial <= 0 {
		cfg.retryInitial = 100 * time.Millisecond
	}
	gen, err := newGenerator(cfg)
	if err != nil {
		return nil, err
	}
	exp, err := newExporter(cfg)
	if err != nil {
		return nil, err
	}
	defer exp.close()

	tl := &traceLog{stride: 1}
	if cfg.TraceIDsOut != "" {
		f, err := os.Create(cfg.TraceIDsOut)
		if err != nil {
			return nil, fmt.Errorf("create trace id file: %w", err)
		}
		tl.f, tl.w = f, bufio.NewWriterSize(f, 64<<10)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	var fatalMu sync.Mutex
	var fatal error
	fail := func(err error) {
		fatalMu.Lock()
		if fatal == nil {
			fatal = err
		}
		fatalMu.Unlock()
		halt()
	}

	// The producer encodes requests ahead of the senders; the channel
	// bounds how far.
	reqs := make(chan *Request, 2*cfg.Concurrency)
	var producerDone sync.WaitGroup
	producerDone.Go(func() {
		defer close(reqs)
		gen.generate(func(r *Request) bool {
			select {
			case reqs <- r:
				return true
			case <-stop:
				return false
			case <-ctx.Done():
				return false
			}
		})
	})

	st := &stats{}
	var lim *bucket
	if cfg.Rate > 0 {
		lim = newBucket(cfg.Rate)
	}
	begin := time.Now()
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, halt)
		defer t.Stop()
	}
	go func() {
		select {
		case <-ctx.Done():
			halt()
		case <-stop:
		}
	}()

	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if !cfg.Quiet && progress != nil {
		progressWG.Go(func() { reportProgress(progress, st, begin, progressDone) })
	}

	hists := make([]*histogram, cfg.Concurrency)
	var senders sync.WaitGroup
	for i := range cfg.Concurrency {
		h := newHistogram()
		hists[i] = h
		s := &sender{cfg: cfg, exp: exp, st: st, tl: tl, hist: h, stop: stop,
			rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
		senders.Go(func() {
			for req := range reqs {
				select {
				case <-stop:
					return
				default:
				}
				if lim != nil && !lim.wait(ctx, stop, req.Spans) {
					return
				}
				if err := s.deliver(ctx, req); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	senders.Wait()
	elapsed := time.Since(begin)
	halt()
	producerDone.Wait()
	close(progressDone)
	progressWG.Wait()

	all := newHistogram()
	for _, h := range hists {
		all.merge(h)
	}
	rep := &Report{
		Shape:           cfg.Shape,
		Protocol:        cfg.Protocol,
		Endpoint:        cfg.Endpoint,
		Seed:            cfg.Seed,
		Requests:        st.requests.Load(),
		Traces:          st.traces.Load(),
		SentSpans:       st.sent.Load(),
		AcceptedSpans:   st.accepted.Load(),
		RejectedSpans:   st.rejected.Load(),
		FailedSpans:     st.failed.Load(),
		FailedRequests:  st.failedReqs.Load(),
		RetriedRequests: st.retriedReqs.Load(),
		Retries:         st.retries.Load(),
		ElapsedSeconds:  elapsed.Seconds(),
		Latency:         all.summary(),
		Errors:          st.errors,
	}
	if elapsed > 0 {
		rep.SpansPerSecond = float64(rep.AcceptedSpans) / elapsed.Seconds()
	}

	key, value := gen.shape.needleAttr()
	sc := Sidecar{
		Shape:  cfg.Shape,
		Seed:   cfg.Seed,
		Traces: rep.Traces,
		Spans:  rep.AcceptedSpans,
		Needle: &Query{Service: gen.needleService, Attr: key + "=" + value},
		Broad:  gen.shape.broad(),
	}
	if err := tl.finish(cfg.TraceIDsOut, sc); err != nil && fatal == nil {
		fatal = err
	}
	if fatal == nil && ctx.Err() != nil {
		fatal = fmt.Errorf("run loadgen: %w", ctx.Err())
	}
	return rep, fatal
}

// sender delivers requests with retries. Each sender goroutine owns one.
type sender struct {
	cfg  Config
	exp  exporter
	st   *stats
	tl   *traceLog
	hist *histogram
	stop <-chan struct{}
	rnd  *rand.Rand // jitter
}

// deliver sends req until it is delivered, fails permanently or its retry
// budget runs out. Only the last case, and a failed trace ID write, return an
// error.
func (s *sender) deliver(ctx context.Context, req *Request) error {
	s.st.requests.Add(1)
	s.st.sent.Add(int64(req.Spans))
	first := time.Now()
	backoff := s.cfg.retryInitial
	for attempt := 0; ; attempt++ {
		t0 := time.Now()
		res := s.exp.export(ctx, req.Body)
		s.hist.record(time.Since(t0))
		if res.err == nil {
			s.st.accepted.Add(int64(req.Spans) - res.rejected)
			s.st.rejected.Add(res.rejected)
			if res.rejected > 0 || res.message != "" {
				s.st.addError(fmt.Errorf("partial success: %d rejected: %s", res.rejected, res.message))
			}
			s.st.traces.Add(int64(len(req.Traces)))
			return s.tl.add(req.Traces)
		}
		s.st.addError(res.err)
		if !res.retryable || ctx.Err() != nil {
			s.st.failed.Add(int64(req.Spans))
			s.st.failedReqs.Add(1)
			return nil
		}
		// Full jitter around the exponential step: [0.5, 1.5) × backoff.
		wait := time.Duration((0.5 + s.rnd.Float64()) * float64(backoff))
		if res.retryAfter > 0 {
			wait = res.retryAfter
		}
		if time.Since(first)+wait > s.cfg.RetryMax {
			s.st.failed.Add(int64(req.Spans))
			s.st.failedReqs.Add(1)
			return fmt.Errorf("%w after %v: %w", errGiveUp, time.Since(first).Round(time.Millisecond), res.err)
		}
		s.st.retries.Add(1)
		if attempt == 0 {
			s.st.retriedReqs.Add(1)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.st.failed.Add(int64(req.Spans))
			s.st.failedReqs.Add(1)
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// reportProgress prints sent, accepted and the rate once a second until done
// closes.
func reportProgress(w io.Writer, st *stats, begin time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last int64
	lastT := begin
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			acc := st.accepted.Load()
			fmt.Fprintf(w, "loadgen: %4.0fs sent %d accepted %d  %.0f spans/s (avg %.0f)  retries %d failed %d\n",
				now.Sub(begin).Seconds(), st.sent.Load(), acc,
				float64(acc-last)/now.Sub(lastT).Seconds(), float64(acc)/now.Sub(begin).Seconds(),
				st.retries.Load(), st.failed.Load())
			last, lastT = acc, now
		}
	}
}
