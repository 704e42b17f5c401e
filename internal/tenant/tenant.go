// Package tenant finds out which tenant a request acts for and puts it in
// the request's context (storage.WithTenant), where the receivers, the
// store dispatch and every query front end read it.
//
// The tenant comes from the X-Scope-OrgID header (HTTP) or the
// x-scope-orgid metadata (gRPC), as Grafana's data sources, the
// OpenTelemetry Collector and Tempo's clients send it. With multitenancy
// off, clew has one tenant and the header is ignored, as Tempo ignores it
// in single-tenant mode. With it on, a request without a tenant is refused
// (401) unless a default tenant is configured; a malformed one is refused
// (400). When authentication is configured, the credentials decide the
// tenant, and a header naming a tenant they may not use is refused (403).
// Every refusal is counted in clew_tenant_rejected_total by reason.
package tenant

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/clew-dev/clew/internal/storage"
)

// Header is the HTTP header that names the tenant; gRPC metadata keys are
// lower case (MetadataKey).
const (
	Header      = "X-Scope-OrgID"
	MetadataKey = "x-scope-orgid"
)

// Errors of Resolve, by the answer they get: ErrInvalid 400, ErrMissing
// and ErrUnauthenticated 401, ErrForbidden 403.
var (
	ErrInvalid         = storage.ErrInvalidTenant
	ErrMissing         = errors.New("no tenant ID")
	ErrUnauthenticated = errors.New("not authenticated")
	ErrForbidden       = errors.New("forbidden")
)

// Validate checks a tenant ID (storage.ValidateTenant); its errors wrap
// ErrInvalid.
func Validate(id string) error { return storage.ValidateTenant(id) }

// Need is what a request does with a tenant's data, which decides the
// right its credentials need.
type Need uint8

const (
	// NeedWrite sends spans (every receiver).
	NeedWrite Need = iota
	// NeedRead reads traces, metrics and analyses (every query API).
	NeedRead
	// NeedAdmin runs maintenance (flush, compact, retention) and reads
	// profiles (/debug/pprof).
	NeedAdmin
)

func (n Need) String() string {
	switch n {
	case NeedWrite:
		return "write"
	case NeedRead:
		return "read"
	default:
		return "admin"
	}
}

// Authorizer checks a request's credentials (the value of its
// Authorization header or metadata, "" when it sent none) and returns the
// tenant the request acts for: the credentials' own tenant, or requested
// (the tenant the request named, "" when none) when they may act for it
// with need. Its errors wrap ErrUnauthenticated or ErrForbidden.
type Authorizer interface {
	Authorize(ctx context.Context, authorization, requested string, need Need) (string, error)
}

// Config says how requests name their tenant.
type Config struct {
	// Multi turns multitenancy on.
	Multi bool
	// Single is the one tenant when Multi is off.
	Single string
	// Default is the tenant of a request that names none when Multi is
	// on; "" refuses such requests.
	Default string
	// Auth checks credentials; nil accepts every request.
	Auth Authorizer
	// CrossTenantReads lets a read name several tenants, "a|b" as Tempo
	// takes them, when Multi is on: each must pass Auth for reading.
	CrossTenantReads bool
}

// Resolver finds the tenant of each request.
type Resolver struct {
	cfg      Config
	rejected *prometheus.CounterVec
}

// NewResolver returns the resolver for cfg, counting refusals on reg (nil:
// not registered).
func NewResolver(cfg Config, reg prometheus.Registerer) *Resolver {
	r := &Resolver{cfg: cfg, rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "clew_tenant_rejected_total",
		Help: "Requests refused before reaching any tenant's data, by protocol (http, grpc) and reason (missing, invalid, unauthenticated, forbidden).",
	}, []string{"protocol", "reason"})}
	if reg != nil {
		reg.MustRegister(r.rejected)
	}
	return r
}

// Multi reports whether multitenancy is on.
func (r *Resolver) Multi() bool { return r.cfg.Multi }

// Resolve returns the tenant of a request that named requested (the
// header's value, "" when absent) with the credentials authorization, for
// need.
func (r *Resolver) Resolve(ctx context.Context, requested, authorization string, need Need) (string, error) {
	requested = strings.TrimSpace(requested)
	if !r.cfg.Multi {
		requested = r.cfg.Single
	} else if requested != "" {
		if strings.Contains(requested, storage.TenantSeparator) {
			return r.resolveAcross(ctx, requested, authorization, need)
		}
		if err := Validate(requested); err != nil {
			return "", err
		}
	}
	if r.cfg.Auth != nil {
		t, err := r.cfg.Auth.Authorize(ctx, authorization, requested, need)
		if err != nil {
			return "", err
		}
		requested = t
	}
	if requested == "" {
		if r.cfg.Default == "" {
			return "", fmt.Errorf("%w: send the tenant in the %s header", ErrMissing, Header)
		}
		requested = r.cfg.Default
	}
	if err := Validate(requested); err != nil {
		return "", err
	}
	return requested, nil
}

