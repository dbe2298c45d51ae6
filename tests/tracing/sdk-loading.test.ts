import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { Tracing } from '../../src/tracing/tracing.js';
import { gql, startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';

/** How often the module that loads the OpenTelemetry SDK was imported in this file. */
const sdkModule = vi.hoisted(() => ({ imports: 0 }));

vi.mock('../../src/tracing/sdk.js', async (importOriginal) => {
  sdkModule.imports++;
  return importOriginal();
});

describe('the OpenTelemetry SDK', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
  });

  // First in the file: once imported, a module stays loaded.
  it('is never loaded by a gateway without OTEL_* settings, which still propagates trace context', async () => {
    const topic = uniqueName('t');
    const handled: (string | null)[] = [];
    const app = await startTestApp({ consumers: [{ name: 'c', topic }], handlers: { c: (event) => void handled.push(event.traceparent) } });
    stops.push(() => app.dispose());
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const result = await gql(app.url, `mutation { publishEvent(input: { topic: "${topic}", type: "a.b", data: 1 }) { event { id } } }`, {}, { traceparent });
    expect(result.errors).toBeUndefined();
    await waitFor(() => handled.length === 1, 10_000, 'the event handled');
    expect(handled).toEqual([traceparent]);
    expect(sdkModule.imports).toBe(0);
  });

  it('is loaded once spans are to be exported', async () => {
    const tracing = new Tracing(loadConfig({}).tracing, 'memory', { spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
    stops.push(() => tracing.shutdown());
    expect(tracing.enabled).toBe(false);
    await tracing.start();
    expect(tracing.enabled).toBe(true);
    expect(sdkModule.imports).toBe(1);
  });
});
