package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// DefaultTenant is the tenant a single-tenant deployment stores and reads
// when none is configured (the configuration's tenant default).
const DefaultTenant = "single-tenant"

// ErrUnknownTenant is wrapped by the error a Reader returns for a tenant
// it does not hold.
var ErrUnknownTenant = errors.New("unknown tenant")

// tenantKey is the context key of the tenant.
type tenantKey struct{}

// WithTenant returns ctx carrying the tenant that Reader calls made with
// it read.
//
// The tenant travels in the context, not in a resolver (a
// ReaderFor(tenant) returning one Reader per tenant), because every layer
// between a request and the data already passes ctx on: the HTTP or gRPC
// handler that learns the tenant (a header such as X-Scope-OrgID, or the
// configured tenant) sets it once, and the TraceQL engine, the analyses
// and a cluster querier's fan-out to ingesters and bucket blocks carry it
// along without an extra parameter, and send it on over the network as a
// header. Front ends therefore hold one Reader whatever the number of
// tenants, and a Reader serving several tenants picks the data by
// TenantFrom. A call without a tenant reads the default tenant: the one
// tenant of a single-tenant store, so that nothing needs to set it today.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// TenantFrom returns the tenant ctx carries and whether it carries one; a
// Reader reads its default tenant when it carries none.
func TenantFrom(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok
}

// MaxTenantLength bounds a tenant ID, as Cortex, Mimir and Tempo bound it.
const MaxTenantLength = 150

// ErrInvalidTenant is wrapped by ValidateTenant's errors.
var ErrInvalidTenant = errors.New("invalid tenant ID")

// ValidateTenant checks a tenant ID: 1 to MaxTenantLength characters out
// of letters, digits and !-_.*'() (the characters Cortex-style systems
// accept, all safe in a path), and not "." or "..". The ID becomes a
// directory name and an object key prefix, so nothing else is accepted.
func ValidateTenant(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidTenant)
	case len(id) > MaxTenantLength:
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidTenant, len(id), MaxTenantLength)
	case id == "." || id == "..":
		return fmt.Errorf("%w: %q", ErrInvalidTenant, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!-_.*'()", c) >= 0:
		default:
			return fmt.Errorf("%w: character %q at %d (allowed: letters, digits and !-_.*'())", ErrInvalidTenant, rune(c), i)
		}
	}
	return nil
}
