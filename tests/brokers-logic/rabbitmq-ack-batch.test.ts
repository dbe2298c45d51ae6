import { describe, expect, it } from 'vitest';
import { AckBatch } from '../../src/brokers/rabbitmq/ack-batch.js';

describe('RabbitMQ ack batching', () => {
  it('acks a run of settled deliveries from the oldest with one multiple ack', () => {
    const batch = new AckBatch();
    for (const tag of [1, 2, 3, 4]) batch.received(tag);
    batch.ack(2);
    batch.ack(1);
    batch.ack(3);
    expect(batch.flush()).toEqual({ upTo: 3, single: [] });
    batch.ack(4);
    expect(batch.flush()).toEqual({ upTo: 4, single: [] });
    expect(batch.flush()).toEqual({ upTo: undefined, single: [] });
  });

  it('acks deliveries past a slow one singly, never covering the slow one', () => {
    const batch = new AckBatch();
    for (const tag of [1, 2, 3, 4, 5]) batch.received(tag);
    batch.ack(1);
    batch.ack(3);
    batch.ack(5);
    expect(batch.flush()).toEqual({ upTo: 1, single: [3, 5] });
    batch.ack(2);
    batch.ack(4);
    expect(batch.flush()).toEqual({ upTo: 4, single: [] });
  });

  it('leaves a nacked delivery out of every later ack', () => {
    const batch = new AckBatch();
    for (const tag of [7, 8, 9]) batch.received(tag);
    batch.forget(7);
    batch.ack(8);
    expect(batch.flush()).toEqual({ upTo: 8, single: [] });
    batch.ack(9);
    expect(batch.flush()).toEqual({ upTo: 9, single: [] });
  });
});
