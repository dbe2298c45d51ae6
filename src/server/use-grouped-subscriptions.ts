import type { ExecutionArgs, ExecutionResult, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { UnauthenticatedError } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import type { GatewayContext } from '../schema/context.js';
import { createSubscriberQueue, type SubscriberBounds } from '../subscriptions/subscription-hub.js';
import { SubscriptionGroups, type GroupRequest, type Member } from '../subscriptions/subscription-groups.js';
import { BoundedQueue } from '../util/bounded-queue.js';
import type { TrackedSubscription } from '../metrics/use-operation-metrics.js';
import type { SocketWriter } from './socket-writer.js';
import { sseFrames, sseItem, sseItemSize, type SseItem } from './sse.js';

/** A grouped subscription that arrived over WebSocket: where its frames go. */
export interface WsOperation {
  readonly id: string;
  readonly writer: SocketWriter;
}

export interface GroupedSubscriptionsOptions {
  readonly groups: SubscriptionGroups;
  /** Per-subscriber bounds for SSE, whose frames wait in the response stream's queue. */
  readonly bounds: SubscriberBounds;
}

type Context = GatewayContext & { params?: { query?: string }; request?: Request };

/**
 * Serves `events` subscriptions over HTTP from their groups (`SubscriptionGroups`): over SSE the
 * response streams the group's payload text with the event's cursor as the SSE `id:` (`sse.ts`),
 * and a reconnect with `Last-Event-ID` resumes after it. Any other operation is left to Yoga.
 * (The WebSocket server serves grouped subscriptions itself, with `subscribeOverWebSocket`.)
 */
export function useGroupedSubscriptions(options: GroupedSubscriptionsOptions): Plugin<Context> {
  const { groups } = options;
  /** SSE requests answered with a group's stream (Yoga wraps the stream, so it is the request that is marked). */
  const grouped = new WeakSet<Request>();
  return {
    onSubscribe({ args, setSubscribeFn }) {
      if (!SubscriptionGroups.handles(args.document, args.operationName)) return;
      setSubscribeFn(async (subscribeArgs: ExecutionArgs) => {
        const context = subscribeArgs.contextValue as Context;
        const request: GroupRequest = {
          document: subscribeArgs.document,
          query: context.params?.query ?? '',
          operationName: subscribeArgs.operationName,
          variables: subscribeArgs.variableValues as Record<string, unknown> | undefined,
          schema: subscribeArgs.schema,
          contextValue: context as unknown as Record<string, unknown>,
          resumeAfter: context.request?.headers.get('last-event-id') || undefined,
        };
        const result = await joinOverSse(groups, request, options.bounds, context.principal);
        if (context.request && !('errors' in result)) grouped.add(context.request);
        return result;
      });
    },
    onResultProcess({ result, request, setResultProcessor, acceptableMediaTypes }) {
      if (!acceptableMediaTypes.includes('text/event-stream') || !request.headers.get('accept')?.includes('text/event-stream')) return;
      if (grouped.has(request)) {
        setResultProcessor((stream, fetchAPI) => sseFrames(stream as unknown as AsyncIterator<SseItem>, fetchAPI), 'text/event-stream');
        return;
      }
      // A subscription refused before it started answers with the HTTP status of its reason: a
      // client without credentials gets 401 as one with wrong credentials does, not a 500.
      const errors = (result as { errors?: readonly GraphQLError[] }).errors;
      const status = errors?.length ? statusFor(errors) : undefined;
      if (status) for (const error of errors!) ((error.extensions as Record<string, unknown>)['http'] as unknown) ??= { status };
    },
  };
}

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  CURSOR_EXPIRED: 410,
};

function statusFor(errors: readonly GraphQLError[]): number | undefined {
  for (const error of errors) {
    const status = STATUS_BY_CODE[String(error.extensions?.['code'])];
    if (status) return status;
  }
  return undefined;
}

export interface WebSocketSubscriptionOptions {
  readonly groups: SubscriptionGroups;
  /** How an error reaches the client: masked as Yoga masks it (`maskForClient`). */
  readonly mask: (error: GraphQLError) => GraphQLError;
  /** Counted in the metrics, as Yoga's subscribe hooks count other subscriptions. */
  readonly tracked?: TrackedSubscription | undefined;
}

/**
 * Joins a grouped subscription that arrived over WebSocket. The group writes each member's `next`
 * frame to the socket (built from the group's payload and the member's operation id, by
 * concatenation); graphql-ws only iterates what this returns, which yields nothing and ends when
 * the member does (the client completes, the socket closes, the member failed or completed), or
 * gets the refusal as a result, which graphql-ws sends as `next` and `complete`, as for any
 * subscription whose subscribe failed. It runs outside Yoga's subscribe hooks, whose iterator
 * wrappers cost kilobytes per subscription: what they do is done here (masking, metrics), and
 * nothing of the operation's context is kept once joined.
 */
export async function subscribeOverWebSocket(
  request: GroupRequest,
  ws: WsOperation,
  options: WebSocketSubscriptionOptions,
): Promise<AsyncIterable<never> | ExecutionResult> {
  const { mask, tracked } = options;
  const prefix = `{"id":${JSON.stringify(ws.id)},"type":"next","payload":`;
  let member: Member | undefined;
  const ending = new BoundedQueue<never>({
    items: 0,
    onEnd: () => {
      member?.leave();
      tracked?.ended();
    },
  });
  const joined = await options.groups.join(request, {
    next: (payload) => ws.writer.send(`${prefix}${payload}}`),
    fail: ([error]) => {
      tracked?.ended(error);
      ending.fail(mask(error!));
    },
    complete: () => ending.end(),
  });
  if (!isMember(joined)) {
    tracked?.setUp(false);
    return { errors: joined.map(mask) };
  }
  tracked?.setUp(true);
  member = joined;
  // Ended while joining (catching up after a cursor), before there was a member to leave.
  if (ending.ended) {
    member.leave();
    tracked?.ended();
  }
  return ending;
}

/**
 * A bounded queue between the group and the SSE response: the response stream pulls, the group
 * pushes. Past the bounds the stream ends with `SUBSCRIBER_TOO_SLOW`; when the subscriber's
 * credential expires it ends with `UNAUTHENTICATED`; when the gateway shuts down, once what is
 * queued has been read.
 */
async function joinOverSse(groups: SubscriptionGroups, request: GroupRequest, bounds: SubscriberBounds, principal: Principal) {
  let member: Member | undefined;
  let expiry: NodeJS.Timeout | undefined;
  const queue = createSubscriberQueue<SseItem>(bounds, sseItemSize, () => {
    clearTimeout(expiry);
    member?.leave();
  });
  const joined = await groups.join(request, {
    next: (payload, cursor) => {
      if (!queue.ended) queue.push(sseItem(payload, cursor));
    },
    // The stream throws it once: Yoga turns it into a last result and reads on, and then it is done.
    fail: (errors) => queue.fail(errors[0]!),
    complete: () => queue.end(),
  });
  if (!isMember(joined)) return { errors: joined };
  member = joined;
  // Cut off while joining (catching up after a cursor), before there was a member to leave.
  if (queue.ended) member.leave();
  else if (principal.expiresAt !== undefined) {
    expiry = setTimeout(() => queue.fail(new UnauthenticatedError('token expired')), Math.max(0, principal.expiresAt - Date.now()));
    expiry.unref();
  }
  return queue;
}

function isMember(joined: Member | readonly GraphQLError[]): joined is Member {
  return !Array.isArray(joined);
}
