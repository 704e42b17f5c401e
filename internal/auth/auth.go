// Package auth authenticates clew's clients and decides what they may do.
//
// Credentials come in the Authorization header (or gRPC metadata): a bearer
// token, HTTP Basic auth with a token as the password, or a JWT signed by a
// configured identity provider (JWKS file or URL). Static tokens are
// configured by the SHA-256 of their value only (`clew token new` makes one),
// each mapped to a tenant (or, for an operator, a list of tenants) and a set
// of rights: write (send spans), read (query) and admin (flush, compact,
// retention, /debug/pprof). The credentials decide the tenant: a request that
// names another tenant is refused (Authorize, ErrForbidden).
//
// The package knows nothing of HTTP routing or of how tenants are resolved;
// internal/tenant calls Check (or Authenticate and Authorize) with the
// Authorization value and the tenant the request names. Errors wrap
// ErrNoCredentials or ErrBadCredentials (answer 401) or ErrForbidden (403).
// Every outcome is counted in clew_auth_requests_total{result}.
//
// Secrets are never logged, never put in an error and never kept: only
// their hash is.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clew-dev/clew/internal/storage"
)

// Errors of Authenticate and Authorize; the messages they are wrapped in say
// why, and never contain a secret.
var (
	// ErrNoCredentials: the request sent no Authorization (answer 401).
	ErrNoCredentials = errors.New("no credentials")
	// ErrBadCredentials: malformed, unknown, expired or removed
	// credentials (answer 401).
	ErrBadCredentials = errors.New("bad credentials")
	// ErrForbidden: valid credentials that may not act on the tenant the
	// request names, or lack the right it needs (answer 403).
	ErrForbidden = errors.New("forbidden")
)

// MaxAuthorizationLength bounds the Authorization value Authenticate
// accepts; a longer one is ErrBadCredentials without being decoded or
// hashed. JWTs of real identity providers are well under it.
const MaxAuthorizationLength = 8 << 10

// Right is one thing a principal may do.
type Right uint8

// The rights. Admin does not imply Read or Write: an operator token that
// should also query says so.
const (
	// Write sends spans (every receiver).
	Write Right = 1 << iota
	// Read queries traces, metrics and analyses (every query API).
	Read
	// Admin runs maintenance (flush, compact, retention) and reads
	// profiles (/debug/pprof).
	Admin
)

// rightNames in the order Rights.String lists them.
var rightNames = []struct {
	r    Right
	name string
}{{Admin, "admin"}, {Read, "read"}, {Write, "write"}}

func (r Right) String() string {
	for _, n := range rightNames {
		if n.r == r {
			return n.name
		}
	}
	return fmt.Sprintf("right(%d)", uint8(r))
}

// ParseRight returns the right named s ("write", "read" or "admin").
func ParseRight(s string) (Right, error) {
	for _, n := range rightNames {
		if n.name == s {
			return n.r, nil
		}
	}
	return 0, fmt.Errorf("unknown right %q (rights are write, read and admin)", s)
}

// Rights is a set of Right.
type Rights uint8

// Has reports whether x is in r.
func (r Rights) Has(x Right) bool { return x != 0 && Rights(x)&r == Rights(x) }