// resolveAcross resolves a read that names several tenants ("a|b"):
// permitted only for reads with CrossTenantReads on, and only when the
// credentials may read every tenant named. It returns the tenants joined
// by storage.TenantSeparator, duplicates left out.
func (r *Resolver) resolveAcross(ctx context.Context, requested, authorization string, need Need) (string, error) {
	switch {
	case need != NeedRead:
		return "", fmt.Errorf("%w: %q names several tenants; only reads may", ErrInvalid, requested)
	case !r.cfg.CrossTenantReads:
		return "", fmt.Errorf("%w: %q names several tenants, and reads across tenants are off (cross_tenant_reads)", ErrInvalid, requested)
	}
	names := storage.SplitTenants(requested)
	if len(names) > MaxTenantsPerRead {
		return "", fmt.Errorf("%w: %q names %d tenants, at most %d", ErrInvalid, requested, len(names), MaxTenantsPerRead)
	}
	for _, n := range names {
		if err := Validate(n); err != nil {
			return "", err
		}
		if r.cfg.Auth != nil {
			t, err := r.cfg.Auth.Authorize(ctx, authorization, n, NeedRead)
			if err != nil {
				return "", err
			}
			if t != n {
				return "", fmt.Errorf("%w: the credentials act for tenant %q, not %q", ErrForbidden, t, n)
			}
		}
	}
	if len(names) == 1 {
		return names[0], nil
	}
	return strings.Join(names, storage.TenantSeparator), nil
}

// MaxTenantsPerRead bounds the tenants one read across tenants names.
const MaxTenantsPerRead = 32

// reason is the metric label and status of a Resolve error.
func reason(err error) (string, int, codes.Code) {
	switch {
	case errors.Is(err, ErrMissing):
		return "missing", http.StatusUnauthorized, codes.Unauthenticated
	case errors.Is(err, ErrUnauthenticated):
		return "unauthenticated", http.StatusUnauthorized, codes.Unauthenticated
	case errors.Is(err, ErrForbidden):
		return "forbidden", http.StatusForbidden, codes.PermissionDenied
	default:
		return "invalid", http.StatusBadRequest, codes.InvalidArgument
	}
}

// HTTP serves h with the tenant of each request in its context. need
// classifies a request; a nil need means NeedRead. Refusals answer JSON
// {"error": ...} with their status (401 with a WWW-Authenticate
// challenge).
func (r *Resolver) HTTP(need func(*http.Request) (Need, bool), h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, guarded := NeedRead, true
		if need != nil {
			n, guarded = need(req)
		}
		if !guarded {
			h.ServeHTTP(w, req)
			return
		}
		t, err := r.Resolve(req.Context(), req.Header.Get(Header), req.Header.Get("Authorization"), n)
		if err != nil {
			why, code, _ := reason(err)
			r.rejected.WithLabelValues("http", why).Inc()
			if code == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="clew"`)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = fmt.Fprintf(w, "{\"error\":%q}\n", err.Error())
			return
		}
		h.ServeHTTP(w, req.WithContext(storage.WithTenant(req.Context(), t)))
	})
}

// fromGRPC resolves the tenant of a gRPC call.
func (r *Resolver) fromGRPC(ctx context.Context, need Need) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	t, err := r.Resolve(ctx, first(MetadataKey), first("authorization"), need)
	if err != nil {
		why, _, code := reason(err)
		r.rejected.WithLabelValues("grpc", why).Inc()
		return nil, status.Error(code, err.Error())
	}
	return storage.WithTenant(ctx, t), nil
}

// GRPC returns the server options that resolve the tenant of every unary
// and streaming call for need.
func (r *Resolver) GRPC(need Need) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := r.fromGRPC(ctx, need)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := r.fromGRPC(ss.Context(), need)
			if err != nil {
				return err
			}
			return h(srv, &tenantStream{ss, ctx})
		}),
	}
}

type tenantStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *tenantStream) Context() context.Context { return s.ctx }
