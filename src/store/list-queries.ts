import { and, asc, desc, eq, gt, lt, or, type AnyColumn, type SQL } from 'drizzle-orm';
import type { DeadLetterFilter } from './dead-letter-repository.js';
import type { OutboxStatus } from './outbox-repository.js';
import { decodeNumericCursor, type PageRequest } from './pagination.js';
import { parseProcessedCursor } from './processed-message-repository.js';

/**
 * The filter and order of each paged list, written once for both dialects: drizzle's conditions
 * are the same on SQLite and PostgreSQL tables, only the tables (and how a query is run) differ.
 * Each returns what goes into `.where(…)` and `.orderBy(…)`; the repository adds `.limit`.
 */
export interface ListQuery {
  readonly where: SQL | undefined;
  readonly orderBy: SQL[];
}

/** Outbox rows, oldest first (by id); "after" a cursor means newer. */
export function outboxList(columns: { id: AnyColumn; status: AnyColumn }, filter: { status?: OutboxStatus | undefined }, page: PageRequest): ListQuery {
  const after = decodeNumericCursor('outbox', page.after);
  const before = decodeNumericCursor('outbox', page.before);
  const where: SQL[] = [];
  if (filter.status) where.push(eq(columns.status, filter.status));
  if (after !== undefined) where.push(gt(columns.id, after));
  if (before !== undefined) where.push(lt(columns.id, before));
  return { where: and(...where), orderBy: [page.inverted ? desc(columns.id) : asc(columns.id)] };
}

/** Dead letters, newest first (by id); "after" a cursor means older. */
export function deadLetterList(
  columns: { id: AnyColumn; consumer: AnyColumn; topic: AnyColumn; status: AnyColumn },
  filter: DeadLetterFilter,
  page: PageRequest,
): ListQuery {
  const after = decodeNumericCursor('dead-letter', page.after);
  const before = decodeNumericCursor('dead-letter', page.before);
  const where: SQL[] = [];
  if (filter.consumer !== undefined) where.push(eq(columns.consumer, filter.consumer));
  if (filter.topic !== undefined) where.push(eq(columns.topic, filter.topic));
  if (filter.status !== undefined) where.push(eq(columns.status, filter.status));
  if (after !== undefined) where.push(lt(columns.id, after));
  if (before !== undefined) where.push(gt(columns.id, before));
  return { where: and(...where), orderBy: [page.inverted ? asc(columns.id) : desc(columns.id)] };
}

/** One consumer's processed records, newest first by (processedAt, eventId); "after" means older. */
export function processedList(columns: { consumer: AnyColumn; processedAt: AnyColumn; eventId: AnyColumn }, consumer: string, page: PageRequest): ListQuery {
  const after = parseProcessedCursor(page.after);
  const before = parseProcessedCursor(page.before);
  const { processedAt: at, eventId: id } = columns;
  const where: (SQL | undefined)[] = [eq(columns.consumer, consumer)];
  if (after) {
    const t = new Date(after.at);
    where.push(or(lt(at, t), and(eq(at, t), lt(id, after.eventId))));
  }
  if (before) {
    const t = new Date(before.at);
    where.push(or(gt(at, t), and(eq(at, t), gt(id, before.eventId))));
  }
  return { where: and(...where), orderBy: page.inverted ? [asc(at), asc(id)] : [desc(at), desc(id)] };
}
