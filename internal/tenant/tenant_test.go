package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clew-dev/clew/internal/storage"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"team-a", true}, {"A.b_c!*'()-9", true}, {strings.Repeat("x", 150), true},
		{"", false}, {".", false}, {"..", false}, {"../etc", false}, {"a/b", false}, {`a\b`, false},
		{"a b", false}, {"a|b", false}, {"é", false}, {"a\x00", false}, {strings.Repeat("x", 151), false},
	} {
		err := Validate(c.id)
		if (err == nil) != c.ok {
			t.Errorf("Validate(%q) = %v, want ok=%v", c.id, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want it to wrap ErrInvalid", c.id, err)
		}
	}
}

// fakeAuth accepts "Bearer a-token" for tenant team-a (read and write),
// and "Bearer admin" for any tenant with every right.
type fakeAuth struct{}

func (fakeAuth) Authorize(_ context.Context, authz, requested string, need Need) (string, error) {
	switch authz {
	case "Bearer a-token":
		if requested != "" && requested != "team-a" {
			return "", fmt.Errorf("%w: this token may not use tenant %s", ErrForbidden, requested)
		}
		if need == NeedAdmin {
			return "", fmt.Errorf("%w: this token has no admin right", ErrForbidden)
		}
		return "team-a", nil
	case "Bearer admin":
		return requested, nil
	case "":
		return "", fmt.Errorf("%w: no credentials", ErrUnauthenticated)
	}
	return "", fmt.Errorf("%w: unknown token", ErrUnauthenticated)
}

func TestResolve(t *testing.T) {
	single := Config{Single: "single-tenant"}
	multi := Config{Multi: true}
	withDefault := Config{Multi: true, Default: "anon"}
	authed := Config{Multi: true, Auth: fakeAuth{}}
	across := Config{Multi: true, CrossTenantReads: true}
	acrossAuthed := Config{Multi: true, CrossTenantReads: true, Auth: fakeAuth{}}
	for _, c := range []struct {
		name            string
		cfg             Config
		header, authz   string
		need            Need
		want            string
		wantErr         error
		wantHTTP        int
		wantGRPC        codes.Code
		wantRejectLabel string
	}{
		{name: "single ignores the header", cfg: single, header: "team-b", want: "single-tenant"},
		{name: "single without header", cfg: single, want: "single-tenant"},
		{name: "multi header", cfg: multi, header: "team-b", want: "team-b"},
		{name: "multi trims", cfg: multi, header: " team-b ", want: "team-b"},
		{name: "multi missing", cfg: multi, wantErr: ErrMissing, wantHTTP: 401, wantGRPC: codes.Unauthenticated, wantRejectLabel: "missing"},
		{name: "multi traversal", cfg: multi, header: "../x", wantErr: ErrInvalid, wantHTTP: 400, wantGRPC: codes.InvalidArgument, wantRejectLabel: "invalid"},
		{name: "multi several", cfg: multi, header: "a|b", wantErr: ErrInvalid, wantHTTP: 400, wantGRPC: codes.InvalidArgument, wantRejectLabel: "invalid"},
		{name: "across tenants", cfg: across, header: "a|b|a", need: NeedRead, want: "a|b"},
		{name: "across tenants one", cfg: across, header: "a|", need: NeedRead, want: "a"},
		{name: "across tenants bad part", cfg: across, header: "a|../x", need: NeedRead, wantErr: ErrInvalid, wantHTTP: 400, wantGRPC: codes.InvalidArgument, wantRejectLabel: "invalid"},
		{name: "across tenants write", cfg: across, header: "a|b", need: NeedWrite, wantErr: ErrInvalid, wantHTTP: 400, wantGRPC: codes.InvalidArgument, wantRejectLabel: "invalid"},
		{name: "across tenants token of one", cfg: acrossAuthed, authz: "Bearer a-token", header: "team-a|team-b", need: NeedRead, wantErr: ErrForbidden, wantHTTP: 403, wantGRPC: codes.PermissionDenied, wantRejectLabel: "forbidden"},
		{name: "across tenants operator", cfg: acrossAuthed, authz: "Bearer admin", header: "team-a|team-b", need: NeedRead, want: "team-a|team-b"},
		{name: "multi overlong", cfg: multi, header: strings.Repeat("a", 151), wantErr: ErrInvalid, wantHTTP: 400, wantGRPC: codes.InvalidArgument, wantRejectLabel: "invalid"},
		{name: "default tenant", cfg: withDefault, want: "anon"},
		{name: "default does not override", cfg: withDefault, header: "team-b", want: "team-b"},
		{name: "token decides", cfg: authed, authz: "Bearer a-token", want: "team-a"},
		{name: "token and its tenant", cfg: authed, authz: "Bearer a-token", header: "team-a", want: "team-a"},
		{name: "token and another tenant", cfg: authed, authz: "Bearer a-token", header: "team-b", wantErr: ErrForbidden, wantHTTP: 403, wantGRPC: codes.PermissionDenied, wantRejectLabel: "forbidden"},
		{name: "token without admin", cfg: authed, authz: "Bearer a-token", need: NeedAdmin, wantErr: ErrForbidden, wantHTTP: 403, wantGRPC: codes.PermissionDenied, wantRejectLabel: "forbidden"},
		{name: "no token", cfg: authed, header: "team-a", wantErr: ErrUnauthenticated, wantHTTP: 401, wantGRPC: codes.Unauthenticated, wantRejectLabel: "unauthenticated"},
		{name: "bad token", cfg: authed, authz: "Bearer nope", header: "team-a", wantErr: ErrUnauthenticated, wantHTTP: 401, wantGRPC: codes.Unauthenticated, wantRejectLabel: "unauthenticated"},
		{name: "operator token", cfg: authed, authz: "Bearer admin", header: "team-b", need: NeedAdmin, want: "team-b"},
		{name: "operator token without tenant", cfg: authed, authz: "Bearer admin", wantErr: ErrMissing, wantHTTP: 401, wantGRPC: codes.Unauthenticated, wantRejectLabel: "missing"},
		{name: "operator token bad tenant", cfg: authed, authz: "Bearer admin", header: "..", wantErr: ErrInvalid, wantHTTP: 400, wantGRPC: codes.InvalidArgument, wantRejectLabel: "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			r := NewResolver(c.cfg, reg)
			got, err := r.Resolve(context.Background(), c.header, c.authz, c.need)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Resolve = %q, %v; want an error wrapping %v", got, err, c.wantErr)
				}
			} else if err != nil || got != c.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, c.want)
			}

			// The HTTP middleware: the tenant reaches the handler in the
			// context, or the request is refused with the status.
			var seen string
			h := r.HTTP(func(*http.Request) (Need, bool) { return c.need, true }, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				seen, _ = storage.TenantFrom(req.Context())
			}))
			req := httptest.NewRequest("GET", "/x", nil)
			if c.header != "" {
				req.Header.Set(Header, c.header)
			}
			if c.authz != "" {
				req.Header.Set("Authorization", c.authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if c.wantErr == nil {
				if rec.Code != 200 || seen != c.want {
					t.Errorf("HTTP: %d, tenant %q; want 200 and %q", rec.Code, seen, c.want)
				}
			} else {
				if rec.Code != c.wantHTTP || seen != "" {
					t.Errorf("HTTP: %d (handler saw %q); want %d", rec.Code, seen, c.wantHTTP)
				}
				if !strings.Contains(rec.Body.String(), `"error"`) {
					t.Errorf("HTTP body %q: want a JSON error", rec.Body.String())
				}
				if n := testutil.ToFloat64(r.rejected.WithLabelValues("http", c.wantRejectLabel)); n != 1 {
					t.Errorf("clew_tenant_rejected_total{http,%s} = %v, want 1", c.wantRejectLabel, n)
				}
			}

			// The gRPC interceptors.
			md := metadata.MD{}
			if c.header != "" {
				md.Set(MetadataKey, c.header)
			}
			if c.authz != "" {
				md.Set("authorization", c.authz)
			}
			ctx := metadata.NewIncomingContext(context.Background(), md)
			gctx, gerr := r.fromGRPC(ctx, c.need)
			if c.wantErr == nil {
				if tn, _ := storage.TenantFrom(gctx); gerr != nil || tn != c.want {
					t.Errorf("gRPC: %q, %v; want %q", tn, gerr, c.want)
				}
			} else if status.Code(gerr) != c.wantGRPC {
				t.Errorf("gRPC: %v; want code %v", gerr, c.wantGRPC)
			}
		})
	}
}

