import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { ConflictError, NotFoundError } from '../errors.js';
import { type OUTBOX_STATUSES, outboxCursor, outboxRowToEvent, type OutboxRow } from '../store/outbox-repository.js';
import { builder } from './builder.js';
import { EventRef } from './events.js';
import { parseId } from './ids.js';

const OutboxStatus = builder.enumType('OutboxStatus', {
  values: {
    PENDING: { description: 'Waiting for the relay, or for another attempt after a failed publish.' },
    PUBLISHED: { description: 'The broker confirmed it.' },
    FAILED: { description: 'The broker refused it for good; `retryOutboxEntry` puts it back.' },
  } satisfies Record<(typeof OUTBOX_STATUSES)[number], unknown>,
});

const OutboxEntry = builder.objectRef<OutboxRow>('OutboxEntry').implement({
  fields: (t) => ({
    id: t.id({ resolve: (row) => String(row.id) }),
    status: t.expose('status', { type: OutboxStatus }),
    attempts: t.exposeInt('attempts', { description: 'Failed publish attempts so far.' }),
    lastError: t.exposeString('lastError', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    publishedAt: t.expose('publishedAt', { type: 'DateTime', nullable: true }),
    nextAttemptAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a PENDING entry is next tried.',
      resolve: (row) => (row.status === 'PENDING' ? row.nextAttemptAt : null),
    }),
    event: t.field({ type: EventRef, resolve: outboxRowToEvent }),
  }),
});

builder.queryFields((t) => ({
  outbox: t.connection(
    {
      authScopes: { admin: true },
      type: OutboxEntry,
      description: 'Outbox entries, oldest first.',
      args: { status: t.arg({ type: OutboxStatus }) },
      resolve: (_, args, ctx) =>
        resolveCursorConnection({ args, toCursor: outboxCursor }, (page: ResolveCursorConnectionArgs) =>
          ctx.services.outbox.list({ status: args.status ?? undefined }, page),
        ),
    },
    { name: 'OutboxConnection' },
    { name: 'OutboxEdge' },
  ),
  outboxEntry: t.field({
    authScopes: { admin: true },
    type: OutboxEntry,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.outbox.get(parseId(id)),
  }),
}));

builder.mutationFields((t) => ({
  retryOutboxEntry: t.field({
    authScopes: { admin: true },
    type: OutboxEntry,
    description: 'Puts a FAILED entry back to PENDING so the relay tries it again now.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_, { id }, ctx) => {
      const rowId = parseId(id);
      const row = await ctx.services.outbox.retry(rowId);
      if (row) return row;
      const existing = await ctx.services.outbox.get(rowId);
      if (!existing) throw new NotFoundError(`outbox entry ${id} does not exist`);
      throw new ConflictError(`outbox entry ${id} is ${existing.status}; only FAILED entries can be retried`);
    },
  }),
}));
