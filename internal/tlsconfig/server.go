// Package tlsconfig builds the TLS configurations of clew's listeners and
// clients from file names. A server configuration (Server) reloads its
// certificate and its client CA pool when their files change, so that a
// certificate renewed on disk (by cert-manager, certbot, an operator) is
// served without a restart; a failed reload keeps the previous
// certificate. A client configuration (Client) trusts a CA file or the
// system roots and may present a client certificate (mTLS). ClientFlags
// are the TLS and credential flags every clew client command shares
// (--tls, --tls-ca-file, --tls-cert-file, --tls-key-file,
// --tls-insecure-skip-verify, --token, --tenant), with the HTTP transport
// and request headers they describe.
//
// No key material is ever logged: messages name files and say what failed.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Server is the TLS of one group of listeners, as the configuration file
// sets it. The zero value is no TLS.
type Server struct {
	// CertFile and KeyFile are the PEM certificate (chain) and private key
	// served; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, a PEM bundle, verifies client certificates (mTLS).
	// Without RequireClientCert a client without a certificate is still
	// accepted; one with a certificate the bundle does not verify is not.
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert refuses clients without a certificate that
	// ClientCAFile verifies.
	RequireClientCert bool `yaml:"require_client_cert"`
}

// Enabled reports whether TLS is on: a certificate is set.
func (s Server) Enabled() bool { return s.CertFile != "" }

// Validate checks the settings and that the files are readable. Messages
// name the YAML keys (under the section the caller names).
func (s Server) Validate() error {
	var errs []error
	switch {
	case s.CertFile != "" && s.KeyFile == "":
		errs = append(errs, errors.New("cert_file is set but key_file is not: TLS needs both"))
	case s.CertFile == "" && s.KeyFile != "":
		errs = append(errs, errors.New("key_file is set but cert_file is not: TLS needs both"))
	}
	if s.CertFile == "" && s.ClientCAFile != "" {
		errs = append(errs, errors.New("client_ca_file needs TLS: set cert_file and key_file too"))
	}
	if s.RequireClientCert && s.ClientCAFile == "" {
		errs = append(errs, errors.New("require_client_cert needs client_ca_file, the CAs that verify client certificates"))
	}
	for _, f := range []struct{ key, path string }{{"cert_file", s.CertFile}, {"key_file", s.KeyFile}, {"client_ca_file", s.ClientCAFile}} {
		if f.path == "" {
			continue
		}
		if err := readable(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s %q is not readable: %w", f.key, f.path, err))
		}
	}
	return errors.Join(errs...)
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	return nil
}

// Metrics counts certificate reloads; one per registry, shared by every
// Server loaded with it.
type Metrics struct {
	reloads *prometheus.CounterVec
}

// NewMetrics registers clew_tls_reloads_total{result="success"|"failure"}
// on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clew_tls_reloads_total",
		Help: "Reloads of a TLS certificate or client CA file after it changed on disk, by result (a failure keeps the previous one).",
	}, []string{"result"})}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	if reg != nil {
		reg.MustRegister(m.reloads)
	}
	return m
}

func (m *Metrics) observe(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// checkInterval is how often, at most, the files are looked at (on a
// handshake).
const checkInterval = time.Second

// Load returns the server tls.Config: TLS 1.2 or later, ALPN h2 and
// http/1.1 (so that HTTP/2, and so gRPC, and HTTP/1.1 share a port), the
// certificate and, with ClientCAFile, client certificate verification.
// On a handshake, at most once a second, it compares the files' size and
// modification time with those it loaded and reloads what changed; a
// reload that fails logs a warning and keeps serving the previous
// certificate and CA pool. log may be nil.
func (s Server) Load(log *slog.Logger) (*tls.Config, error) {
	return s.LoadWithMetrics(log, nil)
}

// LoadWithMetrics is Load, counting reloads in m (which may be nil).
func (s Server) LoadWithMetrics(log *slog.Logger, m *Metrics) (*tls.Config, error) {
	if !s.Enabled() {
		return nil, errors.New("tls: no cert_file")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &reloader{s: s, log: log, m: m}
	if err := r.reload(time.Now()); err != nil {
		return nil, err
	}
	// Every handshake takes the current configuration (certificate,
	// client CAs) from GetConfigForClient; GetCertificate serves a caller
	// that clones the configuration and drops GetConfigForClient.
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &r.current().Certificates[0], nil
		},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.current(), nil
		},
	}
	return base, nil
}

// stamp is what tells a changed file: its size and modification time.
type stamp struct {
	size  int64
	mtime time.Time
}

func stampOf(path string) stamp {
	if path == "" {
		return stamp{}
	}
	st, err := os.Stat(path)
	if err != nil {
		return stamp{size: -1}
	}
	return stamp{st.Size(), st.ModTime()}
}

type reloader struct {
	s   Server
	log *slog.Logger
	m   *Metrics

	mu      sync.Mutex
	checked time.Time
	stamps  [3]stamp    // cert, key, client CA, as loaded (or last tried)
	cfg     *tls.Config // what handshakes get
}

func (r *reloader) files() [3]stamp {
	return [3]stamp{stampOf(r.s.CertFile), stampOf(r.s.KeyFile), stampOf(r.s.ClientCAFile)}
}

// current returns the configuration to handshake with, reloading first
// when a second has passed since the last look and a file changed.
func (r *reloader) current() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < checkInterval {
		return r.cfg
	}
	r.checked = now
	if r.files() == r.stamps {
		return r.cfg
	}
	if err := r.reloadLocked(now); err != nil {
		r.m.observe(false)
		r.log.Warn("TLS reload failed; serving the previous certificate", "cert_file", r.s.CertFile, "key_file", r.s.KeyFile, "client_ca_file", r.s.ClientCAFile, "err", err)
		return r.cfg
	}
	r.m.observe(true)
	leaf := r.cfg.Certificates[0].Leaf
	r.log.Info("TLS certificate reloaded", "cert_file", r.s.CertFile, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
	return r.cfg
}

func (r *reloader) reload(now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(now)
}

// reloadLocked reads the files and, when all of them load, replaces the
// configuration. The stamps are updated either way, so that a broken file
// is retried (and warned about) once it changes again, not every second.
func (r *reloader) reloadLocked(now time.Time) error {
	r.checked = now
	r.stamps = r.files()
	cert, err := tls.LoadX509KeyPair(r.s.CertFile, r.s.KeyFile)
	if err != nil {
		return fmt.Errorf("load certificate %s and key %s: %w", r.s.CertFile, r.s.KeyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate %s: %w", r.s.CertFile, err)
		}
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
		Certificates: []tls.Certificate{cert},
	}
	if r.s.ClientCAFile != "" {
		pool, err := loadPool(r.s.ClientCAFile)
		if err != nil {
			return fmt.Errorf("client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if r.s.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	r.cfg = cfg
	return nil
}

// loadPool reads a PEM bundle of CA certificates.
func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
