package app

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/clew-dev/clew/internal/config"
	"github.com/clew-dev/clew/internal/tlsconfig"
)

// listen opens the listener l describes (see Listen) and, when the
// configuration puts TLS on it (tls.ingest for the receivers, tls.query for
// the query port), wraps it in TLS. The servers on it are unchanged: an
// http.Server on a TLS listener serves HTTP/1.1 and, by ALPN, HTTP/2 (and
// so the gRPC of the query port); a grpc.Server reads HTTP/2 from the
// decrypted connection, which ALPN agreed as h2 as gRPC clients require.
// Listeners of one group share one reloading configuration.
func (p *process) listen(l config.Listener) (net.Listener, error) {
	ln, err := Listen(l)
	if err != nil || ln == nil {
		return ln, err
	}
	s := p.cfg.ListenerTLS(l.Key)
	if !s.Enabled() {
		return ln, nil
	}
	if p.tlsConfs == nil {
		p.tlsConfs = map[tlsconfig.Server]*tls.Config{}
		p.tlsMetrics = tlsconfig.NewMetrics(p.reg)
	}
	tc := p.tlsConfs[s]
	if tc == nil {
		if tc, err = s.LoadWithMetrics(p.log, p.tlsMetrics); err != nil {
			ln.Close()
			return nil, fmt.Errorf("%s: TLS: %w", l.Name, err)
		}
		p.tlsConfs[s] = tc
		p.log.Info("TLS on", "listener", l.Name, "cert_file", s.CertFile, "client_ca_file", s.ClientCAFile, "require_client_cert", s.RequireClientCert)
	} else {
		p.log.Info("TLS on", "listener", l.Name)
	}
	return tls.NewListener(ln, tc), nil
}
