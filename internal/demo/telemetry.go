package demo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"
)

// instrumentationScope names the tracer the shop's own code uses for
// database, cache, queue and internal spans.
const instrumentationScope = "github.com/clew-dev/clew/internal/demo"

// newProvider returns a TracerProvider for one service instance that batches
// spans and exports them over OTLP/gRPC. The exporter connects lazily and
// retries, so a receiver that starts later loses nothing but time.
func newProvider(ctx context.Context, cfg Config, service, version, instanceID string) (*sdktrace.TracerProvider, error) {
	opts := []otlptracegrpc.Option{
		otlptracegrpc.WithEndpoint(cfg.Endpoint),
		otlptracegrpc.WithTimeout(5 * time.Second),
	}
	if cfg.TLS != nil {
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(cfg.TLS.Clone())))
	} else {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("OTLP exporter for %s: %w", instanceID, err)
	}
	host, _ := os.Hostname()
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service),
		semconv.ServiceVersion(version),
		semconv.ServiceNamespace("shop"),
		semconv.ServiceInstanceID(instanceID),
		semconv.DeploymentEnvironmentNameKey.String(cfg.Environment),
		semconv.HostName(host),
		semconv.ProcessPID(os.Getpid()),
		semconv.TelemetrySDKLanguageGo,
		semconv.TelemetrySDKName("opentelemetry"),
		semconv.TelemetrySDKVersion(sdk.Version()),
	)
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(exp,
			sdktrace.WithBatchTimeout(cfg.BatchTimeout),
			sdktrace.WithMaxQueueSize(16384),
			sdktrace.WithMaxExportBatchSize(1024),
		),
	), nil
}

// switchablePropagator is W3C trace context and baggage unless off reports
// true: then it neither extracts nor injects anything, as a service whose
// propagator is misconfigured behaves.
type switchablePropagator struct {
	inner propagation.TextMapPropagator
	off   func() bool
}

func newPropagator(off func() bool) propagation.TextMapPropagator {
	return switchablePropagator{
		inner: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		off:   off,
	}
}

func (p switchablePropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if p.off == nil || !p.off() {
		p.inner.Inject(ctx, c)
	}
}

func (p switchablePropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	if p.off != nil && p.off() {
		return ctx
	}
	return p.inner.Extract(ctx, c)
}

func (p switchablePropagator) Fields() []string { return p.inner.Fields() }

// logNormal draws a duration whose median is median and whose spread is
// sigma (the standard deviation of its logarithm): service latencies have a
// long right tail, which a normal distribution does not give.
func logNormal(median time.Duration, sigma float64) time.Duration {
	return time.Duration(float64(median) * math.Exp(sigma*shopRand.NormFloat64()))
}

// work waits for d or until ctx is done, standing in for time spent
// computing or waiting on I/O.
func work(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail marks span as failed: the exception event with its stack trace and
// an error status.
func fail(span trace.Span, err error) {
	span.RecordError(err, trace.WithStackTrace(true))
	span.SetStatus(codes.Error, err.Error())
}

// database is a simulated PostgreSQL server: queries take a log-normal time
// and appear as CLIENT spans with the database semantic conventions.
type database struct {
	tracer trace.Tracer
	name   string // db.namespace
	host   string
}

// query is one simulated statement.
type query struct {
	op, table, text string
	median          time.Duration
	rows            int
	failRate        float64 // baseline probability of a deadlock error
}

var errDeadlock = errors.New("pq: deadlock detected (SQLSTATE 40P01)")

// exec runs q and returns its error, if any.
func (db database) exec(ctx context.Context, q query) error {
	ctx, span := db.tracer.Start(ctx, q.op+" "+q.table, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL,
			semconv.DBNamespace(db.name),
			semconv.DBOperationName(q.op),
			semconv.DBCollectionName(q.table),
			semconv.DBQueryText(q.text),
			semconv.ServerAddress(db.host),
			semconv.ServerPort(5432),
		))
	defer span.End()
	if err := work(ctx, logNormal(q.median, 0.5)); err != nil {
		fail(span, err)
		return err
	}
	if q.failRate > 0 && shopRand.Float64() < q.failRate {
		span.SetAttributes(semconv.DBResponseStatusCode("40P01"), semconv.ErrorTypeKey.String("40P01"))
		fail(span, errDeadlock)
		return errDeadlock
	}
	if q.rows >= 0 {
		span.SetAttributes(semconv.DBResponseReturnedRows(q.rows))
	}
	return nil
}

// cache is a simulated Redis server.
type cache struct {
	tracer trace.Tracer
	host   string
}

// do runs one command, for example cmd "GET" and text "GET product:42".
// failErr, when not nil, is the error the command ends with.
func (c cache) do(ctx context.Context, cmd, text string, failErr error) error {
	ctx, span := c.tracer.Start(ctx, cmd, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNameRedis,
			semconv.DBNamespace("0"),
			semconv.DBOperationName(cmd),
			semconv.DBQueryText(text),
			semconv.ServerAddress(c.host),
			semconv.ServerPort(6379),
		))
	defer span.End()
	d := logNormal(400*time.Microsecond, 0.6)
	if failErr != nil {
		d = logNormal(50*time.Millisecond, 0.3) // a timeout takes the client's deadline
	}
	if err := work(ctx, d); err != nil {
		fail(span, err)
		return err
	}
	if failErr != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String("timeout"))
		fail(span, failErr)
	}
	return failErr
}

// message is what the simulated queue carries: headers (the trace context
// of the PRODUCER span among them) and a body.
type message struct {
	id      string
	headers map[string]string
	body    []byte
}

// queue is a simulated Kafka topic with one partition.
type queue struct {
	topic string
	ch    chan message
}

const queueHost = "kafka"

func messagingAttrs(topic, op string, typ attribute.KeyValue, id string) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingDestinationName(topic),
		semconv.MessagingDestinationPartitionID("0"),
		semconv.MessagingOperationName(op),
		typ,
		semconv.MessagingMessageID(id),
		semconv.ServerAddress(queueHost),
		semconv.ServerPort(9092),
	}
}

var errQueueFull = errors.New("kafka: producer queue full")

// publish sends body as a PRODUCER span ("send <topic>") whose context
// travels in the message headers.
func (q *queue) publish(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, id string, body []byte) error {
	ctx, span := tracer.Start(ctx, "send "+q.topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(messagingAttrs(q.topic, "send", semconv.MessagingOperationTypeSend, id)...),
		trace.WithAttributes(semconv.MessagingMessageBodySize(len(body))))
	defer span.End()
	headers := map[string]string{}
	prop.Inject(ctx, propagation.MapCarrier(headers))
	if err := work(ctx, logNormal(2*time.Millisecond, 0.4)); err != nil {
		fail(span, err)
		return err
	}
	select {
	case q.ch <- message{id: id, headers: headers, body: body}:
		return nil
	default:
		fail(span, errQueueFull)
		return errQueueFull
	}
}
