package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clew-dev/clew/internal/auth"
)

// tokenYAML is one token of an auth section.
func tokenYAML(name, secret, tenant, rights string) string {
	return "    - {name: " + name + ", sha256: " + auth.HashToken(secret) + ", tenant: " + tenant + ", rights: [" + rights + "]}\n"
}

// replaceFile writes s to path at once (by a rename), as an editor or a
// configuration manager does.
func replaceFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// waitStatus polls a request until it answers want, failing after 10s.
func waitStatus(t *testing.T, what string, want int, do func() int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := do()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d after 10s, want %d", what, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricLine returns the /metrics line that starts with series, or "".
func metricLine(t *testing.T, p *proc, series string) string {
	t.Helper()
	_, b := p.get("/metrics")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}

// TestAuthReloadFile: the running clew follows its configuration file's
// auth section: a removed token is refused within a few seconds, a new
// one accepted, a broken file keeps the tokens it had (and is counted);
// with a long reload interval, a SIGHUP reloads at once and does not stop
// clew.
func TestAuthReloadFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clew.yaml")
	head := "multitenancy: true\nauth:\n  reload_interval: 200ms\n  tokens:\n"
	replaceFile(t, cfg, head+tokenYAML("a", "token-a", "team-a", "read, write"))
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg)
	get := func(token string) func() int { // of the clew running now
		return func() int { return authDo(t, "GET", p.url("/api/v1/services"), token, "", nil) }
	}
	if code := get("token-a")(); code != 200 {
		t.Fatalf("token a at start: %d", code)
	}
	if code := get("token-b")(); code != 401 {
		t.Fatalf("token b before it is configured: %d, want 401", code)
	}
	// Remove a, add b.
	replaceFile(t, cfg, head+tokenYAML("b", "token-b", "team-b", "read"))
	waitStatus(t, "token a after its removal", 401, get("token-a"))
	if code := get("token-b")(); code != 200 {
		t.Fatalf("new token b: %d, want 200", code)
	}
	if l := metricLine(t, p, `clew_auth_reloads_total{result="success"}`); !strings.HasSuffix(l, " 1") {
		t.Errorf("reloads after one change: %q", l)
	}
	// A broken file keeps b and is counted once.
	replaceFile(t, cfg, head+"    - {name: c, sha256: nothex, tenant: team-c, rights: [read]}\n")
	waitStatus(t, "failure counted", 1, func() int {
		if metricLine(t, p, `clew_auth_reloads_total{result="failure"}`) == `clew_auth_reloads_total{result="failure"} 1` {
			return 1
		}
		return 0
	})
	time.Sleep(500 * time.Millisecond) // more polls of the same broken file
	if l := metricLine(t, p, `clew_auth_reloads_total{result="failure"}`); l != `clew_auth_reloads_total{result="failure"} 1` {
		t.Errorf("the same broken file counted again: %q", l)
	}
	if code := get("token-b")(); code != 200 {
		t.Fatalf("token b after a broken file: %d, want 200 (the previous tokens stay)", code)
	}
	if strings.Contains(p.logs.String(), "token-b") {
		t.Error("a token's secret is in the logs")
	}
	p.stop()

	// SIGHUP, with a reload interval too long to matter.
	head = "multitenancy: true\nauth:\n  reload_interval: 1h\n  tokens:\n"
	replaceFile(t, cfg, head+tokenYAML("a", "token-a", "team-a", "read"))
	p = startClew(t, filepath.Join(dir, "data"), "--config", cfg)
	replaceFile(t, cfg, head+tokenYAML("a", "token-a", "team-a", "read")+tokenYAML("d", "token-d", "team-d", "read"))
	if code := get("token-d")(); code != 401 {
		t.Fatalf("token d before the SIGHUP: %d, want 401", code)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, "token d after SIGHUP", 200, get("token-d"))
	if code := get("token-a")(); code != 200 {
		t.Fatalf("token a after SIGHUP: %d", code)
	}
	p.stop()
}

