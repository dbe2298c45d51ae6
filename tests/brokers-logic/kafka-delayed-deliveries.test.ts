import type { KafkaMessage } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DelayedDeliveries } from '../../src/brokers/kafka/delayed-deliveries.js';
import { notBeforeOf, readHeader, retryMessage } from '../../src/brokers/kafka/messages.js';
import { PartitionProgress } from '../../src/brokers/kafka/offset-tracker.js';

const partition = (n: number) => new PartitionProgress('orders.retry', n, 0);

describe('Kafka DelayedDeliveries: retries held until due', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('releases each retry when it is due, a short one before a long one that arrived first', async () => {
    const delayed = new DelayedDeliveries();
    const released: string[] = [];
    const p0 = partition(0);
    delayed.hold(p0, 30_000, () => released.push('long'));
    delayed.hold(p0, 1000, () => released.push('short'));
    expect(delayed.size).toBe(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(released).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(released).toEqual(['short']);
    expect(delayed.size).toBe(1);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(released).toEqual(['short', 'long']);
    expect(delayed.size).toBe(0);
  });

  it('drops the retries of partitions lost in a rebalance, and only those', async () => {
    const delayed = new DelayedDeliveries();
    const released: number[] = [];
    const [p0, p1, p2] = [partition(0), partition(1), partition(2)];
    delayed.hold(p0, 100, () => released.push(0));
    delayed.hold(p1, 100, () => released.push(1));
    delayed.hold(p1, 200, () => released.push(1));
    delayed.hold(p2, 100, () => released.push(2));
    delayed.dropFor([p1, p2]);
    expect(delayed.size).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(released).toEqual([0]);
  });

  it('releases nothing once cleared (closing: Kafka delivers them again)', async () => {
    const delayed = new DelayedDeliveries();
    const released: number[] = [];
    delayed.hold(partition(0), 10, () => released.push(0));
    delayed.clear();
    expect(delayed.size).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(released).toEqual([]);
  });

  it('holds a retry due beyond what a timer can wait (about 24.8 days) until that limit, not a millisecond', async () => {
    const delayed = new DelayedDeliveries();
    let released = false;
    delayed.hold(partition(0), 40 * 24 * 3600 * 1000, () => (released = true));
    await vi.advanceTimersByTimeAsync(24 * 3600 * 1000);
    expect(released).toBe(false);
    await vi.advanceTimersByTimeAsync(2 ** 31 - 1 - 24 * 3600 * 1000);
    expect(released).toBe(true);
  });
});

describe('Kafka retry copies: when a held retry is due', () => {
  const origin = { topic: 'orders', partition: 1, offset: '41' };
  const record = (headers: KafkaMessage['headers']): KafkaMessage =>
    ({ key: Buffer.from('k'), value: Buffer.from('{}'), headers, offset: '0', timestamp: '0', attributes: 0, size: 0 }) as KafkaMessage;

  it('carries the due time on the copy, and a copy of a copy only the latest attempt and due time', () => {
    const first = retryMessage(record({ ce_id: 'e-1' }), { origin, consumer: 'billing', attempt: 2, notBefore: 1_000, error: 'busy' });
    const again = retryMessage(record(first.headers), { origin, consumer: 'billing', attempt: 3, notBefore: 5_000, error: 'still busy' });
    const copy = record(again.headers);
    expect(notBeforeOf(copy)).toBe(5_000);
    expect(readHeader(copy.headers, 'x-gateway-attempt')).toBe('3');
    expect(readHeader(copy.headers, 'ce_id')).toBe('e-1');
  });

  it('treats a missing or garbled due time as due now, and reads the last of repeated headers', () => {
    expect(notBeforeOf(record({}))).toBe(0);
    expect(notBeforeOf(record(undefined))).toBe(0);
    expect(notBeforeOf(record({ 'x-gateway-not-before': 'soon' }))).toBe(0);
    expect(notBeforeOf(record({ 'x-gateway-not-before': Buffer.from('1700000000000') }))).toBe(1_700_000_000_000);
    expect(notBeforeOf(record({ 'x-gateway-not-before': ['1', '2'] }))).toBe(2);
  });
});
