// Command otelcol-tracegroup is an OpenTelemetry Collector with exactly the components tracegroup's
// collector recordings need: the OTLP receiver, the batch and groupbytrace processors, the routing
// connector, and the legacy Sentry exporter (span→transaction, contrib ≤ v0.144.0) beside the file
// exporter that captures every exporter call, and the otlp and otlphttp exporters (to send a pipeline's
// exporter calls to `tracegroup capture`, or on to another collector).
//
// Written by hand after the collector builder's templates (cmd/builder v0.141.0); build it with
// collector/build.py (go build -mod=readonly, GOTOOLCHAIN=local).
package main

import (
	"log"
	"os"

	"github.com/getsentry/sentry-go"
	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/routingconnector"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/sentryexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/groupbytraceprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

func components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if factories.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](); err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		batchprocessor.NewFactory(),
		groupbytraceprocessor.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		sentryexporter.NewFactory(),
		fileexporter.NewFactory(),
		otlpexporter.NewFactory(),
		otlphttpexporter.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	if factories.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](routingconnector.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}

// enableSentryDebugLog turns on sentry-go's process-wide debug log (to stderr) when TRACEGROUP_SENTRY_DEBUG
// is set. The exporter builds its sentry.HTTPTransport without a client, so its "Event dropped due to
// transport buffer being full." and "Sending transaction [...]" lines are otherwise discarded. A client
// with an empty DSN sends nothing; it only switches the shared logger on. The exporter is unchanged.
func enableSentryDebugLog() {
	if os.Getenv("TRACEGROUP_SENTRY_DEBUG") == "" {
		return
	}
	if _, err := sentry.NewClient(sentry.ClientOptions{Debug: true, DebugWriter: os.Stderr}); err != nil {
		log.Fatalf("sentry debug log: %v", err)
	}
}

func main() {
	enableSentryDebugLog()
	info := component.BuildInfo{
		Command:     "otelcol-tracegroup",
		Description: "OpenTelemetry Collector for tracegroup's recordings (legacy Sentry exporter)",
		Version:     "0.141.0-tracegroup",
	}
	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		log.Fatalf("collector server run finished with error: %v", err)
	}
}
