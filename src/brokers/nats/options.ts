import type { BrokerSettings } from '../../config/config.js';
import type { BackoffPolicy } from '../../util/backoff.js';

/** Tuning beyond the environment settings; the defaults suit production. */
export interface NatsTuning {
  /**
   * Client name shown by the server's monitoring (`/connz`).
   * @default 'event-gateway'
   */
  name?: string;
  /**
   * How long JetStream waits for a delivery to be settled before it redelivers it. Handlers may
   * run longer: the adapter reports progress (`working()`) while a handler runs, so this only
   * decides how soon a delivery comes back after its process died.
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * Deliveries JetStream allows beyond a consumer's `maxAttempts` (its `max_deliver` safety net).
   * The pipeline dead-letters at `maxAttempts`; the margin covers deliveries that never reached a
   * handler's verdict (a process that died mid-delivery), so the pipeline always decides first.
   * @default 5
   */
  maxDeliverMargin?: number;
  /**
   * How long one pull request waits at the server for messages before it is renewed.
   * @default 5000
   */
  pullExpiresMs?: number;
  /**
   * How long `publish` waits for each JetStream PubAck (and core mode for its flush).
   * @default 5000
   */
  publishTimeoutMs?: number;
  /**
   * The stream's duplicate window: a `Nats-Msg-Id` seen within it is stored once. Capped at
   * `maxAgeMs` when that is set, as the server requires.
   * @default 120000
   */
  duplicateWindowMs?: number;
  /**
   * Delays between connection attempts, both before the first connection and (through nats.js,
   * without limit) after one is lost; also between failed pulls.
   * @default { initialMs: 100, maxMs: 2000, multiplier: 2, jitter: 0.2 }
   */
  reconnectBackoff?: BackoffPolicy;
  /**
   * Core mode only: deliveries a consumer holds beyond those its handlers run. Core NATS has no
   * flow control, so past this a delivery is dropped (and logged) rather than growing memory.
   * @default 10000
   */
  coreBacklogLimit?: number;
}

/** What `NatsBroker` takes: the `nats` broker settings, the per-topic settings, and tuning. */
export type NatsBrokerOptions = BrokerSettings['nats'] & { readonly topics: BrokerSettings['topics'] } & NatsTuning;

export type ResolvedNatsOptions = BrokerSettings['nats'] & { readonly topics: BrokerSettings['topics'] } & Required<NatsTuning>;

export function resolveNatsOptions(options: NatsBrokerOptions): ResolvedNatsOptions {
  return {
    ...options,
    name: options.name ?? 'event-gateway',
    ackWaitMs: options.ackWaitMs ?? 30_000,
    maxDeliverMargin: options.maxDeliverMargin ?? 5,
    pullExpiresMs: options.pullExpiresMs ?? 5000,
    publishTimeoutMs: options.publishTimeoutMs ?? 5000,
    duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
    reconnectBackoff: options.reconnectBackoff ?? { initialMs: 100, maxMs: 2000, multiplier: 2, jitter: 0.2 },
    coreBacklogLimit: options.coreBacklogLimit ?? 10_000,
  };
}

/**
 * Where and how to connect: nats.js takes no credentials from a server URL, so a NATS_URL's
 * `user:password@` (or a lone `token@`) becomes its `user`/`pass` (or `token`) options.
 */
export function connectionTarget(url: string): { servers: string; user?: string; pass?: string; token?: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { servers: url };
  }
  if (!parsed.username) return { servers: url };
  const user = decodeURIComponent(parsed.username);
  const pass = decodeURIComponent(parsed.password);
  const servers = `${parsed.protocol}//${parsed.host}`;
  return pass ? { servers, user, pass } : { servers, token: user };
}
