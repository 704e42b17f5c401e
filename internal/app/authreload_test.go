package app

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/config"
)

func tokenLine(name, secret, tenant, rights string) string {
	return "    - {name: " + name + ", sha256: " + auth.HashToken(secret) + ", tenant: " + tenant + ", rights: [" + rights + "]}\n"
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestAuthReload: a changed auth section replaces the tokens (removed ones
// are refused, new ones and changed rights apply); an unchanged file is not
// reloaded; a broken file, an auth section emptied and a missing file keep
// the previous tokens and are counted once per content, or on every forced
// reload (SIGHUP).
func TestAuthReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "clew.yaml")
	writeFile(t, path, "multitenancy: true\nauth:\n  tokens:\n"+tokenLine("a", "secret-a", "team-a", "read"))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := auth.New(cfg.Auth, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	r := newAuthReloader(path, cfg.Auth, a, slog.New(slog.DiscardHandler), reg)
	ctx := context.Background()
	reloads := func(result string) int { return int(testutil.ToFloat64(r.reloads.WithLabelValues(result))) }
	check := func(force bool) error {
		t.Helper()
		return r.check(ctx, force)
	}
	may := func(secret string, need auth.Right) error {
		_, _, err := a.Check(ctx, "Bearer "+secret, "", need)
		return err
	}

	if err := check(false); err != nil || reloads("success") != 0 {
		t.Fatalf("unchanged file: err %v, %d reloads; want none", err, reloads("success"))
	}
	// a loses read and gains write; b is new.
	writeFile(t, path, "multitenancy: true\nauth:\n  tokens:\n"+tokenLine("a", "secret-a", "team-a", "write")+tokenLine("b", "secret-b", "team-b", "read"))
	if err := check(false); err != nil {
		t.Fatal(err)
	}
	if reloads("success") != 1 {
		t.Errorf("success reloads %d, want 1", reloads("success"))
	}
	if err := may("secret-b", auth.Read); err != nil {
		t.Errorf("new token b: %v", err)
	}
	if err := may("secret-a", auth.Read); !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("token a reading after its read right was removed: %v, want forbidden", err)
	}
	if err := may("secret-a", auth.Write); err != nil {
		t.Errorf("token a writing after it was given the right: %v", err)
	}

	// a is removed.
	writeFile(t, path, "multitenancy: true\nauth:\n  tokens:\n"+tokenLine("b", "secret-b", "team-b", "read"))
	if err := check(false); err != nil {
		t.Fatal(err)
	}
	if err := may("secret-a", auth.Write); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("removed token a: %v, want bad credentials", err)
	}

	// Broken files keep b, and are counted once each however often they
	// are polled; a forced reload counts again.
	for i, broken := range []string{
		"multitenancy: true\nauth:\n  tokens:\n    - {name: b, sha256: nothex, tenant: team-b, rights: [read]}\n",            // invalid token
		"multitenancy: true\nauth:\n  tokens: [\n",                                                                           // not YAML
		"multitenancy: true\nauth:\n  tokens: []\n",                                                                          // authentication off
		"multitenancy: true\nauth:\n  unknown_key: true\n",                                                                   // unknown key
		"multitenancy: true\nauth:\n  reload_interval: -1s\n" + "  tokens:\n" + tokenLine("b", "secret-b", "team-b", "read"), // invalid interval
	} {
		writeFile(t, path, broken)
		before := reloads("failure")
		for range 3 {
			if err := check(false); err == nil {
				t.Fatalf("broken file %d accepted", i)
			}
		}
		if got := reloads("failure") - before; got != 1 {
			t.Errorf("broken file %d polled 3 times: %d failures counted, want 1", i, got)
		}
		if err := check(true); err == nil || reloads("failure")-before != 2 {
			t.Errorf("broken file %d forced: err %v, %d failures, want 2", i, err, reloads("failure")-before)
		}
		if err := may("secret-b", auth.Read); err != nil {
			t.Errorf("broken file %d: token b is lost: %v", i, err)
		}
	}
	// A missing file too; the same good file back applies again.
	good := "multitenancy: true\nauth:\n  tokens:\n" + tokenLine("c", "secret-c", "team-c", "read")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	before := reloads("failure")
	for i := range 2 { // polled twice, counted once
		if err := check(false); err == nil {
			t.Errorf("missing file, poll %d: no error", i)
		}
	}
	if got := reloads("failure") - before; got != 1 {
		t.Errorf("missing file: %d failures, want 1", got)
	}
	if err := may("secret-b", auth.Read); err != nil {
		t.Errorf("missing file: token b is lost: %v", err)
	}
	writeFile(t, path, good)
	if err := check(false); err != nil {
		t.Fatal(err)
	}
	if may("secret-c", auth.Read) != nil || may("secret-b", auth.Read) == nil {
		t.Errorf("after the good file came back: c %v, b %v", may("secret-c", auth.Read), may("secret-b", auth.Read))
	}
}

