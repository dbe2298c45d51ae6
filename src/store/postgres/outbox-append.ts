import { InvalidInputError } from '../../errors.js';
import { encodeEvent } from '../../events/codec.js';
import type { GatewayEvent } from '../../events/event.js';
import { Batcher, type JobOutcome } from '../../util/batcher.js';
import { outboxRowToEvent, type AppendResult, type ClaimedRow, type OutboxRepository, type OutboxTaker } from '../outbox-repository.js';
import { at, isUnavailable, type PostgresDatabase, type TransactionSql } from './database.js';

/**
 * Most appends in one group commit. A group is one INSERT; only when one of its appends fails is
 * it written again with a savepoint per append. More than 64 subtransactions that wrote overflow
 * PostgreSQL's per-backend cache and slow every session's snapshots while that transaction is
 * open, so the bound keeps that rare path short.
 */
const MAX_GROUP = 256;

export interface AppendHooks {
  /** Called after a commit that left rows unclaimed: wakes this instance's relays. */
  readonly changed: () => void;
  /** The NOTIFY sent inside that transaction (delivered on commit, never for a rollback). */
  readonly notify: { readonly channel: string; readonly payload: string };
  /** Gives back rows written claimed for a relay that stopped while they were being committed. */
  readonly release: (owner: string, ids: readonly number[]) => Promise<unknown>;
}

/** One append's rows as the group writes them. */
interface Job {
  readonly events: readonly GatewayEvent[];
  readonly bodies: readonly string[];
  /** The relay's owner for rows handed to it, null for rows left to a claim. */
  readonly owners: readonly (string | null)[];
}

/** What one group wrote: each append's outcome, the rows handed over, whether any row waits for a claim. */
interface Written {
  readonly outcomes: JobOutcome<AppendResult[]>[];
  readonly handed: ClaimedRow[];
  unclaimed: boolean;
}

/**
 * Group commit on PostgreSQL (`OutboxRepository.append` and `handOffTo`). Appends that arrive while
 * a commit is out go into the next one. Before writing, a group takes `pg_advisory_xact_lock` on
 * each key it writes, all at once and in hash order (two groups never wait on each other in a
 * cycle): rows of one key are committed in id order across instances, and the hand-off's "no
 * PENDING row of this key" check, made once the locks are held, cannot miss a row another
 * instance is still committing.
 */
export function createPostgresAppender(database: PostgresDatabase, hooks: AppendHooks): Pick<OutboxRepository, 'append' | 'handOffTo'> {
  let taker: OutboxTaker | undefined;

  const appends = new Batcher<readonly GatewayEvent[], AppendResult[]>(
    async (jobs) => {
      const target = taker;
      const refused = jobs.map(unstorable);
      const live = jobs.filter((_, i) => !refused[i]).map((events): Job => ({ events, bodies: events.map(body), owners: [] }));
      const written = live.length === 0 ? { outcomes: [], handed: [], unclaimed: false } : await write(live, target);
      await handOver(written.handed, target);
      if (written.unclaimed) hooks.changed();
      const outcomes = [...written.outcomes];
      return refused.map((error): JobOutcome<AppendResult[]> => (error ? { ok: false, error } : outcomes.shift()!));
    },
    { maxJobs: MAX_GROUP },
  );

  /** One transaction for the group; if one append fails (a constraint), a second with a savepoint each, so that it fails alone. */
  async function write(jobs: readonly Job[], target: OutboxTaker | undefined): Promise<Written> {
    const capacity = target?.capacity() ?? 0;
    const attempt = (isolated: boolean) =>
      database.transaction('write to the outbox', (tx) => writeGroup(tx, jobs, { target, capacity, isolated, now: Date.now() }));
    try {
      return await attempt(false);
    } catch (error) {
      if (isUnavailable(error)) throw error;
      return jobs.length === 1 ? { outcomes: [{ ok: false, error }], handed: [], unclaimed: false } : await attempt(true);
    }
  }

  async function handOver(rows: ClaimedRow[], target: OutboxTaker | undefined): Promise<void> {
    if (rows.length === 0) return;
    if (taker === target) return target!.take(rows);
    // The relay stopped while the commit was out: its rows go back to the table, for any relay.
    await hooks
      .release(
        target!.owner,
        rows.map((row) => row.id),
      )
      .catch(() => {
        /* they wait out their lease, as rows of a relay that died do */
      });
    hooks.changed();
  }

  async function writeGroup(
    tx: TransactionSql,
    jobs: readonly Job[],
    group: { target: OutboxTaker | undefined; capacity: number; isolated: boolean; now: number },
  ): Promise<Written> {
    const { target, isolated, now } = group;
    const expires = now + (target?.leaseMs ?? 0);
    let budget = group.capacity;
    const keys = [...new Set(jobs.flatMap((job) => job.events.flatMap((e) => (e.key === null ? [] : [e.key]))))];
    // Keys with a PENDING row, read once the key locks are held: no other instance can add one
    // until this transaction ends. Keys this group writes are added as it goes.
    const pendingKeys = new Set<string>();
    if (keys.length > 0) {
      const locking = tx`select pg_advisory_xact_lock(h) from (select distinct hashtextextended(k, 0) as h from unnest(${keys}::text[]) k order by h) s`;
      // One probe of the pending-key index per key: `key = any(…)` over the table makes the planner scan every pending row.
      const reading =
        budget > 0
          ? tx<{ key: string }[]>`select k as key from unnest(${keys}::text[]) k where exists (select 1 from outbox where status = 'PENDING' and key = k)`
          : undefined;
      const [, pending] = await Promise.all([locking, reading]);
      for (const row of pending ?? []) pendingKeys.add(row.key);
    }
    /** Hands a row over while the relay has room and nothing of its key is pending (written earlier in this group included). */
    const plan = (job: Job): Job => {
      const owners = job.events.map((event) => {
        const take = budget > 0 && (event.key === null || !pendingKeys.has(event.key));
        if (event.key !== null) pendingKeys.add(event.key);
        if (!take) return null;
        budget--;
        return target!.owner;
      });
      return { ...job, owners };
    };
    const written: Written = { outcomes: [], handed: [], unclaimed: false };
    const createdAt = new Date(now);
    const record = (job: Job, results: AppendResult[]) => {
      results.forEach((result, i) => {
        if (result.duplicate) return;
        if (job.owners[i] === null) written.unclaimed = true;
        else
          written.handed.push({
            id: result.id,
            eventId: result.event.id,
            key: result.event.key,
            attempts: 0,
            body: job.bodies[i]!,
            createdAt,
            event: result.event,
          });
      });
      written.outcomes.push({ ok: true, value: results });
    };

    if (!isolated) {
      const planned = jobs.map(plan);
      const results = await insert(
        tx,
        { events: planned.flatMap((j) => j.events), bodies: planned.flatMap((j) => j.bodies), owners: planned.flatMap((j) => j.owners) },
        now,
        expires,
      );
      for (const job of planned) record(job, results.splice(0, job.events.length));
    } else {
      for (const job of jobs) {
        const before = { budget, pending: new Set(pendingKeys) };
        const planned = plan(job);
        try {
          record(planned, await tx.savepoint((sp) => insert(sp, planned, now, expires)));
        } catch (error) {
          // The store itself failing takes the whole group down: nothing of it is written.
          if (isUnavailable(error)) throw error;
          ({ budget } = before);
          pendingKeys.clear();
          for (const key of before.pending) pendingKeys.add(key);
          written.outcomes.push({ ok: false, error });
        }
      }
    }
    if (written.unclaimed) await tx`select pg_notify(${hooks.notify.channel}, ${hooks.notify.payload})`;
    return written;
  }

  return {
    append: (events) => (events.length === 0 ? Promise.resolve([]) : appends.submit(events)),
    handOffTo(next) {
      taker = next;
    },
  };
}

