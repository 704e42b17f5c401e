package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testIssuer   = "https://idp.test"
	testAudience = "clew"
)

// signer is a test identity provider's key.
type signer struct {
	kid string
	alg jose.SignatureAlgorithm
	key any // private key
	pub any
}

func newSigner(t *testing.T, kid string, alg jose.SignatureAlgorithm) signer {
	t.Helper()
	s := signer{kid: kid, alg: alg}
	switch alg {
	case jose.RS256:
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		s.key, s.pub = k, &k.PublicKey
	case jose.ES256:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.key, s.pub = k, &k.PublicKey
	case jose.EdDSA:
		pub, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.key, s.pub = k, pub
	default:
		t.Fatalf("no test key for %s", alg)
	}
	return s
}

func (s signer) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.pub, KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

// sign returns a JWT with the standard claims std and the others in extra.
func (s signer) sign(t *testing.T, std jwt.Claims, extra map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if s.kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), s.kid)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sg).Claims(std).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func jwksJSON(t *testing.T, signers ...signer) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, s := range signers {
		set.Keys = append(set.Keys, s.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeJWKS(t *testing.T, signers ...signer) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwksJSON(t, signers...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func claimsAt(now time.Time) jwt.Claims {
	return jwt.Claims{
		Issuer:   testIssuer,
		Audience: jwt.Audience{testAudience},
		Subject:  "alice@example.com",
		IssuedAt: jwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry:   jwt.NewNumericDate(now.Add(time.Hour)),
	}
}

func TestJWT(t *testing.T) {
	rs := newSigner(t, "rs", jose.RS256)
	es := newSigner(t, "es", jose.ES256)
	ed := newSigner(t, "ed", jose.EdDSA)
	other := newSigner(t, "rs", jose.RS256) // same kid, another key
	noKid := newSigner(t, "", jose.ES256)
	path := writeJWKS(t, rs, es, ed, noKid)
	a, _ := newTest(t, Config{JWT: &JWT{JWKSFile: path, Issuer: testIssuer, Audience: testAudience}})
	a.now = func() time.Time { return testNow }

	ok := claimsAt(testNow)
	with := func(f func(*jwt.Claims)) jwt.Claims {
		c := ok
		f(&c)
		return c
	}
	writer := map[string]any{"tenant": "acme", "rights": []string{"write", "read"}}
	tests := []struct {
		name  string
		token string
		want  Principal
		err   string // substring; "" for none
	}{
		{"RS256", rs.sign(t, ok, writer), Principal{Name: "jwt:alice@example.com", Tenant: "acme", Rights: Rights(Write | Read)}, ""},
		{"ES256", es.sign(t, ok, writer), Principal{Name: "jwt:alice@example.com", Tenant: "acme", Rights: Rights(Write | Read)}, ""},
		{"EdDSA", ed.sign(t, ok, writer), Principal{Name: "jwt:alice@example.com", Tenant: "acme", Rights: Rights(Write | Read)}, ""},
		{"no kid", noKid.sign(t, ok, writer), Principal{Name: "jwt:alice@example.com", Tenant: "acme", Rights: Rights(Write | Read)}, ""},
		{"scope-like rights, unknown ignored", rs.sign(t, ok, map[string]any{"tenant": "acme", "rights": "read openid admin"}), Principal{Name: "jwt:alice@example.com", Tenant: "acme", Rights: Rights(Read | Admin)}, ""},
		{"tenants list", rs.sign(t, ok, map[string]any{"tenant": []string{"a", "b"}, "rights": []string{"read"}}), Principal{Name: "jwt:alice@example.com", Tenants: []string{"a", "b"}, Rights: Rights(Read)}, ""},
		{"within leeway", rs.sign(t, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(testNow.Add(-30 * time.Second)) }), writer), Principal{Name: "jwt:alice@example.com", Tenant: "acme", Rights: Rights(Write | Read)}, ""},
		{"expired", rs.sign(t, with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(testNow.Add(-time.Hour)) }), writer), Principal{}, "JWT expired"},
		{"not yet valid", rs.sign(t, with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(testNow.Add(time.Hour)) }), writer), Principal{}, "not valid yet"},
		{"no exp", rs.sign(t, with(func(c *jwt.Claims) { c.Expiry = nil }), writer), Principal{}, "without exp"},
		{"wrong issuer", rs.sign(t, with(func(c *jwt.Claims) { c.Issuer = "https://evil.test" }), writer), Principal{}, "another issuer"},
		{"wrong audience", rs.sign(t, with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"grafana"} }), writer), Principal{}, "another audience"},
		{"wrong key", other.sign(t, ok, writer), Principal{}, "does not verify"},
		{"no tenant claim", rs.sign(t, ok, map[string]any{"rights": []string{"write"}}), Principal{}, "without a tenant claim"},
		{"bad tenant claim", rs.sign(t, ok, map[string]any{"tenant": "a b", "rights": []string{"write"}}), Principal{}, "character"},
		{"tampered", tamper(rs.sign(t, ok, writer)), Principal{}, "does not verify"},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnQiOiJhY21lIn0.", Principal{}, "malformed"},
		{"garbage", "a.b.c", Principal{}, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), "Bearer "+tt.token)
			if tt.err != "" {
				if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want ErrBadCredentials with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.want.Name || p.Tenant != tt.want.Tenant || p.Rights != tt.want.Rights || strings.Join(p.Tenants, ",") != strings.Join(tt.want.Tenants, ",") {
				t.Fatalf("principal %+v, want %+v", p, tt.want)
			}
		})
	}
}

