package querycli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/api"
	"github.com/clew-dev/clew/internal/detect"
	"github.com/clew-dev/clew/internal/detect/detecttest"
)

// TestAnomaliesDeploys runs clew anomalies and clew deploys against the
// detection endpoints over a real detector that saw a bad canary.
func TestAnomaliesDeploys(t *testing.T) {
	e := detecttest.New(t, 8, detect.Config{})
	e.Shop.Rate = 120
	e.Run(0, 20, 14)
	e.Shop.Canary, e.Shop.CanaryExtra = "2.0.0", 250*time.Millisecond
	e.Run(20, 23, 20)
	mux := http.NewServeMux()
	api.NewDetection(e.Det).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, c := range []struct {
		main func(context.Context, []string, io.Writer, io.Writer) error
		args []string
		want []string
	}{
		{AnomaliesMain, []string{"--addr", srv.URL}, []string{"OPEN", "culprits:", "1. checkout PlaceOrder (server) version 2.0.0", "example traces:"}},
		{AnomaliesMain, []string{"--addr", strings.TrimPrefix(srv.URL, "http://"), "-o", "json"}, []string{`"anomalies": [`, `"culprits": [`}},
		{DeploysMain, []string{"--addr", srv.URL, "--since", "2h"}, []string{"VERDICT", "checkout  service.version  2.0.0", "regressed", "downstream new SELECT promotions"}},
		{DeploysMain, []string{"--addr", srv.URL, "-o", "json"}, []string{`"verdict": "regressed"`}},
	} {
		var out, errb bytes.Buffer
		if err := c.main(context.Background(), c.args, &out, &errb); err != nil {
			t.Fatalf("%v: %v (%s)", c.args, err, errb.String())
		}
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", c.args, w, out.String())
			}
		}
	}
	for _, args := range [][]string{{"-o", "yaml"}, {"--since", "0s"}, {"extra"}, {"--addr", "ftp://x"}} {
		if err := AnomaliesMain(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := AnomaliesMain(context.Background(), []string{"--addr", "127.0.0.1:1", "--timeout", "2s"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "is it running") {
		t.Errorf("unreachable clew: %v", err)
	}
	off := http.NewServeMux()
	api.NewDetection(nil).Register(off)
	srvOff := httptest.NewServer(off)
	defer srvOff.Close()
	if err := AnomaliesMain(context.Background(), []string{"--addr", srvOff.URL}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "detection is off") {
		t.Errorf("detection off: %v", err)
	}
}
