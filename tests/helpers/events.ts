import { randomUUID } from 'node:crypto';
import type { GatewayEvent } from '../../src/events/event.js';

/** A unique topic or consumer name per test, so tests can share one broker. */
export const uniqueName = (prefix = 't') => `${prefix}-${randomUUID().slice(0, 8)}`;

export function makeEvent(overrides: Partial<GatewayEvent> = {}): GatewayEvent {
  const id = overrides.id ?? randomUUID();
  return {
    id,
    source: 'test',
    type: 'thing.happened',
    topic: 'things',
    subject: null,
    time: new Date(),
    dataContentType: 'application/json',
    data: { n: 1 },
    key: null,
    correlationId: id,
    causationId: null,
    dataSchema: null,
    traceparent: null,
    tracestate: null,
    extensions: null,
    ...overrides,
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
