package app

import (
	"context"
	"time"

	"github.com/clew-dev/clew/internal/jaeger"
	"github.com/clew-dev/clew/internal/zipkin"
)

// jaegerDeps serves Jaeger's /api/dependencies from the service graph of
// the request's tenant.
type jaegerDeps struct{ ts *tenants }

func (d jaegerDeps) Dependencies(ctx context.Context, start, end time.Time) ([]jaeger.Dependency, error) {
	m, err := d.ts.spanMetricsOf(ctx)
	if err != nil || m == nil {
		return nil, err
	}
	deps, err := m.Dependencies(ctx, start, end)
	out := make([]jaeger.Dependency, len(deps))
	for i, x := range deps {
		out[i] = jaeger.Dependency{Parent: x.Parent, Child: x.Child, CallCount: x.CallCount}
	}
	return out, err
}

// zipkinDeps serves Zipkin's /api/v2/dependencies from the service graph
// of the request's tenant.
type zipkinDeps struct{ ts *tenants }

func (d zipkinDeps) Dependencies(ctx context.Context, start, end time.Time) ([]zipkin.Dependency, error) {
	m, err := d.ts.spanMetricsOf(ctx)
	if err != nil || m == nil {
		return nil, err
	}
	deps, err := m.Dependencies(ctx, start, end)
	out := make([]zipkin.Dependency, len(deps))
	for i, x := range deps {
		out[i] = zipkin.Dependency{Parent: x.Parent, Child: x.Child, CallCount: x.CallCount, ErrorCount: x.ErrorCount}
	}
	return out, err
}