// fakeAuth records what the reloader asks of the Authenticator.
type fakeAuth struct {
	updates, keyLoads int
}

func (f *fakeAuth) Update(auth.Config) error         { f.updates++; return nil }
func (f *fakeAuth) ReloadKeys(context.Context) error { f.keyLoads++; return nil }

// TestAuthReloadJWKSFile: a change of the JWKS file alone (the
// configuration file unchanged) reloads the key set.
func TestAuthReloadJWKSFile(t *testing.T) {
	dir := t.TempDir()
	path, jwks := filepath.Join(dir, "clew.yaml"), filepath.Join(dir, "jwks.json")
	writeFile(t, jwks, `{"keys":[]}`)
	writeFile(t, path, "auth:\n  jwt: {jwks_file: "+jwks+", issuer: i, audience: a}\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAuth{}
	r := newAuthReloader(path, cfg.Auth, f, slog.New(slog.DiscardHandler), nil)
	if err := r.check(context.Background(), false); err != nil || f.updates != 0 || f.keyLoads != 0 {
		t.Fatalf("nothing changed: err %v, %d updates, %d key loads", err, f.updates, f.keyLoads)
	}
	writeFile(t, jwks, `{"keys":[{}]}`)
	if err := r.check(context.Background(), false); err != nil || f.keyLoads != 1 {
		t.Fatalf("JWKS file changed: err %v, %d key loads, want 1", err, f.keyLoads)
	}
	if err := r.check(context.Background(), false); err != nil || f.keyLoads != 1 {
		t.Fatalf("nothing changed since: err %v, %d key loads, want 1", err, f.keyLoads)
	}
	if err := r.check(context.Background(), true); err != nil || f.keyLoads != 2 {
		t.Fatalf("forced: err %v, %d key loads, want 2", err, f.keyLoads)
	}
	// A change of the tokens alone does not load the key set again.
	writeFile(t, path, "auth:\n  jwt: {jwks_file: "+jwks+", issuer: i, audience: a}\n  tokens:\n"+tokenLine("a", "secret-a", "team-a", "read"))
	if err := r.check(context.Background(), false); err != nil || f.updates != 3 || f.keyLoads != 2 {
		t.Fatalf("tokens changed: err %v, %d updates (want 3), %d key loads (want 2)", err, f.updates, f.keyLoads)
	}
	// A broken configuration file while the JWKS file changes: counted
	// once, however often polled; fixed, the key set is loaded.
	writeFile(t, path, "auth:\n  jwt: {jwks_file: "+jwks+", issuer: i, audience: a}\n  tokens: [\n")
	writeFile(t, jwks, `{"keys":[{}, {}]}`)
	before := testutil.ToFloat64(r.failure)
	for range 3 {
		if err := r.check(context.Background(), false); err == nil {
			t.Fatal("broken file accepted")
		}
	}
	if got := testutil.ToFloat64(r.failure) - before; got != 1 {
		t.Errorf("broken file with a changed JWKS file polled 3 times: %v failures, want 1", got)
	}
	writeFile(t, path, "auth:\n  jwt: {jwks_file: "+jwks+", issuer: i, audience: a}\n  tokens:\n"+tokenLine("a", "secret-a", "team-a", "read"))
	if err := r.check(context.Background(), false); err != nil || f.keyLoads != 3 {
		t.Fatalf("fixed: err %v, %d key loads, want 3", err, f.keyLoads)
	}
	if r.interval != auth.DefaultReloadInterval {
		t.Errorf("interval %s, want the default %s", r.interval, auth.DefaultReloadInterval)
	}
}
