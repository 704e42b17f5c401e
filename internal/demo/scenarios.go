package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// scenarioID numbers the fault scenarios; faults keeps one switch per ID.
type scenarioID int

const (
	scServiceLatency scenarioID = iota
	scOperationLatency
	scErrorRate
	scBadDeployment
	scNPlusOne
	scSlowDependency
	scRetryStorm
	scDropContext
	numScenarios
)

// Scenario describes one injectable fault and where it acts. The fields
// other than Description are what its ground-truth record carries.
type Scenario struct {
	id scenarioID
	// Name is what --scenario and the control API call it.
	Name string `json:"name"`
	// Description says what changes when it is on.
	Description string `json:"description"`
	// Service is the service whose code misbehaves.
	Service string `json:"service"`
	// Operation is the span name that shows the fault first; "*" is every
	// operation of the service.
	Operation string `json:"operation"`
	// Version is the service.version the fault is confined to, if any.
	Version string `json:"version"`
	// Attribute is a clew search condition (the attr parameter of
	// /api/v1/search) that selects the affected spans.
	Attribute string `json:"attribute"`
}

const (
	checkoutStableVersion = "1.4.2"
	checkoutCanaryVersion = "1.5.0"
)

// scenarioList is in the order docs/demo.md and GET /scenarios show it.
var scenarioList = []Scenario{
	{id: scServiceLatency, Name: "service-latency",
		Description: "every inventory handler spends about 150 ms more before answering (CPU starvation); the time shows as self time of inventory's server spans",
		Service:     svcInventory, Operation: "*", Attribute: "resource:service.name=inventory"},
	{id: scOperationLatency, Name: "operation-latency",
		Description: "catalog's GetProduct takes about 120 ms longer; the other catalog operations are unchanged",
		Service:     svcCatalog, Operation: opGetProduct, Attribute: `rpc.method="` + opGetProduct + `"`},
	{id: scErrorRate, Name: "error-rate",
		Description: "25% of cart's add-item requests fail: the redis write times out, the handler answers 503 and records the exception",
		Service:     svcCart, Operation: "POST /carts/{user}/items", Attribute: "http.response.status_code=503"},
	{id: scBadDeployment, Name: "bad-deployment",
		Description: "checkout " + checkoutCanaryVersion + " replaces one of its three " + checkoutStableVersion + " instances; on that version PlaceOrder runs a new promotions code path that is about 250 ms slower and fails 5% of the time",
		Service:     svcCheckout, Operation: opPlaceOrder, Version: checkoutCanaryVersion, Attribute: "resource:service.version=" + checkoutCanaryVersion},
	{id: scNPlusOne, Name: "n-plus-one",
		Description: "catalog's ListProducts queries the product IDs first and then each product with its own SELECT (N+1 queries) instead of one query",
		Service:     svcCatalog, Operation: opListProducts, Attribute: `db.query.text="` + queryProductByID + `"`},
	{id: scSlowDependency, Name: "slow-dependency",
		Description: "the external payment provider (an uninstrumented HTTP server payment calls) answers about 600 ms slower; only payment's client span shows where the time goes",
		Service:     svcPayment, Operation: "POST /v1/charges", Attribute: "url.template=/v1/charges"},
	{id: scRetryStorm, Name: "retry-storm",
		Description: "the payment provider fails 60% of charges with 503; payment retries it up to 3 times and checkout retries payment up to 3 times, without backoff, so one order makes up to 9 provider calls",
		Service:     svcPayment, Operation: "POST /v1/charges", Attribute: "http.request.resend_count>=1"},
	{id: scDropContext, Name: "drop-context",
		Description: "payment's propagator is misconfigured: it neither reads nor writes W3C trace context, so its server spans start new traces and checkout's calls to it have no server child",
		Service:     svcPayment, Operation: "POST /charges", Attribute: ""},
}

func lookupScenario(name string) (Scenario, bool) {
	i := slices.IndexFunc(scenarioList, func(s Scenario) bool { return s.Name == name })
	if i < 0 {
		return Scenario{}, false
	}
	return scenarioList[i], true
}

func unknownScenario(name string) error {
	return fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(ScenarioNames(), ", "))
}

// ScenarioNames lists the scenario names in documentation order.
func ScenarioNames() []string {
	names := make([]string, len(scenarioList))
	for i, s := range scenarioList {
		names[i] = s.Name
	}
	return names
}

// faults holds the switches the services read on every request.
type faults struct {
	sw [numScenarios]atomic.Bool
}

func (f *faults) on(id scenarioID) bool { return f.sw[id].Load() }

