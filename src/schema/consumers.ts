import { resolveCursorConnection, type ResolveCursorConnectionArgs } from '@pothos/plugin-relay';
import type { ConsumerStatus } from '../consumers/consumer-manager.js';
import { processedMessageCursor, type ProcessedMessageRow } from '../store/processed-message-repository.js';
import { builder } from './builder.js';

const ConsumerStatusRef = builder.objectRef<ConsumerStatus>('ConsumerStatus').implement({
  description: 'A durable consumer this gateway runs.',
  fields: (t) => ({
    name: t.exposeString('name'),
    topic: t.exposeString('topic'),
    types: t.exposeStringList('types', { description: 'Event types it handles; empty means all.' }),
    handler: t.exposeString('handler', { description: '`webhook <url>` or `function`.' }),
    maxAttempts: t.exposeInt('maxAttempts'),
    running: t.exposeBoolean('running'),
    processed: t.exposeInt('processed', { description: 'Events handled successfully (all processes).' }),
    retrying: t.exposeInt('retrying', { description: 'Events waiting for another attempt in this process.' }),
    deadLettered: t.exposeInt('deadLettered', { description: 'Dead letters in status DEAD.' }),
    lag: t.exposeInt('lag', { nullable: true, description: 'Messages waiting at the broker, where it can tell.' }),
  }),
});

const ProcessedMessage = builder.objectRef<ProcessedMessageRow>('ProcessedMessage').implement({
  fields: (t) => ({
    consumer: t.exposeString('consumer'),
    eventId: t.exposeID('eventId'),
    processedAt: t.expose('processedAt', { type: 'DateTime' }),
  }),
});

builder.queryFields((t) => ({
  consumers: t.field({
    authScopes: { admin: true },
    type: [ConsumerStatusRef],
    resolve: (_, __, ctx) => ctx.services.consumers.statuses(),
  }),
  processedMessages: t.connection(
    {
      authScopes: { admin: true },
      type: ProcessedMessage,
      description: 'Events a consumer handled, newest first.',
      args: { consumer: t.arg.string({ required: true }) },
      resolve: (_, args, ctx) =>
        resolveCursorConnection({ args, toCursor: processedMessageCursor }, (page: ResolveCursorConnectionArgs) =>
          ctx.services.processed.list(args.consumer, page),
        ),
    },
    { name: 'ProcessedMessageConnection' },
    { name: 'ProcessedMessageEdge' },
  ),
  processedMessage: t.field({
    authScopes: { admin: true },
    type: ProcessedMessage,
    nullable: true,
    args: { consumer: t.arg.string({ required: true }), eventId: t.arg.id({ required: true }) },
    resolve: (_, { consumer, eventId }, ctx) => ctx.services.processed.get(consumer, String(eventId)),
  }),
}));
