import type { ExecutionArgs, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { UnauthenticatedError } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import type { GatewayContext } from '../schema/context.js';
import { SubscriberOverflowError } from '../subscriptions/subscription-hub.js';
import { SubscriptionGroups, type GroupRequest, type Member } from '../subscriptions/subscription-groups.js';
import type { SocketWriter } from './socket-writer.js';
import { sseFrames, sseItem, type SseItem } from './sse.js';

/** Put in the context of an operation that arrived over WebSocket: where its frames go. */
export const WS_OPERATION = Symbol('graphql-ws operation');

export interface WsOperation {
  readonly id: string;
  readonly writer: SocketWriter;
}

export interface GroupedSubscriptionsOptions {
  readonly groups: SubscriptionGroups;
  /** Per-subscriber bounds for SSE, whose frames wait in the response stream's queue. */
  readonly bounds: { readonly events: number; readonly bytes: number };
}

type Context = GatewayContext & { [WS_OPERATION]?: WsOperation; params?: { query?: string }; request?: Request };

/**
 * Serves `events` subscriptions from their groups (`SubscriptionGroups`) on both transports:
 * over WebSocket the group writes each member's `next` frame to its socket (the frame built from
 * the group's payload and the member's operation id, by concatenation), and graphql-ws only sees
 * an iterator that ends when the member does; over SSE the response streams the group's payload
 * text with the event's cursor as the SSE `id:` (`sse.ts`), and a reconnect with
 * `Last-Event-ID` resumes after it. Any other operation is left to Yoga.
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
        const ws = context[WS_OPERATION];
        if (ws) return joinOverWebSocket(groups, request, ws);
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

/** Waits for the member to end; graphql-ws sends `complete` then, or `error` if it failed. */
async function joinOverWebSocket(groups: SubscriptionGroups, request: GroupRequest, ws: WsOperation) {
  const prefix = `{"id":${JSON.stringify(ws.id)},"type":"next","payload":`;
  let end: ((outcome: { errors?: readonly GraphQLError[] }) => void) | undefined;
  const ended = new Promise<{ errors?: readonly GraphQLError[] }>((resolve) => (end = resolve));
  const joined = await groups.join(request, {
    next: (payload) => ws.writer.send(`${prefix}${payload}}`),
    fail: (errors) => end!({ errors }),
    complete: () => end!({}),
  });
  if (!isMember(joined)) return { errors: joined };
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    joined.leave();
    end!({});
  };
  // What graphql-ws iterates: nothing, until the member ends (the client completes, the socket
  // closes, or the member failed).
  const iterator: AsyncIterableIterator<never> & { return(): Promise<IteratorResult<never>>; throw(e: unknown): Promise<IteratorResult<never>> } = {
    next: async () => {
      const outcome = await ended;
      finish();
      if (outcome.errors) throw outcome.errors[0];
      return { done: true, value: undefined as never };
    },
    return: async () => {
      finish();
      return { done: true, value: undefined as never };
    },
    throw: async (error: unknown) => {
      finish();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return iterator;
}

/**
 * A bounded queue between the group and the SSE response: the response stream pulls, the group
 * pushes. Past the bounds the stream ends with `SUBSCRIBER_TOO_SLOW`; when the subscriber's
 * credential expires it ends with `UNAUTHENTICATED`.
 */
async function joinOverSse(groups: SubscriptionGroups, request: GroupRequest, bounds: GroupedSubscriptionsOptions['bounds'], principal: Principal) {
  const queue: { item: SseItem; bytes: number }[] = [];
  let queuedBytes = 0;
  let waiting: (() => void) | undefined;
  let failure: Error | undefined;
  let done = false;
  /** The gateway is shutting down: the stream ends once what is queued has been read. */
  let completed = false;
  const wake = () => {
    const resume = waiting;
    waiting = undefined;
    resume?.();
  };
  const fail = (error: Error) => {
    if (done) return;
    failure ??= error;
    wake();
  };
  const joined = await groups.join(request, {
    next: (payload, cursor) => {
      if (done || failure) return;
      if (queue.length >= bounds.events || queuedBytes + payload.length > bounds.bytes) {
        queue.length = 0;
        queuedBytes = 0;
        fail(new SubscriberOverflowError(`subscriber too slow: more than ${bounds.events} events or ${bounds.bytes} bytes waiting for it`));
        return;
      }
      queue.push({ item: sseItem(payload, cursor), bytes: payload.length });
      queuedBytes += payload.length;
      wake();
    },
    fail: (errors) => fail(errors[0]!),
    complete: () => {
      completed = true;
      wake();
    },
  });
  if (!isMember(joined)) return { errors: joined };
  const member: Member = joined;
  let expiry: NodeJS.Timeout | undefined;
  if (principal.expiresAt !== undefined) {
    expiry = setTimeout(() => fail(new UnauthenticatedError('token expired')), Math.max(0, principal.expiresAt - Date.now()));
    expiry.unref();
  }
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(expiry);
    member.leave();
    wake();
  };
  const stream = {
    async next(): Promise<IteratorResult<SseItem>> {
      for (;;) {
        const next = queue.shift();
        if (next) {
          queuedBytes -= next.bytes;
          return { done: false, value: next.item };
        }
        if (failure) {
          // Thrown once: Yoga turns it into a last result and reads on, and then the stream is done.
          const error = failure;
          failure = undefined;
          finish();
          throw error;
        }
        if (completed) finish();
        if (done) return { done: true, value: undefined };
        await new Promise<void>((resolve) => (waiting = resolve));
      }
    },
    async return() {
      finish();
      return { done: true as const, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return stream;
}

function isMember(joined: Member | readonly GraphQLError[]): joined is Member {
  return !Array.isArray(joined);
}
