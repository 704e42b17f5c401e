package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// JWT configures the validation of JWTs (OIDC access or ID tokens) signed by
// an identity provider whose public keys are a JWKS (JSON Web Key Set) in a
// file or at a URL.
type JWT struct {
	// JWKSFile is a file holding the key set; JWKSURL, instead, is where
	// the identity provider publishes it (often
	// https://idp.example.com/.well-known/jwks.json).
	JWKSFile string `yaml:"jwks_file"`
	JWKSURL  string `yaml:"jwks_url"`
	// Issuer must equal the token's iss claim; Audience must be among its
	// aud claim. Both are required: without them a token the same
	// provider issued for another application would be accepted.
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// TenantClaim names the claim that holds the tenant (a string), or the
	// tenants of an operator (a list; "*" for any). Default "tenant".
	TenantClaim string `yaml:"tenant_claim"`
	// RightsClaim names the claim that holds the rights: a list, or a
	// space-separated string as OAuth scopes are. Names other than write,
	// read and admin are ignored. Default "rights".
	RightsClaim string `yaml:"rights_claim"`
	// RefreshInterval is how often the key set is loaded again. Default
	// 5m. A token whose key ID is unknown also loads it again, at most
	// once a minute.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
}

const (
	defaultTenantClaim     = "tenant"
	defaultRightsClaim     = "rights"
	defaultRefreshInterval = 5 * time.Minute
	// unknownKidInterval bounds the loads an unknown key ID triggers, so
	// that tokens with made-up key IDs cannot make clew hammer the
	// identity provider.
	unknownKidInterval = time.Minute
	// jwtLeeway is the clock skew allowed on exp, nbf and iat.
	jwtLeeway = time.Minute
	// maxJWKSBytes bounds a key set.
	maxJWKSBytes = 1 << 20
	jwksTimeout  = 10 * time.Second
)

// jwtAlgorithms are the signature algorithms accepted: RSA (PKCS#1 v1.5
// and PSS), ECDSA and Ed25519. Never "none", never HMAC (whose key would
// be the public JWKS).
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// withDefaults returns j with the defaults filled in.
func (j JWT) withDefaults() JWT {
	if j.TenantClaim == "" {
		j.TenantClaim = defaultTenantClaim
	}
	if j.RightsClaim == "" {
		j.RightsClaim = defaultRightsClaim
	}
	if j.RefreshInterval == 0 {
		j.RefreshInterval = defaultRefreshInterval
	}
	return j
}

func (j JWT) equal(o JWT) bool { return j.withDefaults() == o.withDefaults() }

func (j JWT) validate() error {
	switch {
	case j.JWKSFile == "" && j.JWKSURL == "":
		return errors.New("set jwks_file or jwks_url")
	case j.JWKSFile != "" && j.JWKSURL != "":
		return errors.New("set jwks_file or jwks_url, not both")
	case j.Issuer == "":
		return errors.New("issuer is missing (the iss claim tokens must carry)")
	case j.Audience == "":
		return errors.New("audience is missing (the aud claim tokens must carry)")
	case j.RefreshInterval < 0:
		return fmt.Errorf("refresh_interval %s is negative", j.RefreshInterval)
	case j.RefreshInterval > 0 && j.RefreshInterval < time.Second:
		return fmt.Errorf("refresh_interval %s is under a second", j.RefreshInterval)
	}
	if j.JWKSURL != "" {
		u, err := url.Parse(j.JWKSURL)
		if err != nil {
			return fmt.Errorf("jwks_url: %v", err)
		}
		if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("jwks_url %q: want an http or https URL", j.JWKSURL)
		}
	}
	return nil
}

