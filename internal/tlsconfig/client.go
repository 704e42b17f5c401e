package tlsconfig

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"
)

// Client is the TLS of a connection clew opens to a server.
type Client struct {
	// CAFile, a PEM bundle, verifies the server; empty: the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and its key, presented
	// to a server that asks (mTLS); both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool
	// ServerName overrides the name verified (default: the dialled host).
	ServerName string
}

// Load returns the client tls.Config (TLS 1.2 or later).
func (c Client) Load() (*tls.Config, error) {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("a client certificate needs both --tls-cert-file and --tls-key-file")
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify,
	}
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca-file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Header names the clients send their credentials in (HTTP; gRPC metadata
// uses the same names in lower case).
const (
	HeaderAuthorization = "Authorization"
	HeaderTenant        = "X-Scope-OrgID"
)

// ClientFlags are the connection flags every clew client command shares:
// TLS, and a bearer token and tenant sent with every request (for a proxy
// or gateway in front of clew that checks them, or a multi-tenant
// deployment).
type ClientFlags struct {
	// TLS turns TLS on with the system roots; any other TLS setting
	// implies it.
	TLS bool
	Client
	// Token is sent as "Authorization: Bearer <Token>".
	Token string
	// Tenant is sent as "X-Scope-OrgID: <Tenant>".
	Tenant string
}

// Register defines the flags on fs. With certFlags false it leaves out
// --tls-cert-file and --tls-key-file (for a command whose other flags
// already use those names).
func (f *ClientFlags) Register(fs *flag.FlagSet, certFlags bool) {
	fs.BoolVar(&f.TLS, "tls", false, "connect with TLS, verifying the server with the system roots (or --tls-ca-file)")
	fs.StringVar(&f.CAFile, "tls-ca-file", "", "verify the server with the CA certificates in this PEM `file` (implies --tls)")
	if certFlags {
		fs.StringVar(&f.CertFile, "tls-cert-file", "", "present this PEM client certificate `file` (mTLS; implies --tls; with --tls-key-file)")
		fs.StringVar(&f.KeyFile, "tls-key-file", "", "the PEM private key `file` of --tls-cert-file")
	}
	fs.BoolVar(&f.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any server certificate (testing only; implies --tls)")
	fs.StringVar(&f.Token, "token", "", "send `token` as \"Authorization: Bearer <token>\" with every request")
	fs.StringVar(&f.Tenant, "tenant", "", "send `tenant` as the X-Scope-OrgID header with every request")
}

// Enabled reports whether the connection uses TLS.
func (f *ClientFlags) Enabled() bool {
	return f.TLS || f.CAFile != "" || f.CertFile != "" || f.KeyFile != "" || f.InsecureSkipVerify
}

// Set reports whether any flag is set.
func (f *ClientFlags) Set() bool { return f.Enabled() || f.Token != "" || f.Tenant != "" }

// Validate checks the token and tenant (one header line each) and the
// client certificate pair.
func (f *ClientFlags) Validate() error {
	if strings.ContainsAny(f.Token, "\r\n\x00") || strings.TrimSpace(f.Token) != f.Token {
		return errors.New("--token: want one line without surrounding spaces")
	}
	if strings.ContainsAny(f.Tenant, "\r\n\x00") || strings.TrimSpace(f.Tenant) != f.Tenant {
		return errors.New("--tenant: want one line without surrounding spaces")
	}
	if (f.CertFile == "") != (f.KeyFile == "") {
		return errors.New("a client certificate needs both --tls-cert-file and --tls-key-file")
	}
	return nil
}

// TLSConfig returns the client tls.Config, or nil when TLS is off.
func (f *ClientFlags) TLSConfig() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	return f.Client.Load()
}

// Headers returns the credential headers to send, keyed by their HTTP
// names; empty when neither --token nor --tenant is set.
func (f *ClientFlags) Headers() map[string]string {
	h := map[string]string{}
	if f.Token != "" {
		h[HeaderAuthorization] = "Bearer " + f.Token
	}
	if f.Tenant != "" {
		h[HeaderTenant] = f.Tenant
	}
	return h
}

// Metadata returns Headers as gRPC metadata pairs (lower-case keys).
func (f *ClientFlags) Metadata() []string {
	var kv []string
	for k, v := range f.Headers() {
		kv = append(kv, strings.ToLower(k), v)
	}
	return kv
}

// Transport returns tr, changed to use TLS when it is on (with HTTP/2
// by ALPN), wrapped so that every request carries the credential headers.
// tr may be nil for a clone of http.DefaultTransport.
func (f *ClientFlags) Transport(tr *http.Transport) (http.RoundTripper, error) {
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	cfg, err := f.TLSConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		tr.TLSClientConfig = cfg
		tr.ForceAttemptHTTP2 = true
	}
	h := f.Headers()
	if len(h) == 0 {
		return tr, nil
	}
	return headerTransport{base: tr, headers: h}, nil
}

// headerTransport sets headers on every request it sends.
type headerTransport struct {
	base    http.RoundTripper
	headers map[string]string
}

func (t headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range t.headers {
		req.Header.Set(k, v)
	}
	return t.base.RoundTrip(req)
}
