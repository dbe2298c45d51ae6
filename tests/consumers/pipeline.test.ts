import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/brokers/broker.js';
import type { HandlerOutcome } from '../../src/consumers/delivery-runtime.js';
import type { EventHandler } from '../../src/consumers/handlers/handler.js';
import { currentCorrelation } from '../../src/consumers/middlewares/correlation.js';
import { ConsumerStats, createPipeline, type ConsumerDefinition } from '../../src/consumers/pipeline.js';
import { InvalidMessageError, PermanentHandlerError, WebhookError } from '../../src/errors.js';
import type { DeadLetterRepository, DeadLetterRow } from '../../src/store/dead-letter-repository.js';
import type { ProcessedMessageRepository } from '../../src/store/processed-message-repository.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeEvent } from '../helpers/events.js';
import { openTempStore } from '../helpers/store.js';

describe('consumer pipeline', () => {
  let store: ReturnType<typeof openTempStore>;
  let processed: ProcessedMessageRepository;
  let deadLetters: DeadLetterRepository;
  let announced: DeadLetterRow[];

  beforeEach(() => {
    store = openTempStore();
    processed = store.processed;
    deadLetters = store.deadLetters;
    announced = [];
  });
  afterEach(() => store.cleanup());

  function pipeline(handler: EventHandler, overrides: Partial<ConsumerDefinition> = {}) {
    const stats = new ConsumerStats();
    const definition: ConsumerDefinition = {
      name: 'billing',
      topic: 'orders',
      maxAttempts: 3,
      backoff: { initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0 },
      prefetch: 10,
      handler,
      description: 'function',
      ...overrides,
    };
    const handle = createPipeline(definition, stats, {
      processed,
      deadLetters,
      logger: silentLogger,
      onDeadLetter: (row) => announced.push(row),
    });
    return { handle, stats };
  }

  const deliver = (handle: (d: Delivery) => Promise<HandlerOutcome>, event = makeEvent(), attempt = 1) => handle({ event, attempt });

  it('acks a success and records it as processed', async () => {
    const seen: string[] = [];
    const { handle } = pipeline((event) => void seen.push(event.id));
    const event = makeEvent();
    const outcome = await deliver(handle, event);
    expect(outcome).toMatchObject({ kind: 'ack' });
    expect(seen).toEqual([event.id]);
    // Known at once to a redelivery, and committed before the broker is told (settleAfter).
    expect(await processed.has('billing', event.id)).toBe(true);
    await outcome.settleAfter;
    expect((await processed.get('billing', event.id))?.eventId).toBe(event.id);
  });

  it('skips an event it already processed (idempotent consumer)', async () => {
    let calls = 0;
    const { handle } = pipeline(() => void calls++);
    const event = makeEvent();
    await deliver(handle, event);
    expect(await deliver(handle, event, 1)).toEqual({ kind: 'ack' });
    expect(calls).toBe(1);
  });

  it('retries a failure with exponentially growing delays', async () => {
    const { handle, stats } = pipeline(() => {
      throw new Error('downstream 503');
    });
    const event = makeEvent();
    expect(await deliver(handle, event, 1)).toEqual({ kind: 'retry', delayMs: 100, error: 'downstream 503' });
    expect(await deliver(handle, event, 2)).toEqual({ kind: 'retry', delayMs: 200, error: 'downstream 503' });
    expect(stats.retrying()).toBe(1);
    expect(await deadLetters.list({}, { limit: 10, inverted: false })).toHaveLength(0);
  });

  it('stops counting a retry that never came back to this process', async () => {
    const { handle, stats } = pipeline(() => {
      throw new Error('downstream 503');
    });
    const event = makeEvent();
    await deliver(handle, event, 1);
    expect(stats.retrying()).toBe(1);
    // Its next attempt went to another gateway process: a minute past its due time it is forgotten.
    expect(stats.retrying(Date.now() + 100 + 61_000)).toBe(0);
  });

  it('turns a store failure outside the handler into a later retry, without running the handler', async () => {
    let calls = 0;
    const { handle } = pipeline(() => void calls++);
    processed.has = async () => {
      throw new Error('SQLITE_BUSY: database is locked');
    };
    const settlement = await deliver(handle, makeEvent());
    expect(settlement).toMatchObject({ kind: 'retry', delayMs: 5000 });
    expect(settlement.kind === 'retry' && settlement.error).toMatch(/SQLITE_BUSY/);
    expect(calls).toBe(0);
    expect(await deadLetters.list({}, { limit: 10, inverted: false })).toHaveLength(0);
  });

  it('dead-letters after maxAttempts with the error, and announces it', async () => {
    const { handle, stats } = pipeline(() => {
      throw new Error('still broken');
    });
    const event = makeEvent();
    expect(await deliver(handle, event, 3)).toEqual({ kind: 'dead-letter', error: 'still broken' });
    const [row] = await deadLetters.list({}, { limit: 10, inverted: false });
    expect(row).toMatchObject({ consumer: 'billing', eventId: event.id, error: 'still broken', attempts: 3, status: 'DEAD' });
    expect(announced.map((r) => r.id)).toEqual([row!.id]);
    expect(stats.retrying()).toBe(0);
    expect(await processed.has('billing', event.id)).toBe(false);
  });

  it('counts how deliveries were settled: acknowledged, retried, dead-lettered', async () => {
    const { handle, stats } = pipeline((event) => {
      if ((event.data as { fail?: boolean }).fail) throw new Error('broken');
    });
    const ok = makeEvent();
    await deliver(handle, ok);
    await deliver(handle, ok); // a duplicate is acknowledged too
    const bad = makeEvent({ data: { fail: true } });
    await deliver(handle, bad, 1);
    await deliver(handle, bad, 2);
    await deliver(handle, bad, 3);
    expect(stats.totals).toEqual({ processed: 2, retried: 2, deadLettered: 1 });
  });

  it('dead-letters a permanent failure at once', async () => {
    const { handle } = pipeline(() => {
      throw new PermanentHandlerError('order does not exist');
    });
    expect(await deliver(handle, makeEvent(), 1)).toEqual({ kind: 'dead-letter', error: 'order does not exist' });
  });

  it("waits as long as a webhook's Retry-After asks, never past backoff.maxMs", async () => {
    let retryAfterMs = 600;
    const { handle } = pipeline(() => {
      throw new WebhookError('webhook answered 429', { status: 429, retryAfterMs });
    });
    const event = makeEvent();
    expect(await deliver(handle, event, 1)).toMatchObject({ kind: 'retry', delayMs: 600 });
    retryAfterMs = 50; // shorter than the backoff: the backoff stands
    expect(await deliver(handle, event, 2)).toMatchObject({ kind: 'retry', delayMs: 200 });
    retryAfterMs = 3_600_000; // an hour: capped at backoff.maxMs
    expect(await deliver(handle, event, 1)).toMatchObject({ kind: 'retry', delayMs: 1000 });
  });

  it('dead-letters an undecodable message without running the handler', async () => {
    let calls = 0;
    const { handle } = pipeline(() => void calls++);
    const settlement = await handle({ event: makeEvent(), attempt: 1, invalid: new InvalidMessageError('message body is not JSON') });
    expect(settlement).toEqual({ kind: 'dead-letter', error: 'message body is not JSON' });
    expect(calls).toBe(0);
    expect(await deadLetters.list({}, { limit: 10, inverted: false })).toHaveLength(1);
  });

  it('acks types it was not asked for without handling them', async () => {
    let calls = 0;
    const { handle } = pipeline(() => void calls++, { types: ['order.created'] });
    expect(await deliver(handle, makeEvent({ type: 'order.cancelled' }))).toEqual({ kind: 'ack' });
    await deliver(handle, makeEvent({ type: 'order.created' }));
    expect(calls).toBe(1);
  });

  it('gives the handler the correlation id, and the context to code it calls', async () => {
    let seen: unknown;
    let context: unknown;
    const { handle } = pipeline((_event, ctx) => {
      seen = ctx.correlationId;
      context = currentCorrelation();
    });
    const event = makeEvent({ correlationId: 'corr-1' });
    await deliver(handle, event);
    expect(seen).toBe('corr-1');
    expect(context).toEqual({ consumer: 'billing', eventId: event.id, correlationId: 'corr-1' });
  });
});
