package main

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestHit(t *testing.T) {
	gt := func(svc, op, ver, attr string) GroundTruth {
		return GroundTruth{Service: svc, Operation: op, Version: ver, Attribute: attr}
	}
	cases := []struct {
		name string
		gt   GroundTruth
		c    culprit
		want bool
	}{
		{"any operation of the service", gt("inventory", "*", "", ""), culprit{Service: "inventory", Operation: "x/Reserve"}, true},
		{"wrong service", gt("inventory", "*", "", ""), culprit{Service: "gateway", Operation: "x/Reserve"}, false},
		{"same operation", gt("payment", "POST /v1/charges", "", "url.template=/v1/charges"), culprit{Service: "payment", Operation: "POST /v1/charges"}, true},
		{"another operation", gt("payment", "POST /v1/charges", "", ""), culprit{Service: "payment", Operation: "POST /charges"}, false},
		{"by version", gt("checkout", "PlaceOrder", "1.5.0", ""), culprit{Service: "checkout", Operation: "SELECT promotions", Version: "1.5.0"}, true},
		{"by attribute, quotes aside", gt("catalog", "GetProduct", "", `rpc.method="a/GetProduct"`), culprit{Service: "catalog", Operation: "x", Attribute: "rpc.method=a/GetProduct"}, true},
		{"other attribute", gt("cart", "POST", "", "http.response.status_code=503"), culprit{Service: "cart", Operation: "x", Attribute: "http.response.status_code=500"}, false},
	}
	for _, c := range cases {
		if got := hit(c.gt, c.c); got != c.want {
			t.Errorf("%s: hit = %v, want %v", c.name, got, c.want)
		}
	}
	d := deploy{Service: "checkout", Attribute: "service.version", Value: "1.5.0", Verdict: "regressed"}
	if !deployHit(gt("checkout", "PlaceOrder", "1.5.0", ""), d) {
		t.Error("a regressed deployment of the version is a hit")
	}
	d.Verdict = "no_change"
	if deployHit(gt("checkout", "PlaceOrder", "1.5.0", ""), d) {
		t.Error("a deployment without a regression is no hit")
	}
}

// TestQuick runs the quick mode end to end: it builds clew, runs the demo
// against it and switches two scenarios on (about six minutes). Set
// CLEW_SCENARIOSCORE=1 to run it.
func TestQuick(t *testing.T) {
	if os.Getenv("CLEW_SCENARIOSCORE") == "" {
		t.Skip("set CLEW_SCENARIOSCORE=1 to run the quick scenario score (about six minutes)")
	}
	o := QuickOptions()
	o.Repo = "../.."
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	rep.Print(testWriter{t})
	if r := rep.HitRate(); r < 1 {
		t.Errorf("hit rate %.0f%%, want 100%%", 100*r)
	}
	if n := rep.FalsePositives(); n > 0 {
		t.Errorf("%d anomalies or deployments during normal traffic", n)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
