import { and, count, desc, eq, gt, lt, or, sql, type SQL } from 'drizzle-orm';
import { InvalidInputError } from '../errors.js';
import { guard, type Store } from './database.js';
import { PRUNE_BATCH_SIZE } from './prune.js';
import { decodeCursor, encodeCursor, type PageRequest } from './pagination.js';
import { processedMessages } from './tables.js';

export type ProcessedMessageRow = typeof processedMessages.$inferSelect;

export interface ProcessedMessageRepository {
  has(consumer: string, eventId: string): boolean;
  /** Records a success. Returns false when the event was already recorded for this consumer. */
  record(consumer: string, eventId: string, now?: number): boolean;
  get(consumer: string, eventId: string): ProcessedMessageRow | undefined;
  /** Newest first. */
  list(consumer: string, page: PageRequest): ProcessedMessageRow[];
  countByConsumer(): Map<string, number>;
  /**
   * Forgets up to `batchSize` successes older than `before` and returns how many; a redelivery
   * of such an event is handled again.
   */
  prune(before: number, batchSize?: number): number;
}

export const processedMessageCursor = (row: ProcessedMessageRow) =>
  encodeCursor('processed', `${row.processedAt.getTime()}:${row.eventId}`);

function parseCursor(cursor: string | undefined): { at: number; eventId: string } | undefined {
  const value = decodeCursor('processed', cursor);
  if (value === undefined) return undefined;
  const colon = value.indexOf(':');
  const at = Number(value.slice(0, colon));
  if (colon < 0 || !Number.isSafeInteger(at)) throw new InvalidInputError(`invalid cursor "${cursor}"`);
  return { at, eventId: value.slice(colon + 1) };
}

export function createProcessedMessageRepository(store: Store): ProcessedMessageRepository {
  const { db } = store;
  const byKey = (consumer: string, eventId: string) =>
    and(eq(processedMessages.consumer, consumer), eq(processedMessages.eventId, eventId));

  return {
    has(consumer, eventId) {
      return guard('read processed messages', () =>
        Boolean(db.select({ one: sql`1` }).from(processedMessages).where(byKey(consumer, eventId)).get()),
      );
    },

    record(consumer, eventId, now = Date.now()) {
      const result = store.transaction(() =>
        db
          .insert(processedMessages)
          .values({ consumer, eventId, processedAt: new Date(now) })
          .onConflictDoNothing()
          .run(),
        // No fsync per delivery: an OS crash may forget the newest records, and a redelivery of
        // those events then runs the handler again, as at-least-once delivery allows anyway.
        { relaxed: true },
      );
      return result.changes > 0;
    },

    get(consumer, eventId) {
      return guard('read processed messages', () =>
        db.select().from(processedMessages).where(byKey(consumer, eventId)).get(),
      );
    },

    list(consumer, page) {
      const after = parseCursor(page.after);
      const before = parseCursor(page.before);
      const where: (SQL | undefined)[] = [eq(processedMessages.consumer, consumer)];
      const at = processedMessages.processedAt;
      const id = processedMessages.eventId;
      // Order is (processedAt desc, eventId desc); "after" a cursor means older.
      if (after) {
        const t = new Date(after.at);
        where.push(or(lt(at, t), and(eq(at, t), lt(id, after.eventId))));
      }
      if (before) {
        const t = new Date(before.at);
        where.push(or(gt(at, t), and(eq(at, t), gt(id, before.eventId))));
      }
      return guard('read processed messages', () =>
        db
          .select()
          .from(processedMessages)
          .where(and(...where))
          .orderBy(...(page.inverted ? [at, id] : [desc(at), desc(id)]))
          .limit(page.limit)
          .all(),
      );
    },

    countByConsumer() {
      const rows = guard('read processed messages', () =>
        db
          .select({ consumer: processedMessages.consumer, n: count() })
          .from(processedMessages)
          .groupBy(processedMessages.consumer)
          .all(),
      );
      return new Map(rows.map((r) => [r.consumer, r.n]));
    },

    prune(before, batchSize = PRUNE_BATCH_SIZE) {
      const result = store.transaction(() =>
        db.run(sql`delete from ${processedMessages} where rowid in (
          select rowid from ${processedMessages} where ${processedMessages.processedAt} < ${before} limit ${batchSize})`),
      );
      return result.changes;
    },
  };
}
