import { describe, expect, it } from 'vitest';
import type { InboundDelivery, Settlement } from '../../src/brokers/broker.js';
import { DeliveryRuntime, type HandlerOutcome } from '../../src/consumers/delivery-runtime.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeEvent } from '../helpers/events.js';

/** Deliveries with keys and a log of when each was settled at the "broker". */
function inbound(key: string | null, seq: number, settled: string[]): InboundDelivery {
  return {
    event: makeEvent({ key, data: { seq } }),
    attempt: 1,
    ids: { seq },
    settle: async (settlement: Settlement) => void settled.push(`${key}${seq}:${settlement.kind}`),
  };
}

const tag = (d: { event: { key: string | null; data: unknown } }) => `${d.event.key}${(d.event.data as { seq: number }).seq}`;

describe('delivery runtime', () => {
  it('runs one key in order while other keys go concurrently, and a busy key takes no slot', async () => {
    const log: string[] = [];
    const settled: string[] = [];
    const runtime = new DeliveryRuntime(
      async (d) => {
        log.push(`start ${tag(d)}`);
        // a0 is slow; a1 would be faster than a0 if it ran at once.
        await new Promise((r) => setTimeout(r, tag(d) === 'a0' ? 40 : 2));
        log.push(`end ${tag(d)}`);
        return { kind: 'ack' };
      },
      { concurrency: 2, logger: silentLogger },
    );
    for (const [key, seq] of [
      ['a', 0],
      ['a', 1],
      ['a', 2],
      ['b', 0],
      ['c', 0],
    ] as const)
      runtime.push(inbound(key, seq, settled));
    await runtime.idle();
    expect(log.indexOf('start a1')).toBeGreaterThan(log.indexOf('end a0'));
    expect(log.indexOf('start a2')).toBeGreaterThan(log.indexOf('end a1'));
    // a1 and a2 wait for a0 without holding the second slot: b0 and c0 run and end meanwhile.
    expect(log.indexOf('end c0')).toBeLessThan(log.indexOf('end a0'));
    expect(settled).toHaveLength(5);
  });

  it('runs at most `concurrency` handlers at once, in arrival order', async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const runtime = new DeliveryRuntime(
      async (d) => {
        started.push((d.event.data as { seq: number }).seq);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return { kind: 'ack' };
      },
      { concurrency: 3, logger: silentLogger },
    );
    for (let i = 0; i < 20; i++) runtime.push(inbound(null, i, []));
    await runtime.idle();
    expect(most).toBe(3);
    expect(started).toEqual([...started].sort((a, b) => a - b));
  });

  it('tells the broker only after settleAfter, while the slot is free at once', async () => {
    const settled: string[] = [];
    let commit!: () => void;
    const committed = new Promise<void>((resolve) => (commit = resolve));
    const handled: string[] = [];
    const runtime = new DeliveryRuntime(
      async (d): Promise<HandlerOutcome> => {
        handled.push(tag(d));
        return tag(d) === 'a0' ? { kind: 'ack', settleAfter: committed } : { kind: 'ack' };
      },
      { concurrency: 1, logger: silentLogger },
    );
    runtime.push(inbound('a', 0, settled));
    runtime.push(inbound('b', 0, settled));
    await new Promise((r) => setTimeout(r, 20));
    // b0 ran in the one slot while a0's record was still being committed.
    expect(handled).toEqual(['a0', 'b0']);
    expect(settled).toEqual(['b0:ack']);
    commit();
    await runtime.idle();
    expect(settled).toEqual(['b0:ack', 'a0:ack']);
  });

  it('settles a handler that throws as a retry after a second, and idle() waits for every settlement', async () => {
    const settlements: Settlement[] = [];
    const runtime = new DeliveryRuntime(
      async () => {
        throw new Error('bug');
      },
      { concurrency: 1, logger: silentLogger },
    );
    runtime.push({ ...inbound(null, 0, []), settle: async (s) => void settlements.push(s) });
    await runtime.idle();
    expect(settlements).toEqual([{ kind: 'retry', delayMs: 1000, error: 'bug' }]);
    // Nothing held: idle at once.
    await runtime.idle();
  });
});
