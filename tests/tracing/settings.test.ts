import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import * as spans from '../../src/tracing/spans.js';

describe('OTEL_* variables', () => {
  const tracing = (env: Record<string, string>) => loadConfig(env).tracing;

  it('export nothing by default: trace context is propagated, no SDK is loaded', () => {
    expect(tracing({})).toEqual({ exporters: [], serviceName: 'event-gateway', otlpTracesUrl: undefined });
  });

  it('turn OTLP export on with an endpoint, with the traces path the specification adds', () => {
    expect(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({
      exporters: ['otlp'],
      serviceName: 'event-gateway',
      otlpTracesUrl: 'http://collector:4318/v1/traces',
    });
    expect(tracing({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/traces' }).otlpTracesUrl).toBe(
      'http://b:4318/traces',
    );
  });

  it('follow OTEL_TRACES_EXPORTER, where none wins, and OTEL_SDK_DISABLED over everything', () => {
    expect(tracing({ OTEL_TRACES_EXPORTER: 'console,otlp', OTEL_SERVICE_NAME: 'gw-eu' })).toMatchObject({
      exporters: ['console', 'otlp'],
      serviceName: 'gw-eu',
    });
    expect(tracing({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).exporters).toEqual([]);
    expect(tracing({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }).exporters).toEqual([]);
  });

  it('refuse values the gateway cannot honour, naming the variable', () => {
    expect(() => loadConfig({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL: only http\/protobuf/);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
  });
});

describe('span attributes', () => {
  it('are named as the messaging semantic conventions name them', () => {
    expect({
      system: spans.ATTR_MESSAGING_SYSTEM,
      destination: spans.ATTR_MESSAGING_DESTINATION_NAME,
      messageId: spans.ATTR_MESSAGING_MESSAGE_ID,
      conversation: spans.ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
      operationType: spans.ATTR_MESSAGING_OPERATION_TYPE,
      operationName: spans.ATTR_MESSAGING_OPERATION_NAME,
      group: spans.ATTR_MESSAGING_CONSUMER_GROUP_NAME,
    }).toEqual({
      system: incubating.ATTR_MESSAGING_SYSTEM,
      destination: incubating.ATTR_MESSAGING_DESTINATION_NAME,
      messageId: incubating.ATTR_MESSAGING_MESSAGE_ID,
      conversation: incubating.ATTR_MESSAGING_MESSAGE_CONVERSATION_ID,
      operationType: incubating.ATTR_MESSAGING_OPERATION_TYPE,
      operationName: incubating.ATTR_MESSAGING_OPERATION_NAME,
      group: incubating.ATTR_MESSAGING_CONSUMER_GROUP_NAME,
    });
    expect(['create', 'send', 'process']).toEqual([
      incubating.MESSAGING_OPERATION_TYPE_VALUE_CREATE,
      incubating.MESSAGING_OPERATION_TYPE_VALUE_SEND,
      incubating.MESSAGING_OPERATION_TYPE_VALUE_PROCESS,
    ]);
  });
});
