import {
  createSourceEventStream,
  execute,
  getOperationAST,
  GraphQLError,
  Kind,
  print,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
} from 'graphql';
import { ShuttingDownError } from '../errors.js';
import { isAsyncIterable } from '../util/async-iterable.js';
import type { Logger } from '../util/logger.js';
import type { Attachment, DeliveredEvent, SubscriptionHub } from './subscription-hub.js';

/** The subscription field whose subscribers are grouped, and its arguments. */
const FIELD = 'events';

/** Where a member's payloads go: a socket's frames, an SSE response's events. */
export interface MemberSink {
  /**
   * One result, as the JSON text of `{ data, errors? }`, shared by every member of the group;
   * `cursor` is the event's (null where the broker keeps no positions).
   */
  next(payload: string, cursor: string | null): void;
  /** The subscription ended with an error after it started (the cursor cannot be served, …). */
  fail(errors: readonly GraphQLError[]): void;
  /** The subscription ended cleanly from this side: the gateway is shutting down. */
  complete(): void;
}

export interface GroupRequest {
  /** Parsed and validated (limits included) by the transport, as for any operation. */
  readonly document: DocumentNode;
  readonly query: string;
  readonly operationName?: string | null | undefined;
  readonly variables?: Readonly<Record<string, unknown>> | null | undefined;
  readonly schema: ExecutionArgs['schema'];
  /** The subscriber's own context: authorization is decided with it, per subscriber. */
  readonly contextValue: Record<string, unknown>;
  /** A resume cursor from the transport (SSE's `Last-Event-ID`), used when the operation has no `after`. */
  readonly resumeAfter?: string | null | undefined;
}

/** A subscriber in a group; `leave` ends it (idempotent). */
export interface Member {
  leave(): void;
}

/** The context flag that makes the `events` resolver only authorize (no broker subscription). */
export const AUTHORIZE_ONLY = Symbol('authorize only');

interface Group {
  readonly key: string;
  readonly topic: string;
  readonly members: Set<LiveMember>;
  /** Members that are not live yet (joining, or catching up after a cursor). */
  pending: number;
  attachment: Promise<Attachment> | undefined;
  readonly execute: (delivered: DeliveredEvent) => string;
}

interface LiveMember {
  readonly sink: MemberSink;
}

/**
 * "Execute once, send many" for `events` subscriptions: subscribers whose operation would produce
 * the same result for an event — same document (the `after` argument aside), operation name and
 * variables — form a group. Per event the group executes the selection once and serialises it
 * once; each member's transport wraps that text in its own frame. Nothing a member's context holds
 * is read by that execution (the `Event` fields read only the event), so sharing it is exact.
 *
 * Authorization stays per subscriber: a member joins only after the field's own checks (scopes,
 * argument validation) passed with its own context, exactly as its own execution would have run
 * them; when its credential expires the transport ends it. A member resuming after a cursor
 * receives the events after it through its own hub attachment, executed for it alone, and joins
 * the group's broadcast the moment it has caught up (see `SubscriptionHub`).
 */
export class SubscriptionGroups {
  private readonly groups = new Map<string, Group>();
  /** The sinks of every member that has not left, live or catching up: `close` completes them. */
  private readonly sinks = new Set<MemberSink>();
  private closed = false;
  /** Executions of a selection for an event, and payloads handed to members, since start. */
  readonly totals = { executions: 0, deliveries: 0 };

  constructor(
    private readonly hub: SubscriptionHub,
    private readonly logger: Logger,
  ) {}

  /** True for an operation this class serves: a subscription selecting only `events`. */
  static handles(document: DocumentNode, operationName?: string | null): boolean {
    const operation = getOperationAST(document, operationName);
    if (operation?.operation !== 'subscription') return false;
    const fields = operation.selectionSet.selections;
    const [field] = fields;
    return fields.length === 1 && field?.kind === Kind.FIELD && field.name.value === FIELD;
  }

  /**
   * Authorizes the request with its own context, then joins (or starts) its group. Resolves with
   * the member once events flow to it, or with the errors the subscription was refused with.
   */
  async join(request: GroupRequest, sink: MemberSink): Promise<Member | readonly GraphQLError[]> {
    if (this.closed) return [shuttingDown()];
    const refused = await this.authorize(request);
    if (refused) return refused;
    if (this.closed) return [shuttingDown()];
    const { key, after, topic, types } = this.describe(request);
    const group = this.groupOf(key, request, topic, types);
    group.pending++;
    let member: LiveMember | undefined;
    let own: Attachment | undefined;
    let left = false;
    const goLive = () => {
      if (left) return;
      member = { sink };
      group.members.add(member);
      group.pending--;
    };
    try {
      await group.attachment;
      if (after) {
        own = await this.hub.attach(
          topic,
          (delivered) => {
            this.totals.deliveries++;
            sink.next(group.execute(delivered), delivered.cursor);
          },
          {
            types,
            after,
            onCaughtUp: goLive,
          },
        );
      } else {
        goLive();
      }
    } catch (error) {
      if (!member) group.pending--;
      this.releaseIfEmpty(group);
      return [asGraphQLError(error)];
    }
    this.sinks.add(sink);
    return {
      leave: () => {
        if (left) return;
        left = true;
        this.sinks.delete(sink);
        own?.close();
        if (member) group.members.delete(member);
        else group.pending--;
        this.releaseIfEmpty(group);
      },
    };
  }

