import type { Broker } from '../../src/brokers/broker.js';
import { waitFor } from '../helpers/events.js';

/**
 * A broker connection that tells when its fan-out subscription of a topic is live. A GraphQL
 * subscriber only sees events published after that (a Kafka fan-out starts at the log's end once
 * it joined), so a scenario waits for it before it publishes.
 */
export interface WatchedBroker {
  /** The connection to give a gateway: the target's own, every call passed through. */
  readonly broker: Broker;
  /** Resolves once `subscribe(topic)` resolved on this connection (a subscriber is attached). */
  live(topic: string, timeoutMs: number): Promise<void>;
}

export function watchSubscriptions(broker: Broker): WatchedBroker {
  const live = new Set<string>();
  // A Proxy (not a prototype copy) so that every method runs on the real object, private state included.
  const watched = new Proxy(broker, {
    get(target, property) {
      if (property === 'subscribe') {
        return async (...args: Parameters<Broker['subscribe']>) => {
          const subscription = await target.subscribe(...args);
          live.add(args[0]);
          return subscription;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    broker: watched,
    live: (topic, timeoutMs) => waitFor(() => live.has(topic), timeoutMs, `the fan-out subscription of ${topic}`).then(() => undefined),
  };
}