// jwtVerifier validates JWTs against a key set it keeps loaded.
type jwtVerifier struct {
	cfg    JWT
	a      *Authenticator
	client *http.Client
	keys   atomic.Pointer[jose.JSONWebKeySet]

	mu      sync.Mutex // serialises loads triggered by unknown key IDs
	lastKid time.Time  // the last such load

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// newJWTVerifier loads the key set and starts refreshing it. A key set
// file that cannot be loaded is an error; a URL that cannot be reached is
// logged and tried again (at the refresh interval, or when a token comes),
// so that clew starts while the identity provider is down.
func newJWTVerifier(cfg JWT, a *Authenticator) (*jwtVerifier, error) {
	cfg = cfg.withDefaults()
	v := &jwtVerifier{cfg: cfg, a: a, client: &http.Client{Timeout: jwksTimeout}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	if err := v.load(ctx); err != nil {
		if cfg.JWKSFile != "" {
			cancel()
			return nil, fmt.Errorf("auth: jwt: %w", err)
		}
		a.log.Warn("auth: loading the JWT key set failed; JWTs are refused until it loads", "url", cfg.JWKSURL, "err", err)
	}
	go v.refresh(ctx)
	return v, nil
}

func (v *jwtVerifier) refresh(ctx context.Context) {
	defer close(v.done)
	t := time.NewTicker(v.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := v.load(ctx); err != nil && ctx.Err() == nil {
				v.a.log.Warn("auth: reloading the JWT key set failed; keeping the last one", "source", v.source(), "err", err)
			}
		}
	}
}

func (v *jwtVerifier) stop() {
	v.stopOnce.Do(func() {
		v.cancel()
		<-v.done
	})
}

func (v *jwtVerifier) source() string {
	if v.cfg.JWKSFile != "" {
		return v.cfg.JWKSFile
	}
	return v.cfg.JWKSURL
}

// load reads the key set and, if it parses and holds a usable key,
// replaces the current one.
func (v *jwtVerifier) load(ctx context.Context) error {
	set, err := v.read(ctx)
	if err != nil {
		v.a.jwksLoads.WithLabelValues("error").Inc()
		return err
	}
	v.a.jwksLoads.WithLabelValues("ok").Inc()
	v.keys.Store(set)
	return nil
}

func (v *jwtVerifier) read(ctx context.Context) (*jose.JSONWebKeySet, error) {
	var data []byte
	if v.cfg.JWKSFile != "" {
		f, err := os.Open(v.cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, maxJWKSBytes+1)); err != nil {
			return nil, err
		}
	} else {
		ctx, cancel := context.WithTimeout(ctx, jwksTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := v.client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", v.cfg.JWKSURL, resp.Status)
		}
		if data, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1)); err != nil {
			return nil, err
		}
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("%s: key set over %d bytes", v.source(), maxJWKSBytes)
	}
	var raw jose.JSONWebKeySet
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a JWKS: %v", v.source(), err)
	}
	set := &jose.JSONWebKeySet{}
	for _, k := range raw.Keys {
		if !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		// Only the public half is ever used, even if a key set carries
		// private keys by mistake; symmetric keys have none and are
		// dropped.
		if pub := k.Public(); pub.Valid() {
			set.Keys = append(set.Keys, pub)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%s: no usable public signing key", v.source())
	}
	return set, nil
}

// candidates are the keys a token with key ID kid may be signed with.
func (v *jwtVerifier) candidates(kid string) []jose.JSONWebKey {
	set := v.keys.Load()
	if set == nil {
		return nil
	}
	if kid == "" {
		return set.Keys
	}
	return set.Key(kid)
}

// reloadForKid loads the key set again for a token whose key ID is not in
// it, at most once per unknownKidInterval, and returns the keys for kid.
func (v *jwtVerifier) reloadForKid(ctx context.Context, kid string) []jose.JSONWebKey {
	v.mu.Lock()
	defer v.mu.Unlock()
	if keys := v.candidates(kid); len(keys) > 0 {
		return keys // loaded while this call waited
	}
	now := v.a.now()
	if !v.lastKid.IsZero() && now.Sub(v.lastKid) < unknownKidInterval {
		return nil
	}
	v.lastKid = now
	// One client going away must not waste the load for the others.
	if err := v.load(context.WithoutCancel(ctx)); err != nil {
		v.a.log.Warn("auth: reloading the JWT key set for an unknown key ID failed", "source", v.source(), "err", err)
	}
	return v.candidates(kid)
}

