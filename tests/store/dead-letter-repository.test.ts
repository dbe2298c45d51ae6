import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDeadLetterRepository, deadLetterEvent, type DeadLetterRepository } from '../../src/store/dead-letter-repository.js';
import { makeEvent } from '../helpers/events.js';
import { openTempStore } from '../helpers/store.js';

describe('dead-letter repository', () => {
  let store: ReturnType<typeof openTempStore>;
  let letters: DeadLetterRepository;
  beforeEach(() => {
    store = openTempStore();
    letters = createDeadLetterRepository(store);
  });
  afterEach(() => store.cleanup());

  it('records the event, consumer, error, attempts and failure times', () => {
    const event = makeEvent({ key: 'k', data: { a: [1, 2] } });
    const row = letters.record({ consumer: 'billing', event, error: 'HTTP 500', attempts: 5 }, 1000);
    expect(row).toMatchObject({ consumer: 'billing', topic: event.topic, error: 'HTTP 500', attempts: 5, status: 'DEAD' });
    expect(row.firstFailedAt.getTime()).toBe(1000);
    expect(deadLetterEvent(row)).toEqual(event);
  });

  it('keeps one row per consumer and event, adding up attempts over a failed replay', () => {
    const event = makeEvent();
    const first = letters.record({ consumer: 'c', event, error: 'e1', attempts: 3 }, 1000);
    letters.transition(first.id, 'DEAD', 'REPLAYED');
    const again = letters.record({ consumer: 'c', event, error: 'e2', attempts: 3 }, 2000);
    expect(again).toMatchObject({ id: first.id, status: 'DEAD', attempts: 6, error: 'e2' });
    expect(again.firstFailedAt.getTime()).toBe(1000);
    expect(again.lastFailedAt.getTime()).toBe(2000);
    // A duplicate delivery of a letter that is still DEAD does not inflate attempts.
    expect(letters.record({ consumer: 'c', event, error: 'e3', attempts: 3 }, 3000).attempts).toBe(6);
    // Another consumer failing the same event has its own letter.
    expect(letters.record({ consumer: 'd', event, error: 'x', attempts: 1 }).id).not.toBe(first.id);
  });

  it('keeps a discarded letter discarded', () => {
    const event = makeEvent();
    const row = letters.record({ consumer: 'c', event, error: 'e', attempts: 1 });
    letters.transition(row.id, 'DEAD', 'DISCARDED');
    expect(letters.record({ consumer: 'c', event, error: 'e', attempts: 1 }).status).toBe('DISCARDED');
  });

  it('moves between states only from the expected one', () => {
    const row = letters.record({ consumer: 'c', event: makeEvent(), error: 'e', attempts: 1 });
    expect(letters.transition(row.id, 'DEAD', 'REPLAYED')?.status).toBe('REPLAYED');
    expect(letters.transition(row.id, 'DEAD', 'REPLAYED')).toBeUndefined();
  });

  it('filters by consumer, topic and status, newest first, and counts DEAD per consumer', () => {
    letters.record({ consumer: 'a', event: makeEvent({ topic: 'x' }), error: 'e', attempts: 1 });
    letters.record({ consumer: 'a', event: makeEvent({ topic: 'y' }), error: 'e', attempts: 1 });
    const third = letters.record({ consumer: 'b', event: makeEvent({ topic: 'x' }), error: 'e', attempts: 1 });
    const page = { limit: 10, inverted: false };
    expect(letters.list({}, page).map((r) => r.id)).toEqual([3, 2, 1]);
    expect(letters.list({ consumer: 'a' }, page).map((r) => r.id)).toEqual([2, 1]);
    expect(letters.list({ topic: 'x' }, page).map((r) => r.id)).toEqual([3, 1]);
    letters.transition(third.id, 'DEAD', 'DISCARDED');
    expect(letters.list({ status: 'DEAD' }, page).map((r) => r.id)).toEqual([2, 1]);
    expect(Object.fromEntries(letters.countByConsumer('DEAD'))).toEqual({ a: 2 });
  });
});
