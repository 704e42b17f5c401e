package storage

import (
	"context"
	"errors"
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
