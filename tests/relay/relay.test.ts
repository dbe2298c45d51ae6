import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Relay, type RelayOptions } from '../../src/relay/relay.js';
import type { OutboxRepository } from '../../src/store/outbox-repository.js';
import { silentLogger } from '../../src/util/logger.js';
import { Signal } from '../../src/util/signal.js';
import { makeEvent, waitFor } from '../helpers/events.js';
import { FlakyBroker } from '../helpers/flaky-broker.js';
import { openTempStore } from '../helpers/store.js';

describe('relay', () => {
  let store: ReturnType<typeof openTempStore>;
  let wake: Signal;
  let outbox: OutboxRepository;
  let broker: FlakyBroker;
  const relays: Relay[] = [];

  const startRelay = (options: RelayOptions = {}) => {
    const relay = new Relay(
      { outbox, broker, wake, logger: silentLogger },
      {
        // A poll this slow proves that a commit, not the poll, wakes the relay.
        pollIntervalMs: 60_000,
        backoff: { initialMs: 30, maxMs: 200, multiplier: 2, jitter: 0 },
        circuitBreaker: { failureThreshold: 3, cooldown: { initialMs: 100, maxMs: 200, multiplier: 2, jitter: 0 } },
        ...options,
      },
    );
    relay.start();
    relays.push(relay);
    return relay;
  };

  beforeEach(() => {
    store = openTempStore();
    wake = new Signal();
    store.onOutboxChange(() => wake.notify());
    outbox = store.outbox;
    broker = new FlakyBroker();
  });
  afterEach(async () => {
    broker.release();
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    await store.cleanup();
  });

  it('wakes on commit, not on the poll, and marks rows PUBLISHED once confirmed', async () => {
    startRelay();
    await new Promise((r) => setTimeout(r, 50)); // let it go idle on its 60 s poll
    const [row] = await outbox.append([makeEvent()]);
    await waitFor(async () => (await outbox.get(row!.id))?.status === 'PUBLISHED', 2000, 'row published');
    expect(broker.published).toHaveLength(1);
  });

  it('counts confirmed and failed publishes, and tells when each confirmed row was written', async () => {
    const confirmed: { createdAt: Date; at: number }[] = [];
    const relay = new Relay(
      { outbox, broker, wake, logger: silentLogger, onConfirmed: (createdAt, at) => confirmed.push({ createdAt, at }) },
      { pollIntervalMs: 60_000, backoff: { initialMs: 30, maxMs: 200, multiplier: 2, jitter: 0 } },
    );
    relay.start();
    relays.push(relay);
    const flaky = makeEvent();
    broker.failOnce.add(flaky.id);
    // Handed over by the commit, then the failed one claimed again after its backoff.
    const rows = await outbox.append([flaky, makeEvent()]);
    await waitFor(() => relay.stats.published === 2, 2000, 'both published');
    expect(relay.stats.failed).toBe(1);
    const written = await Promise.all(rows.map(async (r) => (await outbox.get(r.id))!.createdAt.getTime()));
    expect(confirmed.map((c) => c.createdAt.getTime()).sort()).toEqual(written.sort());
    for (const { createdAt, at } of confirmed) expect(at).toBeGreaterThanOrEqual(createdAt.getTime());
  });

  it('keeps rows PENDING until the broker confirms', async () => {
    broker.hold();
    startRelay();
    await outbox.append([makeEvent(), makeEvent()]);
    await waitFor(() => broker.publishCalls > 0, 2000, 'publish started');
    expect(await outbox.count('PENDING')).toBe(2);
    broker.release();
    await waitFor(async () => (await outbox.count('PUBLISHED')) === 2, 2000, 'rows published');
  });

  it('records attempts and the error, backs off, then publishes', async () => {
    const event = makeEvent();
    broker.failOnce.add(event.id);
    startRelay();
    const [row] = await outbox.append([event]);
    await waitFor(async () => (await outbox.get(row!.id))?.attempts === 1, 2000, 'first failure recorded');
    const failed = (await outbox.get(row!.id))!;
    expect(failed.lastError).toBe('not confirmed');
    expect(['PENDING', 'PUBLISHED']).toContain(failed.status);
    await waitFor(async () => (await outbox.get(row!.id))?.status === 'PUBLISHED', 2000, 'published after retry');
    expect(await outbox.get(row!.id)).toMatchObject({ attempts: 1, lastError: 'not confirmed' });
  });

  it('keeps per-key order when an earlier event of the key fails', async () => {
    const events = Array.from({ length: 30 }, (_, i) => makeEvent({ key: `k${i % 3}`, data: { seq: i } }));
    broker.failOnce.add(events[0]!.id); // k0's first event fails once
    broker.failOnce.add(events[4]!.id); // and one of k1's later events
    startRelay({ batchSize: 7 });
    await outbox.append(events);
    await waitFor(async () => (await outbox.count('PUBLISHED')) === 30, 5000, 'all published');
    for (const key of ['k0', 'k1', 'k2']) {
      const seqs = broker.published.filter((e) => e.key === key).map((e) => (e.data as { seq: number }).seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs).toHaveLength(10);
    }
  });

  it('marks an event the broker refuses for good as FAILED and goes on with the rest', async () => {
    const bad = makeEvent();
    broker.rejectForever.add(bad.id);
    startRelay();
    await outbox.append([bad, makeEvent()]);
    await waitFor(async () => (await outbox.count('FAILED')) === 1 && (await outbox.count('PUBLISHED')) === 1, 2000, 'settled');
    expect(await outbox.getByEventId(bad.id)).toMatchObject({ status: 'FAILED', lastError: 'refused for good', attempts: 1 });
  });

  it('opens the circuit while the broker is down, stops hammering it, and closes when it is back', async () => {
    broker.down = true;
    // A cooldown well above the pause below, so a late timer cannot let a second probe out.
    const relay = startRelay({
      batchSize: 10,
      circuitBreaker: { failureThreshold: 3, cooldown: { initialMs: 500, maxMs: 1000, multiplier: 2, jitter: 0 } },
    });
    await outbox.append(Array.from({ length: 25 }, () => makeEvent()));
    await waitFor(() => relay.breaker.state === 'OPEN', 2000, 'circuit open');
    expect(relay.breaker.lastReason).toBeTruthy();
    const callsWhenOpened = broker.publishCalls;
    await new Promise((r) => setTimeout(r, 80));
    // Open: at most the half-open probe went out in the meantime.
    expect(broker.publishCalls - callsWhenOpened).toBeLessThanOrEqual(1);
    expect(await outbox.count('PENDING')).toBe(25);
    broker.down = false;
    await waitFor(async () => (await outbox.count('PUBLISHED')) === 25, 5000, 'backlog drained');
    expect(relay.breaker.state).toBe('CLOSED');
    expect(relay.breaker.lastReason).toBeNull();
    expect(new Set(broker.published.map((e) => e.id)).size).toBe(25);
  });

  it('keeps the circuit closed when events are only unroutable, and keeps them pending', async () => {
    broker.unroutableTopics.add('nobody-listens');
    const relay = startRelay({ batchSize: 5 });
    await outbox.append(Array.from({ length: 20 }, () => makeEvent({ topic: 'nobody-listens' })));
    await waitFor(() => broker.publishCalls >= 6, 2000, 'several unroutable batches');
    await outbox.append([makeEvent({ topic: 'busy' })]);
    await waitFor(async () => (await outbox.count('PUBLISHED')) === 1, 2000, 'other topic published');
    expect(relay.breaker.state).toBe('CLOSED');
    expect(await outbox.count('PENDING')).toBe(20);
    expect((await outbox.list({ status: 'PENDING' }, { limit: 1, inverted: false }))[0]?.lastError).toMatch(/nothing bound/);
  });

  it('drains the batch in flight on stop', async () => {
    broker.hold();
    const relay = startRelay();
    await outbox.append([makeEvent(), makeEvent()]);
    await waitFor(() => broker.publishCalls > 0, 2000, 'publish started');
    const stopped = relay.stop();
    broker.release();
    await stopped;
    expect(await outbox.count('PUBLISHED')).toBe(2);
  });

  it('takes rows committed in its own process without claiming them, and gives back what it did not send when stopped', async () => {
    broker.hold();
    const relay = startRelay({ batchSize: 2, concurrency: 1 });
    const claims: number[] = [];
    const claim = outbox.claim.bind(outbox);
    outbox.claim = async (options) => {
      const rows = await claim(options);
      claims.push(rows.length);
      return rows;
    };
    await outbox.append([makeEvent(), makeEvent(), makeEvent(), makeEvent()]);
    await waitFor(() => broker.publishCalls > 0, 2000, 'publish started');
    expect(claims.every((n) => n === 0)).toBe(true);
    const stopped = relay.stop();
    broker.release();
    await stopped;
    // The first batch was confirmed; the rows it never sent are free for any relay at once.
    expect(await outbox.count('PUBLISHED')).toBe(2);
    const pending = await outbox.list({ status: 'PENDING' }, { limit: 10, inverted: false });
    expect(pending.map((r) => r.claimedBy)).toEqual([null, null]);
  });

  it('publishes each row once when two relays share the outbox', async () => {
    startRelay({ batchSize: 5, owner: 'one' });
    startRelay({ batchSize: 5, owner: 'two' });
    const events = Array.from({ length: 200 }, (_, i) => makeEvent({ key: `k${i % 7}` }));
    for (let i = 0; i < events.length; i += 20) await outbox.append(events.slice(i, i + 20));
    await waitFor(async () => (await outbox.count('PUBLISHED')) === 200, 5000, 'all published');
    const ids = broker.published.map((e) => e.id);
    expect(ids).toHaveLength(200);
    expect(new Set(ids).size).toBe(200);
  });

  it('renews its claim while a slow broker holds the batch, so another relay does not take the rows', async () => {
    broker.hold();
    startRelay({ owner: 'slow', leaseMs: 500 });
    await outbox.append([makeEvent(), makeEvent()]);
    await waitFor(() => broker.publishCalls > 0, 2000, 'publish started');
    startRelay({ owner: 'other', leaseMs: 500, pollIntervalMs: 20 });
    // Three lease lengths pass while the first batch is still out.
    await new Promise((r) => setTimeout(r, 1600));
    expect(broker.publishCalls).toBe(1);
    broker.release();
    await waitFor(async () => (await outbox.count('PUBLISHED')) === 2, 2000, 'published');
    expect(broker.published).toHaveLength(2);
  });
});