  /**
   * Completes every member (each transport ends its subscription cleanly: graphql-ws `complete`,
   * the end of the SSE response) and refuses new ones. Called when the gateway shuts down, before
   * the hub closes the broker subscriptions.
   */
  close(): void {
    this.closed = true;
    for (const sink of [...this.sinks]) sink.complete();
  }

  /** Per topic: its groups, and its subscribers (live, or joining and catching up). */
  stats(): { topic: string; groups: number; subscribers: number }[] {
    const byTopic = new Map<string, { topic: string; groups: number; subscribers: number }>();
    for (const group of this.groups.values()) {
      const entry = byTopic.get(group.topic) ?? { topic: group.topic, groups: 0, subscribers: 0 };
      entry.groups++;
      entry.subscribers += group.members.size + group.pending;
      byTopic.set(group.topic, entry);
    }
    return [...byTopic.values()];
  }

  /** Runs the field's subscribe (scopes, argument validation) with the subscriber's own context, opening nothing. */
  private async authorize(request: GroupRequest): Promise<readonly GraphQLError[] | undefined> {
    const result = await createSourceEventStream({
      schema: request.schema,
      document: request.document,
      operationName: request.operationName,
      variableValues: request.variables,
      contextValue: Object.assign(Object.create(request.contextValue) as object, { [AUTHORIZE_ONLY]: true }),
    });
    if (isAsyncIterable(result)) return undefined;
    return (result as ExecutionResult).errors ?? [new GraphQLError('the subscription could not be set up')];
  }

  /** The group key (the operation without its `after`), and the field's topic, types and cursor. */
  private describe(request: GroupRequest): { key: string; after: string | undefined; topic: string; types: readonly string[] | undefined } {
    const operation = getOperationAST(request.document, request.operationName)!;
    const field = operation.selectionSet.selections[0] as FieldNode;
    const variables = { ...request.variables };
    const argument = (name: string): unknown => {
      const node = field.arguments?.find((a) => a.name.value === name)?.value;
      if (!node) return undefined;
      if (node.kind === Kind.VARIABLE) return variables[node.name.value];
      if (node.kind === Kind.STRING) return node.value;
      if (node.kind === Kind.LIST)
        return node.values.map((v) => (v.kind === Kind.STRING ? v.value : v.kind === Kind.VARIABLE ? variables[v.name.value] : undefined));
      return undefined;
    };
    const topic = argument('topic') as string;
    const types = argument('types') as readonly string[] | undefined;
    const afterNode = field.arguments?.find((a) => a.name.value === 'after')?.value;
    const after = (argument('after') as string | null | undefined) ?? request.resumeAfter ?? undefined;
    let text = request.query;
    if (afterNode?.kind === Kind.VARIABLE) delete variables[afterNode.name.value];
    else if (afterNode) text = print(withoutAfter(request.document));
    return { key: `${request.operationName ?? ''}\u0000${text}\u0000${stableJson(variables)}`, after, topic, types };
  }

  private groupOf(key: string, request: GroupRequest, topic: string, types: readonly string[] | undefined): Group {
    const existing = this.groups.get(key);
    if (existing) return existing;
    const args: ExecutionArgs = {
      schema: request.schema,
      document: request.document,
      operationName: request.operationName,
      variableValues: request.variables,
      // Read by nothing below the subscription field; kept for resolvers that log.
      contextValue: request.contextValue,
    };
    const group: Group = {
      key,
      topic,
      members: new Set(),
      pending: 0,
      attachment: undefined,
      execute: (delivered) => {
        this.totals.executions++;
        return executeOnce(args, delivered, this.logger);
      },
    };
    group.attachment = this.hub.attach(
      topic,
      (delivered) => {
        if (group.members.size === 0) return;
        const payload = group.execute(delivered);
        this.totals.deliveries += group.members.size;
        for (const member of group.members) member.sink.next(payload, delivered.cursor);
      },
      { types },
    );
    group.attachment.catch(() => undefined);
    this.groups.set(key, group);
    return group;
  }

  private releaseIfEmpty(group: Group): void {
    if (group.members.size > 0 || group.pending > 0 || this.groups.get(group.key) !== group) return;
    this.groups.delete(group.key);
    void group.attachment?.then(
      (attachment) => attachment.close(),
      () => undefined,
    );
  }
}

/**
 * Runs the selection for one event and serialises the result. The `Event` fields resolve
 * synchronously, so so does this: members get events in the order they came.
 */
function executeOnce(args: ExecutionArgs, delivered: DeliveredEvent, logger: Logger): string {
  const result = execute({ ...args, rootValue: delivered });
  if (result instanceof Promise) {
    // Only a resolver made asynchronous would get here; say so rather than reorder events.
    logger.error({ eventId: delivered.event.id }, 'an events subscription resolved asynchronously; the event is sent as an error');
    return JSON.stringify({ errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  }
  return JSON.stringify(result);
}

function shuttingDown(): GraphQLError {
  return asGraphQLError(new ShuttingDownError('the gateway is shutting down'));
}

function withoutAfter(document: DocumentNode): DocumentNode {
  return visit(document, {
    Argument(node) {
      return node.name.value === 'after' ? null : undefined;
    },
  });
}

/** JSON with object keys sorted, so that `{a, b}` and `{b, a}` make one group. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function asGraphQLError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  const coded = error as { message?: string; code?: string; expose?: boolean };
  return new GraphQLError(coded.message ?? String(error), {
    originalError: error instanceof Error ? error : undefined,
    extensions: coded.code ? { code: coded.code } : undefined,
  });
}