// tamper changes the payload of a JWT, keeping its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	var claims map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &claims)
	claims["tenant"] = "other"
	b, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestJWTConfiguredClaims(t *testing.T) {
	rs := newSigner(t, "rs", jose.RS256)
	a, _ := newTest(t, Config{JWT: &JWT{JWKSFile: writeJWKS(t, rs), Issuer: testIssuer, Audience: testAudience, TenantClaim: "org", RightsClaim: "scope"}})
	a.now = func() time.Time { return testNow }
	p, err := a.Authenticate(context.Background(), "Bearer "+rs.sign(t, claimsAt(testNow), map[string]any{"org": "acme", "scope": "write"}))
	if err != nil || p.Tenant != "acme" || p.Rights != Rights(Write) {
		t.Fatalf("principal %+v, %v", p, err)
	}
}

func TestJWTFileMissing(t *testing.T) {
	_, err := New(Config{JWT: &JWT{JWKSFile: filepath.Join(t.TempDir(), "none.json"), Issuer: testIssuer, Audience: testAudience}}, nil, nil)
	if err == nil {
		t.Fatal("New accepted a missing key set file")
	}
}

// jwksServer serves a key set that the test changes, counting requests.
type jwksServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     []byte
	requests atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.body == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(body []byte) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

func TestJWKSURLUnknownKidRefresh(t *testing.T) {
	k1 := newSigner(t, "k1", jose.ES256)
	k2 := newSigner(t, "k2", jose.ES256)
	k3 := newSigner(t, "k3", jose.ES256)
	srv := newJWKSServer(t, jwksJSON(t, k1))
	a, reg := newTest(t, Config{JWT: &JWT{JWKSURL: srv.URL + "/jwks.json", Issuer: testIssuer, Audience: testAudience, RefreshInterval: time.Hour}})
	var mu sync.Mutex
	now := testNow
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	auth := func(s signer) error {
		_, err := a.Authenticate(context.Background(), "Bearer "+s.sign(t, claimsAt(testNow), map[string]any{"tenant": "acme", "rights": "write"}))
		return err
	}
	if err := auth(k1); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d key set requests after New, want 1", n)
	}
	// The provider rotates to k2: a token with the new kid loads the key
	// set again, once.
	srv.set(jwksJSON(t, k1, k2))
	if err := auth(k2); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d key set requests after an unknown kid, want 2", n)
	}
	// Another unknown kid within the minute does not load it again.
	srv.set(jwksJSON(t, k1, k2, k3))
	for range 5 {
		if err := auth(k3); !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), "unknown key") {
			t.Fatalf("k3 within the minute: %v", err)
		}
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("%d key set requests after unknown kids within a minute, want 2", n)
	}
	// A minute later it does.
	// (claimsAt(testNow) is still valid a minute later: exp in an hour.)
	advance(unknownKidInterval + time.Second)
	if err := auth(k3); err != nil {
		t.Fatalf("k3 a minute later: %v", err)
	}
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("%d key set requests, want 3", n)
	}
	// A failing provider keeps the last key set.
	srv.set(nil)
	advance(unknownKidInterval + time.Second)
	if err := auth(newSigner(t, "k4", jose.ES256)); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("k4: %v", err)
	}
	if err := auth(k1); err != nil {
		t.Fatalf("k1 after a failed load: %v", err)
	}
	mfs, _ := reg.Gather()
	loads := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "clew_auth_jwks_loads_total" {
			for _, m := range mf.GetMetric() {
				loads[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if loads["ok"] != 3 || loads["error"] != 1 {
		t.Errorf("clew_auth_jwks_loads_total = %v, want ok 3, error 1", loads)
	}
}

func TestJWKSURLDownAtStart(t *testing.T) {
	k1 := newSigner(t, "k1", jose.RS256)
	srv := newJWKSServer(t, nil)
	a, _ := newTest(t, Config{JWT: &JWT{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience}})
	a.now = func() time.Time { return testNow }
	tok := "Bearer " + k1.sign(t, claimsAt(testNow), map[string]any{"tenant": "acme", "rights": "read"})
	if _, err := a.Authenticate(context.Background(), tok); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("with the provider down: %v", err)
	}
	srv.set(jwksJSON(t, k1))
	a.now = func() time.Time { return testNow.Add(2 * time.Minute) }
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatalf("once the provider is back: %v", err)
	}
}

func TestJWKSPeriodicRefresh(t *testing.T) {
	k1 := newSigner(t, "k1", jose.RS256)
	srv := newJWKSServer(t, jwksJSON(t, k1))
	a, _ := newTest(t, Config{JWT: &JWT{JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience, RefreshInterval: time.Second}})
	deadline := time.Now().Add(10 * time.Second)
	for srv.requests.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the key set was not refreshed within 10s at a 1s interval")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = a.Close()
	n := srv.requests.Load()
	time.Sleep(1500 * time.Millisecond)
	if m := srv.requests.Load(); m != n {
		t.Fatalf("refreshed after Close: %d → %d requests", n, m)
	}
}

func TestUpdateJWT(t *testing.T) {
	k1 := newSigner(t, "k1", jose.RS256)
	cfg := Config{JWT: &JWT{JWKSFile: writeJWKS(t, k1), Issuer: testIssuer, Audience: testAudience}}
	a, _ := newTest(t, cfg)
	a.now = func() time.Time { return testNow }
	tok := "Bearer " + k1.sign(t, claimsAt(testNow), map[string]any{"tenant": "acme", "rights": "read"})
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	v := a.jwt.Load()
	if err := a.Update(cfg); err != nil || a.jwt.Load() != v {
		t.Fatalf("an unchanged JWT section replaced the verifier (%v)", err)
	}
	cfg.JWT = nil
	cfg.Tokens = testConfig().Tokens
	if err := a.Update(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), tok); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("JWT after its section was removed: %v", err)
	}
}