// String lists the rights in r, sorted and comma-separated ("read,write");
// "none" for the empty set.
func (r Rights) String() string {
	var parts []string
	for _, n := range rightNames {
		if r.Has(n.r) {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// ParseRights returns the set of the rights named in names.
func ParseRights(names []string) (Rights, error) {
	var rs Rights
	for _, s := range names {
		r, err := ParseRight(s)
		if err != nil {
			return 0, err
		}
		rs |= Rights(r)
	}
	return rs, nil
}

// Principal is who a request's credentials say it comes from.
type Principal struct {
	// Name is the token's (or the JWT subject's) name, for logs and
	// messages; never a secret.
	Name string
	// Tenant is the one tenant the principal acts for. When it is "",
	// Tenants lists the tenants the request may name.
	Tenant string
	// Rights is what the principal may do.
	Rights Rights
	// Tenants (shared between the requests of one token: do not modify),
	// when Tenant is "", are the tenants an operator principal
	// may name in the request (X-Scope-OrgID); "*" is any tenant. A
	// principal with neither Tenant nor Tenants may act on no tenant, so
	// the zero Principal is allowed nothing.
	Tenants []string
}

// Token is one static credential of the configuration.
type Token struct {
	// Name identifies the token in logs, metrics and messages; never the
	// secret.
	Name string `yaml:"name"`
	// SHA256 is the hex SHA-256 of the token. Tokens are random and
	// high-entropy (32 random bytes from `clew token new`), so a fast hash
	// is right: nobody can search 2^256 values, and a slow password hash
	// (bcrypt, argon2) would only add latency to every ingest request.
	// Do not use a human-chosen password as a token.
	SHA256 string `yaml:"sha256"`
	// Tenant is the tenant this token writes and reads.
	Tenant string `yaml:"tenant"`
	// Tenants, instead of Tenant, makes an operator token allowed these
	// tenants (or "*": all); the request's X-Scope-OrgID then picks one
	// (or several, "a|b", for reads across tenants).
	Tenants []string `yaml:"tenants"`
	// Rights are write, read and admin.
	Rights []string `yaml:"rights"`
	// Username, when set, also accepts HTTP Basic auth with this username
	// and the token as the password.
	Username string `yaml:"username"`
}

// Config is the auth section of the configuration file. The zero Config
// disables authentication.
type Config struct {
	// Tokens are the static tokens.
	Tokens []Token `yaml:"tokens"`
	// JWT, when set, also accepts JWTs signed by an identity provider.
	JWT *JWT `yaml:"jwt"`
	// ReloadInterval is how often clew serve reads its configuration
	// file again for changes of this section (tokens added, removed or
	// changed, JWT settings, the JWKS file); 0 means
	// DefaultReloadInterval. A SIGHUP reloads at once.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultReloadInterval is how often the auth section is read again when
// Config.ReloadInterval is 0.
const DefaultReloadInterval = 10 * time.Second

// Enabled reports whether c configures any credentials; when it does not,
// clew does not authenticate requests.
func (c Config) Enabled() bool { return len(c.Tokens) > 0 || c.JWT != nil }

// Validate checks c, naming the token and field at fault.
func (c Config) Validate() error {
	_, err := compile(c.Tokens)
	if err != nil {
		return err
	}
	if c.JWT != nil {
		if err := c.JWT.validate(); err != nil {
			return fmt.Errorf("auth: jwt: %w", err)
		}
	}
	if c.ReloadInterval < 0 {
		return fmt.Errorf("auth: reload_interval %s is negative", c.ReloadInterval)
	}
	return nil
}

// validateTenant checks a tenant ID of the configuration by the rule of
// every tenant ID (storage.ValidateTenant).
func validateTenant(id string) error { return storage.ValidateTenant(id) }

// entry is a compiled token.
type entry struct {
	hash     [sha256.Size]byte
	username string
	p        Principal
}

// tokenSet is the immutable set of tokens Authenticate reads; Update swaps
// it whole.
type tokenSet struct {
	byHash map[[sha256.Size]byte]*entry
}

// compile validates tokens and builds their lookup table.
func compile(tokens []Token) (*tokenSet, error) {
	ts := &tokenSet{byHash: make(map[[sha256.Size]byte]*entry, len(tokens))}
	names := map[string]bool{}
	for i, t := range tokens {
		where := fmt.Sprintf("auth: tokens[%d]", i)
		if t.Name == "" {
			return nil, fmt.Errorf("%s: name is missing (it names the token in logs and metrics)", where)
		}
		where = fmt.Sprintf("auth: token %q", t.Name)
		if names[t.Name] {
			return nil, fmt.Errorf("%s: the name is used by another token", where)
		}
		names[t.Name] = true
		e := &entry{username: t.Username, p: Principal{Name: t.Name}}
		h := strings.TrimSpace(t.SHA256)
		if len(h) != 2*sha256.Size {
			return nil, fmt.Errorf("%s: sha256 must be %d hex digits, got %d characters (make one with `clew token new` or `clew token hash`)", where, 2*sha256.Size, len(h))
		}
		if _, err := hex.Decode(e.hash[:], []byte(h)); err != nil {
			return nil, fmt.Errorf("%s: sha256 is not hex: %v", where, err)
		}
		if other, dup := ts.byHash[e.hash]; dup {
			return nil, fmt.Errorf("%s: same sha256 as token %q (each token needs its own secret)", where, other.p.Name)
		}
		switch {
		case t.Tenant != "" && len(t.Tenants) > 0:
			return nil, fmt.Errorf("%s: set tenant or tenants, not both", where)
		case t.Tenant != "":
			if err := validateTenant(t.Tenant); err != nil {
				return nil, fmt.Errorf("%s: %v", where, err)
			}
			e.p.Tenant = t.Tenant
		case len(t.Tenants) > 0:
			for _, id := range t.Tenants {
				if id == "*" {
					if len(t.Tenants) > 1 {
						return nil, fmt.Errorf("%s: tenants: \"*\" (any tenant) stands alone", where)
					}
					continue
				}
				if err := validateTenant(id); err != nil {
					return nil, fmt.Errorf("%s: tenants: %v", where, err)
				}
			}
			e.p.Tenants = append([]string(nil), t.Tenants...)
		default:
			return nil, fmt.Errorf("%s: set tenant (the tenant it acts for) or tenants (an operator token's tenants, or [\"*\"])", where)
		}
		if len(t.Rights) == 0 {
			return nil, fmt.Errorf("%s: rights are missing (write, read, admin)", where)
		}
		rs, err := ParseRights(t.Rights)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		e.p.Rights = rs
		if strings.ContainsAny(t.Username, ":\r\n") {
			return nil, fmt.Errorf("%s: username may not contain ':' or a line break", where)
		}
		ts.byHash[e.hash] = e
	}
	return ts, nil
}

// HashToken returns the hex SHA-256 of token, as Token.SHA256 holds it.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewToken returns a new random token: 32 bytes from crypto/rand, base64url
// without padding (43 characters).
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Authenticator checks credentials against the configuration. It is safe
// for concurrent use; Update swaps the configuration atomically.
type Authenticator struct {
	log    *slog.Logger
	tokens atomic.Pointer[tokenSet]
	jwt    atomic.Pointer[jwtVerifier]
	now    func() time.Time

	mu                       sync.Mutex // serialises Update and Close
	closed                   bool
	requests                 *prometheus.CounterVec
	ok, none, bad, forbidden prometheus.Counter
	jwksLoads                *prometheus.CounterVec
}

// New returns an Authenticator for c, which it validates. Its metrics are
// registered on reg (nil: not registered). With a JWKS URL it refreshes the
// key set in the background until Close.
func New(c Config, log *slog.Logger, reg prometheus.Registerer) (*Authenticator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{log: log, now: time.Now}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clew_auth_requests_total",
		Help: "Authentication outcomes: ok (valid credentials), no_credentials and bad_credentials (malformed, unknown, expired or removed credentials; answered 401), and forbidden (valid credentials, so also counted ok, refused the tenant or right the request needs; answered 403).",
	}, []string{"result"})
	a.ok = a.requests.WithLabelValues("ok")
	a.none = a.requests.WithLabelValues("no_credentials")
	a.bad = a.requests.WithLabelValues("bad_credentials")
	a.forbidden = a.requests.WithLabelValues("forbidden")
	a.jwksLoads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clew_auth_jwks_loads_total",
		Help: "Loads of the JWT key set (JWKS) from its file or URL, by result (ok, error).",
	}, []string{"result"})
	if reg != nil {
		reg.MustRegister(a.requests, a.jwksLoads)
	}
	if err := a.Update(c); err != nil {
		return nil, err
	}
	return a, nil
}

