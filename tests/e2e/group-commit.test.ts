import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../../src/events/event.js';
import { startTestApp } from '../helpers/app.js';
import { uniqueName, waitFor } from '../helpers/events.js';
import { removeDatabase, tempDatabasePath } from '../helpers/store.js';

type Answer = { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: { code?: string } }[] };

/** One HTTP request carrying several operations: Yoga runs them at once, so their writes share a commit. */
async function batch(url: string, operations: { query: string; variables?: unknown }[]): Promise<Answer[]> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(operations) });
  expect(response.status).toBe(200);
  return (await response.json()) as Answer[];
}

const PUBLISH = 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { outboxId duplicate event { id data } } }';
const PUBLISH_MANY = 'mutation($i: [PublishEventInput!]!) { publishEvents(inputs: $i) { outboxId duplicate } }';

describe('group commit through the API', () => {
  let dispose: (() => Promise<void>) | undefined;
  const databasePath = tempDatabasePath();
  afterEach(async () => {
    await dispose?.();
    dispose = undefined;
    removeDatabase(databasePath);
  });

  it('answers each mutation of a group with its own outcome: duplicate, invalid, refused by a constraint, fresh', async () => {
    const app = await startTestApp({ databasePath });
    dispose = app.dispose;
    const topic = uniqueName('group');
    const first = await batch(app.url, [{ query: PUBLISH, variables: { i: { topic, type: 'order.created', id: 'known-1', data: { n: 0 } } } }]);
    expect(first[0]!.errors).toBeUndefined();
    // A row for this topic is refused by the database itself, as a constraint would refuse it.
    const db = new Database(databasePath);
    db.exec(`create trigger refuse_poison before insert on outbox when new.topic = '${topic}-poison' begin select raise(abort, 'refused'); end`);
    db.close();

    const answers = await batch(app.url, [
      { query: PUBLISH, variables: { i: { topic, type: 'order.created', id: 'known-1', data: { n: 'again' } } } },
      { query: PUBLISH, variables: { i: { topic, type: 'not a type!', data: 1 } } },
      {
        query: PUBLISH_MANY,
        variables: {
          i: [
            { topic, type: 'order.created', data: 2 },
            { topic: `${topic}-poison`, type: 'order.created', data: 3 },
          ],
        },
      },
      { query: PUBLISH, variables: { i: { topic, type: 'order.created', id: 'fresh-1', data: { n: 4 } } } },
      {
        query: PUBLISH_MANY,
        variables: {
          i: [
            { topic, type: 'order.created', id: 'fresh-2', data: 5 },
            { topic, type: 'order.created', id: 'fresh-3', data: 6 },
          ],
        },
      },
    ]);
    expect(answers[0]!.data?.['publishEvent']).toMatchObject({ duplicate: true, event: { id: 'known-1', data: { n: 0 } } });
    expect(answers[1]!.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(answers[2]!.errors?.[0]).toBeDefined();
    expect(answers[2]!.data).toBeNull();
    expect(answers[3]!.data?.['publishEvent']).toMatchObject({ duplicate: false, event: { id: 'fresh-1' } });
    expect(answers[4]!.data?.['publishEvents']).toEqual([expect.objectContaining({ duplicate: false }), expect.objectContaining({ duplicate: false })]);
    // The fresh ones are committed, the refused batch left nothing behind, the duplicate wrote nothing.
    const rows = await app.services.outbox.list({}, { limit: 100, inverted: false });
    expect(
      rows
        .filter((r) => r.topic === topic)
        .map((r) => r.eventId)
        .sort(),
    ).toEqual(['fresh-1', 'fresh-2', 'fresh-3', 'known-1']);
    expect(rows.filter((r) => r.topic === `${topic}-poison`)).toEqual([]);
  });

  it('answers STORE_UNAVAILABLE to every mutation of a group the store cannot write, and writes none of them', async () => {
    const app = await startTestApp({ databasePath, env: { DATABASE_SYNCHRONOUS: 'NORMAL' } });
    dispose = app.dispose;
    const before = (await app.services.outbox.list({}, { limit: 100, inverted: false })).length;
    // Another process holds the write lock past the store's busy timeout.
    const blocker = new Database(databasePath);
    blocker.prepare('begin immediate').run();
    let answers: Answer[];
    try {
      answers = await batch(
        app.url,
        Array.from({ length: 5 }, (_, n) => ({ query: PUBLISH, variables: { i: { topic: 'blocked', type: 'order.created', data: { n } } } })),
      );
    } finally {
      blocker.prepare('rollback').run();
      blocker.close();
    }
    expect(answers.map((a) => a.errors?.[0]?.extensions?.code)).toEqual(Array(5).fill('STORE_UNAVAILABLE'));
    expect(await app.services.outbox.list({}, { limit: 100, inverted: false })).toHaveLength(before);
  });

  it('keeps the outbox order of each key the order in which concurrent groups committed, up to the consumer', async () => {
    const topic = uniqueName('order');
    const delivered: GatewayEvent[] = [];
    const consumer = uniqueName('ordered');
    const app = await startTestApp({
      databasePath,
      consumers: [{ name: consumer, topic, prefetch: 8 }],
      handlers: { [consumer]: async (event) => void delivered.push(event) },
    });
    dispose = app.dispose;
    const publishers = 8;
    const perPublisher = 40;
    const keys = ['k0', 'k1', 'k2', 'k3'];
    // Each publisher waits for its answer before its next mutation; the eight run side by side.
    await Promise.all(
      Array.from({ length: publishers }, async (_, p) => {
        for (let n = 0; n < perPublisher; n++) {
          const [answer] = await batch(app.url, [
            { query: PUBLISH, variables: { i: { topic, type: 'order.created', key: keys[(p + n) % keys.length], data: { p, n } } } },
          ]);
          expect(answer!.errors).toBeUndefined();
        }
      }),
    );
    await waitFor(() => delivered.length >= publishers * perPublisher, 10_000, 'every event at the consumer');
    const rows = await app.services.outbox.list({}, { limit: 1000, inverted: false });
    for (const key of keys) {
      const committed = rows.filter((r) => r.key === key).map((r) => r.eventId);
      expect(delivered.filter((e) => e.key === key).map((e) => e.id)).toEqual(committed);
      // A publisher's events of one key stay in its own order, too.
      for (let p = 0; p < publishers; p++) {
        const seq = delivered.filter((e) => e.key === key && (e.data as { p: number }).p === p).map((e) => (e.data as { n: number }).n);
        expect(seq).toEqual([...seq].sort((a, b) => a - b));
      }
    }
  });
});