// TestUnguarded checks that a route the classifier leaves open is served
// without a tenant.
func TestUnguarded(t *testing.T) {
	r := NewResolver(Config{Multi: true}, nil)
	h := r.HTTP(func(req *http.Request) (Need, bool) { return NeedRead, req.URL.Path != "/healthz" },
		http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for path, want := range map[string]int{"/healthz": 200, "/api": 401} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}

// TestGRPCStream checks the stream interceptor hands the tenant on.
func TestGRPCStream(t *testing.T) {
	r := NewResolver(Config{Multi: true}, nil)
	if n := len(r.GRPC(NeedRead)); n != 2 {
		t.Fatalf("GRPC options: %d, want 2 (unary and stream)", n)
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(MetadataKey, "team-a"))
	gctx, err := r.fromGRPC(ctx, NeedRead)
	if err != nil {
		t.Fatal(err)
	}
	st := &tenantStream{ServerStream: nil, ctx: gctx}
	if tn, _ := storage.TenantFrom(st.Context()); tn != "team-a" {
		t.Errorf("stream tenant %q, want team-a", tn)
	}
	var _ grpc.ServerStream = st
}

// FuzzResolve feeds arbitrary tenant headers and credentials: no panic,
// and a request either gets a valid tenant it may use or an error.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"team-a", "", "..", "../../etc/passwd", "a|b", "a\x00b", strings.Repeat("z", 200), "Bearer a-token", "Bearer admin"} {
		f.Add(s, s, false)
		f.Add(s, "Bearer a-token", true)
	}
	multi := NewResolver(Config{Multi: true}, nil)
	authed := NewResolver(Config{Multi: true, Auth: fakeAuth{}}, nil)
	f.Fuzz(func(t *testing.T, header, authz string, useAuth bool) {
		r := multi
		if useAuth {
			r = authed
		}
		got, err := r.Resolve(context.Background(), header, authz, NeedRead)
		if err != nil {
			if got != "" {
				t.Fatalf("error %v with tenant %q", err, got)
			}
			return
		}
		if Validate(got) != nil {
			t.Fatalf("resolved an invalid tenant %q", got)
		}
		if useAuth && authz == "Bearer a-token" && got != "team-a" {
			t.Fatalf("team-a's token resolved to %q", got)
		}
		if !useAuth && got != strings.TrimSpace(header) {
			t.Fatalf("header %q resolved to %q", header, got)
		}
	})
}

// BenchmarkHTTP measures what the tenant's resolution adds to each
// request (it runs once per request, not per span): the multitenant
// middleware with a header, against the bare handler.
func BenchmarkHTTP(b *testing.B) {
	bare := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare},
		{"single", NewResolver(Config{Single: "single-tenant"}, nil).HTTP(nil, bare)},
		{"multi", NewResolver(Config{Multi: true}, nil).HTTP(nil, bare)},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("POST", "/v1/traces", nil)
			req.Header.Set(Header, "team-a")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}