// Update replaces the configuration: from its return, tokens no longer in
// c are refused, and new ones accepted. A change of the JWT settings
// reloads the key set. On error the old configuration stays.
func (a *Authenticator) Update(c Config) error {
	ts, err := compile(c.Tokens)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("auth: Update after Close")
	}
	old := a.jwt.Load()
	var v *jwtVerifier
	switch {
	case c.JWT == nil:
	case old != nil && old.cfg.equal(*c.JWT):
		v = old
	default:
		if v, err = newJWTVerifier(*c.JWT, a); err != nil {
			return err
		}
	}
	a.tokens.Store(ts)
	a.jwt.Store(v)
	if old != nil && old != v {
		old.stop()
	}
	return nil
}

// ReloadKeys loads the JWT key set again now (its file or URL), as on a
// SIGHUP or when the key set file changed; without JWT settings it does
// nothing. On error the last key set stays.
func (a *Authenticator) ReloadKeys(ctx context.Context) error {
	v := a.jwt.Load()
	if v == nil {
		return nil
	}
	if err := v.load(ctx); err != nil {
		return fmt.Errorf("auth: jwt: %w", err)
	}
	return nil
}

// Close stops the background refresh of the JWT key set.
func (a *Authenticator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	if v := a.jwt.Load(); v != nil {
		v.stop()
	}
	return nil
}

