// Command goservice is the Go `pricing` service of fixtures/record/record_collector.py (started with --go).
//
// net/http instrumented with otelhttp (server handler and client transport), exporting through the
// OpenTelemetry Go SDK's BatchSpanProcessor (4 spans per export, 300 ms delay: the settings of the other
// recorded services) and the OTLP/HTTP protobuf exporter to $OTLP_ENDPOINT/v1/traces.
// Route: GET /price/{id} -> inventory GET /stock/{id} ($INVENTORY). Prints "READY <port>" once listening
// on 127.0.0.1; on SIGTERM flushes its spans and exits 0. Nothing here reaches anything but 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	ctx := context.Background()
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(os.Getenv("OTLP_ENDPOINT")+"/v1/traces"))
	if err != nil {
		log.Fatalf("exporter: %v", err)
	}
	res := resource.NewWithAttributes("",
		attribute.String("service.name", "pricing"),
		attribute.String("service.namespace", "tracegroup-recording"),
		attribute.String("service.version", "1.0.0"),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exporter, sdktrace.WithMaxExportBatchSize(4), sdktrace.WithBatchTimeout(300*time.Millisecond)),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	inventory := os.Getenv("INVENTORY")
	client := &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport), Timeout: 10 * time.Second}
	tracer := tp.Tracer("pricing.handlers")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /price/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, inventory+"/stock/"+id, nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		var stock map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&stock)
		resp.Body.Close()
		_, span := tracer.Start(r.Context(), "price.compute")
		price := 2900
		span.SetAttributes(attribute.Int("price.cents", price))
		span.End()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "price_cents": price, "stock": stock["quantity"]})
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := &http.Server{Handler: otelhttp.NewHandler(mux, "pricing"), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	fmt.Printf("READY %d\n", ln.Addr().(*net.TCPAddr).Port)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = server.Shutdown(shutdownCtx)
	if err := tp.Shutdown(shutdownCtx); err != nil {
		log.Fatalf("flush: %v", err)
	}
}
