import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deadLetterEvent, type DeadLetterRepository } from '../../src/store/dead-letter-repository.js';
import { makeEvent } from '../helpers/events.js';
import type { StoreDialect, TestStore } from '../helpers/store.js';

export function defineDeadLetterRepositorySuite(dialect: StoreDialect): void {
  describe(`dead-letter repository (${dialect.name})`, () => {
    let store: TestStore;
    let letters: DeadLetterRepository;
    beforeEach(async () => {
      store = await dialect.open();
      letters = store.deadLetters;
    });
    afterEach(() => store.cleanup());

    it('records the event, consumer, error, attempts and failure times', async () => {
      const event = makeEvent({ key: 'k', data: { a: [1, 2] } });
      const row = await letters.record({ consumer: 'billing', event, error: 'HTTP 500', attempts: 5 }, 1000);
      expect(row).toMatchObject({ consumer: 'billing', topic: event.topic, error: 'HTTP 500', attempts: 5, status: 'DEAD' });
      expect(row.firstFailedAt.getTime()).toBe(1000);
      expect(deadLetterEvent(row)).toEqual(event);
      expect(await letters.get(row.id)).toEqual(row);
    });

    it('keeps one row per consumer and event, adding up attempts over a failed replay', async () => {
      const event = makeEvent();
      const first = await letters.record({ consumer: 'c', event, error: 'e1', attempts: 3 }, 1000);
      await letters.transition(first.id, 'DEAD', 'REPLAYED');
      const again = await letters.record({ consumer: 'c', event, error: 'e2', attempts: 3 }, 2000);
      expect(again).toMatchObject({ id: first.id, status: 'DEAD', attempts: 6, error: 'e2' });
      expect(again.firstFailedAt.getTime()).toBe(1000);
      expect(again.lastFailedAt.getTime()).toBe(2000);
      // A duplicate delivery of a letter that is still DEAD does not inflate attempts.
      expect((await letters.record({ consumer: 'c', event, error: 'e3', attempts: 3 }, 3000)).attempts).toBe(6);
      // Another consumer failing the same event has its own letter.
      expect((await letters.record({ consumer: 'd', event, error: 'x', attempts: 1 })).id).not.toBe(first.id);
    });

    it('keeps a discarded letter discarded', async () => {
      const event = makeEvent();
      const row = await letters.record({ consumer: 'c', event, error: 'e', attempts: 1 });
      await letters.transition(row.id, 'DEAD', 'DISCARDED');
      expect((await letters.record({ consumer: 'c', event, error: 'e', attempts: 1 })).status).toBe('DISCARDED');
    });

    it('moves between states only from the expected one', async () => {
      const row = await letters.record({ consumer: 'c', event: makeEvent(), error: 'e', attempts: 1 });
      expect((await letters.transition(row.id, 'DEAD', 'REPLAYED'))?.status).toBe('REPLAYED');
      expect(await letters.transition(row.id, 'DEAD', 'REPLAYED')).toBeUndefined();
    });

    it('filters by consumer, topic and status, newest first, and counts DEAD per consumer', async () => {
      await letters.record({ consumer: 'a', event: makeEvent({ topic: 'x' }), error: 'e', attempts: 1 });
      await letters.record({ consumer: 'a', event: makeEvent({ topic: 'y' }), error: 'e', attempts: 1 });
      const third = await letters.record({ consumer: 'b', event: makeEvent({ topic: 'x' }), error: 'e', attempts: 1 });
      const page = { limit: 10, inverted: false };
      const ids = async (p: Promise<{ id: number }[]>) => (await p).map((r) => r.id);
      expect(await ids(letters.list({}, page))).toEqual([3, 2, 1]);
      expect(await ids(letters.list({ consumer: 'a' }, page))).toEqual([2, 1]);
      expect(await ids(letters.list({ topic: 'x' }, page))).toEqual([3, 1]);
      await letters.transition(third.id, 'DEAD', 'DISCARDED');
      expect(await ids(letters.list({ status: 'DEAD' }, page))).toEqual([2, 1]);
      expect(Object.fromEntries(await letters.countByConsumer('DEAD'))).toEqual({ a: 2 });
    });
  });
}