// Authenticate checks the value of an Authorization header: "Bearer x"
// (a static token or a JWT) or "Basic base64(user:pass)"; the scheme is
// case-insensitive. It returns an error wrapping ErrNoCredentials when the
// value is empty, and ErrBadCredentials when it is malformed, overlong
// (over MaxAuthorizationLength), unknown, expired or of a removed token.
// Each outcome is counted.
func (a *Authenticator) Authenticate(ctx context.Context, authorization string) (Principal, error) {
	p, err := a.authenticate(ctx, authorization)
	switch {
	case err == nil:
		a.ok.Inc()
	case errors.Is(err, ErrNoCredentials):
		a.none.Inc()
	default:
		a.bad.Inc()
		a.log.Debug("authentication refused", "err", err)
	}
	return p, err
}

// Lookup of static tokens is by the SHA-256 of the presented secret in a
// map. A map lookup is not constant-time, but what its timing could leak is
// about the hash, not the secret: tokens are 256-bit random values, so
// learning bits of their hash does not help find one (SHA-256 is preimage
// resistant). The final check of the whole hash is constant-time anyway.
func (a *Authenticator) authenticate(ctx context.Context, authorization string) (Principal, error) {
	if authorization == "" {
		return Principal{}, fmt.Errorf("%w: send an Authorization header (Bearer token or Basic)", ErrNoCredentials)
	}
	if len(authorization) > MaxAuthorizationLength {
		return Principal{}, fmt.Errorf("%w: Authorization of %d bytes, at most %d", ErrBadCredentials, len(authorization), MaxAuthorizationLength)
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if cred == "" {
			return Principal{}, fmt.Errorf("%w: Bearer without a token", ErrBadCredentials)
		}
		if e := a.lookup(cred); e != nil {
			return e.p, nil
		}
		if v := a.jwt.Load(); v != nil && strings.Count(cred, ".") == 2 {
			return v.verify(ctx, cred)
		}
		return Principal{}, fmt.Errorf("%w: unknown token", ErrBadCredentials)
	case strings.EqualFold(scheme, "Basic"):
		if cred == "" {
			return Principal{}, fmt.Errorf("%w: Basic without credentials", ErrBadCredentials)
		}
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: Basic credentials are not base64", ErrBadCredentials)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return Principal{}, fmt.Errorf("%w: Basic credentials are not user:password", ErrBadCredentials)
		}
		e := a.lookup(pass)
		if e == nil || e.username == "" || subtle.ConstantTimeCompare([]byte(user), []byte(e.username)) != 1 {
			return Principal{}, fmt.Errorf("%w: unknown username or password", ErrBadCredentials)
		}
		return e.p, nil
	}
	return Principal{}, fmt.Errorf("%w: unsupported Authorization scheme (use Bearer or Basic)", ErrBadCredentials)
}

// lookup returns the token whose secret is secret, or nil.
func (a *Authenticator) lookup(secret string) *entry {
	h := sha256.Sum256([]byte(secret))
	e := a.tokens.Load().byHash[h]
	if e == nil || subtle.ConstantTimeCompare(h[:], e.hash[:]) != 1 {
		return nil
	}
	return e
}

// Forbidden counts a request refused by Principal.Authorize
// (clew_auth_requests_total{result="forbidden"}). Callers that use
// Authenticate and Authorize themselves call it on ErrForbidden; Check
// does it for them.
func (a *Authenticator) Forbidden() { a.forbidden.Inc() }

// Check authenticates authorization and authorizes the principal for
// requested (the tenant the request names, "" for none) with need, counting
// the outcome. It returns the principal (for logs) and the tenant(s) the
// request acts for (see Principal.Authorize). Its errors wrap
// ErrNoCredentials, ErrBadCredentials or ErrForbidden.
//
// Its shape is that of internal/tenant's Authorizer but for the types of
// need and of the errors: an adapter in internal/app maps tenant.Need to
// Right and these errors to tenant.ErrUnauthenticated (the first two) and
// tenant.ErrForbidden.
func (a *Authenticator) Check(ctx context.Context, authorization, requested string, need Right) (Principal, string, error) {
	p, err := a.Authenticate(ctx, authorization)
	if err != nil {
		return Principal{}, "", err
	}
	t, err := p.Authorize(requested, need)
	if err != nil {
		a.Forbidden()
		a.log.Debug("request forbidden", "principal", p.Name, "err", err)
		return p, "", err
	}
	return p, t, nil
}
