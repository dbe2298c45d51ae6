import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import { type DEAD_LETTER_STATUSES, deadLetterCursor, deadLetterEvent, type DeadLetterRow } from '../store/dead-letter-repository.js';
import { builder } from './builder.js';
import { EventRef } from './events.js';
import { parseId } from './ids.js';

const DeadLetterStatus = builder.enumType('DeadLetterStatus', {
  values: {
    DEAD: { description: 'The consumer gave up on it; waiting for an operator.' },
    REPLAYED: { description: 'Sent back to its consumer; returns to DEAD if it fails again.' },
    DISCARDED: { description: 'An operator decided nobody will handle it.' },
  } satisfies Record<(typeof DEAD_LETTER_STATUSES)[number], unknown>,
});

export const DeadLetterRef = builder.objectRef<DeadLetterRow>('DeadLetter').implement({
  fields: (t) => ({
    id: t.id({ resolve: (row) => String(row.id) }),
    consumer: t.exposeString('consumer'),
    topic: t.exposeString('topic'),
    event: t.field({ type: EventRef, resolve: deadLetterEvent }),
    error: t.exposeString('error', { description: 'The last failure.' }),
    attempts: t.exposeInt('attempts', { description: 'Handler attempts, added up over replays.' }),
    status: t.expose('status', { type: DeadLetterStatus }),
    firstFailedAt: t.expose('firstFailedAt', { type: 'DateTime' }),
    lastFailedAt: t.expose('lastFailedAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  deadLetters: t.connection(
    {
      authScopes: { admin: true },
      type: DeadLetterRef,
      description: 'Dead letters, newest first.',
      args: {
        consumer: t.arg.string(),
        topic: t.arg.string(),
        status: t.arg({ type: DeadLetterStatus }),
      },
      resolve: (_, args, ctx) =>
        resolveCursorConnection({ args, toCursor: deadLetterCursor }, (page: ResolveCursorConnectionArgs) =>
          ctx.services.deadLetters.list({ consumer: args.consumer ?? undefined, topic: args.topic ?? undefined, status: args.status ?? undefined }, page),
        ),
    },
    { name: 'DeadLetterConnection' },
    { name: 'DeadLetterEdge' },
  ),
  deadLetter: t.field({
    authScopes: { admin: true },
    type: DeadLetterRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.deadLetters.get(parseId(id)),
  }),
}));

builder.mutationFields((t) => ({
  replayDeadLetter: t.field({
    authScopes: { admin: true },
    type: DeadLetterRef,
    description: 'Sends a DEAD letter back to its own consumer (never to other consumers) as a first attempt.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.consumers.replay(parseId(id)),
  }),
  discardDeadLetter: t.field({
    authScopes: { admin: true },
    type: DeadLetterRef,
    description: 'Marks a DEAD letter as DISCARDED.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_, { id }, ctx) => ctx.services.consumers.discard(parseId(id)),
  }),
}));

builder.subscriptionFields((t) => ({
  deadLettered: t.field({
    authScopes: { admin: true },
    type: DeadLetterRef,
    description: 'Each new dead letter in this gateway process, optionally of one consumer.',
    args: { consumer: t.arg.string() },
    subscribe: (_, { consumer }, ctx) => ctx.services.deadLetterBus.subscribe((row) => !consumer || row.consumer === consumer),
    resolve: (row) => row,
  }),
}));
