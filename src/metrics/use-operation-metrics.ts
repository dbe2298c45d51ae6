import { getOperationAST, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Histogram } from 'prom-client';
import { OVER_WEBSOCKET } from '../schema/context.js';
import { SubscriberOverflowError } from '../subscriptions/subscription-hub.js';
import { isAsyncIterable } from '../util/async-iterable.js';

/** How a subscriber is connected: graphql-ws, an SSE response, or another streamed HTTP response (multipart). */
export type Transport = 'websocket' | 'sse' | 'http';

type OperationType = 'query' | 'mutation' | 'subscription';

export interface OperationMetricsOptions {
  /** Seconds per operation, labelled `operation_type`. */
  readonly durations: Histogram<'operation_type'>;
  /** How subscriptions are counted: the same instance the WebSocket server counts grouped ones with. */
  readonly subscriptions: SubscriptionTracking;
}

export interface SubscriptionTrackingOptions {
  /** Seconds from `subscribe` to the stream being set up, labelled `operation_type`. */
  readonly durations: Histogram<'operation_type'>;
  /** Live subscriptions per transport: counted up when they start and down when they end. */
  readonly live: Record<Transport, number>;
  /** Called once for each subscription that ended because its subscriber fell too far behind. */
  readonly onTooSlow: (transport: Transport) => void;
}

/**
 * Operation metrics, cheap per request (`@graphql-yoga/plugin-prometheus` would time every phase
 * with operation-name labels, more per request than a gateway whose hot path is one mutation wants):
 *
 * - the duration of each operation by type: queries and mutations from the start of execution to
 *   their result; subscriptions from `subscribe` to the stream being set up (authorized, joined to
 *   its group, the broker subscription live), not the stream's life, which is the client's to end;
 * - live subscriptions per transport;
 * - subscriptions ended by `SUBSCRIBER_TOO_SLOW`: the SSE queue's bound and the hub's bound both
 *   end the stream with `SubscriberOverflowError`, seen here once with the transport it ran on. (A
 *   WebSocket cut off by its socket's bound is closed with 1008 and counted by the WebSocket server.)
 */
export function useOperationMetrics(options: OperationMetricsOptions): Plugin {
  const { subscriptions } = options;
  const observers = observersOf(options.durations);

  return {
    onExecute({ args }) {
      const started = performance.now();
      const observer = observers[operationType(args.document, args.operationName)];
      return {
        onExecuteDone() {
          observer.observe(since(started));
        },
      };
    },
    onSubscribe({ context }) {
      const subscription = subscriptions.start(transportOf(context as Record<string | symbol, unknown>));
      return {
        onSubscribeResult({ result }) {
          const stream = isAsyncIterable(result);
          subscription.setUp(stream);
          return stream ? { onEnd: () => subscription.ended() } : undefined;
        },
        onSubscribeError({ error }) {
          subscription.ended(error);
        },
      };
    },
  };
}

/** One subscription, counted from its start (see `SubscriptionTracking`). */
export interface TrackedSubscription {
  /** Its stream is set up (`stream` true), or it was refused: observes the time since the start. */
  setUp(stream: boolean): void;
  /**
   * Its stream ended, cleanly or with `error`: the first call after a set-up counts it out of the
   * live ones; an error that says its subscriber fell behind is counted as too slow.
   */
  ended(error?: unknown): void;
}

/**
 * What the metrics count of a subscription, for a transport that serves it outside Yoga's
 * subscribe hooks (grouped `events` subscriptions over WebSocket) as for the plugin above.
 */
export interface SubscriptionTracking {
  start(transport: Transport): TrackedSubscription;
}

export function createSubscriptionTracking(options: SubscriptionTrackingOptions): SubscriptionTracking {
  const { live, onTooSlow } = options;
  const observer = observersOf(options.durations).subscription;
  return {
    start(transport) {
      const started = performance.now();
      let ended = true;
      return {
        setUp(stream) {
          observer.observe(since(started));
          if (!stream) return;
          ended = false;
          live[transport]++;
        },
        // A stream ends by completing, by being returned (the client left), or by throwing; whichever comes first counts.
        ended(error) {
          if (error instanceof SubscriberOverflowError) onTooSlow(transport);
          if (ended) return;
          ended = true;
          live[transport]--;
        },
      };
    },
  };
}

const since = (started: number) => (performance.now() - started) / 1000;

/** Children resolved once: an observation costs no label lookup. */
function observersOf(durations: Histogram<'operation_type'>) {
  return {
    query: durations.labels('query'),
    mutation: durations.labels('mutation'),
    subscription: durations.labels('subscription'),
  };
}

function operationType(document: DocumentNode, operationName: string | null | undefined): OperationType {
  return getOperationAST(document, operationName)?.operation ?? 'query';
}

function transportOf(context: Record<string | symbol, unknown>): Transport {
  if (context[OVER_WEBSOCKET]) return 'websocket';
  const request = context['request'] as Request | undefined;
  return request?.headers.get('accept')?.includes('text/event-stream') ? 'sse' : 'http';
}
