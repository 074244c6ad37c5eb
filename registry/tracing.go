package registry

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.4.0"
)

// startTracing exports OpenTelemetry traces of every request and storage call, configured by the standard OTEL_*
// environment variables (OTLP to OTEL_EXPORTER_OTLP_ENDPOINT by default, OTEL_TRACES_SAMPLER for sampling). It is
// off unless Config.Tracing asks for it: distribution's own initialisation would trace every request at 100% and
// send spans to localhost:4318 whether or not anything listens there.
func startTracing(ctx context.Context, h http.Handler) (http.Handler, func(context.Context) error, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceNameKey.String("registry-kit")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	)
	if err != nil {
		return nil, nil, fmt.Errorf("otel-traces: describing the service: %w", err)
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("otel-traces: creating the exporter named by OTEL_TRACES_EXPORTER: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	traced := otelhttp.NewHandler(h, "registry",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
	return traced, tp.Shutdown, nil
}
