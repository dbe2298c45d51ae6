import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Capacity } from '../../src/brokers/kafka/capacity.js';

/** Lets promise callbacks run without moving fake time. */
const settle = () => vi.advanceTimersByTimeAsync(0);

describe('Kafka Capacity: the window of one durable-consumer attachment', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('grants up to its limit at once and makes the next one wait for a release', async () => {
    const capacity = new Capacity(2);
    expect(await capacity.acquire()).toBe(true);
    expect(await capacity.acquire()).toBe(true);
    let third: boolean | undefined;
    void capacity.acquire().then((granted) => (third = granted));
    await settle();
    expect(third).toBeUndefined();
    capacity.release();
    await settle();
    expect(third).toBe(true);
  });

  it('hands freed slots to waiters in the order they asked, so records stay in offset order', async () => {
    const capacity = new Capacity(1);
    await capacity.acquire();
    const order: number[] = [];
    for (const n of [1, 2, 3]) void capacity.acquire().then(() => order.push(n));
    for (let i = 0; i < 3; i++) {
      capacity.release();
      await settle();
    }
    expect(order).toEqual([1, 2, 3]);
  });

  it('does not let a newcomer take a slot ahead of those already waiting', async () => {
    const capacity = new Capacity(1);
    await capacity.acquire();
    const order: string[] = [];
    void capacity.acquire().then(() => order.push('waiting'));
    capacity.release();
    void capacity.acquire().then(() => order.push('newcomer'));
    await settle();
    expect(order).toEqual(['waiting']);
    capacity.release();
    await settle();
    expect(order).toEqual(['waiting', 'newcomer']);
  });

  it('gives up after the timeout (the caller heartbeats and asks again) without losing the slot to the timed-out waiter', async () => {
    const capacity = new Capacity(1);
    await capacity.acquire();
    let first: boolean | undefined;
    void capacity.acquire(1000).then((granted) => (first = granted));
    await vi.advanceTimersByTimeAsync(999);
    expect(first).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(first).toBe(false);
    // The released slot is free for the next caller, not held by the waiter that gave up.
    capacity.release();
    expect(await capacity.acquire()).toBe(true);
    let over: boolean | undefined;
    void capacity.acquire(10).then((granted) => (over = granted));
    await vi.advanceTimersByTimeAsync(10);
    expect(over).toBe(false);
  });

  it('refuses current and future waiters once closed, while slots in use are still released', async () => {
    const capacity = new Capacity(1);
    await capacity.acquire();
    let waiting: boolean | undefined;
    void capacity.acquire().then((granted) => (waiting = granted));
    capacity.close();
    await settle();
    expect(waiting).toBe(false);
    expect(await capacity.acquire()).toBe(false);
    expect(() => capacity.release()).not.toThrow();
  });
});
