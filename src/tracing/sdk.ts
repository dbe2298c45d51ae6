import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TracingSettings } from '../config/otel-env.js';

/*
 * The OpenTelemetry SDK, loaded by `Tracing.start()` (a dynamic import) only when spans are
 * exported: a gateway that exports nothing never loads this module or what it imports.
 */

/**
 * A tracer provider of the app's own: the resource says `service.name` (`OTEL_SERVICE_NAME`,
 * else "event-gateway", `OTEL_RESOURCE_ATTRIBUTES` added), the sampler is the SDK's
 * (`OTEL_TRACES_SAMPLER`, parent-based always-on by default), and spans go through `processors`
 * when given, else through a batching processor per exporter the settings name.
 */
export async function createTracerProvider(settings: TracingSettings, processors?: readonly SpanProcessor[]): Promise<BasicTracerProvider> {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }))
    // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME: what the operator says wins.
    .merge(detectResources({ detectors: [envDetector] }));
  const spanProcessors = processors?.length ? [...processors] : await exporterProcessors(settings);
  return new BasicTracerProvider({ resource, spanProcessors });
}

async function exporterProcessors(settings: TracingSettings): Promise<SpanProcessor[]> {
  const processors: SpanProcessor[] = [];
  for (const exporter of settings.exporters) {
    if (exporter === 'console') {
      processors.push(new BatchSpanProcessor(new ConsoleSpanExporter()));
    } else {
      const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-proto');
      // Headers, timeout, compression and certificates: the exporter reads OTEL_EXPORTER_OTLP_* itself.
      processors.push(new BatchSpanProcessor(new OTLPTraceExporter(settings.otlpTracesUrl ? { url: settings.otlpTracesUrl } : {})));
    }
  }
  return processors;
}
