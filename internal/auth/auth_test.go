package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"
)

const (
	acmeSecret = "acme-secret-0123456789abcdefghijklmnopqrstuv"
	opsSecret  = "ops-secret-0123456789abcdefghijklmnopqrstuvw"
	goneSecret = "gone-secret-0123456789abcdefghijklmnopqrstu"
)

func testConfig() Config {
	return Config{Tokens: []Token{
		{Name: "acme-writer", SHA256: HashToken(acmeSecret), Tenant: "acme", Rights: []string{"write", "read"}, Username: "acme"},
		{Name: "ops", SHA256: HashToken(opsSecret), Tenants: []string{"a", "b"}, Rights: []string{"read", "admin"}},
		{Name: "gone", SHA256: HashToken(goneSecret), Tenant: "gone", Rights: []string{"write"}},
	}}
}

func newTest(t testing.TB, c Config) (*Authenticator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	a, err := New(c, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, reg
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestRights(t *testing.T) {
	rs, err := ParseRights([]string{"write", "read"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.String(); got != "read,write" {
		t.Errorf("String = %q, want read,write", got)
	}
	if !rs.Has(Write) || !rs.Has(Read) || rs.Has(Admin) || rs.Has(0) {
		t.Errorf("Has wrong for %s", rs)
	}
	if got := Rights(0).String(); got != "none" {
		t.Errorf("empty String = %q", got)
	}
	if _, err := ParseRight("root"); err == nil || !strings.Contains(err.Error(), `"root"`) {
		t.Errorf("ParseRight(root) = %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := Token{Name: "t", SHA256: HashToken("x"), Tenant: "acme", Rights: []string{"write"}}
	with := func(f func(*Token)) Config {
		tok := good
		f(&tok)
		return Config{Tokens: []Token{tok}}
	}
	tests := []struct {
		name string
		c    Config
		want string // substring of the error; "" for none
	}{
		{"zero", Config{}, ""},
		{"good", with(func(*Token) {}), ""},
		{"upper-case hex", with(func(t *Token) { t.SHA256 = strings.ToUpper(t.SHA256) }), ""},
		{"operator", with(func(t *Token) { t.Tenant = ""; t.Tenants = []string{"*"} }), ""},
		{"no name", with(func(t *Token) { t.Name = "" }), "name is missing"},
		{"short hash", with(func(t *Token) { t.SHA256 = "abcd" }), "64 hex digits"},
		{"bad hex", with(func(t *Token) { t.SHA256 = strings.Repeat("zz", 32) }), "not hex"},
		{"unknown right", with(func(t *Token) { t.Rights = []string{"write", "root"} }), `unknown right "root"`},
		{"no rights", with(func(t *Token) { t.Rights = nil }), "rights are missing"},
		{"tenant and tenants", with(func(t *Token) { t.Tenants = []string{"b"} }), "not both"},
		{"no tenant", with(func(t *Token) { t.Tenant = "" }), "set tenant"},
		{"bad tenant", with(func(t *Token) { t.Tenant = "a b" }), "character"},
		{"pipe tenant", with(func(t *Token) { t.Tenant = "a|b" }), "character"},
		{"star with others", with(func(t *Token) { t.Tenant = ""; t.Tenants = []string{"*", "a"} }), "stands alone"},
		{"colon username", with(func(t *Token) { t.Username = "a:b" }), "username"},
		{"duplicate name", Config{Tokens: []Token{good, {Name: "t", SHA256: HashToken("y"), Tenant: "a", Rights: []string{"read"}}}}, "name is used"},
		{"duplicate hash", Config{Tokens: []Token{good, {Name: "u", SHA256: good.SHA256, Tenant: "a", Rights: []string{"read"}}}}, `same sha256 as token "t"`},
		{"jwt without source", Config{JWT: &JWT{Issuer: "i", Audience: "a"}}, "jwks_file or jwks_url"},
		{"jwt both sources", Config{JWT: &JWT{JWKSFile: "f", JWKSURL: "https://x/j", Issuer: "i", Audience: "a"}}, "not both"},
		{"jwt no issuer", Config{JWT: &JWT{JWKSFile: "f", Audience: "a"}}, "issuer is missing"},
		{"jwt no audience", Config{JWT: &JWT{JWKSFile: "f", Issuer: "i"}}, "audience is missing"},
		{"jwt bad url", Config{JWT: &JWT{JWKSURL: "ftp://x/j", Issuer: "i", Audience: "a"}}, "http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
tokens:
  - name: ci
    sha256: ` + HashToken("x") + `
    tenant: acme
    rights: [write, read]
    username: ci
  - name: ops
    sha256: ` + HashToken("y") + `
    tenants: ["*"]
    rights: [admin]
jwt:
  jwks_url: https://idp.example/jwks.json
  issuer: https://idp.example
  audience: clew
  refresh_interval: 10m
`
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || len(c.Tokens) != 2 || c.Tokens[0].Username != "ci" || c.JWT.RefreshInterval.Minutes() != 10 {
		t.Fatalf("decoded %+v", c)
	}
	if (Config{}).Enabled() {
		t.Error("zero Config is enabled")
	}
}

func TestAuthenticate(t *testing.T) {
	a, reg := newTest(t, testConfig())
	ctx := context.Background()
	tests := []struct {
		name, authorization string
		want                string // principal name
		err                 error
	}{
		{"bearer ok", "Bearer " + acmeSecret, "acme-writer", nil},
		{"lowercase bearer", "bearer " + acmeSecret, "acme-writer", nil},
		{"extra spaces", "  Bearer   " + acmeSecret + " ", "acme-writer", nil},
		{"operator", "Bearer " + opsSecret, "ops", nil},
		{"basic ok", basic("acme", acmeSecret), "acme-writer", nil},
		{"basic lowercase", "basic " + base64.StdEncoding.EncodeToString([]byte("acme:"+acmeSecret)), "acme-writer", nil},
		{"basic wrong password", basic("acme", "nope"), "", ErrBadCredentials},
		{"basic wrong user", basic("root", acmeSecret), "", ErrBadCredentials},
		{"basic for a token without username", basic("ops", opsSecret), "", ErrBadCredentials},
		{"basic without colon", "Basic " + base64.StdEncoding.EncodeToString([]byte(acmeSecret)), "", ErrBadCredentials},
		{"basic not base64", "Basic %%%not-base64", "", ErrBadCredentials},
		{"basic empty", "Basic ", "", ErrBadCredentials},
		{"unknown", "Bearer some-other-token", "", ErrBadCredentials},
		{"empty", "", "", ErrNoCredentials},
		{"bearer with nothing", "Bearer ", "", ErrBadCredentials},
		{"bearer alone", "Bearer", "", ErrBadCredentials},
		{"no scheme", acmeSecret, "", ErrBadCredentials},
		{"other scheme", "Digest " + acmeSecret, "", ErrBadCredentials},
		{"overlong", "Bearer " + strings.Repeat("a", MaxAuthorizationLength), "", ErrBadCredentials},
		{"jwt shape without jwt config", "Bearer a.b.c", "", ErrBadCredentials},
	}
	var ok, none, bad float64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(ctx, tt.authorization)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Authenticate err = %v, want %v", err, tt.err)
			}
			if p.Name != tt.want {
				t.Fatalf("principal %q, want %q", p.Name, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), acmeSecret) {
				t.Fatalf("the error %q holds the secret", err)
			}
		})
		switch tt.err {
		case nil:
			ok++
		case ErrNoCredentials:
			none++
		default:
			bad++
		}
	}
	for result, want := range map[string]float64{"ok": ok, "no_credentials": none, "bad_credentials": bad, "forbidden": 0} {
		if got := counterValue(t, a.requests.WithLabelValues(result)); got != want {
			t.Errorf("clew_auth_requests_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series int
	for _, mf := range mfs {
		if mf.GetName() == "clew_auth_requests_total" {
			series = len(mf.GetMetric())
		}
	}
	if series != 4 {
		t.Errorf("clew_auth_requests_total has %d registered series, want 4", series)
	}
}

func TestAuthenticatePrincipal(t *testing.T) {
	a, _ := newTest(t, testConfig())
	p, err := a.Authenticate(context.Background(), "Bearer "+opsSecret)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant != "" || strings.Join(p.Tenants, ",") != "a,b" || p.Rights != Rights(Read|Admin) {
		t.Fatalf("principal %+v", p)
	}
}

func TestUpdateRemovesTokens(t *testing.T) {
	a, _ := newTest(t, testConfig())
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, "Bearer "+goneSecret); err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	c.Tokens = c.Tokens[:2]
	newSecret := "new-secret-0123456789abcdefghijklmnopqrstuvw"
	c.Tokens = append(c.Tokens, Token{Name: "new", SHA256: HashToken(newSecret), Tenant: "n", Rights: []string{"write"}})
	if err := a.Update(c); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+goneSecret); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("removed token: err = %v, want ErrBadCredentials", err)
	}
	if p, err := a.Authenticate(ctx, "Bearer "+newSecret); err != nil || p.Name != "new" {
		t.Fatalf("new token: %+v, %v", p, err)
	}
	if _, err := a.Authenticate(ctx, "Bearer "+acmeSecret); err != nil {
		t.Fatalf("kept token: %v", err)
	}
	// A bad configuration is refused and the current one stays.
	bad := testConfig()
	bad.Tokens[0].Rights = []string{"root"}
	if err := a.Update(bad); err == nil {
		t.Fatal("Update accepted an unknown right")
	}
	if _, err := a.Authenticate(ctx, "Bearer "+newSecret); err != nil {
		t.Fatalf("after a refused Update: %v", err)
	}
}

func TestAuthorize(t *testing.T) {
	acme := Principal{Name: "acme-writer", Tenant: "acme", Rights: Rights(Write | Read)}
	ops := Principal{Name: "ops", Tenants: []string{"a", "b"}, Rights: Rights(Read | Admin)}
	one := Principal{Name: "one", Tenants: []string{"a"}, Rights: Rights(Write)}
	all := Principal{Name: "root", Tenants: []string{"*"}, Rights: Rights(Read | Write | Admin)}
	tests := []struct {
		name      string
		p         Principal
		requested string
		need      Right
		want      string
		err       string // substring of the error; "" for none
	}{
		{"own tenant", acme, "acme", Write, "acme", ""},
		{"no tenant named: its own", acme, "", Read, "acme", ""},
		{"other tenant", acme, "other", Write, "", `token "acme-writer" may not write tenant "other"`},
		{"other tenant read", acme, "other", Read, "", `may not read tenant "other"`},
		{"own and other", acme, "acme|other", Read, "", `may not read tenant "other"`},
		{"missing right", acme, "acme", Admin, "", `token "acme-writer" may not administer (its rights: read,write)`},
		{"operator one tenant", ops, "a", Read, "a", ""},
		{"operator several tenants", ops, "a|b", Read, "a|b", ""},
		{"operator tenant not listed", ops, "a|c", Read, "", `may not read tenant "c"`},
		{"operator admin", ops, "b", Admin, "b", ""},
		{"operator several for admin", ops, "a|b", Admin, "", "only reads may span tenants"},
		{"operator names none", ops, "", Read, "", "name one in X-Scope-OrgID"},
		{"operator of one names none", one, "", Write, "a", ""},
		{"operator missing right", ops, "a", Write, "", "may not write"},
		{"empty tenant in list", ops, "a|", Read, "", "empty tenant"},
		{"any tenant", all, "whoever", Write, "whoever", ""},
		{"any tenant several", all, "x|y", Read, "x|y", ""},
		{"any tenant names none", all, "", Read, "", ""},
		{"zero principal", Principal{}, "a", Read, "", "may not read"},
		{"bound to nothing", Principal{Name: "n", Rights: Rights(Read)}, "a", Read, "", "bound to no tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.p.Authorize(tt.requested, tt.need)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Authorize = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Authorize err = %v, want ErrForbidden with %q", err, tt.err)
			}
			if got != "" {
				t.Fatalf("Authorize returned %q with its error", got)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	a, _ := newTest(t, testConfig())
	ctx := context.Background()
	if p, tenant, err := a.Check(ctx, "Bearer "+acmeSecret, "", Write); err != nil || tenant != "acme" || p.Name != "acme-writer" {
		t.Fatalf("Check = %+v, %q, %v", p, tenant, err)
	}
	if _, _, err := a.Check(ctx, "Bearer "+acmeSecret, "other", Write); !errors.Is(err, ErrForbidden) {
		t.Fatalf("other tenant: %v", err)
	}
	if _, _, err := a.Check(ctx, "", "acme", Write); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("no credentials: %v", err)
	}
	if got := counterValue(t, a.requests.WithLabelValues("forbidden")); got != 1 {
		t.Errorf("forbidden = %v, want 1", got)
	}
	a.Forbidden()
	if got := counterValue(t, a.requests.WithLabelValues("forbidden")); got != 2 {
		t.Errorf("forbidden after Forbidden() = %v, want 2", got)
	}
}

func TestNewToken(t *testing.T) {
	x, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	y, _ := NewToken()
	if x == y || len(x) != 43 || strings.ContainsAny(x, "+/=") {
		t.Fatalf("tokens %q, %q", x, y)
	}
	if b, err := base64.RawURLEncoding.DecodeString(x); err != nil || len(b) != 32 {
		t.Fatalf("token %q decodes to %d bytes, %v", x, len(b), err)
	}
	// The SHA-256 of "abc" (FIPS 180-2).
	if got := HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashToken(abc) = %s", got)
	}
}

func TestTokenMain(t *testing.T) {
	var out bytes.Buffer
	if err := TokenMain([]string{"new"}, &out, nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	tok := lines[0]
	if len(tok) != 43 {
		t.Fatalf("first line %q is not a token", tok)
	}
	// The printed entry, with its placeholders filled, is a valid
	// configuration that accepts the printed token.
	entry := strings.NewReplacer("NAME", "ci", "TENANT", "acme").Replace(strings.Join(lines[1:], "\n"))
	var c Config
	if err := yaml.Unmarshal([]byte("tokens:\n"+entry), &c); err != nil {
		t.Fatalf("the printed entry is not YAML: %v\n%s", err, entry)
	}
	a, _ := newTest(t, c)
	if p, err := a.Authenticate(context.Background(), "Bearer "+tok); err != nil || p.Name != "ci" {
		t.Fatalf("the printed token: %+v, %v", p, err)
	}

	out.Reset()
	if err := TokenMain([]string{"hash"}, &out, strings.NewReader(tok+"\n")); err != nil {
		t.Fatal(err)
	}
	if want := "sha256: " + HashToken(tok) + "\n"; out.String() != want {
		t.Fatalf("hash printed %q, want %q", out.String(), want)
	}
	for _, tt := range []struct {
		args  []string
		stdin string
		usage bool
	}{
		{nil, "", true},
		{[]string{"frob"}, "", true},
		{[]string{"new", "extra"}, "", true},
		{[]string{"hash"}, "  \n", false},
		{[]string{"hash"}, "two tokens", false},
		{[]string{"hash"}, strings.Repeat("a", MaxAuthorizationLength+1), false},
	} {
		err := TokenMain(tt.args, &out, strings.NewReader(tt.stdin))
		if err == nil || errors.Is(err, ErrUsage) != tt.usage {
			t.Errorf("TokenMain(%q) = %v, want an error (usage: %v)", tt.args, err, tt.usage)
		}
	}
}

// FuzzAuthenticate: Authenticate never panics and never returns a
// principal for an Authorization that is not one of the configured
// credentials.
func FuzzAuthenticate(f *testing.F) {
	for _, s := range []string{
		"", "Bearer ", "Bearer " + acmeSecret, "bearer x", basic("acme", acmeSecret), basic("acme", "x"),
		"Basic !!!", "Basic Og==", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.e30.", strings.Repeat("B", 9000),
	} {
		f.Add(s)
	}
	a, _ := newTest(f, testConfig())
	valid := map[string]bool{}
	for _, s := range []string{acmeSecret, opsSecret, goneSecret} {
		valid[s] = true
	}
	f.Fuzz(func(t *testing.T, authorization string) {
		p, err := a.Authenticate(context.Background(), authorization)
		if err != nil {
			if p.Name != "" || p.Rights != 0 || p.Tenant != "" || p.Tenants != nil {
				t.Fatalf("principal %+v with error %v", p, err)
			}
			if !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("error %v wraps neither ErrNoCredentials nor ErrBadCredentials", err)
			}
			return
		}
		// Accepted: the credential must be one of the configured secrets.
		scheme, cred, _ := strings.Cut(strings.TrimSpace(authorization), " ")
		cred = strings.TrimSpace(cred)
		if strings.EqualFold(scheme, "Basic") {
			raw, _ := base64.StdEncoding.DecodeString(cred)
			_, cred, _ = strings.Cut(string(raw), ":")
		}
		if !valid[cred] {
			t.Fatalf("accepted %q as %+v", authorization, p)
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	c := testConfig()
	for i := range 1000 { // a large installation's worth of tokens
		s, _ := NewToken()
		c.Tokens = append(c.Tokens, Token{Name: "t" + s[:8] + string(rune('a'+i%26)), SHA256: HashToken(s), Tenant: "t", Rights: []string{"write"}})
	}
	a, _ := newTest(b, c)
	ctx := context.Background()
	h := "Bearer " + acmeSecret
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/op")
}