const body = (event: GatewayEvent) => encodeEvent(event).toString('utf8');

/**
 * Writes rows in the order given, each with its owner (handed) or none, in one statement. An event
 * id already stored, or given twice, writes nothing and comes back as a duplicate of the stored row.
 */
async function insert(tx: TransactionSql, job: Job, now: number, expires: number): Promise<AppendResult[]> {
  const { events } = job;
  const inserted = await tx<{ id: number; eventId: string }[]>`
    insert into outbox (event_id, topic, type, key, body, created_at, next_attempt_at, claimed_by, claim_expires_at)
    select e.event_id, e.topic, e.type, e.key, e.body, ${at(now)}::timestamptz, ${at(now)}::timestamptz, e.owner,
      case when e.owner is not null then ${at(expires)}::timestamptz end
    from unnest(${events.map((e) => e.id)}::text[], ${events.map((e) => e.topic)}::text[], ${events.map((e) => e.type)}::text[],
                ${events.map((e) => e.key)}::text[], ${job.bodies as string[]}::text[], ${job.owners as (string | null)[]}::text[])
      with ordinality as e(event_id, topic, type, key, body, owner, ord)
    order by e.ord
    on conflict (event_id) do nothing
    returning id, event_id as "eventId"`;
  const ids = new Map(inserted.map((row) => [row.eventId, row.id]));
  const missing = events.filter((e) => !ids.has(e.id)).map((e) => e.id);
  const known =
    missing.length > 0
      ? await tx<{ eventId: string; id: number; body: string }[]>`select event_id as "eventId", id, body from outbox where event_id = any(${missing}::text[])`
      : [];
  const stored = new Map(known.map((row) => [row.eventId, row]));
  return events.map((event, i): AppendResult => {
    const id = ids.get(event.id);
    if (id !== undefined) {
      ids.delete(event.id); // the same id again later in the group is a duplicate of this row
      stored.set(event.id, { eventId: event.id, id, body: job.bodies[i]! });
      return { id, duplicate: false, event };
    }
    const row = stored.get(event.id);
    if (!row) throw new Error(`outbox conflict on event ${event.id} but no row found`);
    return { id: row.id, duplicate: true, event: outboxRowToEvent(row) };
  });
}

/**
 * PostgreSQL text cannot hold NUL, so such an event would fail on the server, inside a statement
 * the whole group shares (the key locks): it is refused up front, alone.
 */
function unstorable(events: readonly GatewayEvent[]): InvalidInputError | undefined {
  const bad = events.find((event) => event.id.includes('\u0000') || event.key?.includes('\u0000'));
  return bad && new InvalidInputError(`event ${JSON.stringify(bad.id)}: id and key must not contain NUL characters`);
}
