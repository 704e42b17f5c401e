package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"

	"github.com/clew-dev/clew/internal/auth"
)

// TestSDKExporterTenantAndToken sends spans with the OpenTelemetry Go
// SDK's OTLP/gRPC exporter configured as a Collector's otlp exporter is
// (headers: {X-Scope-OrgID: team-a, Authorization: Bearer ...}): the
// spans land in team-a, and the same exporter with a token of another
// tenant is refused.
func TestSDKExporterTenantAndToken(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "clew.yaml")
	yaml := "multitenancy: true\nauth:\n  tokens:\n" +
		"    - {name: a, sha256: " + auth.HashToken("sdk-token-a") + ", tenant: team-a, rights: [write, read]}\n" +
		"    - {name: b, sha256: " + auth.HashToken("sdk-token-b") + ", tenant: team-b, rights: [write, read]}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startClew(t, filepath.Join(dir, "data"), "--config", cfg)
	// The SDK reports export errors to the global error handler.
	var mu sync.Mutex
	var exportErrs []error
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		exportErrs = append(exportErrs, err)
		mu.Unlock()
	}))
	defer otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {}))
	send := func(token, service string) []error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(p.grpcAddr), otlptracegrpc.WithInsecure(),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: false}),
			otlptracegrpc.WithHeaders(map[string]string{"X-Scope-OrgID": "team-a", "Authorization": "Bearer " + token}))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		exportErrs = nil
		mu.Unlock()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
		_, sp := tp.Tracer("e2e").Start(ctx, "checkout")
		sp.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(exportErrs)
	}
	if errs := send("sdk-token-a", "sdk-alpha"); len(errs) != 0 {
		t.Fatalf("export with team-a's token: %v", errs)
	}
	// Naming team-a with team-b's token is refused.
	if errs := send("sdk-token-b", "sdk-bravo"); len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), "PermissionDenied") {
		t.Errorf("export naming team-a with team-b's token: %v, want PermissionDenied", errs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := authGet(t, p.url("/api/v1/services"), "sdk-token-a")
		if code == 200 && strings.Contains(b, "sdk-alpha") {
			if strings.Contains(b, "sdk-bravo") {
				t.Fatalf("team-a holds spans sent with team-b's token: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("team-a's services after the SDK export: %d %s", code, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, b := authGet(t, p.url("/api/v1/services"), "sdk-token-b"); code != 200 || strings.Contains(b, "sdk-") {
		t.Errorf("team-b's services: %d %s; want none of the SDK's", code, b)
	}
	p.stop()
}

// authGet fetches u with a bearer token and returns status and body.
func authGet(t *testing.T, u, token string) (int, string) {
	t.Helper()
	return getWith(t, u, "Authorization", "Bearer "+token)
}