// verify validates a JWT and returns its principal.
func (v *jwtVerifier) verify(ctx context.Context, raw string) (Principal, error) {
	tok, err := jwt.ParseSigned(raw, jwtAlgorithms)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: malformed JWT or unsupported algorithm", ErrBadCredentials)
	}
	if len(tok.Headers) != 1 {
		return Principal{}, fmt.Errorf("%w: JWT with %d signatures", ErrBadCredentials, len(tok.Headers))
	}
	h := tok.Headers[0]
	keys := v.candidates(h.KeyID)
	if len(keys) == 0 && h.KeyID != "" {
		keys = v.reloadForKid(ctx, h.KeyID)
	}
	if len(keys) == 0 {
		return Principal{}, fmt.Errorf("%w: JWT signed with an unknown key", ErrBadCredentials)
	}
	var (
		std    jwt.Claims
		custom map[string]any
		ok     bool
	)
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &std, &custom); err == nil {
			ok = true
			break
		}
	}
	if !ok {
		return Principal{}, fmt.Errorf("%w: JWT signature does not verify", ErrBadCredentials)
	}
	if std.Expiry == nil {
		return Principal{}, fmt.Errorf("%w: JWT without exp", ErrBadCredentials)
	}
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      v.cfg.Issuer,
		AnyAudience: jwt.Audience{v.cfg.Audience},
		Time:        v.a.now(),
	}, jwtLeeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return Principal{}, fmt.Errorf("%w: JWT expired", ErrBadCredentials)
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Principal{}, fmt.Errorf("%w: JWT not valid yet", ErrBadCredentials)
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return Principal{}, fmt.Errorf("%w: JWT from another issuer", ErrBadCredentials)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Principal{}, fmt.Errorf("%w: JWT for another audience", ErrBadCredentials)
	case err != nil:
		return Principal{}, fmt.Errorf("%w: JWT claims: %v", ErrBadCredentials, err)
	}
	p := Principal{Name: "jwt:" + boundName(std.Subject)}
	switch t := custom[v.cfg.TenantClaim].(type) {
	case string:
		if err := validateTenant(t); err != nil {
			return Principal{}, fmt.Errorf("%w: JWT claim %s: %v", ErrBadCredentials, v.cfg.TenantClaim, err)
		}
		p.Tenant = t
	case []any:
		for _, e := range t {
			s, _ := e.(string)
			if s != "*" {
				if err := validateTenant(s); err != nil {
					return Principal{}, fmt.Errorf("%w: JWT claim %s: %v", ErrBadCredentials, v.cfg.TenantClaim, err)
				}
			}
			p.Tenants = append(p.Tenants, s)
		}
		if len(p.Tenants) == 0 {
			return Principal{}, fmt.Errorf("%w: JWT claim %s is an empty list", ErrBadCredentials, v.cfg.TenantClaim)
		}
	default:
		return Principal{}, fmt.Errorf("%w: JWT without a %s claim (a tenant, or a list of tenants)", ErrBadCredentials, v.cfg.TenantClaim)
	}
	var names []string
	switch r := custom[v.cfg.RightsClaim].(type) {
	case string:
		names = strings.Fields(r)
	case []any:
		for _, e := range r {
			if s, ok := e.(string); ok {
				names = append(names, s)
			}
		}
	}
	for _, n := range names {
		if r, err := ParseRight(n); err == nil {
			p.Rights |= Rights(r)
		}
	}
	return p, nil
}

// boundName makes a JWT subject fit for logs: at most 64 bytes, printable.
func boundName(sub string) string {
	if sub == "" {
		return "(no subject)"
	}
	b := []byte(sub)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
