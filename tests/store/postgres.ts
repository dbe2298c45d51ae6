import { afterEach, describe, expect, it } from 'vitest';
import { InvalidInputError, StoreUnavailableError } from '../../src/errors.js';
import { encodeEvent } from '../../src/events/codec.js';
import type { ClaimedRow, OutboxRepository, PublishResult } from '../../src/store/outbox-repository.js';
import { openPostgres } from '../../src/store/postgres/database.js';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import type { Store } from '../../src/store/store.js';
import { gql, startTestApp } from '../helpers/app.js';
import { makeEvent, waitFor } from '../helpers/events.js';
import { createTestDatabase, openTempPostgresStore, POSTGRES_HOST, POSTGRES_PORT, POSTGRES_URL, withConnection } from '../helpers/postgres.js';
import { createTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/** PostgreSQL only: several instances on one database, and a server that goes away. */
export function definePostgresSuite(): void {
  describe('postgres store: several instances, one database', () => {
    const opened: { close(): Promise<unknown> }[] = [];
    const drops: (() => Promise<void>)[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
      for (const drop of drops.splice(0)) await drop();
    });

    /** A first store on a fresh database, and `another()` opening more stores on the same one. */
    async function instances() {
      const first = await openTempPostgresStore();
      drops.push(() => first.cleanup());
      const another = async () => {
        const store = openPostgresStore({ url: first.url, lockTimeoutMs: 1000, maxConnections: 4 });
        opened.push(store);
        await store.ping();
        return store;
      };
      return { first, another };
    }

    it('migrates once when several instances start at the same moment', async () => {
      const database = await createTestDatabase();
      drops.push(() => database.drop());
      const stores = Array.from({ length: 5 }, () => openPostgresStore({ url: database.url, maxConnections: 2 }));
      opened.push(...stores);
      await Promise.all(stores.map((store) => store.ping()));
      const applied = await withConnection(database.url, (sql) => sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
      expect(applied[0]!.n).toBe(1);
      await stores[4]!.outbox.append([makeEvent()]);
      expect(await stores[0]!.outbox.count('PENDING')).toBe(1);
    });

    it('two relays claiming at once never hold rows of one key together, never the same row, and publish each key in order', async () => {
      const { first, another } = await instances();
      const second = await another();
      const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
      for (let round = 0; round < 3; round++) {
        const events = Array.from({ length: 240 }, (_, i) => makeEvent({ key: i % 10 === 9 ? null : keys[(i * 7 + round) % keys.length]! }));
        // Appended in several calls from both instances, as concurrent mutations would be.
        await Promise.all(events.map((event, i) => (i % 2 === 0 ? first : second).outbox.append([event])));
        const race = await raceRelays([first.outbox, second.outbox]);
        expect(race.violations).toEqual([]);
        expect(race.published).toBe(events.length);
        expect(race.retried).toBeGreaterThan(0);
        for (const ids of race.publishedPerKey.values()) expect(ids).toEqual([...ids].sort((a, b) => a - b));
      }
      expect(await first.outbox.count('PENDING')).toBe(0);
    });

    it('claims a row whose transaction commits after later rows were claimed and published', async () => {
      const store = await openTempPostgresStore();
      drops.push(() => store.cleanup());
      const late = makeEvent();
      await withConnection(store.url, async (sql) => {
        await sql.unsafe('begin');
        // Gets its id now, and stays invisible to every other transaction until the commit.
        const [row] = await sql`
          insert into outbox (event_id, topic, type, key, body, created_at, next_attempt_at)
          values (${late.id}, ${late.topic}, ${late.type}, null, ${encodeEvent(late).toString('utf8')}, now(), now()) returning id`;
        const [early, later] = await store.outbox.append([makeEvent(), makeEvent()]);
        const claimed = await store.outbox.claim({ owner: 'r', limit: 10, leaseMs: 60_000 });
        expect(claimed.map((r) => r.id)).toEqual([early!.id, later!.id]);
        expect(Number(row!.id)).toBeLessThan(early!.id);
        await store.outbox.settle(
          'r',
          claimed.map((r) => ({ id: r.id, ok: true })),
        );
        await sql.unsafe('commit');
      });
      const claimed = await store.outbox.claim({ owner: 'r', limit: 10, leaseMs: 60_000 });
      expect(claimed.map((r) => r.eventId)).toEqual([late.id]);
    });

    it('makes an append of a key wait for another instance still committing that key, and then not hand its row over', async () => {
      const store = await openTempPostgresStore({ lockTimeoutMs: 5000 });
      drops.push(() => store.cleanup());
      const taken: ClaimedRow[] = [];
      store.outbox.handOffTo({ owner: 'local', leaseMs: 60_000, capacity: () => 10, take: (rows) => void taken.push(...rows) });
      const first = makeEvent({ key: 'k' });
      const second = makeEvent({ key: 'k' });
      let appended: Promise<unknown> | undefined;
      let done = false;
      await withConnection(store.url, async (sql) => {
        // Another instance in the middle of its group commit of key k, as `append` writes it.
        await sql.unsafe('begin');
        await sql`select pg_advisory_xact_lock(hashtextextended('k', 0))`;
        await sql`
          insert into outbox (event_id, topic, type, key, body, created_at, next_attempt_at)
          values (${first.id}, ${first.topic}, ${first.type}, 'k', ${encodeEvent(first).toString('utf8')}, now(), now())`;
        appended = store.outbox.append([second]).then(() => (done = true));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(done).toBe(false);
        await sql.unsafe('commit');
      });
      await appended;
      // The row went to the table unclaimed: it waits behind the other instance's row of its key.
      expect(taken).toEqual([]);
      const claimed = await store.outbox.claim({ owner: 'other', limit: 10, leaseMs: 60_000 });
      expect(claimed.map((r) => r.eventId)).toEqual([first.id, second.id]);
      store.outbox.handOffTo(undefined);
    });

    it('gives rows back to the table when the relay stops while their commit is out', async () => {
      const store = await openTempPostgresStore({ lockTimeoutMs: 5000 });
      drops.push(() => store.cleanup());
      const taken: ClaimedRow[] = [];
      let changes = 0;
      store.onOutboxChange(() => changes++);
      store.outbox.handOffTo({ owner: 'local', leaseMs: 60_000, capacity: () => 10, take: (rows) => void taken.push(...rows) });
      const event = makeEvent({ key: 'k' });
      await withConnection(store.url, async (sql) => {
        // Holds the append's commit at its key lock while the relay stops.
        await sql.unsafe('begin');
        await sql`select pg_advisory_xact_lock(hashtextextended('k', 0))`;
        const appended = store.outbox.append([event]);
        await new Promise((resolve) => setTimeout(resolve, 100));
        store.outbox.handOffTo(undefined);
        await sql.unsafe('commit');
        await appended;
      });
      expect(taken).toEqual([]);
      expect(await store.outbox.getByEventId(event.id)).toMatchObject({ status: 'PENDING', claimedBy: null });
      expect(changes).toBe(1);
    });

    it('wakes the other instances through NOTIFY, and each instance hears its own commits once', async () => {
      const { first, another } = await instances();
      const second = await another();
      let woken = 0;
      let own = 0;
      second.onOutboxChange(() => woken++);
      first.onOutboxChange(() => own++);
      // LISTEN is set up in the background when a store opens: append until it is heard.
      let appends = 0;
      await waitFor(
        async () => {
          await first.outbox.append([makeEvent()]);
          appends++;
          return woken > 0;
        },
        5000,
        'the other instance to be woken',
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(own).toBe(appends);
      // Rows handed to the local relay wait for no claim: nobody else is woken for them.
      first.outbox.handOffTo({ owner: 'local', leaseMs: 60_000, capacity: () => 10, take: () => {} });
      const before = woken;
      await first.outbox.append([makeEvent()]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(woken).toBe(before);
      first.outbox.handOffTo(undefined);
    });

    it('listens again after its connection is killed, and wakes its listeners when it does', async () => {
      const { first, another } = await instances();
      const second = await another();
      let woken = 0;
      second.onOutboxChange(() => woken++);
      await waitFor(
        async () => {
          await first.outbox.append([makeEvent()]);
          return woken > 0;
        },
        5000,
        'LISTEN to be set up',
      );
      woken = 0;
      await withConnection(
        first.url,
        (sql) => sql`
        select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and query ilike 'listen%'`,
      );
      // Rows committed while it was deaf: the resumed LISTEN wakes the listeners anyway.
      await waitFor(() => woken > 0, 5000, 'the listeners to be woken on resume');
      woken = 0;
      await first.outbox.append([makeEvent()]);
      await waitFor(() => woken > 0, 5000, 'a notification after the reconnect');
    });

    it('refuses an event PostgreSQL cannot store, failing only its own append of the group', async () => {
      const store = await openTempPostgresStore();
      drops.push(() => store.cleanup());
      const good = [makeEvent({ key: 'a' }), makeEvent({ key: 'b' })];
      // PostgreSQL text cannot hold NUL; the key locks the group shares must not trip over it.
      const outcomes = await Promise.allSettled([
        store.outbox.append([good[0]!]),
        store.outbox.append([makeEvent(), makeEvent({ key: 'bad\u0000key' })]),
        store.outbox.append([good[1]!]),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
      expect((await store.outbox.list({}, { limit: 10, inverted: false })).map((r) => r.eventId)).toEqual(good.map((e) => e.id));
    });
  });

  describe('postgres store: the gateway on DATABASE_URL', () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    it('publishes a mutation’s event through the PostgreSQL outbox and relay', async () => {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      const app = await startTestApp({ env: { DATABASE_URL: database.url } });
      cleanups.push(() => app.dispose());
      expect(app.store.dialect).toBe('postgres');
      const answer = await gql<{ publishEvent: { outboxId: string } }>(app.url, 'mutation($i: PublishEventInput!) { publishEvent(input: $i) { outboxId } }', {
        i: { topic: 'orders', type: 'order.created', key: 'o-1', data: { n: 1 } },
      });
      expect(answer.errors).toBeUndefined();
      const id = Number(answer.data!.publishEvent.outboxId);
      await waitFor(async () => (await app.store.outbox.get(id))?.status === 'PUBLISHED', 10_000, 'the relay to publish the row');
    });

    it('refuses to start when the database cannot be reached, naming it without the password', async () => {
      const closed = await createTcpProxy(POSTGRES_PORT, POSTGRES_HOST);
      await closed.close();
      const url = `postgres://gateway:sekret-password@127.0.0.1:${closed.port}/events`;
      const failed = await startTestApp({ env: { DATABASE_URL: url } }).then(
        (app) => app.dispose().then(() => undefined),
        (error: unknown) => error as Error,
      );
      expect(failed).toBeInstanceOf(StoreUnavailableError);
      expect(failed!.message).toContain(`the postgres store at postgres://gateway:***@127.0.0.1:${closed.port}/events cannot be used`);
      expect(failed!.message).toMatch(/ECONNREFUSED/);
      expect(failed!.message).not.toContain('sekret');
    });
  });

  describe('postgres store: a server that goes away', () => {
    let proxy: TcpProxy | undefined;
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      await proxy?.close();
      proxy = undefined;
    });

    /** A store that reaches its database through a proxy the test can cut; the URL carries a password. */
    async function storeBehindProxy(): Promise<{ store: Store; proxy: TcpProxy; database: string }> {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      proxy = await createTcpProxy(POSTGRES_PORT, POSTGRES_HOST);
      const url = new URL(database.url);
      url.port = String(proxy.port);
      url.password = 'sekret-password';
      const store = openPostgresStore({ url: url.toString(), connectTimeoutMs: 2000 });
      cleanups.push(() => store.close());
      await store.ping();
      return { store, proxy, database: url.pathname.slice(1) };
    }

    const unavailable = async (call: Promise<unknown>) => {
      const error = await call.then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(StoreUnavailableError);
      const { message, details } = error as StoreUnavailableError;
      expect(`${message} ${JSON.stringify(details)}`).not.toContain('sekret');
      return error as StoreUnavailableError;
    };

    it('answers STORE_UNAVAILABLE while connections are refused, and recovers when the server is back', async () => {
      const { store, proxy } = await storeBehindProxy();
      await store.outbox.append([makeEvent()]);
      await proxy.cut();
      // The first call may still find a connection on its way down; the next ones are refused.
      await unavailable(store.ping());
      const pinged = await unavailable(store.ping());
      expect(pinged.details).toEqual({ connectionCode: 'ECONNREFUSED' });
      expect(pinged.message).toMatch(/could not reach the database: the database server refused the connection \(ECONNREFUSED\)/);
      await unavailable(store.outbox.append([makeEvent()]));
      await unavailable(store.outbox.claim({ owner: 'r', limit: 10, leaseMs: 1000 }));
      await proxy.restore();
      await store.ping();
      await store.outbox.append([makeEvent()]);
      expect(await store.outbox.count('PENDING')).toBe(2);
    });

    it('fails to open on a port where nothing listens, without naming the password', async () => {
      const closed = await createTcpProxy(POSTGRES_PORT, POSTGRES_HOST);
      await closed.cut();
      const store = openPostgresStore({ url: `postgres://postgres:sekret-password@127.0.0.1:${closed.port}/postgres` });
      cleanups.push(() => store.close());
      const error = await unavailable(store.ping());
      expect(error.message).toMatch(/could not apply migrations: .*\(ECONNREFUSED\)/);
    });

    it('is unavailable while the database takes no writes (read-only by default, as a standby is), and available again after', async () => {
      const { store, database } = await storeBehindProxy();
      const setReadOnly = (on: boolean) =>
        withConnection(POSTGRES_URL, async (sql) => {
          await sql.unsafe(`alter database "${database}" set default_transaction_read_only = ${on ? 'on' : 'off'}`);
          // The setting applies to new sessions: end the store's, it reconnects on its next call.
          await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${database} and pid <> pg_backend_pid()`;
        });
      await setReadOnly(true);
      const refused = await waitFor(
        async () => {
          const error = await store.ping().then(
            () => undefined,
            (reason: unknown) => reason,
          );
          return error instanceof StoreUnavailableError && /read-only/.test(error.message) ? error : undefined;
        },
        10_000,
        'ping to report the database read-only',
      );
      expect(refused.message).toMatch(/the database is read-only \(a standby/);
      await setReadOnly(false);
      await waitFor(
        () =>
          store.ping().then(
            () => true,
            () => false,
          ),
        10_000,
        'ping to succeed again',
      );
      await store.outbox.append([makeEvent()]);
    });

    it('survives the server terminating its connections (admin shutdown, 57P01)', async () => {
      const { store, database } = await storeBehindProxy();
      const killed = await withConnection(
        POSTGRES_URL,
        (sql) => sql`
        select pg_terminate_backend(pid) from pg_stat_activity where datname = ${database} and pid <> pg_backend_pid()`,
      );
      expect(killed.length).toBeGreaterThan(0);
      // A call that meets a connection the server just closed fails as unavailable; the store
      // connects again for the next one, without a restart.
      await store.outbox.append([makeEvent()]).catch((error: unknown) => expect(error).toBeInstanceOf(StoreUnavailableError));
      await store.outbox.append([makeEvent()]);
      expect(await store.outbox.count('PENDING')).toBeGreaterThanOrEqual(1);
    });

    it('fails a transaction whose backend the server ends mid-statement, and serves the next call on the same connection', async () => {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      // One connection, so the next call has to reuse the one that broke.
      const db = openPostgres({ url: database.url, maxConnections: 1 });
      cleanups.push(() => db.close());
      let pid: number | undefined;
      const transaction = db.transaction('sleep', async (tx) => {
        pid = (await tx<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]?.pid;
        await tx`select pg_sleep(5)`;
      });
      await waitFor(() => pid, 5000, 'the transaction to start');
      await withConnection(POSTGRES_URL, (sql) => sql`select pg_terminate_backend(${pid ?? 0})`);
      // postgres.js writes the transaction's ROLLBACK on a connection that has closed; unpatched,
      // that write throws from an immediate and ends the process (patches/postgres+3.4.9.patch).
      await expect(transaction).rejects.toBeInstanceOf(StoreUnavailableError);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Nothing of the ended session (its query, its 57P01 error) answers the next one.
      expect(await db.run('select', () => db.sql<{ one: number }[]>`select 1 as one`)).toEqual([{ one: 1 }]);
    });
  });
}

interface RaceResult {
  violations: string[];
  published: number;
  retried: number;
  publishedPerKey: Map<string, number[]>;
}

/**
 * Relays on different instances claiming from one table as fast as they can, publishing with
 * random failures. Checks at every claim what per-key order needs: no row is held twice, and no
 * key has rows held by two relays. A batch is settled the way the relay does it: a key whose row
 * failed releases its later rows instead of publishing them.
 */
async function raceRelays(outboxes: OutboxRepository[]): Promise<RaceResult> {
  const heldBy = new Map<number, string>();
  const keyHolder = new Map<string, string>();
  const result: RaceResult = { violations: [], published: 0, retried: 0, publishedPerKey: new Map() };
  const deadline = Date.now() + 20_000;
  const relay = async (outbox: OutboxRepository, owner: string) => {
    for (;;) {
      const rows = await outbox.claim({ owner, limit: 1 + Math.floor(Math.random() * 12), leaseMs: 60_000 });
      if (rows.length === 0) {
        if ((await outbox.count('PENDING')) === 0 || Date.now() > deadline) return;
        await new Promise((resolve) => setTimeout(resolve, 2));
        continue;
      }
      for (const row of rows) {
        if (heldBy.has(row.id)) result.violations.push(`row ${row.id} claimed by ${owner} while ${heldBy.get(row.id)} holds it`);
        const holder = row.key === null ? undefined : keyHolder.get(row.key);
        if (holder !== undefined && holder !== owner) result.violations.push(`key ${row.key} claimed by ${owner} while ${holder} holds a row of it`);
        heldBy.set(row.id, owner);
        if (row.key !== null) keyHolder.set(row.key, owner);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
      const results: PublishResult[] = [];
      const released: number[] = [];
      const failedKeys = new Set<string>();
      for (const row of rows) {
        if (row.key !== null && failedKeys.has(row.key)) released.push(row.id);
        else if (Math.random() < 0.1) {
          results.push({ id: row.id, ok: false, error: 'flaky', retryAt: Date.now() });
          if (row.key !== null) failedKeys.add(row.key);
          result.retried++;
        } else {
          results.push({ id: row.id, ok: true });
          result.published++;
          const key = row.key ?? '';
          result.publishedPerKey.set(key, [...(result.publishedPerKey.get(key) ?? []), row.id]);
        }
      }
      // Forgotten before the store is told, so a claim racing the settle never looks like a violation.
      for (const row of rows) {
        heldBy.delete(row.id);
        if (row.key !== null && keyHolder.get(row.key) === owner) keyHolder.delete(row.key);
      }
      await outbox.settle(owner, results);
      await outbox.release(owner, released);
    }
  };
  await Promise.all(outboxes.map((outbox, i) => relay(outbox, `relay-${i}`)));
  result.publishedPerKey.delete('');
  return result;
}
