import { z } from 'zod';
import { commaList, settingsByName } from './env-settings.js';

/*
 * The standard OpenTelemetry variables (https://opentelemetry.io/docs/specs/otel/configuration/
 * sdk-environment-variables/) that decide whether the gateway exports spans at all: the `tracing`
 * group of `settingsSchema`. Trace context is propagated whatever they say; they only turn the
 * export on. The SDK and the OTLP exporter read the rest themselves from the process environment
 * (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES`, …).
 */

export const TRACES_EXPORTERS = ['otlp', 'console', 'none'] as const;
export type TracesExporter = Exclude<(typeof TRACES_EXPORTERS)[number], 'none'>;

const url = z.string().refine((value) => URL.canParse(value), 'must be a URL (http://collector:4318)');
const exporterList = commaList(z.enum(TRACES_EXPORTERS, { error: 'must be a comma-separated list of otlp, console or none' }));
// The gateway ships the OTLP/HTTP protobuf exporter, the specification's default protocol.
const protocol = z.literal('http/protobuf', { error: 'only http/protobuf is supported (OTLP over HTTP, port 4318)' });

export const otelEnv = settingsByName({
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional().describe('`true` turns span export off, whatever the other `OTEL_*` variables say'),
  OTEL_TRACES_EXPORTER: exporterList
    .optional()
    .describe('`otlp`, `console` or `none`, comma-separated: where spans go; unset: `otlp` when an OTLP endpoint is set, else none'),
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional().describe('the OTLP/HTTP collector (`http://collector:4318`); spans go to its `/v1/traces`'),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url.optional().describe('the full OTLP traces URL, instead of `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`'),
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol.optional().describe('only `http/protobuf` (OTLP over HTTP) is supported'),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol.optional().describe('likewise, for traces only'),
  OTEL_SERVICE_NAME: z
    .string()
    .min(1)
    .default('event-gateway')
    .describe('`service.name` of the spans; the SDK reads the other `OTEL_*` variables (headers, sampler, resource attributes) itself'),
});

const otelSchema = z.object(otelEnv);
type OtelEnv = z.output<typeof otelSchema>;

export interface TracingSettings {
  /** Where spans go; empty: none are made (the default, and with `OTEL_SDK_DISABLED=true`). */
  readonly exporters: readonly TracesExporter[];
  /** `OTEL_SERVICE_NAME`. */
  readonly serviceName: string;
  /** The OTLP traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
  readonly otlpTracesUrl: string | undefined;
}

/**
 * Export is on when `OTEL_TRACES_EXPORTER` names an exporter other than `none`, or, with it
 * unset, when an OTLP endpoint is set; `OTEL_SDK_DISABLED=true` turns it off whatever else is set.
 */
export function tracingSettings(e: OtelEnv): TracingSettings {
  const endpoint =
    e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (e.OTEL_EXPORTER_OTLP_ENDPOINT ? `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces` : undefined);
  let exporters: TracesExporter[];
  if (e.OTEL_SDK_DISABLED === 'true') exporters = [];
  else if (e.OTEL_TRACES_EXPORTER?.length) {
    exporters = e.OTEL_TRACES_EXPORTER.includes('none') ? [] : [...new Set(e.OTEL_TRACES_EXPORTER.filter((name): name is TracesExporter => name !== 'none'))];
  } else exporters = endpoint ? ['otlp'] : [];
  return { exporters, serviceName: e.OTEL_SERVICE_NAME, otlpTracesUrl: endpoint };
}