// adminDo sends method to u with a token and a tenant (each left out when
// "") and returns the status and body.
func adminDo(t *testing.T, method, u, token, tenant string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminListen: with --admin-listen on loopback, the admin endpoints
// and pprof answer there without credentials (and nothing else does),
// while the query port still asks for the admin right; without
// authentication, the query port refuses them once the admin listener is
// on. A non-loopback address is refused unless allowed.
func TestAdminListen(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clew.yaml")
	replaceFile(t, cfg, "multitenancy: true\nauth:\n  tokens:\n"+tokenYAML("a", "token-a", "team-a", "read, write")+
		"    - {name: ops, sha256: "+auth.HashToken("token-ops")+", tenants: ['*'], rights: [admin]}\n")
	admin := freePort(t)
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg, "--admin-listen", admin)
	au := func(path string) string { return "http://" + admin + path }
	for _, c := range []struct {
		name, method, u, token, tenant string
		want                           int
	}{
		{"admin listener: flush without a token", "POST", au("/api/v1/admin/flush"), "", "team-a", 200},
		{"admin listener: compact without a token", "POST", au("/api/v1/admin/compact"), "", "team-a", 200},
		{"admin listener: flush without a tenant", "POST", au("/api/v1/admin/flush"), "", "", 401},
		{"admin listener: pprof without a token", "GET", au("/debug/pprof/"), "", "", 200},
		{"admin listener: pprof cmdline", "GET", au("/debug/pprof/cmdline"), "", "", 200},
		{"admin listener: no query API", "GET", au("/api/v1/services"), "", "team-a", 404},
		{"admin listener: no UI", "GET", au("/ui/"), "", "", 404},
		{"query port: flush without a token", "POST", p.url("/api/v1/admin/flush"), "", "team-a", 401},
		{"query port: flush without the admin right", "POST", p.url("/api/v1/admin/flush"), "token-a", "", 403},
		{"query port: flush with the admin right", "POST", p.url("/api/v1/admin/flush"), "token-ops", "team-a", 200},
		{"query port: pprof without a token", "GET", p.url("/debug/pprof/"), "", "", 401},
		{"query port: pprof with the admin right", "GET", p.url("/debug/pprof/"), "token-ops", "team-a", 200},
	} {
		if code, b := adminDo(t, c.method, c.u, c.token, c.tenant); code != c.want {
			t.Errorf("%s: %d %.200s, want %d", c.name, code, b, c.want)
		}
	}
	mustContain(t, p.logs.String(), "admin serving")
	p.stop()

	// Without authentication: the query port no longer serves them.
	p = startClew(t, filepath.Join(dir, "data2"), "--admin-listen", admin)
	for _, c := range []struct {
		name, method, u string
		want            int
	}{
		{"admin listener: flush", "POST", au("/api/v1/admin/flush"), 200},
		{"admin listener: pprof", "GET", au("/debug/pprof/"), 200},
		{"query port: flush", "POST", p.url("/api/v1/admin/flush"), 403},
		{"query port: pprof", "GET", p.url("/debug/pprof/"), 403},
		{"query port: queries as before", "GET", p.url("/api/v1/services"), 200},
	} {
		if code, b := adminDo(t, c.method, c.u, "", ""); code != c.want {
			t.Errorf("no auth, %s: %d %.200s, want %d", c.name, code, b, c.want)
		}
	}
	p.stop()

	// A non-loopback address is refused at start, with what to do.
	for _, addr := range []string{":" + strings.Split(admin, ":")[1], "0.0.0.0:" + strings.Split(admin, ":")[1]} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a clew that starts anyway is killed
		out, err := exec.CommandContext(ctx, clewBin, "serve", "--data-dir", filepath.Join(dir, "data3"), "--admin-listen", addr,
			"--otlp-grpc-addr", freePort(t), "--otlp-http-addr", freePort(t), "--http-addr", freePort(t), "--zipkin-addr", "", "--jaeger-grpc-addr", "", "--jaeger-http-addr", "").CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "admin_listen_allow_remote") {
			t.Errorf("--admin-listen %s: err %v, output %s; want a refusal naming admin_listen_allow_remote", addr, err, out)
		}
	}
	// Allowed on purpose, it starts.
	p = startClew(t, filepath.Join(dir, "data3"), "--admin-listen", "0.0.0.0:"+strings.Split(admin, ":")[1], "--admin-listen-allow-remote")
	if code, b := adminDo(t, "GET", au("/debug/pprof/"), "", ""); code != 200 {
		t.Errorf("allowed remote admin listener: %d %.200s", code, b)
	}
	p.stop()
}