// GroundTruth is one episode of a scenario: when it was on and what it
// affected. ended_at is null while the scenario is still on.
type GroundTruth struct {
	Scenario  string     `json:"scenario"`
	Service   string     `json:"service"`
	Operation string     `json:"operation"`
	Version   string     `json:"version"`
	Attribute string     `json:"attribute"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
}

// groundTruth keeps every episode in memory and appends each change to a
// JSON-lines file: one line when a scenario starts (ended_at null) and one
// when it ends (both times set). A reader keeps the last line per
// (scenario, started_at).
type groundTruth struct {
	mu       sync.Mutex
	f        *os.File
	episodes []GroundTruth
	open     map[string]int // scenario name → index of its open episode
}

func openGroundTruth(path string) (*groundTruth, error) {
	g := &groundTruth{open: map[string]int{}}
	if path == "" {
		return g, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create ground-truth directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open ground-truth file: %w", err)
	}
	g.f = f
	return g, nil
}

// record starts or ends the episode of s. It reports whether anything
// changed: enabling an enabled scenario does not start a second episode.
func (g *groundTruth) record(s Scenario, enable bool, now time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	i, isOpen := g.open[s.Name]
	switch {
	case enable && isOpen, !enable && !isOpen:
		return false, nil
	case enable:
		g.episodes = append(g.episodes, GroundTruth{Scenario: s.Name, Service: s.Service, Operation: s.Operation,
			Version: s.Version, Attribute: s.Attribute, StartedAt: now.UTC()})
		i = len(g.episodes) - 1
		g.open[s.Name] = i
	default:
		end := now.UTC()
		g.episodes[i].EndedAt = &end
		delete(g.open, s.Name)
	}
	if g.f == nil {
		return true, nil
	}
	line, err := json.Marshal(g.episodes[i])
	if err != nil {
		return true, err
	}
	if _, err := g.f.Write(append(line, '\n')); err != nil {
		return true, fmt.Errorf("append ground truth: %w", err)
	}
	return true, nil
}

func (g *groundTruth) list() []GroundTruth {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]GroundTruth, len(g.episodes))
	copy(out, g.episodes)
	return out
}

func (g *groundTruth) since(name string) *time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if i, ok := g.open[name]; ok {
		t := g.episodes[i].StartedAt
		return &t
	}
	return nil
}

func (g *groundTruth) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	g.f = nil
	return err
}

// GroundTruth returns every scenario episode so far, oldest first.
func (d *Demo) GroundTruth() []GroundTruth { return d.truth.list() }

// SetScenario switches a scenario on or off and records its ground truth.
// Switching it to the state it is in changes nothing.
func (d *Demo) SetScenario(name string, enable bool) error {
	s, ok := lookupScenario(name)
	if !ok {
		return unknownScenario(name)
	}
	// The ground truth is written first when a scenario starts and last
	// when it ends, so the recorded interval covers every affected span.
	if enable {
		changed, err := d.truth.record(s, true, time.Now())
		d.faults.sw[s.id].Store(true)
		if changed {
			d.log.Info("scenario on", "scenario", name, "service", s.Service, "operation", s.Operation)
		}
		return err
	}
	d.faults.sw[s.id].Store(false)
	changed, err := d.truth.record(s, false, time.Now())
	if changed {
		d.log.Info("scenario off", "scenario", name)
	}
	return err
}

// scenarioState is one row of GET /scenarios.
type scenarioState struct {
	Scenario
	Enabled bool       `json:"enabled"`
	Since   *time.Time `json:"since"`
}

func (d *Demo) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "clew demo control API (see docs/demo.md)\n\n"+
			"GET  /scenarios                          scenarios and their state\n"+
			"POST /scenarios/{name}?enable=true|false switch one on or off\n"+
			"GET  /ground-truth                       every scenario episode\n"+
			"GET  /services                           the shop's service instances\n\n"+
			"gateway: %s\n", d.GatewayURL())
	})
	mux.HandleFunc("GET /scenarios", func(w http.ResponseWriter, _ *http.Request) {
		out := make([]scenarioState, len(scenarioList))
		for i, s := range scenarioList {
			out[i] = scenarioState{Scenario: s, Enabled: d.faults.on(s.id), Since: d.truth.since(s.Name)}
		}
		writeJSON(w, http.StatusOK, map[string]any{"scenarios": out})
	})
	mux.HandleFunc("POST /scenarios/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if _, ok := lookupScenario(name); !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": unknownScenario(name).Error()})
			return
		}
		enable := true
		if v := r.URL.Query().Get("enable"); v != "" {
			switch v {
			case "true", "1", "on":
			case "false", "0", "off":
				enable = false
			default:
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("enable=%q: want true or false", v)})
				return
			}
		}
		if err := d.SetScenario(name, enable); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		s, _ := lookupScenario(name)
		writeJSON(w, http.StatusOK, scenarioState{Scenario: s, Enabled: d.faults.on(s.id), Since: d.truth.since(name)})
	})
	mux.HandleFunc("GET /ground-truth", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"groundTruth": d.truth.list()})
	})
	mux.HandleFunc("GET /services", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"instances": d.shop.describe()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
