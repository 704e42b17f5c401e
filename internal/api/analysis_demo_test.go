package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/app"
	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/demo"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// TestDemo runs clew and the demo shop in process: a few seconds of normal
// traffic, then the n-plus-one scenario. Explain must name the N+1 on
// catalog's ListProducts, and the quality report must find nothing wrong
// with the shop's instrumentation.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo shop for several seconds")
	}
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.OTLPGRPCAddr, cfg.OTLPHTTPAddr, cfg.HTTPAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.ZipkinAddr, cfg.JaegerGRPCAddr, cfg.JaegerHTTPAddr = "", "", ""
	cfg.Store.WALSync = "none"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + cfg.HTTPAddr
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("clew not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	dcfg := demo.DefaultConfig()
	dcfg.Endpoint = cfg.OTLPGRPCAddr
	dcfg.ControlAddr = "127.0.0.1:0"
	dcfg.Rate = 40
	dcfg.Seed = 7
	dcfg.BatchTimeout = 200 * time.Millisecond
	dcfg.GroundTruthPath = filepath.Join(t.TempDir(), "truth.jsonl")
	d, err := demo.Start(ctx, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // a normal cohort
	resp, err := http.Post("http://"+d.ControlAddr()+"/scenarios/n-plus-one?enable=true", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(3 * time.Second)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	// A trace with the N+1 query, found through its by-ID query.
	var sr struct {
		Traces []struct {
			TraceID  string `json:"traceID"`
			RootName string `json:"rootName"`
		} `json:"traces"`
	}
	getJSON(t, base+"/api/v1/search?since=1m&limit=50&attr="+url.QueryEscape(`db.query.text="SELECT id, name, category, price_cents FROM products WHERE id = $1"`)+
		"&attr="+url.QueryEscape("db.response.returned_rows=1"), &sr)
	var id string
	for _, tr := range sr.Traces {
		if tr.RootName == "GET /api/products" {
			id = tr.TraceID
			break
		}
	}
	if id == "" {
		t.Fatalf("no GET /api/products trace with the N+1 query among %d", len(sr.Traces))
	}
	var e api.ExplainResponse
	getJSON(t, base+"/api/v1/explain/"+id, &e)
	// The N+1 is among the findings; on a loaded machine (or under -race)
	// scheduling delays can make other spans of the trace slower still.
	found := false
	for k, f := range e.Findings {
		if f.Type == "n_plus_one" && f.Service == "catalog" && f.Operation == "SELECT products" {
			found = true
			t.Logf("explain %s: cohort %d, finding %d of %d: %s", id, e.Cohort.Traces, k+1, len(e.Findings), f.Message)
		}
	}
	if !found {
		t.Fatalf("explain %s: no n_plus_one finding on catalog SELECT products: %+v", id, e.Findings)
	}

	var q api.QualityResponse
	getJSON(t, base+"/api/v1/quality?end="+fmt.Sprint(time.Now().Unix())+"&since=2m", &q)
	if len(q.Services) < 6 {
		t.Errorf("quality: %d services", len(q.Services))
	}
	for _, s := range q.Services {
		if s.Score < 100 {
			t.Errorf("quality of %s: %v, issues %+v", s.Service, s.Score, s.Issues)
		}
	}
}
