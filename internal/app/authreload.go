package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/auth"
	"github.com/clew-dev/clew/internal/config"
)

// authReloader reads the auth section of the configuration file again
// when the file (or the JWKS file it names) changes, checked every
// interval and on SIGHUP, and gives it to the Authenticator (Update): from
// then on removed tokens are refused and new ones accepted. A file that
// cannot be read, parsed or validated keeps the previous tokens; the
// failure is logged and counted once per content (every time on SIGHUP).
// Every outcome is counted in clew_auth_reloads_total{result}.
//
// Only the auth section is taken from the file: every other setting needs
// a restart. Turning authentication off or on needs one too, so an auth
// section left with no tokens and no jwt is refused as a failure (a
// truncated file must not lock everyone out, nor let everyone in).
type authReloader struct {
	path     string
	interval time.Duration
	a        authUpdater
	log      *slog.Logger
	load     func(path string) (config.Config, error)

	mu       sync.Mutex // serialises check
	cur      auth.Config
	lastHash [sha256.Size]byte // of the file last seen
	lastJWKS [sha256.Size]byte // of the JWKS file last seen (zero: none)
	// keysChanged: the JWKS file changed since the key set was last
	// loaded by a reload (kept across rejected files).
	keysChanged bool
	lastErr     string

	reloads            *prometheus.CounterVec
	success, failure   prometheus.Counter
	lastSuccessSeconds prometheus.Gauge
}

// authUpdater is what the reloader needs of *auth.Authenticator.
type authUpdater interface {
	Update(auth.Config) error
	ReloadKeys(context.Context) error
}

// newAuthReloader returns the reloader of the auth section of path, whose
// content at start was cur. Its metrics are registered on reg (nil: not
// registered).
func newAuthReloader(path string, cur auth.Config, a authUpdater, log *slog.Logger, reg prometheus.Registerer) *authReloader {
	r := &authReloader{path: path, interval: cur.ReloadInterval, a: a, log: log, load: config.Load, cur: cur}
	if r.interval <= 0 {
		r.interval = auth.DefaultReloadInterval
	}
	r.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clew_auth_reloads_total",
		Help: "Reloads of the auth section of the configuration file (and of its JWKS file) after a change or a SIGHUP, by result: success (the new tokens apply), failure (the file could not be read, parsed or validated; the previous tokens stay).",
	}, []string{"result"})
	r.success = r.reloads.WithLabelValues("success")
	r.failure = r.reloads.WithLabelValues("failure")
	r.lastSuccessSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "clew_auth_last_reload_success_timestamp_seconds",
		Help: "When the auth section was last loaded (at start, or by a reload), in seconds since the epoch.",
	})
	r.lastSuccessSeconds.SetToCurrentTime()
	if reg != nil {
		reg.MustRegister(r.reloads, r.lastSuccessSeconds)
	}
	// What the process started with is the baseline: the first poll
	// reloads only if the file changed since it was read.
	r.lastHash, r.lastJWKS, _ = r.fingerprint(cur)
	return r
}

// run checks for changes every interval and on SIGHUP until ctx is done.
func (r *authReloader) run(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.check(ctx, false)
		case <-hup:
			r.log.Info("SIGHUP: reloading the auth section", "file", r.path)
			_ = r.check(ctx, true)
		}
	}
}

// fingerprint hashes the configuration file and, when c names one, the
// JWKS file (jwks, zero without one): a change of either is a reason to
// reload.
func (r *authReloader) fingerprint(c auth.Config) (file, jwks [sha256.Size]byte, err error) {
	data, err := os.ReadFile(r.path)
	if err != nil {
		return file, jwks, err
	}
	file = sha256.Sum256(data)
	if c.JWT != nil && c.JWT.JWKSFile != "" {
		// A JWKS file that cannot be read is left to the key set's own
		// load, which reports it.
		if data, err := os.ReadFile(c.JWT.JWKSFile); err == nil {
			jwks = sha256.Sum256(data)
		}
	}
	return file, jwks, nil
}

// check reloads the auth section if the file or its JWKS file changed (or
// if force), and returns the error that kept the previous tokens, if any.
func (r *authReloader) check(ctx context.Context, force bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum, jwks, err := r.fingerprint(r.cur)
	if err != nil {
		// Forget the content, so that the same good file put back is
		// loaded again.
		r.lastHash = [sha256.Size]byte{}
		return r.fail(fmt.Errorf("read %s: %w", r.path, err), force)
	}
	if !force && sum == r.lastHash && jwks == r.lastJWKS {
		if r.lastErr != "" {
			return errors.New(r.lastErr) // still the rejected content
		}
		return nil
	}
	r.keysChanged = r.keysChanged || jwks != r.lastJWKS
	r.lastHash, r.lastJWKS = sum, jwks
	cfg, err := r.load(r.path)
	if err != nil {
		return r.fail(err, true)
	}
	next := cfg.Auth
	if !next.Enabled() {
		return r.fail(errors.New("the auth section lists no tokens and no jwt: turning authentication off needs a restart"), true)
	}
	if err := next.Validate(); err != nil {
		return r.fail(err, true)
	}
	if err := r.a.Update(next); err != nil {
		return r.fail(err, true)
	}
	// Update loads the key set when the JWT settings changed; with the
	// same settings, load it again when its file changed or a SIGHUP
	// asks for it.
	if next.JWT != nil && reflect.DeepEqual(next.JWT, r.cur.JWT) && (force || r.keysChanged) {
		if err := r.a.ReloadKeys(ctx); err != nil {
			// The tokens apply; the key set stays the last good one.
			r.log.Warn("auth: reloading the JWT key set failed; keeping the last one", "err", err)
		}
	}
	// The JWKS file the new settings name.
	if _, j, err := r.fingerprint(next); err == nil {
		r.lastJWKS = j
	}
	r.cur = next
	r.keysChanged = false
	r.lastErr = ""
	r.success.Inc()
	r.lastSuccessSeconds.SetToCurrentTime()
	r.log.Info("auth section reloaded", "file", r.path, "tokens", len(next.Tokens), "jwt", next.JWT != nil)
	return nil
}

// fail records a failed reload; an error equal to the last one is counted
// and logged again only if always.
func (r *authReloader) fail(err error, always bool) error {
	if !always && err.Error() == r.lastErr {
		return err
	}
	r.lastErr = err.Error()
	r.failure.Inc()
	r.log.Error("auth section rejected; the previous tokens stay", "file", r.path, "err", err)
	return err
}

// reloadAuth makes c, the component of a, also reload the auth section of
// the configuration file while it runs.
func (p *process) reloadAuth(c component, a *auth.Authenticator) component {
	r := newAuthReloader(p.cfg.File, p.cfg.Auth, a, p.log, p.reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var started atomic.Bool // stopped unstarted when build fails
	stop := c.stop
	c.start = func() {
		started.Store(true)
		go func() { defer close(done); r.run(ctx) }()
	}
	c.stop = func(sctx context.Context) error {
		cancel()
		if started.Load() {
			<-done
		}
		return stop(sctx)
	}
	return c
}
